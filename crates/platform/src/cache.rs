//! The cache: one API over two back ends, memory in embedded mode and Redis in distributed mode.
//!
//! It holds what may be lost (cached reads, rate-limit windows, cache generations), never what
//! matters: every entry has a time to live, and a miss is always a correct answer. Both back ends
//! store bytes and keep counters as decimal text, so a value reads the same whichever one a
//! service runs on. Redis keys are prefixed with a namespace, so two shops (or two test runs)
//! can share one server. What both back ends promise is told once, in the platform's
//! `tests/api/cache.rs`, and run against each.

use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A cache command that takes longer than this has failed: a slow cache must not make a
/// request slower than going to the database would.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection attempts (with jittered exponential backoff from 100 ms, at most 1 s apart)
/// before a command reports the server unreachable; the next command starts over.
const REDIS_RECONNECT_ATTEMPTS: usize = 4;
const REDIS_RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Redis refuses expiry times past the end of its clock; ten years is "forever" for a cache.
const REDIS_MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `hash_take_once` on Redis, run as one script so nothing interleaves with it. KEYS: the hash,
/// the token; ARGV: the hash's TTL and the token's (ms), then field and amount pairs.
const HASH_TAKE_ONCE: &str = r"
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return 0 end
for i = 3, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if current then
    local left = current - tonumber(ARGV[i + 1])
    if left > 0 then
      redis.call('HSET', KEYS[1], ARGV[i], string.format('%d', left))
    else
      redis.call('HDEL', KEYS[1], ARGV[i])
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the cache server failed")]
    Redis(#[from] redis::RedisError),
    #[error("cache entry {key:?} is not an integer counter, or would overflow")]
    NotACounter { key: String },
    #[error("cannot encode the value for cache key {key:?}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A cache, whichever back end holds it. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Cache {
    Memory(MemoryCache),
    Redis(RedisCache),
}

impl Cache {
    /// An in-process cache of at most `max_entries` entries.
    pub fn memory(max_entries: u64) -> Cache {
        Cache::Memory(MemoryCache::new(max_entries))
    }

    /// Connects to Redis at `url`; every key is stored as `<namespace>:<key>`. Fails if the
    /// server cannot be reached now, so a misconfigured service stops before it starts serving.
    pub async fn redis(url: &str, namespace: &str) -> Result<Cache, CacheError> {
        RedisCache::connect(url, namespace).await.map(Cache::Redis)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        match self {
            Cache::Memory(cache) => Ok(cache.get(key)),
            Cache::Redis(cache) => cache.get(key).await,
        }
    }

    /// Stores `value` under `key` for `ttl`, replacing any value and expiry it had.
    pub async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        match self {
            Cache::Memory(cache) => {
                cache.set(key, value, ttl);
                Ok(())
            }
            Cache::Redis(cache) => cache.set(key, value, ttl).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        match self {
            Cache::Memory(cache) => {
                cache.delete(key);
                Ok(())
            }
            Cache::Redis(cache) => cache.delete(key).await,
        }
    }

    /// Atomically adds one to the counter at `key` and returns the new value. An absent counter
    /// starts at 1 and lives for `ttl`; incrementing never extends that, so the counter is a
    /// fixed window (rate limits) or a generation that lapses on its own.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        self.incr_by(key, 1, ttl).await
    }

    /// Like [`Cache::incr`], adding `by` (a counter kept in several places and added up here).
    pub async fn incr_by(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        match self {
            Cache::Memory(cache) => cache.incr(key, by, ttl),
            Cache::Redis(cache) => cache.incr(key, by, ttl).await,
        }
    }

    /// Whether other processes see what this one stores (Redis), or it is this process's own.
    pub fn is_shared(&self) -> bool {
        matches!(self, Cache::Redis(_))
    }

    /// A cached JSON value. An entry that no longer decodes (its type changed in a deploy) is a
    /// miss: the caller recomputes and overwrites it.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(error) => {
                tracing::debug!(key, %error, "undecodable cache entry treated as a miss");
                Ok(None)
            }
        }
    }

    pub async fn set_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(value).map_err(|source| CacheError::Encode {
            key: key.to_owned(),
            source,
        })?;
        self.set(key, Bytes::from(bytes), ttl).await
    }

    /// Sets `field` of the hash at `key` to `value`, creating the hash if absent, and gives the
    /// whole hash `ttl` from now: a hash lives until nobody writes to it for `ttl`.
    pub async fn hash_set(
        &self,
        key: &str,
        field: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Cache::Memory(cache) => {
                cache.hash_set(key, field, value, ttl);
                Ok(())
            }
            Cache::Redis(cache) => cache.hash_set(key, field, value, ttl).await,
        }
    }

    /// Atomically adds `by` (which may be negative) to the integer `field` of the hash at `key`
    /// and returns the new value; an absent field starts at 0. Refreshes the hash's `ttl`.
    pub async fn hash_incr(
        &self,
        key: &str,
        field: &str,
        by: i64,
        ttl: Duration,
    ) -> Result<i64, CacheError> {
        match self {
            Cache::Memory(cache) => cache.hash_incr(key, field, by, ttl),
            Cache::Redis(cache) => cache.hash_incr(key, field, by, ttl).await,
        }
    }

    /// Removes `field` from the hash at `key`; the hash's expiry is refreshed to `ttl` if it
    /// still exists. Removing what is not there is not an error.
    pub async fn hash_delete(
        &self,
        key: &str,
        field: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Cache::Memory(cache) => {
                cache.hash_delete(key, field, ttl);
                Ok(())
            }
            Cache::Redis(cache) => cache.hash_delete(key, field, ttl).await,
        }
    }

    /// Takes `amounts` out of the integer fields of the hash at `key`, once for the token `once`:
    /// a field left at zero or below is removed, a field that is absent (or not a number) is left
    /// alone, and the hash's `ttl` is refreshed if it still exists. The token is remembered for
    /// `once_ttl`; while it is, taking again with it changes nothing. Returns whether this call
    /// took. Token and fields change together (one script on Redis), so a retry after a lost
    /// answer can neither take twice nor skip the take.
    pub async fn hash_take_once(
        &self,
        key: &str,
        amounts: &[(&str, i64)],
        once: &str,
        ttl: Duration,
        once_ttl: Duration,
    ) -> Result<bool, CacheError> {
        match self {
            Cache::Memory(cache) => cache.hash_take_once(key, amounts, once, ttl, once_ttl),
            Cache::Redis(cache) => {
                cache
                    .hash_take_once(key, amounts, once, ttl, once_ttl)
                    .await
            }
        }
    }

    /// Every field of the hash at `key` with its value, sorted by field; empty if absent.
    /// Reading does not refresh the expiry.
    pub async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, Bytes)>, CacheError> {
        match self {
            Cache::Memory(cache) => Ok(cache.hash_get_all(key)),
            Cache::Redis(cache) => cache.hash_get_all(key).await,
        }
    }

    /// Whether the cache answers, for readiness.
    pub async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Cache::Memory(_) => Ok(()),
            Cache::Redis(cache) => cache.ping().await,
        }
    }
}

// ----- memory -----

/// The embedded back end: a bounded moka cache with a time to live per entry.
#[derive(Clone, Debug)]
pub struct MemoryCache {
    entries: moka::sync::Cache<String, Entry>,
}

#[derive(Clone, Debug)]
struct Entry {
    value: Bytes,
    /// The lifetime this write gives the entry, or `None` to keep the one it has (an increment).
    ttl: Option<Duration>,
}

/// Expires each entry by its own TTL, as Redis does.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        entry.ttl
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        entry.ttl.or(remaining)
    }
}

impl MemoryCache {
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.get(key).map(|entry| entry.value)
    }

    fn set(&self, key: &str, value: Bytes, ttl: Duration) {
        let entry = Entry {
            value,
            ttl: Some(ttl),
        };
        self.entries.insert(key.to_owned(), entry);
    }

    fn delete(&self, key: &str) {
        self.entries.invalidate(key);
    }

    /// Atomic because moka runs compute closures on one key one at a time (a per-key lock), so
    /// the read-increment-write below cannot interleave with another `incr` of the same key.
    /// Keeping counters in the same map as values (rather than a separate mutex-guarded map)
    /// gives them the same bound, expiry and `get`/`delete` behaviour as on Redis.
    fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        let result = self.entries.entry_by_ref(key).and_try_compute_with(
            |existing| -> Result<Op<Entry>, CacheError> {
                let Some(existing) = existing else {
                    return Ok(Op::Put(counter_entry(by, Some(ttl))));
                };
                let next = parse_counter(existing.value().value.as_ref())
                    .and_then(|n| n.checked_add(by))
                    .ok_or_else(|| CacheError::NotACounter {
                        key: key.to_owned(),
                    })?;
                // The window keeps the expiry it was created with.
                Ok(Op::Put(counter_entry(next, None)))
            },
        )?;
        match result {
            CompResult::Inserted(entry) | CompResult::ReplacedWith(entry) => {
                parse_counter(entry.value().value.as_ref()).ok_or_else(|| CacheError::NotACounter {
                    key: key.to_owned(),
                })
            }
            // The closure above always puts.
            CompResult::Removed(_) | CompResult::Unchanged(_) | CompResult::StillNone(_) => {
                Err(CacheError::NotACounter {
                    key: key.to_owned(),
                })
            }
        }
    }

    fn hash_get_all(&self, key: &str) -> Vec<(String, Bytes)> {
        self.entries
            .get(key)
            .and_then(|entry| decode_hash(&entry.value))
            .map(|hash| hash.into_iter().collect())
            .unwrap_or_default()
    }

    /// Replaces the hash at `key` with what `update` makes of it, under moka's per-key lock, so
    /// concurrent updates of one hash apply one after the other and none is lost. A value that
    /// is not a hash is treated as an empty one. An update that leaves the hash empty removes it.
    fn hash_update<T>(
        &self,
        key: &str,
        ttl: Duration,
        update: impl FnOnce(&mut HashFields) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let mut output = None;
        self.entries.entry_by_ref(key).and_try_compute_with(
            |existing| -> Result<Op<Entry>, CacheError> {
                let mut hash = existing
                    .and_then(|entry| decode_hash(&entry.value().value))
                    .unwrap_or_default();
                output = Some(update(&mut hash)?);
                if hash.is_empty() {
                    return Ok(Op::Remove);
                }
                Ok(Op::Put(Entry {
                    value: encode_hash(&hash),
                    ttl: Some(ttl),
                }))
            },
        )?;
        output.ok_or_else(|| CacheError::NotACounter {
            key: key.to_owned(),
        })
    }

    fn hash_set(&self, key: &str, field: &str, value: Bytes, ttl: Duration) {
        // The closure cannot fail.
        let _ = self.hash_update(key, ttl, |hash| {
            hash.insert(field.to_owned(), value);
            Ok(())
        });
    }

    fn hash_incr(&self, key: &str, field: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        self.hash_update(key, ttl, |hash| {
            let current = match hash.get(field) {
                None => 0,
                Some(value) => parse_counter(value).ok_or_else(|| CacheError::NotACounter {
                    key: format!("{key}/{field}"),
                })?,
            };
            let next = current
                .checked_add(by)
                .ok_or_else(|| CacheError::NotACounter {
                    key: format!("{key}/{field}"),
                })?;
            hash.insert(field.to_owned(), Bytes::from(next.to_string()));
            Ok(next)
        })
    }

    /// In one process, the token and the hash live and die together, so the token's insert and
    /// the hash's update need no common lock: a crash loses both.
    fn hash_take_once(
        &self,
        key: &str,
        amounts: &[(&str, i64)],
        once: &str,
        ttl: Duration,
        once_ttl: Duration,
    ) -> Result<bool, CacheError> {
        let token = self
            .entries
            .entry_by_ref(once)
            .or_insert_with(|| counter_entry(1, Some(once_ttl)));
        if !token.is_fresh() {
            return Ok(false);
        }
        // Absent stays absent: taking from no hash must not create one.
        if self.entries.get(key).is_none() {
            return Ok(true);
        }
        self.hash_update(key, ttl, |hash| {
            for (field, amount) in amounts {
                let Some(current) = hash.get(*field).and_then(|v| parse_counter(v)) else {
                    continue;
                };
                match current.saturating_sub(*amount) {
                    left if left > 0 => {
                        hash.insert((*field).to_owned(), Bytes::from(left.to_string()));
                    }
                    _ => {
                        hash.remove(*field);
                    }
                }
            }
            Ok(true)
        })
    }

    fn hash_delete(&self, key: &str, field: &str, ttl: Duration) {
        // Absent stays absent: removing a field of no hash must not create one.
        if self.entries.get(key).is_none() {
            return;
        }
        let _ = self.hash_update(key, ttl, |hash| {
            hash.remove(field);
            Ok(())
        });
    }
}

/// The fields of a hash in the memory back end, which stores it as one encoded value.
type HashFields = std::collections::BTreeMap<String, Bytes>;

/// Marks a memory entry as a hash, so a plain value is never mistaken for one.
const HASH_MAGIC: &[u8] = b"\0nubo-hash\0";

/// The magic, then per field: field length and bytes, value length and bytes (lengths as
/// big-endian u32).
fn encode_hash(hash: &HashFields) -> Bytes {
    let mut out = HASH_MAGIC.to_vec();
    for (field, value) in hash {
        for part in [field.as_bytes(), value.as_ref()] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    Bytes::from(out)
}

fn decode_hash(bytes: &Bytes) -> Option<HashFields> {
    let mut rest = bytes.strip_prefix(HASH_MAGIC)?;
    let mut take = || -> Option<Vec<u8>> {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if tail.len() < len {
            return None;
        }
        let (part, tail) = tail.split_at(len);
        rest = tail;
        Some(part.to_vec())
    };
    let mut hash = HashFields::new();
    while let Some(field) = take() {
        let value = take()?;
        hash.insert(String::from_utf8(field).ok()?, Bytes::from(value));
    }
    Some(hash)
}

fn counter_entry(value: i64, ttl: Option<Duration>) -> Entry {
    Entry {
        value: Bytes::from(value.to_string()),
        ttl,
    }
}

fn parse_counter(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

// ----- Redis -----

/// The distributed back end: one multiplexed Redis connection that reconnects by itself.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    namespace: std::sync::Arc<str>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password; only the namespace is shown.
        f.debug_struct("RedisCache")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    async fn connect(url: &str, namespace: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
            .set_number_of_retries(REDIS_RECONNECT_ATTEMPTS)
            .set_max_delay(REDIS_RECONNECT_MAX_DELAY);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            namespace: namespace.into(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        let mut connection = self.connection.clone();
        let value: Option<Bytes> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut connection)
            .await?;
        Ok(value)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(redis_ttl_ms(ttl))
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    /// `SET key 0 NX PX ttl` then `INCRBY key by`, in one MULTI/EXEC: the first creates the
    /// counter with its expiry only when absent, and INCRBY keeps an existing expiry. Unlike
    /// INCRBY followed by `EXPIRE NX` this needs no Redis 7, and unlike two separate commands a
    /// window that expires in between cannot leave a counter without an expiry.
    async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        let mut connection = self.connection.clone();
        let (value,): (i64,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(redis_ttl_ms(ttl))
            .ignore()
            .cmd("INCRBY")
            .arg(&key)
            .arg(by)
            .query_async(&mut connection)
            .await?;
        Ok(value)
    }

    async fn hash_set(
        &self,
        key: &str,
        field: &str,
        value: Bytes,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let key = self.key(key);
        let mut connection = self.connection.clone();
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg(field)
            .arg(value.as_ref())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(redis_ttl_ms(ttl))
            .ignore()
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    async fn hash_incr(
        &self,
        key: &str,
        field: &str,
        by: i64,
        ttl: Duration,
    ) -> Result<i64, CacheError> {
        let key = self.key(key);
        let mut connection = self.connection.clone();
        let (value,): (i64,) = redis::pipe()
            .atomic()
            .cmd("HINCRBY")
            .arg(&key)
            .arg(field)
            .arg(by)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(redis_ttl_ms(ttl))
            .ignore()
            .query_async(&mut connection)
            .await?;
        Ok(value)
    }

    async fn hash_delete(&self, key: &str, field: &str, ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(key);
        let mut connection = self.connection.clone();
        // PEXPIRE of a key HDEL emptied (and so removed) does nothing.
        redis::pipe()
            .atomic()
            .cmd("HDEL")
            .arg(&key)
            .arg(field)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(redis_ttl_ms(ttl))
            .ignore()
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    async fn hash_take_once(
        &self,
        key: &str,
        amounts: &[(&str, i64)],
        once: &str,
        ttl: Duration,
        once_ttl: Duration,
    ) -> Result<bool, CacheError> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("EVAL");
        command
            .arg(HASH_TAKE_ONCE)
            .arg(2)
            .arg(self.key(key))
            .arg(self.key(once))
            .arg(redis_ttl_ms(ttl))
            .arg(redis_ttl_ms(once_ttl));
        for (field, amount) in amounts {
            command.arg(*field).arg(*amount);
        }
        let took: i64 = command.query_async(&mut connection).await?;
        Ok(took == 1)
    }

    async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, Bytes)>, CacheError> {
        let mut connection = self.connection.clone();
        let mut fields: Vec<(String, Bytes)> = redis::cmd("HGETALL")
            .arg(self.key(key))
            .query_async(&mut connection)
            .await?;
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(fields)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").exec_async(&mut connection).await?;
        Ok(())
    }
}

/// A TTL Redis accepts: at least 1 ms (it rejects 0) and at most `REDIS_MAX_TTL`.
fn redis_ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.min(REDIS_MAX_TTL).as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    // What both back ends promise is told once, in the platform's tests/api/cache.rs, and run
    // on each; here is what only one of them has.

    const REDIS_URL: &str = "redis://127.0.0.1:6379";

    /// A namespace no other test or run uses, so tests can share one Redis server.
    fn unique_namespace() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!(
            "test-cache-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        )
    }

    async fn redis() -> Cache {
        Cache::redis(REDIS_URL, &unique_namespace()).await.unwrap()
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn memory_is_bounded() {
        let cache = MemoryCache::new(10);
        for i in 0..100 {
            cache.set(&format!("k{i}"), Bytes::from_static(b"v"), MINUTE);
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= 10);
    }

    #[test]
    fn memory_hashes_round_trip_through_their_encoding() {
        let mut hash = HashFields::new();
        hash.insert("".to_owned(), Bytes::new());
        hash.insert("TEA-1".to_owned(), Bytes::from_static(b"\0\x01 binary"));
        assert_eq!(decode_hash(&encode_hash(&hash)), Some(hash));
        assert_eq!(decode_hash(&Bytes::from_static(b"plain value")), None);
    }

    #[tokio::test]
    #[ignore = "needs Redis: run by .ci/run"]
    async fn redis_namespaces_isolate_two_shops_on_one_server() {
        let shop_a = redis().await;
        let shop_b = redis().await;

        shop_a
            .set("product:TEA-1", Bytes::from_static(b"a"), MINUTE)
            .await
            .unwrap();
        assert_eq!(shop_b.get("product:TEA-1").await.unwrap(), None);
        shop_b
            .set("product:TEA-1", Bytes::from_static(b"b"), MINUTE)
            .await
            .unwrap();
        assert_eq!(shop_a.incr("rate:alice", MINUTE).await.unwrap(), 1);
        assert_eq!(shop_b.incr("rate:alice", MINUTE).await.unwrap(), 1);
        shop_b.delete("product:TEA-1").await.unwrap();

        assert_eq!(
            shop_a.get("product:TEA-1").await.unwrap(),
            Some(Bytes::from_static(b"a"))
        );
        assert_eq!(shop_b.get("product:TEA-1").await.unwrap(), None);
    }

    #[tokio::test]
    #[ignore = "needs Redis: run by .ci/run"]
    async fn redis_keys_carry_the_namespace_and_a_ttl() {
        let namespace = unique_namespace();
        let cache = Cache::redis(REDIS_URL, &namespace).await.unwrap();
        cache.incr("rate:alice", MINUTE).await.unwrap();
        cache.incr("rate:alice", MINUTE).await.unwrap();

        let client = redis::Client::open(REDIS_URL).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let ttl_ms: i64 = redis::cmd("PTTL")
            .arg(format!("{namespace}:rate:alice"))
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(ttl_ms > 0 && ttl_ms <= 60_000, "{ttl_ms}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_at_connect() {
        // Bind and drop to get a port that is very likely closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);

        let result = Cache::redis(&format!("redis://{addr}"), "unreachable").await;

        assert!(matches!(result, Err(CacheError::Redis(_))), "{result:?}");
    }
}
