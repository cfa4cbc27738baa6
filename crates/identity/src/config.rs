//! Identity's own settings, read from its `NUBO_IDENTITY_*` variables through the platform's
//! `Env`, so every bad value is reported at once, named, before the service serves.

use std::collections::BTreeMap;
use std::time::Duration;

use nubo_platform::Context;
use nubo_platform::config::Env;

pub const ACCESS_TOKEN_TTL_SECS: &str = "NUBO_IDENTITY_ACCESS_TOKEN_TTL_SECS";
pub const REFRESH_TOKEN_TTL_SECS: &str = "NUBO_IDENTITY_REFRESH_TOKEN_TTL_SECS";
pub const KEY_PUBLISH_DELAY_SECS: &str = "NUBO_IDENTITY_KEY_PUBLISH_DELAY_SECS";
pub const KEY_ROTATION_HOURS: &str = "NUBO_IDENTITY_KEY_ROTATION_HOURS";
pub const KEY_RELOAD_SECS: &str = "NUBO_IDENTITY_KEY_RELOAD_SECS";
pub const SIGNUPS_PER_ADDRESS_HOUR: &str = "NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR";
pub const LOGINS_PER_ADDRESS_MINUTE: &str = "NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE";
pub const PASSWORD_HASH_CONCURRENCY: &str = "NUBO_IDENTITY_PASSWORD_HASH_CONCURRENCY";
pub const PASSWORD_HASH_WAIT_MS: &str = "NUBO_IDENTITY_PASSWORD_HASH_WAIT_MS";

/// How long tokens live and when a new key may sign: what token issue and key rotation share.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub access_token: Duration,
    pub refresh_token: Duration,
    pub key_publish_delay: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub key_publish_delay: Duration,
    pub key_rotation: Duration,
    pub key_reload: Duration,
    /// Sign-ups one client address may make in an hour.
    pub signups_per_address_hour: u64,
    /// Login attempts one client address may make in a minute, over all accounts.
    pub logins_per_address_minute: u64,
    /// Password hashes (about 19 MiB each) run at once; more wait for a turn.
    pub password_hash_concurrency: usize,
    /// How long a login or sign-up waits for a turn to hash before it is answered 503.
    pub password_hash_wait: Duration,
}

/// The CPUs this process may use (its cgroup's quota in a container): argon2 is CPU-bound, so
/// more hashes at once than this would only share the CPUs and hold more memory.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Config {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(vars: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        const DAY: u64 = 24 * 3600;
        let mut env = Env::from_pairs(vars.clone());
        let refresh_token_ttl: u64 = env.get(REFRESH_TOKEN_TTL_SECS, 30 * DAY);
        if !(60..=365 * DAY).contains(&refresh_token_ttl) {
            env.fail(
                REFRESH_TOKEN_TTL_SECS,
                format!(
                    "must be between 60 and {}, got {refresh_token_ttl}",
                    365 * DAY
                ),
            );
        }
        // Zero is allowed: a test, or a shop whose verifiers do not cache the JWKS.
        let key_publish_delay: u64 = env.get(KEY_PUBLISH_DELAY_SECS, 300);
        if key_publish_delay > DAY {
            env.fail(
                KEY_PUBLISH_DELAY_SECS,
                format!("must be between 0 and {DAY}, got {key_publish_delay}"),
            );
        }
        let config = Self {
            access_token_ttl: Duration::from_secs(env.bounded(ACCESS_TOKEN_TTL_SECS, 900, DAY)),
            refresh_token_ttl: Duration::from_secs(refresh_token_ttl),
            key_publish_delay: Duration::from_secs(key_publish_delay),
            key_rotation: Duration::from_secs(3600 * env.bounded(KEY_ROTATION_HOURS, 24, 24 * 365)),
            // Never slower than 30 s: a replica must see a new key well before it starts signing.
            key_reload: Duration::from_secs(env.bounded(KEY_RELOAD_SECS, 30, 30)),
            signups_per_address_hour: env.bounded(SIGNUPS_PER_ADDRESS_HOUR, 20, 1_000_000),
            logins_per_address_minute: env.bounded(LOGINS_PER_ADDRESS_MINUTE, 20, 1_000_000),
            password_hash_concurrency: env.bounded(PASSWORD_HASH_CONCURRENCY, cpus() as u64, 1024)
                as usize,
            // Below the gateway's 3 s deadline for a call, so a client hears 503 from us
            // rather than a timeout from the gateway.
            password_hash_wait: Duration::from_millis(env.bounded(
                PASSWORD_HASH_WAIT_MS,
                1000,
                60_000,
            )),
        };
        env.finish()?;
        Ok(config)
    }

    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            access_token: self.access_token_ttl,
            refresh_token: self.refresh_token_ttl,
            key_publish_delay: self.key_publish_delay,
        }
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
                ACCESS_TOKEN_TTL_SECS => config.access_token_ttl.as_secs(),
                REFRESH_TOKEN_TTL_SECS => config.refresh_token_ttl.as_secs(),
                KEY_PUBLISH_DELAY_SECS => config.key_publish_delay.as_secs(),
                KEY_ROTATION_HOURS => config.key_rotation.as_secs() / 3600,
                KEY_RELOAD_SECS => config.key_reload.as_secs(),
                SIGNUPS_PER_ADDRESS_HOUR => config.signups_per_address_hour,
                LOGINS_PER_ADDRESS_MINUTE => config.logins_per_address_minute,
                PASSWORD_HASH_CONCURRENCY => {
                    assert_eq!(config.password_hash_concurrency, cpus());
                    assert_eq!(*default, "the number of CPUs");
                    continue;
                }
                PASSWORD_HASH_WAIT_MS => config.password_hash_wait.as_millis() as u64,
                other => panic!("{other} is not checked"),
            };
            assert_eq!(value.to_string(), *default, "{name}");
        }
    }

    #[test]
    fn the_ends_of_each_range_are_taken() {
        let config = Config::from_env(&vars(&[
            (ACCESS_TOKEN_TTL_SECS, "86400"),
            (REFRESH_TOKEN_TTL_SECS, "60"),
            (KEY_PUBLISH_DELAY_SECS, "0"),
            (KEY_ROTATION_HOURS, "8760"),
            (KEY_RELOAD_SECS, "1"),
            (SIGNUPS_PER_ADDRESS_HOUR, "1"),
            (PASSWORD_HASH_CONCURRENCY, "1024"),
            (PASSWORD_HASH_WAIT_MS, "1"),
        ]))
        .unwrap();
        assert_eq!(config.access_token_ttl, Duration::from_secs(86_400));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(60));
        assert_eq!(config.key_publish_delay, Duration::ZERO);
        assert_eq!(config.key_rotation, Duration::from_secs(8760 * 3600));
        assert_eq!(config.key_reload, Duration::from_secs(1));
        assert_eq!(config.signups_per_address_hour, 1);
        assert_eq!(config.password_hash_concurrency, 1024);
        assert_eq!(config.password_hash_wait, Duration::from_millis(1));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for bad in [
            (ACCESS_TOKEN_TTL_SECS, "0"),
            (ACCESS_TOKEN_TTL_SECS, "86401"),
            (REFRESH_TOKEN_TTL_SECS, "59"),
            (REFRESH_TOKEN_TTL_SECS, "31536001"),
            (KEY_PUBLISH_DELAY_SECS, "-1"),
            (KEY_PUBLISH_DELAY_SECS, "86401"),
            (KEY_ROTATION_HOURS, "8761"),
            (KEY_RELOAD_SECS, "31"),
            (KEY_RELOAD_SECS, "soon"),
            (SIGNUPS_PER_ADDRESS_HOUR, "0"),
            (SIGNUPS_PER_ADDRESS_HOUR, "1000001"),
            (PASSWORD_HASH_CONCURRENCY, "0"),
            (PASSWORD_HASH_CONCURRENCY, "1025"),
            (PASSWORD_HASH_WAIT_MS, "0"),
            (PASSWORD_HASH_WAIT_MS, "60001"),
        ] {
            let error = Config::from_env(&vars(&[bad])).unwrap_err().to_string();
            assert!(error.contains(bad.0), "{bad:?}: {error}");
        }
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let error = Config::from_env(&vars(&[
            (REFRESH_TOKEN_TTL_SECS, "59"),
            (KEY_RELOAD_SECS, "60"),
        ]))
        .unwrap_err()
        .to_string();
        for name in [REFRESH_TOKEN_TTL_SECS, KEY_RELOAD_SECS] {
            assert!(error.contains(name), "{error}");
        }
    }
}
