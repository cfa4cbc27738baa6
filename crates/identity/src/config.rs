//! Identity's own settings, read from its `NUBO_IDENTITY_*` variables. A value that does not
//! parse stops the service before it serves, with a message naming the variable.

use std::time::Duration;

use nubo_platform::Context;

pub const ACCESS_TOKEN_TTL_SECS: &str = "NUBO_IDENTITY_ACCESS_TOKEN_TTL_SECS";
pub const REFRESH_TOKEN_TTL_SECS: &str = "NUBO_IDENTITY_REFRESH_TOKEN_TTL_SECS";
pub const KEY_PUBLISH_DELAY_SECS: &str = "NUBO_IDENTITY_KEY_PUBLISH_DELAY_SECS";
pub const KEY_ROTATION_HOURS: &str = "NUBO_IDENTITY_KEY_ROTATION_HOURS";
pub const KEY_RELOAD_SECS: &str = "NUBO_IDENTITY_KEY_RELOAD_SECS";

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
}

impl Config {
    pub fn from_context(ctx: &Context) -> anyhow::Result<Self> {
        Self::from_env(&ctx.env)
    }

    pub fn from_env(env: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Self> {
        let read = |name: &str, default: u64, min: u64, max: u64| -> anyhow::Result<u64> {
            let Some(raw) = env.get(name) else {
                return Ok(default);
            };
            raw.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    anyhow::anyhow!("{name}: {raw:?} is not a number from {min} to {max}")
                })
        };
        const DAY: u64 = 24 * 3600;
        Ok(Self {
            access_token_ttl: Duration::from_secs(read(ACCESS_TOKEN_TTL_SECS, 900, 1, DAY)?),
            refresh_token_ttl: Duration::from_secs(read(
                REFRESH_TOKEN_TTL_SECS,
                30 * DAY,
                60,
                365 * DAY,
            )?),
            // Zero is allowed: a test, or a shop whose verifiers do not cache the JWKS.
            key_publish_delay: Duration::from_secs(read(KEY_PUBLISH_DELAY_SECS, 300, 0, DAY)?),
            key_rotation: Duration::from_secs(3600 * read(KEY_ROTATION_HOURS, 24, 1, 24 * 365)?),
            // Never slower than 30 s: a replica must see a new key well before it starts signing.
            key_reload: Duration::from_secs(read(KEY_RELOAD_SECS, 30, 1, 30)?),
        })
    }

    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            access_token: self.access_token_ttl,
            refresh_token: self.refresh_token_ttl,
            key_publish_delay: self.key_publish_delay,
        }
    }
}
