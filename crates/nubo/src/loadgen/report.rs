//! The end of a run: one report, printed as an aligned table for a person or as JSON (with
//! the time series) for a plot or a benchmark harness.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::stats::{Op, OpTally, Point, Tally, ms};

/// One operation's figures; latencies in milliseconds, of its successful requests.
#[derive(Debug, Serialize, PartialEq)]
pub struct OpReport {
    pub operation: &'static str,
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl OpReport {
    pub fn new(operation: &'static str, latency: &Histogram<u64>, errors: &OpTally) -> Self {
        let at = |q: f64| {
            if latency.is_empty() {
                0.0
            } else {
                ms(latency.value_at_quantile(q))
            }
        };
        Self {
            operation,
            count: latency.len(),
            errors: errors.errors.values().sum(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: if latency.is_empty() {
                0.0
            } else {
                ms(latency.max())
            },
            mean_ms: (latency.mean() / 10.0).round() / 100.0,
            errors_by_kind: errors.errors.clone(),
        }
    }
}

/// How the load was applied, in words and in figures.
#[derive(Debug, Serialize)]
pub struct Load {
    /// `closed` or `open`.
    pub model: &'static str,
    /// E.g. `8 shoppers, no think time` or `black-friday from 20/s to 200/s and back`.
    pub described: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shoppers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub scenario: String,
    pub load: Load,
    /// From the first arrival until the last iteration finished.
    pub seconds: f64,
    /// Visits (iterations of the scenario) finished.
    pub visits: u64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub errors: u64,
    /// Orders followed until they were completed or cancelled.
    pub orders: u64,
    pub orders_per_second: f64,
    pub outcomes: BTreeMap<String, u64>,
    pub asked_again: u64,
    pub unanswered: u64,
    pub unsettled: u64,
    /// Only the operations the run performed or that failed.
    pub operations: Vec<OpReport>,
    pub units_sold: i64,
    /// `ok`, or every SKU whose stock and sales disagree.
    #[serde(serialize_with = "ok_or_list")]
    pub stock: Vec<String>,
    pub series: Vec<Point>,
}

fn ok_or_list<S: serde::Serializer>(broken: &[String], s: S) -> Result<S::Ok, S::Error> {
    if broken.is_empty() {
        s.serialize_str("ok")
    } else {
        broken.serialize(s)
    }
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        return 0.0;
    }
    (n as f64 / seconds * 10.0).round() / 10.0
}

impl Report {
    pub fn new(
        target: String,
        scenario: String,
        load: Load,
        seconds: f64,
        tally: Tally,
        stock: Vec<String>,
    ) -> Self {
        let operations = Op::ALL
            .iter()
            .zip(&tally.ops)
            .filter(|(_, t)| !t.latency.is_empty() || !t.errors.is_empty())
            .map(|(op, t)| OpReport::new(op.name(), &t.latency, t))
            .collect();
        let orders = tally.outcomes.values().sum();
        Self {
            target,
            scenario,
            load,
            seconds: (seconds * 10.0).round() / 10.0,
            visits: tally.iterations,
            requests: tally.requests,
            requests_per_second: per_second(tally.requests, seconds),
            errors: tally.errors,
            orders,
            orders_per_second: per_second(orders, seconds),
            outcomes: tally.outcomes,
            asked_again: tally.asked_again,
            unanswered: tally.unanswered,
            unsettled: tally.unsettled,
            operations,
            units_sold: tally.sold.values().sum(),
            stock,
            series: tally.series,
        }
    }

    /// The report as a person reads it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}, {} model: {}; {} s against {}",
            self.scenario, self.load.model, self.load.described, self.seconds, self.target
        );
        let _ = write!(
            out,
            "{} visits, {} requests ({}/s), {} errors",
            self.visits, self.requests, self.requests_per_second, self.errors
        );
        if self.orders > 0 {
            let outcomes: Vec<String> = self
                .outcomes
                .iter()
                .map(|(status, n)| format!("{n} {status}"))
                .collect();
            let _ = write!(
                out,
                "; {} orders ({}/s): {}",
                self.orders,
                self.orders_per_second,
                outcomes.join(", ")
            );
        }
        out.push_str("\n\n");
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "operation", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for op in &self.operations {
            let _ = writeln!(
                out,
                "{:<24} {:>8} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                op.operation,
                op.count,
                op.errors,
                op.p50_ms,
                op.p90_ms,
                op.p99_ms,
                op.p999_ms,
                op.max_ms
            );
        }
        let errors: Vec<String> = self
            .operations
            .iter()
            .flat_map(|op| {
                op.errors_by_kind
                    .iter()
                    .map(move |(kind, n)| format!("  {}: {kind} ×{n}", op.operation))
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(out, "\nerrors by kind:\n{}", errors.join("\n"));
        }
        if self.asked_again + self.unanswered + self.unsettled > 0 {
            let _ = writeln!(
                out,
                "\ncheckouts asked again under the same key: {}; left without an answer: {}; \
                 orders left unsettled: {}",
                self.asked_again, self.unanswered, self.unsettled
            );
        }
        if self.orders > 0 || !self.stock.is_empty() {
            let _ = writeln!(
                out,
                "\nunits sold: {}; stock accounted for: {}",
                self.units_sold,
                if self.stock.is_empty() {
                    "ok".to_owned()
                } else {
                    self.stock.join("; ")
                }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::stats::histogram;

    #[test]
    fn an_operation_reports_its_percentiles_in_milliseconds_and_its_errors_by_kind() {
        let mut latency = histogram(3);
        // 1 ms to 1000 ms, one request each.
        for ms in 1..=1000u64 {
            latency.record(ms * 1000).unwrap();
        }
        let errors = OpTally {
            latency: histogram(3),
            errors: BTreeMap::from([("503".to_owned(), 2), ("timeout".to_owned(), 1)]),
        };
        let op = OpReport::new("checkout", &latency, &errors);
        assert_eq!((op.count, op.errors), (1000, 3));
        // Three significant digits: each figure within 0.1% of the true one.
        for (got, want) in [
            (op.p50_ms, 500.0),
            (op.p90_ms, 900.0),
            (op.p99_ms, 990.0),
            (op.p999_ms, 999.0),
            (op.max_ms, 1000.0),
            (op.mean_ms, 500.5),
        ] {
            assert!((got - want).abs() <= want * 0.001, "{got} is not {want}");
        }
        assert_eq!(op.errors_by_kind["503"], 2);
    }

    #[test]
    fn an_operation_that_only_failed_reports_zero_latencies() {
        let errors = OpTally {
            latency: histogram(3),
            errors: BTreeMap::from([("cannot connect".to_owned(), 4)]),
        };
        let op = OpReport::new("search", &errors.latency, &errors);
        assert_eq!(
            (op.count, op.errors, op.p99_ms, op.max_ms),
            (0, 4, 0.0, 0.0)
        );
    }

    #[test]
    fn the_table_lists_only_the_operations_the_run_performed() {
        let stats = crate::loadgen::stats::Stats::new(tokio::time::Instant::now());
        stats.ok(Op::Search, tokio::time::Instant::now());
        stats.order("confirmed", &[("TEA-001".to_owned(), 2)]);
        let load = Load {
            model: "closed",
            described: "1 shopper".to_owned(),
            shoppers: Some(1),
            max_in_flight: None,
        };
        let report = Report::new(
            "http://127.0.0.1:8080".to_owned(),
            "search".to_owned(),
            load,
            2.0,
            stats.finish(),
            Vec::new(),
        );
        let text = report.text();
        assert!(text.contains("\nsearch "), "{text}");
        assert!(!text.contains("checkout until settled"), "{text}");
        assert!(text.contains("1 orders (0.5/s): 1 confirmed"), "{text}");
        assert!(
            text.contains("units sold: 2; stock accounted for: ok"),
            "{text}"
        );
    }
}
