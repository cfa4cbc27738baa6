//! The cart's own settings, read from its `NUBO_CART_*` variables through the platform's `Env`,
//! so every bad value is reported at once, named, before the service serves.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;
use nubo_platform::config::Env;

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

    pub fn from_env(vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut env = Env::from_pairs(vars.clone());
        let idle_ttl = Duration::from_secs(env.bounded(IDLE_TTL_SECS, 604_800, 31_536_000));
        let currency: String = env.get(CURRENCY, "EUR".to_owned());
        // A currency is valid when money in it is.
        if let Err(why) = nubo_contracts::Money::parse(0, &currency) {
            env.fail(CURRENCY, why);
        }
        env.finish()?;
        Ok(Self { idle_ttl, currency })
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
                IDLE_TTL_SECS => config.idle_ttl.as_secs().to_string(),
                CURRENCY => config.currency.clone(),
                other => panic!("{other} is not checked"),
            };
            assert_eq!(value, *default, "{name}");
        }
    }

    #[test]
    fn set_values_are_read() {
        let config = Config::from_env(&vars(&[(IDLE_TTL_SECS, "1"), (CURRENCY, "USD")])).unwrap();
        assert_eq!(config.idle_ttl, Duration::from_secs(1));
        assert_eq!(config.currency, "USD");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (IDLE_TTL_SECS, "0"),
            (IDLE_TTL_SECS, "-1"),
            (IDLE_TTL_SECS, "week"),
            (IDLE_TTL_SECS, "31536001"),
            (CURRENCY, "euro"),
            (CURRENCY, "eur"),
        ] {
            let error = Config::from_env(&vars(&[bad])).unwrap_err().to_string();
            assert!(error.contains(bad.0), "{bad:?}: {error}");
        }
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let error = Config::from_env(&vars(&[(IDLE_TTL_SECS, "week"), (CURRENCY, "euro")]))
            .unwrap_err()
            .to_string();
        for name in [IDLE_TTL_SECS, CURRENCY] {
            assert!(error.contains(name), "{error}");
        }
    }
}
