//! Switches are the service's, not one replica's: set through any replica, they are stored in
//! the cache (Redis when distributed) with their audit trail, and every replica takes them up
//! within [`FOLLOW_EVERY`]. An entry that is gone (Redis emptied) means every switch off, the
//! safe way for a fault to end.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{AUDIT_ENTRIES, AuditEntry, FaultSettings, Ops};
use crate::cache::Cache;

pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// Switches left on are forgotten after this long.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Shared {
    pub faults: FaultSettings,
    pub audit: Vec<AuditEntry>,
}

fn key(service: &str) -> String {
    format!("ops:switches:{service}")
}

/// The service's switches as stored, `None` when the cache cannot say.
pub async fn load(cache: &Cache, service: &str) -> Option<Shared> {
    match cache.get_json::<Shared>(&key(service)).await {
        Ok(found) => Some(found.unwrap_or_default()),
        Err(_) => None,
    }
}

/// Stores `faults` with `entry` added to the trail; returns what was stored.
pub async fn store(
    cache: &Cache,
    service: &str,
    faults: FaultSettings,
    entry: AuditEntry,
) -> Result<Shared, crate::cache::CacheError> {
    let mut shared = cache
        .get_json::<Shared>(&key(service))
        .await?
        .unwrap_or_default();
    shared.faults = faults;
    shared.audit.push(entry);
    let extra = shared.audit.len().saturating_sub(AUDIT_ENTRIES);
    shared.audit.drain(..extra);
    cache.set_json(&key(service), &shared, KEEP).await?;
    Ok(shared)
}

/// One replica as it last said it was, in the service's roll call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicaView {
    pub instance: String,
    pub version: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub status: String,
    pub seen_at: chrono::DateTime<chrono::Utc>,
}

/// A replica not heard from for this long is gone from the roll call.
const ROLL_CALL_FOR: Duration = Duration::from_secs(10);

fn roll_key(service: &str) -> String {
    format!("ops:replicas:{service}")
}

/// Every replica of `service` heard from lately, by instance.
pub async fn replicas(cache: &Cache, service: &str) -> Vec<ReplicaView> {
    let now = chrono::Utc::now();
    let mut all: Vec<ReplicaView> = cache
        .hash_get_all(&roll_key(service))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<ReplicaView>(&v).ok())
        .filter(|r| (now - r.seen_at).to_std().is_ok_and(|d| d < ROLL_CALL_FOR) || r.seen_at > now)
        .collect();
    all.sort_by(|a, b| a.instance.cmp(&b.instance));
    all
}

/// Keeps this replica's switches as stored, and answers the service's roll call, until `token`
/// is cancelled.
pub async fn follow(ops: Ops, cache: Cache, token: CancellationToken) {
    let mut tick = 0u64;
    let mut status = String::from("starting");
    loop {
        if let Some(shared) = load(&cache, ops.0.desc.name).await {
            ops.take_up(shared);
        }
        // Readiness checks touch the database: every fifth round is often enough.
        if tick.is_multiple_of(5) {
            status = ops.status().await;
        }
        tick += 1;
        let me = ReplicaView {
            instance: ops.0.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: ops.0.started_at,
            status: status.clone(),
            seen_at: chrono::Utc::now(),
        };
        if let Ok(bytes) = serde_json::to_vec(&me) {
            let _ = cache
                .hash_set(
                    &roll_key(ops.0.desc.name),
                    &me.instance,
                    bytes.into(),
                    ROLL_CALL_FOR * 6,
                )
                .await;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;
    use crate::metrics::Metrics;
    use crate::ops::Faults;
    use crate::service::ServiceDescription;
    use crate::storage::Migrations;

    static TWO_REPLICAS: ServiceDescription = ServiceDescription {
        name: "switch-test",
        migrations: Migrations::NONE,
        publishes: &[],
        consumes: &[],
        env: &[],
        check_env: None,
        build: |_| Box::pin(async { anyhow::bail!("not built in this test") }),
        openapi: None,
        seed: None,
        cache_holds_data: false,
        knobs: &[],
    };

    fn replica(cache: &Cache) -> (Ops, Faults) {
        let faults = Faults::default();
        let ops = Ops::new(
            &TWO_REPLICAS,
            Health::new("switch-test"),
            Metrics::new("switch-test"),
            faults.clone(),
            cache.clone(),
            false,
        );
        (ops, faults)
    }

    #[tokio::test]
    async fn a_switch_set_through_one_replica_reaches_the_other_and_a_lost_store_turns_it_off() {
        let cache = Cache::memory(100);
        let (first, _) = replica(&cache);
        let (second, seen_by_second) = replica(&cache);
        let token = CancellationToken::new();
        tokio::spawn(second.follow(token.clone()));

        let on = FaultSettings {
            error_rate: 0.25,
            ..FaultSettings::default()
        };
        first.set_faults("ops@nubo.test", on.clone()).await.unwrap();
        let deadline = tokio::time::Instant::now() + FOLLOW_EVERY * 5;
        while seen_by_second.get() != on {
            assert!(tokio::time::Instant::now() < deadline, "never taken up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let trail = first.snapshot(0, 0).await.audit;
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].who, "ops@nubo.test");

        cache.delete(&key("switch-test")).await.unwrap();
        let deadline = tokio::time::Instant::now() + FOLLOW_EVERY * 5;
        while seen_by_second.get().any() {
            assert!(tokio::time::Instant::now() < deadline, "still on");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        token.cancel();
    }
}
