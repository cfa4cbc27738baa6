//! The cart's own settings, read from its `NUBO_CART_*` variables. A value that does not parse
//! stops the service before it serves, with a message naming the variable.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;

pub const IDLE_TTL_SECS: &str = "NUBO_CART_IDLE_TTL_SECS";
pub const CURRENCY: &str = "NUBO_CART_CURRENCY";

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// A cart nobody changes for this long is forgotten.
    pub idle_ttl: Duration,
    /// The currency of an empty cart's total (a cart with lines totals in its prices' currency).
    pub currency: String,
}

impl Config {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(env: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let idle_ttl = match env.get(IDLE_TTL_SECS) {
            None => 604_800,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=31_536_000).contains(n))
                .ok_or_else(|| {
                    anyhow::anyhow!("{IDLE_TTL_SECS}: {raw:?} is not a number from 1 to 31536000")
                })?,
        };
        let currency = match env.get(CURRENCY) {
            None => "EUR".to_owned(),
            Some(raw) => {
                nubo_contracts::Money::parse(0, raw.trim())
                    .map_err(|m| anyhow::anyhow!("{CURRENCY}: {m}"))?
                    .currency
            }
        };
        Ok(Self {
            idle_ttl: Duration::from_secs(idle_ttl),
            currency,
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
        assert_eq!(config.idle_ttl, Duration::from_secs(604_800));
        assert_eq!(config.currency, "EUR");
    }

    #[test]
    fn set_values_are_read() {
        let config = Config::from_env(&env(&[(IDLE_TTL_SECS, "1"), (CURRENCY, "USD")])).unwrap();
        assert_eq!(config.idle_ttl, Duration::from_secs(1));
        assert_eq!(config.currency, "USD");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (IDLE_TTL_SECS, "0"),
            (IDLE_TTL_SECS, "-1"),
            (IDLE_TTL_SECS, "week"),
            (CURRENCY, "euro"),
        ] {
            let error = Config::from_env(&env(&[bad])).unwrap_err().to_string();
            assert!(error.starts_with(bad.0), "{error}");
        }
    }
}
