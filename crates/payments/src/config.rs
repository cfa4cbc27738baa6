//! Payments' own settings, read from its `NUBO_PAYMENTS_*` variables. A value that does not
//! parse stops the service before it serves, with a message naming the variable.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;

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

    pub fn from_env(env: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let millis = |name: &str, default: u64, min: u64, max: u64| -> anyhow::Result<Duration> {
            let Some(raw) = env.get(name) else {
                return Ok(Duration::from_millis(default));
            };
            raw.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    anyhow::anyhow!("{name}: {raw:?} is not a number from {min} to {max}")
                })
        };
        let provider_failure_rate = match env.get(PROVIDER_FAILURE_RATE) {
            None => 0.0,
            Some(raw) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{PROVIDER_FAILURE_RATE}: {raw:?} is not a fraction from 0.0 to 1.0"
                    )
                })?,
        };
        Ok(Self {
            provider_latency: millis(PROVIDER_LATENCY_MS, 50, 0, 10_000)?,
            provider_failure_rate,
            provider_timeout: millis(PROVIDER_TIMEOUT_MS, 2000, 1, 60_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert_eq!(config.provider_latency, Duration::from_millis(50));
        assert_eq!(config.provider_failure_rate, 0.0);
        assert_eq!(config.provider_timeout, Duration::from_secs(2));
    }

    #[test]
    fn values_in_range_are_taken() {
        let config = Config::from_env(&env(&[
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
            (PROVIDER_TIMEOUT_MS, "0"),
        ] {
            let error = Config::from_env(&env(&[bad])).unwrap_err().to_string();
            assert!(error.starts_with(bad.0), "{error}");
        }
    }
}
