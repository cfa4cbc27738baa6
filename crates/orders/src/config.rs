//! Orders' own settings, read from its `NUBO_ORDERS_*` variables through the platform's `Env`,
//! so every bad value is reported at once, named, before the service serves.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;
use nubo_platform::config::Env;

pub const CHECKOUT_WAIT_MS: &str = "NUBO_ORDERS_CHECKOUT_WAIT_MS";
pub const PAYMENT_DEADLINE_SECS: &str = "NUBO_ORDERS_PAYMENT_DEADLINE_SECS";
pub const RESERVATION_TTL_SECS: &str = "NUBO_ORDERS_RESERVATION_TTL_SECS";
pub const LEASE_MS: &str = "NUBO_ORDERS_LEASE_MS";
pub const RECOVERY_INTERVAL_MS: &str = "NUBO_ORDERS_RECOVERY_INTERVAL_MS";
pub const STUCK_AFTER_SECS: &str = "NUBO_ORDERS_STUCK_AFTER_SECS";

/// The variables, their meaning and default, as the service description lists them.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        CHECKOUT_WAIT_MS,
        "how long a checkout request waits for its saga to finish before answering 202 with the pending order, in milliseconds",
        "800",
    ),
    (
        PAYMENT_DEADLINE_SECS,
        "how long a checkout may wait for stock and payment (a service not answering) before it is cancelled, in seconds",
        "60",
    ),
    (
        RESERVATION_TTL_SECS,
        "how long inventory holds a checkout's stock unless the order commits it, in seconds",
        "900",
    ),
    (
        LEASE_MS,
        "how long a replica owns a saga it runs without renewing; another resumes it after that, in milliseconds",
        "15000",
    ),
    (
        RECOVERY_INTERVAL_MS,
        "how often unfinished sagas nobody runs are looked for and resumed, in milliseconds",
        "1000",
    ),
    (
        STUCK_AFTER_SECS,
        "how long an unfinished saga may stay in one state before it counts as stuck (nubo_sagas_stuck), in seconds",
        "300",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub checkout_wait: Duration,
    pub payment_deadline: Duration,
    pub reservation_ttl: Duration,
    pub lease: Duration,
    pub recovery_interval: Duration,
    pub stuck_after: Duration,
}

impl Config {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut env = Env::from_pairs(vars.clone());
        let config = Self {
            checkout_wait: Duration::from_millis(env.bounded(CHECKOUT_WAIT_MS, 800, 30_000)),
            payment_deadline: Duration::from_secs(env.bounded(PAYMENT_DEADLINE_SECS, 60, 3600)),
            reservation_ttl: Duration::from_secs(env.bounded(RESERVATION_TTL_SECS, 900, 3600)),
            lease: Duration::from_millis(env.bounded(LEASE_MS, 15_000, 600_000)),
            recovery_interval: Duration::from_millis(env.bounded(
                RECOVERY_INTERVAL_MS,
                1000,
                60_000,
            )),
            stuck_after: Duration::from_secs(env.bounded(STUCK_AFTER_SECS, 300, 86_400)),
        };
        // Stock must be held for as long as a checkout may still be paid for.
        if config.reservation_ttl <= config.payment_deadline {
            env.fail(
                RESERVATION_TTL_SECS,
                format!(
                    "must be longer than {PAYMENT_DEADLINE_SECS} ({} s), or stock could be \
                     released under a checkout that is still being paid for",
                    config.payment_deadline.as_secs()
                ),
            );
        }
        env.finish()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_platform::config::vars;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::from_env(&vars(&[])).unwrap();
        for (name, _, default) in VARIABLES {
            let value = match *name {
                CHECKOUT_WAIT_MS => config.checkout_wait.as_millis() as u64,
                PAYMENT_DEADLINE_SECS => config.payment_deadline.as_secs(),
                RESERVATION_TTL_SECS => config.reservation_ttl.as_secs(),
                LEASE_MS => config.lease.as_millis() as u64,
                RECOVERY_INTERVAL_MS => config.recovery_interval.as_millis() as u64,
                STUCK_AFTER_SECS => config.stuck_after.as_secs(),
                other => panic!("{other} is not checked"),
            };
            assert_eq!(value.to_string(), *default, "{name}");
        }
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let error = Config::from_env(&vars(&[
            (CHECKOUT_WAIT_MS, "soon"),
            (LEASE_MS, "0"),
            (PAYMENT_DEADLINE_SECS, "100"),
            (RESERVATION_TTL_SECS, "100"),
        ]))
        .unwrap_err()
        .to_string();
        for name in [CHECKOUT_WAIT_MS, LEASE_MS, RESERVATION_TTL_SECS] {
            assert!(error.contains(name), "{error}");
        }
    }
}
