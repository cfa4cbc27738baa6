//! Payments' own settings, read from its `NUBO_PAYMENTS_*` variables through the platform's
//! `Env`, so every bad value is reported at once, named, before the service serves.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;
use nubo_platform::config::Env;

pub const PROVIDER_LATENCY_MS: &str = "NUBO_PAYMENTS_PROVIDER_LATENCY_MS";
pub const PROVIDER_FAILURE_RATE: &str = "NUBO_PAYMENTS_PROVIDER_FAILURE_RATE";
pub const PROVIDER_TIMEOUT_MS: &str = "NUBO_PAYMENTS_PROVIDER_TIMEOUT_MS";

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// How long the simulated provider takes to answer.
    pub provider_latency: Duration,
    /// The fraction of simulated provider calls that fail transiently, 0.0 to 1.0.
    pub provider_failure_rate: f64,
    /// How long payments waits for the provider before answering 503.
    pub provider_timeout: Duration,
}

impl Config {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut env = Env::from_pairs(vars.clone());
        let config = Self {
            // Zero is allowed: a provider that answers at once.
            provider_latency: Duration::from_millis(env.in_range(
                PROVIDER_LATENCY_MS,
                50,
                0..=10_000,
            )),
            provider_failure_rate: env.in_range(PROVIDER_FAILURE_RATE, 0.0, 0.0..=1.0),
            provider_timeout: Duration::from_millis(env.bounded(PROVIDER_TIMEOUT_MS, 2000, 60_000)),
        };
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
        for (name, _, default) in crate::SERVICE.env {
            let value = match *name {
                PROVIDER_LATENCY_MS => config.provider_latency.as_millis().to_string(),
                PROVIDER_FAILURE_RATE => config.provider_failure_rate.to_string(),
                PROVIDER_TIMEOUT_MS => config.provider_timeout.as_millis().to_string(),
                other => panic!("{other} is not checked"),
            };
            assert_eq!(value, *default, "{name}");
        }
    }

    #[test]
    fn values_in_range_are_taken() {
        let config = Config::from_env(&vars(&[
            (PROVIDER_LATENCY_MS, "0"),
            (PROVIDER_FAILURE_RATE, "0.25"),
            (PROVIDER_TIMEOUT_MS, "150"),
        ]))
        .unwrap();
        assert_eq!(config.provider_latency, Duration::ZERO);
        assert_eq!(config.provider_failure_rate, 0.25);
        assert_eq!(config.provider_timeout, Duration::from_millis(150));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (PROVIDER_LATENCY_MS, "-1"),
            (PROVIDER_LATENCY_MS, "slow"),
            (PROVIDER_FAILURE_RATE, "1.5"),
            (PROVIDER_FAILURE_RATE, "NaN"),
            (PROVIDER_FAILURE_RATE, "-0.1"),
            (PROVIDER_LATENCY_MS, "10001"),
            (PROVIDER_TIMEOUT_MS, "0"),
            (PROVIDER_TIMEOUT_MS, "60001"),
        ] {
            let error = Config::from_env(&vars(&[bad])).unwrap_err().to_string();
            assert!(error.contains(bad.0), "{bad:?}: {error}");
        }
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let error = Config::from_env(&vars(&[
            (PROVIDER_LATENCY_MS, "slow"),
            (PROVIDER_FAILURE_RATE, "1.5"),
        ]))
        .unwrap_err()
        .to_string();
        for name in [PROVIDER_LATENCY_MS, PROVIDER_FAILURE_RATE] {
            assert!(error.contains(name), "{error}");
        }
    }
}
