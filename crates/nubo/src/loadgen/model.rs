//! The two load models, and the progress line that watches them.
//!
//! Closed: a fixed number of shoppers, each starting its next visit when the last one ended
//! (after a think time): the shop's speed sets the rate, as with a fixed pool of users. Open:
//! visits arrive on a schedule whatever the shop does, each as a task of its own, as customers
//! of a real shop do; a shop that slows down then faces more visits at once, not fewer, and
//! the latency it causes is measured from each visit's intended start.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::accounts::{Account, Pool};
use super::rate::{RateCurve, Schedule};
use super::scenario::Mix;
use super::stats::{DROPPED, Op, Stats};
use super::visit::Ctx;

/// Shoppers visiting until `until`, one per entry of `accounts` (none for visits that need no
/// account), pausing about `think` between visits.
pub async fn closed(
    ctx: Arc<Ctx>,
    mix: Mix,
    accounts: Vec<Option<Arc<Account>>>,
    think: Duration,
    until: Instant,
    seed: u64,
) {
    let mut shoppers = JoinSet::new();
    for (n, account) in accounts.into_iter().enumerate() {
        let (ctx, mix) = (ctx.clone(), mix.clone());
        shoppers.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(n as u64));
            while Instant::now() < until {
                let visit = mix.pick(rng.random_range(0..mix.total()));
                ctx.stats.arrival();
                ctx.stats.began();
                ctx.visit(visit, account.as_deref(), None, &mut rng).await;
                ctx.stats.ended();
                if !think.is_zero() {
                    // Between half and one and a half times the think time, so that shoppers
                    // who started together do not stay in step.
                    let pause = think.mul_f64(rng.random_range(0.5..1.5));
                    tokio::time::sleep_until((Instant::now() + pause).min(until)).await;
                }
            }
        });
    }
    while shoppers.join_next().await.is_some() {}
}

/// Visits arriving as `curve` says, each started at its intended time as a task of its own.
/// An arrival that finds `max_in_flight` visits running is dropped and counted as an error:
/// queueing it would hide the overload, running it would let the generator run away.
pub async fn open(
    ctx: Arc<Ctx>,
    mix: Mix,
    pool: Option<Arc<Pool>>,
    curve: RateCurve,
    max_in_flight: usize,
    seed: u64,
) {
    let started = ctx.stats.started();
    let cap = Arc::new(Semaphore::new(max_in_flight));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut running = JoinSet::new();
    for due in Schedule::new(curve) {
        let intended = started + due;
        // Late wake-ups (a busy generator) start the visits late, and their latency shows it.
        tokio::time::sleep_until(intended).await;
        ctx.stats.arrival();
        let Ok(slot) = cap.clone().try_acquire_owned() else {
            ctx.stats.error(Op::Arrival, DROPPED);
            continue;
        };
        let visit = mix.pick(rng.random_range(0..mix.total()));
        let mut visit_rng = StdRng::seed_from_u64(rng.random());
        let (ctx, pool) = (ctx.clone(), pool.clone());
        ctx.stats.began();
        running.spawn(async move {
            let lease = match &pool {
                Some(pool) if visit.needs_account() => Some(pool.take().await),
                _ => None,
            };
            ctx.visit(visit, lease.as_deref(), Some(intended), &mut visit_rng)
                .await;
            drop(lease);
            ctx.stats.ended();
            drop(slot);
        });
        while running.try_join_next().is_some() {}
    }
    while running.join_next().await.is_some() {}
}

/// Closes a point of the time series every second and shows how the run goes on stderr: a
/// line rewritten in place on a terminal, a plain line every 5 s otherwise. Runs until aborted.
pub fn watch(stats: Arc<Stats>, curve: Option<RateCurve>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let second = Duration::from_secs(1);
        let mut ticks = tokio::time::interval_at(stats.started() + second, second);
        for n in 1u64.. {
            ticks.tick().await;
            let line = progress(&stats, curve.as_ref());
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else if n % 5 == 0 {
                eprintln!("{line}");
            }
        }
    })
}

/// Closes the current second (the last one may be partial) and says how the run goes.
pub fn progress(stats: &Stats, curve: Option<&RateCurve>) -> String {
    let progress = stats.tick(curve);
    let p = &progress.point;
    let mut line = format!(
        "loadgen {:>4.0} s: {} req/s, {} errors so far, {} in flight",
        progress.elapsed.as_secs_f64(),
        p.requests,
        progress.errors,
        p.in_flight
    );
    if let Some(target) = p.target_rate {
        line.push_str(&format!(", {} arrivals/s of {target:.0}", p.arrivals));
    }
    if let Some(p99) = progress.checkout_p99_ms {
        line.push_str(&format!(", checkout p99 {p99:.1} ms"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Intended times are read off the schedule, not off the previous arrival: however late
    /// the generator wakes up, the n-th arrival's intended time stays n / rate.
    #[tokio::test(start_paused = true)]
    async fn an_arrival_keeps_its_intended_time_when_the_generator_is_late() {
        let started = Instant::now();
        let mut schedule = Schedule::new(RateCurve::constant(10.0, 1.0));
        let first = started + schedule.next().unwrap();
        tokio::time::sleep_until(first).await;
        // The generator stalls for a quarter of a second.
        tokio::time::advance(Duration::from_millis(250)).await;
        let late: Vec<Instant> = schedule.by_ref().take(2).map(|d| started + d).collect();
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0).round();
        assert_eq!(ms(late[0] - started), 200.0);
        assert_eq!(ms(late[1] - started), 300.0);
        // Measured from the intended time, the stall is in the latency of the late arrival.
        assert_eq!(ms(Instant::now() - late[0]), 150.0);
        assert_eq!(schedule.count(), 7, "the rest of the second's ten arrivals");
    }
}
