//! Inventory's own settings, read from its `NUBO_INVENTORY_*` variables. A value that does not
//! parse stops the service before it serves, with a message naming the variable.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;

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

    pub fn from_env(env: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let read = |name: &str, default: i64, min: i64, max: i64| -> anyhow::Result<i64> {
            let Some(raw) = env.get(name) else {
                return Ok(default);
            };
            raw.trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    anyhow::anyhow!("{name}: {raw:?} is not a number from {min} to {max}")
                })
        };
        let sweep_ms = read(EXPIRY_SWEEP_MS, 1000, 10, 60_000)?;
        Ok(Self {
            expiry_sweep: Duration::from_millis(sweep_ms.unsigned_abs()),
            initial_stock: read(INITIAL_STOCK, 0, 0, crate::domain::OnHand::MAX)?,
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
        assert_eq!(config.expiry_sweep, Duration::from_secs(1));
        assert_eq!(config.initial_stock, 0);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (EXPIRY_SWEEP_MS, "0"),
            (INITIAL_STOCK, "-1"),
            (INITIAL_STOCK, "many"),
        ] {
            let error = Config::from_env(&env(&[bad])).unwrap_err().to_string();
            assert!(error.starts_with(bad.0), "{error}");
        }
    }
}
