//! What identity counts, each outcome recorded by one call that logs it and bumps its counter,
//! so the logs and the metrics cannot disagree: logins and refreshes by outcome, and accounts
//! guessed at from many addresses. A rise in refused logins is an attack in progress; any
//! reused refresh token is a stolen one.

use nubo_platform::metrics::Metrics;
use nubo_platform::uuid::Uuid;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::passwords::HashPool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// How a login ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Login {
    Succeeded,
    WrongCredentials,
    ClientLimited,
    /// Too many failures for this account from this address.
    AccountLimited,
    /// Every password hasher stayed busy: answered 503.
    Busy,
}

/// How a sign-up ended (bad input aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signup {
    Created,
    EmailTaken,
    /// Too many sign-ups from this address.
    Limited,
    /// Every password hasher stayed busy: answered 503.
    Busy,
}

/// How a refresh ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    Rotated,
    Refused,
    /// A used token came back: its family was revoked.
    Reused {
        family: Uuid,
        user: Uuid,
    },
}

/// Identity's own counters, registered with the service's metrics. Cheap to clone.
#[derive(Clone)]
pub struct IdentityMetrics {
    logins: Family<OutcomeLabels, Counter>,
    signups: Family<OutcomeLabels, Counter>,
    refreshes: Family<OutcomeLabels, Counter>,
    accounts_under_attack: Counter,
}

impl IdentityMetrics {
    pub fn register(metrics: &Metrics, hashes: &HashPool) -> Self {
        metrics.register(
            "identity_password_hashes_running",
            "Password hashes running now; never above NUBO_IDENTITY_PASSWORD_HASH_CONCURRENCY",
            hashes.running.clone(),
        );
        metrics.register(
            "identity_password_hashes_refused",
            "Logins and sign-ups answered 503 because no hasher came free in time",
            hashes.refused.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            "identity_logins",
            "Login attempts by outcome",
            logins.clone(),
        );
        let signups = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            "identity_signups",
            "Sign-ups with valid input by outcome",
            signups.clone(),
        );
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            "identity_refreshes",
            "Refresh-token exchanges by outcome",
            refreshes.clone(),
        );
        let accounts_under_attack = Counter::default();
        metrics.register(
            "identity_accounts_under_attack",
            "Accounts whose failed logins from all addresses reached the attack threshold in a day",
            accounts_under_attack.clone(),
        );
        Self {
            logins,
            signups,
            refreshes,
            accounts_under_attack,
        }
    }

    /// An account's failures from all addresses reached the threshold: from now on, addresses
    /// it does not know get one guess each. Who it is stays out of the log (its email is
    /// personal data, and may not even be an account's).
    pub fn account_under_attack(&self) {
        tracing::warn!("an account is being guessed at from many addresses; backing off");
        self.accounts_under_attack.inc();
    }

    /// Records a login from `client`. Emails are not logged: they are personal data, and a
    /// failed login's email may not even be the person's.
    pub fn login(&self, outcome: Login, client: &str) {
        let label = match outcome {
            Login::Succeeded => "succeeded",
            Login::WrongCredentials => "wrong_credentials",
            Login::ClientLimited => "client_limited",
            Login::AccountLimited => "account_limited",
            Login::Busy => "busy",
        };
        match outcome {
            Login::Succeeded => tracing::debug!(client, "login succeeded"),
            Login::WrongCredentials => tracing::info!(client, "login refused: wrong credentials"),
            Login::ClientLimited => {
                tracing::warn!(client, "login refused: too many attempts from this address")
            }
            Login::AccountLimited => tracing::warn!(
                client,
                "login refused: too many failures for this account from this address"
            ),
            // The pool logged it already.
            Login::Busy => {}
        }
        self.logins
            .get_or_create(&OutcomeLabels { outcome: label })
            .inc();
    }

    /// Records a sign-up from `client`; like logins, without its email.
    pub fn signup(&self, outcome: Signup, client: &str) {
        let label = match outcome {
            Signup::Created => "created",
            Signup::EmailTaken => "email_taken",
            Signup::Limited => "limited",
            Signup::Busy => "busy",
        };
        match outcome {
            Signup::Created => tracing::debug!(client, "account created"),
            Signup::EmailTaken => {
                tracing::info!(client, "sign-up refused: the email has an account")
            }
            Signup::Limited => {
                tracing::warn!(client, "sign-up refused: too many from this address")
            }
            // The pool logged it already.
            Signup::Busy => {}
        }
        self.signups
            .get_or_create(&OutcomeLabels { outcome: label })
            .inc();
    }

    pub fn refresh(&self, outcome: Refresh) {
        let label = match outcome {
            Refresh::Rotated => "rotated",
            Refresh::Refused => "refused",
            Refresh::Reused { family, user } => {
                tracing::warn!(%family, %user, "a used refresh token came back; revoked its family");
                "reused"
            }
        };
        self.refreshes
            .get_or_create(&OutcomeLabels { outcome: label })
            .inc();
    }
}
