//! Inventory's own settings, read from its `NUBO_INVENTORY_*` variables through the platform's
//! `Env`, so every bad value is reported at once, named, before the service serves.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;
use nubo_platform::config::Env;

use crate::domain::OnHand;

pub const EXPIRY_SWEEP_MS: &str = "NUBO_INVENTORY_EXPIRY_SWEEP_MS";
pub const INITIAL_STOCK: &str = "NUBO_INVENTORY_INITIAL_STOCK";

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How often held reservations past their expiry are released.
    pub expiry_sweep: Duration,
    /// Units on hand a product gets when the catalog first announces it.
    pub initial_stock: i64,
}

impl Config {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut env = Env::from_pairs(vars.clone());
        let sweep_ms: u64 = env.in_range(EXPIRY_SWEEP_MS, 1000, 10..=60_000);
        let initial_stock: i64 = env.get(INITIAL_STOCK, 0);
        if let Err(why) = OnHand::parse(initial_stock) {
            env.fail(INITIAL_STOCK, format!("{why}, got {initial_stock}"));
        }
        env.finish()?;
        Ok(Self {
            expiry_sweep: Duration::from_millis(sweep_ms),
            initial_stock,
        })
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
                EXPIRY_SWEEP_MS => config.expiry_sweep.as_millis().to_string(),
                INITIAL_STOCK => config.initial_stock.to_string(),
                other => panic!("{other} is not checked"),
            };
            assert_eq!(value, *default, "{name}");
        }
    }

    #[test]
    fn the_ends_of_each_range_are_taken() {
        let config = Config::from_env(&vars(&[
            (EXPIRY_SWEEP_MS, "10"),
            (INITIAL_STOCK, "1000000"),
        ]))
        .unwrap();
        assert_eq!(config.expiry_sweep, Duration::from_millis(10));
        assert_eq!(config.initial_stock, 1_000_000);
        let config = Config::from_env(&vars(&[(EXPIRY_SWEEP_MS, "60000")])).unwrap();
        assert_eq!(config.expiry_sweep, Duration::from_secs(60));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (EXPIRY_SWEEP_MS, "0"),
            (EXPIRY_SWEEP_MS, "9"),
            (EXPIRY_SWEEP_MS, "60001"),
            (EXPIRY_SWEEP_MS, "-1"),
            (INITIAL_STOCK, "-1"),
            (INITIAL_STOCK, "1000001"),
            (INITIAL_STOCK, "many"),
        ] {
            let error = Config::from_env(&vars(&[bad])).unwrap_err().to_string();
            assert!(error.contains(bad.0), "{bad:?}: {error}");
        }
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let error = Config::from_env(&vars(&[(EXPIRY_SWEEP_MS, "0"), (INITIAL_STOCK, "many")]))
            .unwrap_err()
            .to_string();
        for name in [EXPIRY_SWEEP_MS, INITIAL_STOCK] {
            assert!(error.contains(name), "{error}");
        }
    }
}
