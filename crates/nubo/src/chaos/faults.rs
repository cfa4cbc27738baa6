//! The faults of a chaos run: what they are, when they happen (a schedule drawn from the seed,
//! with every kind in it), and how each is done.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom as _, SliceRandom as _};
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL of one replica of a service: a crash.
    Kill,
    /// SIGTERM of one replica: a graceful stop (a deploy, a node drained).
    Stop,
    /// PostgreSQL stopped (immediately or cleanly) and started again.
    Postgres,
    /// NATS killed or stopped, and started again.
    Nats,
    /// Redis killed or stopped, and started again.
    Redis,
    /// The card provider fails half its calls and answers slowly, for ten seconds.
    Provider,
    /// Between one service and its callers, for ten seconds: added latency, connections
    /// refused, and answers lost after the request went through.
    Network,
    /// An operator cancels orders: the newest (mid-checkout, often after authorization) and
    /// an older one (completed, after capture).
    Cancel,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::Stop,
        Fault::Postgres,
        Fault::Nats,
        Fault::Redis,
        Fault::Provider,
        Fault::Network,
        Fault::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "stop",
            Fault::Postgres => "postgres",
            Fault::Nats => "nats",
            Fault::Redis => "redis",
            Fault::Provider => "provider",
            Fault::Network => "network",
            Fault::Cancel => "cancel",
        }
    }
}

/// `count` faults over `seconds`: every kind as often as the others (give or take one), in an
/// order and at times drawn from `rng`, none in the first and last five seconds.
pub fn schedule(rng: &mut StdRng, seconds: u64, count: usize) -> Vec<(Duration, Fault)> {
    let mut kinds: Vec<Fault> = Fault::ALL.iter().copied().cycle().take(count).collect();
    kinds.shuffle(rng);
    let span = seconds.saturating_sub(10).max(1) as f64;
    let mut times: Vec<Duration> = (0..count)
        .map(|_| Duration::from_secs_f64(5.0 + rng.random::<f64>() * span))
        .collect();
    times.sort();
    times.into_iter().zip(kinds).collect()
}

/// The signal of a fault on a replica.
pub fn signal(fault: Fault) -> Signal {
    match fault {
        Fault::Kill => Signal::SIGKILL,
        _ => Signal::SIGTERM,
    }
}

/// Picks one of `items` with `rng`.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    items.choose(rng)
}

/// How many faults of each kind were done.
pub fn by_kind(done: &[(Duration, Fault, String)]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for (_, fault, _) in done {
        *counts.entry(fault.name()).or_default() += 1;
    }
    counts
}

pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_has_every_kind_evenly_in_time_order_and_the_same_for_the_same_seed() {
        let plan = schedule(&mut seeded(7), 120, 44);
        assert_eq!(plan.len(), 44);
        // 44 over 8 kinds: 5 or 6 of each.
        let kinds: Vec<(Duration, Fault, String)> = plan
            .iter()
            .map(|(at, f)| (*at, *f, String::new()))
            .collect();
        let counts = by_kind(&kinds);
        assert_eq!(counts.len(), Fault::ALL.len(), "{counts:?}");
        assert!(counts.values().all(|n| *n == 5 || *n == 6), "{counts:?}");
        assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(
            plan.iter()
                .all(|(at, _)| at.as_secs_f64() >= 5.0 && at.as_secs_f64() <= 115.0)
        );
        assert_eq!(plan, schedule(&mut seeded(7), 120, 44));
        assert_ne!(plan, schedule(&mut seeded(8), 120, 44));
    }
}
