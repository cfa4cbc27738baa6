//! Notifications' own settings, read from its `NUBO_NOTIFICATIONS_*` variables. A value that does
//! not parse, or an SMTP server missing in distributed mode, stops the service before any port
//! opens, with a message naming the variable.
//!
//! Text messages go through the SMS provider `NUBO_NOTIFICATIONS_SMS_PROVIDER` names; nubo ships
//! `simulated` (the default), a provider in the process that keeps what it receives for admins
//! to read back.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use nubo_platform::config::{Env, Mode, Secret};

pub const SMTP_URL: &str = "NUBO_NOTIFICATIONS_SMTP_URL";
pub const FROM: &str = "NUBO_NOTIFICATIONS_FROM";
pub const SEND_ATTEMPTS: &str = "NUBO_NOTIFICATIONS_SEND_ATTEMPTS";
pub const SEND_CONCURRENCY: &str = "NUBO_NOTIFICATIONS_SEND_CONCURRENCY";
pub const SMS_PROVIDER: &str = "NUBO_NOTIFICATIONS_SMS_PROVIDER";

pub const DEFAULT_FROM: &str = "nubo <shop@nubo.example>";
pub const DEFAULT_SEND_ATTEMPTS: u32 = 8;
pub const DEFAULT_SEND_CONCURRENCY: u32 = 16;
pub const DEFAULT_SMS_PROVIDER: &str = "simulated";

/// The SMS provider text messages go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsProvider {
    /// The provider in the process ([`crate::sms::simulated`]): it texts nobody, and keeps what
    /// it receives.
    Simulated,
}

impl std::str::FromStr for SmsProvider {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "simulated" => Ok(Self::Simulated),
            _ => Err("the SMS providers nubo knows are: simulated"),
        }
    }
}

/// How long one SMTP conversation may take. The claim lease of the mail outbox is longer, so a
/// message is never taken over while its first sender may still be talking to the server.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and how to send. The URL may carry a password, so it is only ever held as a [`Secret`]
/// and never appears in a log line or an error message.
#[derive(Clone)]
pub struct Smtp {
    url: Secret,
}

impl Smtp {
    /// Checks that lettre accepts `raw` (scheme, host, port, `?tls=`), without connecting.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        // Only the lettre error is shown: it never repeats the URL, whose password must not leak.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(raw).map_err(|e| {
            anyhow::anyhow!(
                "not an SMTP URL (smtp://host:port, smtps://user:password@host, \
                 smtp://host?tls=required): {e}"
            )
        })?;
        Ok(Self {
            url: Secret::new(raw),
        })
    }

    /// A transport to the server that keeps up to `connections` SMTP sessions open and reuses
    /// them; it connects when a message is sent.
    pub fn transport(
        &self,
        connections: u32,
    ) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose())
            .map_err(|e| anyhow::anyhow!("{SMTP_URL}: {e}"))?;
        let pool = lettre::transport::smtp::PoolConfig::new()
            .max_size(connections)
            .idle_timeout(Duration::from_secs(30));
        Ok(builder
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(pool)
            .build())
    }
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp").field("url", &self.url).finish()
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The server emails go to; `None` (embedded mode only) records them without sending.
    pub smtp: Option<Smtp>,
    /// Who the emails come from.
    pub from: Mailbox,
    /// Tries of one email or text message before it is marked `failed`.
    pub send_attempts: u32,
    /// Emails sent at once by one replica, each on its own SMTP session.
    pub send_concurrency: u32,
    /// Where text messages go.
    pub sms_provider: SmsProvider,
}

impl Config {
    /// Every bad variable is reported at once, named, through the platform's `Env`. In
    /// distributed mode emails must leave, so an SMTP server is required: a shop whose customers
    /// silently get nothing is worse than one that does not start.
    pub fn from_env(vars: &BTreeMap<String, String>, mode: Mode) -> anyhow::Result<Self> {
        let mut env = Env::from_pairs(vars.clone());
        let smtp = match env.raw(SMTP_URL).map(str::to_owned) {
            None if mode == Mode::Distributed => {
                env.fail(
                    SMTP_URL,
                    "is required in distributed mode: the SMTP server emails are sent to, e.g. \
                     smtp://mail.internal:25 or smtps://user:password@smtp.example.com",
                );
                None
            }
            None => None,
            Some(raw) => match Smtp::parse(&raw) {
                Ok(smtp) => Some(smtp),
                Err(e) => {
                    // The message never repeats the URL: it may hold a password.
                    env.fail(SMTP_URL, format!("{e:#}"));
                    None
                }
            },
        };
        let from = env
            .optional::<Mailbox>(FROM)
            .unwrap_or_else(|| DEFAULT_FROM.parse().expect("the default From parses"));
        let send_attempts = env.in_range(SEND_ATTEMPTS, DEFAULT_SEND_ATTEMPTS, 1..=50);
        let send_concurrency = env.in_range(SEND_CONCURRENCY, DEFAULT_SEND_CONCURRENCY, 1..=64);
        let sms_provider = env.get(SMS_PROVIDER, SmsProvider::Simulated);
        env.finish()?;
        Ok(Self {
            smtp,
            from,
            send_attempts,
            send_concurrency,
            sms_provider,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_platform::config::vars;

    #[test]
    fn defaults_record_without_sending_from_the_shop() {
        let config = Config::from_env(&vars(&[]), Mode::Embedded).unwrap();
        assert!(config.smtp.is_none());
        assert_eq!(config.from.to_string(), DEFAULT_FROM);
        assert_eq!(config.send_attempts, DEFAULT_SEND_ATTEMPTS);
        assert_eq!(config.sms_provider, SmsProvider::Simulated);
        assert_eq!(DEFAULT_SMS_PROVIDER.parse(), Ok(SmsProvider::Simulated));
        let named = vars(&[(SMS_PROVIDER, "simulated")]);
        let config = Config::from_env(&named, Mode::Embedded).unwrap();
        assert_eq!(config.sms_provider, SmsProvider::Simulated);
    }

    #[test]
    fn distributed_mode_refuses_to_start_without_an_smtp_server() {
        let error = Config::from_env(&vars(&[]), Mode::Distributed)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("{SMTP_URL}: is required")),
            "{error}"
        );
        let smtp = vars(&[(SMTP_URL, "smtp://127.0.0.1:2525")]);
        let config = Config::from_env(&smtp, Mode::Distributed).unwrap();
        assert!(config.smtp.is_some());
    }

    #[test]
    fn every_url_form_lettre_knows_is_taken() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.internal",
            "smtp://mail.internal?tls=required",
            "smtp://mail.internal:587?tls=opportunistic",
            "smtps://user:p%40ss@smtp.example.com",
        ] {
            let config = Config::from_env(&vars(&[(SMTP_URL, url)]), Mode::Embedded).unwrap();
            assert!(config.smtp.is_some(), "{url}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (SMTP_URL, "http://mail.internal"),
            (SMTP_URL, "not a url"),
            (SMTP_URL, "smtp://mail.internal?tls=sometimes"),
            (FROM, "shop"),
            (FROM, "nubo <shop@>"),
            (SEND_ATTEMPTS, "0"),
            (SEND_ATTEMPTS, "51"),
            (SEND_ATTEMPTS, "many"),
            (SEND_CONCURRENCY, "0"),
            (SEND_CONCURRENCY, "65"),
            (SMS_PROVIDER, "twilio"),
            (SMS_PROVIDER, "Simulated"),
        ] {
            let error = Config::from_env(&vars(&[bad]), Mode::Embedded)
                .unwrap_err()
                .to_string();
            assert!(error.contains(&format!("{}: ", bad.0)), "{bad:?}: {error}");
        }
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let error = Config::from_env(
            &vars(&[(SMTP_URL, "http://x"), (SEND_ATTEMPTS, "0")]),
            Mode::Embedded,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(SMTP_URL) && error.contains(SEND_ATTEMPTS),
            "{error}"
        );
    }

    #[test]
    fn the_smtp_password_never_shows() {
        let url = "smtps://shop:hunter2@smtp.example.com";
        let config = Config::from_env(&vars(&[(SMTP_URL, url)]), Mode::Embedded).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let bad = "ftp://shop:hunter2@smtp.example.com";
        let error = Config::from_env(&vars(&[(SMTP_URL, bad)]), Mode::Embedded)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
