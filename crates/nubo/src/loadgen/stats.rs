//! What a run measured, as it goes: a latency histogram and the errors by kind of every
//! operation, the outcomes of the orders and the units they sold, and one point a second for
//! the time series. Every task records into one `Stats` behind a mutex held for a few
//! instructions; at the few thousand requests a second one loopback shop answers, that costs
//! less than the request itself.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// HdrHistogram is the standard for latency percentiles (wrk2, Gil Tene's own work): constant
// memory, exact counts, and a chosen precision at every magnitude from a microsecond to an hour.
// The Rust port is the maintained reference implementation; sorting samples would hold every
// request of a long run in memory instead.
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use super::rate::RateCurve;

/// What the shoppers do, in the order the report lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ListProducts,
    ProductPage,
    Categories,
    CategoryPage,
    Search,
    ReadCart,
    AddToCart,
    RemoveFromCart,
    /// The checkout request, from its first send until the shop answers with an order,
    /// re-asks under the same key included: what the shopper waits for.
    Checkout,
    /// One look at an order that is still running.
    Order,
    /// From the first send of the checkout until the order is completed or cancelled.
    CheckoutSettled,
    /// A shopper's access token renewed during a long run.
    RefreshToken,
    /// An arrival of the open model; it has no latency, only errors (dropped at the cap).
    Arrival,
}

impl Op {
    pub const ALL: [Op; 13] = [
        Op::ListProducts,
        Op::ProductPage,
        Op::Categories,
        Op::CategoryPage,
        Op::Search,
        Op::ReadCart,
        Op::AddToCart,
        Op::RemoveFromCart,
        Op::Checkout,
        Op::Order,
        Op::CheckoutSettled,
        Op::RefreshToken,
        Op::Arrival,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::ListProducts => "list products",
            Op::ProductPage => "product page",
            Op::Categories => "categories",
            Op::CategoryPage => "category page",
            Op::Search => "search",
            Op::ReadCart => "read cart",
            Op::AddToCart => "add to cart",
            Op::RemoveFromCart => "remove from cart",
            Op::Checkout => "checkout",
            Op::Order => "order",
            Op::CheckoutSettled => "checkout until settled",
            Op::RefreshToken => "refresh token",
            Op::Arrival => "arrival",
        }
    }

    /// Whether this is one request to the shop (not a span of several, nor an arrival).
    fn is_request(self) -> bool {
        !matches!(self, Op::CheckoutSettled | Op::Arrival)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An arrival the open model could not start because `--max-in-flight` iterations were running.
pub const DROPPED: &str = "dropped (in-flight cap)";

/// Latencies are recorded in microseconds, from 1 µs to an hour.
const HIGHEST_US: u64 = 3_600_000_000;

/// A histogram of microseconds with `digits` significant digits.
pub fn histogram(digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, digits).expect("the bounds are constants")
}

pub fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// One operation's latencies (of its successes) and its failures by kind.
pub struct OpTally {
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
}

/// One second of the run, as the time series shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Which second of the run (1 is the first; the last may be a partial one).
    pub second: u64,
    /// The open model's intended arrival rate over that second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Iterations due (open model: every scheduled arrival, dropped ones included).
    pub arrivals: u64,
    /// Iterations finished.
    pub completions: u64,
    pub requests: u64,
    pub errors: u64,
    /// Iterations running at the end of the second.
    pub in_flight: u64,
    /// Latency of the requests answered in that second (none if there was none).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Everything recorded, for the report.
pub struct Tally {
    pub ops: Vec<OpTally>,
    pub iterations: u64,
    pub requests: u64,
    pub errors: u64,
    /// Orders by final status (`confirmed`, `cancelled`).
    pub outcomes: BTreeMap<String, u64>,
    /// Units of each SKU in orders that completed.
    pub sold: BTreeMap<String, i64>,
    /// Checkouts asked again under the same key after a lost answer (each counted once).
    pub asked_again: u64,
    /// Checkouts with no answer, and orders not settled, when the run gave up on them.
    pub unanswered: u64,
    pub unsettled: u64,
    pub series: Vec<Point>,
}

/// The second being filled.
struct Second {
    /// When it began, since the start of the run.
    from: Duration,
    arrivals: u64,
    completions: u64,
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
}

impl Second {
    fn new(from: Duration) -> Self {
        Self {
            from,
            arrivals: 0,
            completions: 0,
            requests: 0,
            errors: 0,
            // Two digits are plenty for a plot and keep a point's histogram small.
            latency: histogram(2),
        }
    }
}

pub struct Stats {
    started: Instant,
    in_flight: AtomicU64,
    inner: Mutex<(Tally, Second)>,
}

/// What the live progress line shows.
pub struct Progress {
    pub elapsed: Duration,
    pub point: Point,
    pub errors: u64,
    pub checkout_p99_ms: Option<f64>,
}

pub fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

impl Stats {
    pub fn new(started: Instant) -> Self {
        let tally = Tally {
            ops: Op::ALL
                .iter()
                .map(|_| OpTally {
                    latency: histogram(3),
                    errors: BTreeMap::new(),
                })
                .collect(),
            iterations: 0,
            requests: 0,
            errors: 0,
            outcomes: BTreeMap::new(),
            sold: BTreeMap::new(),
            asked_again: 0,
            unanswered: 0,
            unsettled: 0,
            series: Vec::new(),
        };
        Self {
            started,
            in_flight: AtomicU64::new(0),
            inner: Mutex::new((tally, Second::new(Duration::ZERO))),
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    fn with<R>(&self, f: impl FnOnce(&mut Tally, &mut Second) -> R) -> R {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (tally, second) = &mut *inner;
        f(tally, second)
    }

    /// `op` succeeded; it took from `from` until now.
    pub fn ok(&self, op: Op, from: Instant) {
        let us = micros(from.elapsed());
        self.with(|t, s| {
            t.ops[op.index()].latency.saturating_record(us);
            if op.is_request() {
                t.requests += 1;
                s.requests += 1;
                s.latency.saturating_record(us);
            }
        });
    }

    /// `op` failed this way (`503`, `timeout`, `503 (asked again)`, [`DROPPED`]).
    pub fn error(&self, op: Op, kind: impl Into<String>) {
        let kind = kind.into();
        self.with(|t, s| {
            *t.ops[op.index()].errors.entry(kind).or_default() += 1;
            t.errors += 1;
            s.errors += 1;
            if op.is_request() {
                t.requests += 1;
                s.requests += 1;
            }
        });
    }

    /// An iteration is due (it may still be dropped).
    pub fn arrival(&self) {
        self.with(|_, s| s.arrivals += 1);
    }

    pub fn began(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ended(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.with(|t, s| {
            t.iterations += 1;
            s.completions += 1;
        });
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A settled order: its final status and, if it completed, the units it sold.
    pub fn order(&self, status: &str, sold: &[(String, i64)]) {
        self.with(|t, _| {
            *t.outcomes.entry(status.to_owned()).or_default() += 1;
            for (sku, quantity) in sold {
                *t.sold.entry(sku.clone()).or_default() += quantity;
            }
        });
    }

    pub fn asked_again(&self) {
        self.with(|t, _| t.asked_again += 1);
    }

    pub fn unanswered(&self) {
        self.with(|t, _| t.unanswered += 1);
    }

    pub fn unsettled(&self) {
        self.with(|t, _| t.unsettled += 1);
    }

    /// Closes the current second into the time series and says how the run is going; with the
    /// open model's `curve`, at what rate arrivals were due in that second.
    pub fn tick(&self, curve: Option<&RateCurve>) -> Progress {
        let elapsed = self.started.elapsed();
        let in_flight = self.in_flight();
        self.with(|t, s| {
            let closed = std::mem::replace(s, Second::new(elapsed));
            let target_rate =
                curve.map(|c| c.mean_rate(closed.from.as_secs_f64(), elapsed.as_secs_f64()));
            let quantile = |q: f64| {
                (!closed.latency.is_empty()).then(|| ms(closed.latency.value_at_quantile(q)))
            };
            let point = Point {
                second: t.series.len() as u64 + 1,
                target_rate: target_rate.map(|r| (r * 10.0).round() / 10.0),
                arrivals: closed.arrivals,
                completions: closed.completions,
                requests: closed.requests,
                errors: closed.errors,
                in_flight,
                p50_ms: quantile(0.5),
                p99_ms: quantile(0.99),
            };
            t.series.push(point.clone());
            let checkout = &t.ops[Op::Checkout.index()].latency;
            Progress {
                elapsed,
                point,
                errors: t.errors,
                checkout_p99_ms: (!checkout.is_empty())
                    .then(|| ms(checkout.value_at_quantile(0.99))),
            }
        })
    }

    pub fn finish(self) -> Tally {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn each_second_of_the_run_becomes_a_point_of_the_time_series() {
        let stats = Stats::new(Instant::now());
        stats.arrival();
        stats.began();
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(20)).await;
        stats.ok(Op::ListProducts, sent);
        stats.error(Op::Checkout, "503 (asked again)");
        stats.ended();
        tokio::time::advance(Duration::from_millis(980)).await;
        let curve = RateCurve::ramp(0.0, 10.0, 10.0);
        let first = stats.tick(Some(&curve));
        assert_eq!(first.point.second, 1);
        assert_eq!(
            first.point.target_rate,
            Some(0.5),
            "the mean of 0/s rising to 1/s"
        );
        assert_eq!(
            (first.point.arrivals, first.point.completions),
            (1, 1),
            "one iteration came and went"
        );
        assert_eq!((first.point.requests, first.point.errors), (2, 1));
        // Two significant digits: within 1%.
        let p99 = first.point.p99_ms.unwrap();
        assert!((p99 - 20.0).abs() <= 0.2, "{p99}");
        tokio::time::advance(Duration::from_secs(1)).await;
        let quiet = stats.tick(None).point;
        assert_eq!((quiet.second, quiet.requests, quiet.p99_ms), (2, 0, None));
        let tally = stats.finish();
        assert_eq!(tally.series.len(), 2);
        assert_eq!(
            tally.ops[Op::Checkout as usize].errors["503 (asked again)"],
            1
        );
    }

    #[test]
    fn a_dropped_arrival_is_an_error_but_not_a_request() {
        let stats = Stats::new(Instant::now());
        stats.error(Op::Arrival, DROPPED);
        let tally = stats.finish();
        assert_eq!((tally.errors, tally.requests), (1, 0));
    }
}
