//! Reads what a service's `/metrics` says into the few numbers the console charts: requests,
//! errors and latency buckets (its own and per service it calls), in-flight requests, pool,
//! outbox backlog, consumer lag and breaker states. The console's own calls are left out.

use std::collections::BTreeMap;

/// Cumulative counts since the service started, and gauges as they are.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub requests: f64,
    pub errors: f64,
    /// Latency histogram: upper bound in seconds and cumulative count.
    pub buckets: BTreeMap<Bound, f64>,
    pub in_flight: f64,
    pub pool_open: f64,
    pub pool_idle: f64,
    pub outbox_backlog: f64,
    pub consumer_lag: f64,
    /// Per target: 0 closed, 1 half-open, 2 open.
    pub breakers: BTreeMap<String, f64>,
    /// What this service's calls to each target did.
    pub calls: BTreeMap<String, Totals>,
}

/// A bucket's upper bound, ordered (`+Inf` last).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound(pub f64);

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The routes the console itself calls, which are not the shop's traffic.
const CONSOLE_ROUTES: &str = "/api/v1/admin/ops";

pub fn totals(text: &str) -> Totals {
    let mut t = Totals::default();
    for (name, labels, value) in samples(text) {
        let label = |key: &str| label(&labels, key);
        if label("route").is_some_and(|r| r.starts_with(CONSOLE_ROUTES)) {
            continue;
        }
        match name {
            "nubo_http_requests_total" => {
                t.requests += value;
                if label("status").and_then(|s| s.parse::<u16>().ok()) >= Some(500) {
                    t.errors += value;
                }
            }
            "nubo_http_request_duration_seconds_bucket" => add_bucket(&mut t, label("le"), value),
            "nubo_http_requests_in_flight" => t.in_flight += value,
            "nubo_db_pool_connections" => match label("state") {
                Some("open") => t.pool_open += value,
                Some("idle") => t.pool_idle += value,
                _ => {}
            },
            "nubo_outbox_backlog" => t.outbox_backlog += value,
            "nubo_consumer_lag" => t.consumer_lag += value,
            "nubo_client_circuit_state" => {
                if let Some(target) = label("target") {
                    t.breakers.insert(target.to_owned(), value);
                }
            }
            "nubo_client_requests_total" => {
                if let Some(target) = label("target") {
                    let call = t.calls.entry(target.to_owned()).or_default();
                    call.requests += value;
                    // A 4xx is the caller's request refused, not the target failing.
                    let outcome = label("outcome").unwrap_or("");
                    if !(outcome.starts_with('2')
                        || outcome.starts_with('3')
                        || outcome.starts_with('4'))
                    {
                        call.errors += value;
                    }
                }
            }
            "nubo_client_request_duration_seconds_bucket" => {
                if let Some(target) = label("target") {
                    let le = label("le");
                    add_bucket(t.calls.entry(target.to_owned()).or_default(), le, value);
                }
            }
            _ => {}
        }
    }
    t
}

fn add_bucket(t: &mut Totals, le: Option<&str>, value: f64) {
    let bound = match le {
        Some("+Inf") => f64::INFINITY,
        Some(v) => match v.parse() {
            Ok(v) => v,
            Err(_) => return,
        },
        None => return,
    };
    *t.buckets.entry(Bound(bound)).or_default() += value;
}

/// One sample line: `name{k="v",...} value`, or `None` for comments and lines it cannot read.
pub type Sample<'a> = (&'a str, Vec<(&'a str, String)>, f64);

/// Every sample of a scrape.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(sample)
}

/// The value of `key` among a sample's labels.
pub fn label<'a>(labels: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

fn sample(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = Vec::new();
    let rest = if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches(',');
            if let Some(after) = inner.strip_prefix('}') {
                break after;
            }
            let eq = inner.find("=\"")?;
            let key = &inner[..eq];
            let mut value = String::new();
            let mut chars = inner[eq + 2..].char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break eq + 2 + i + 1,
                    c => value.push(c),
                }
            };
            labels.push((key, value));
            inner = &inner[end..];
        }
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

/// The `q` quantile (0..1) of the requests between two cumulative histograms, in milliseconds,
/// interpolated inside its bucket; `None` when no request fell between them.
pub fn quantile_ms(
    now: &BTreeMap<Bound, f64>,
    before: &BTreeMap<Bound, f64>,
    q: f64,
) -> Option<f64> {
    let deltas: Vec<(f64, f64)> = now
        .iter()
        .map(|(b, n)| (b.0, n - before.get(b).copied().unwrap_or(0.0)))
        .collect();
    let total = deltas.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (bound, count) in deltas {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0 * 1000.0);
            }
            let within = if count > lower.1 {
                (rank - lower.1) / (count - lower.1)
            } else {
                1.0
            };
            return Some((lower.0 + (bound - lower.0) * within) * 1000.0);
        }
        lower = (bound, count);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP nubo_http_requests Requests
nubo_http_requests_total{service="orders",method="GET",route="/api/v1/orders",status="200"} 90
nubo_http_requests_total{service="orders",method="POST",route="/api/v1/checkout",status="503"} 10
nubo_http_requests_total{service="orders",method="GET",route="/api/v1/admin/ops/snapshot",status="200"} 40
nubo_http_request_duration_seconds_bucket{service="orders",method="GET",route="/api/v1/orders",le="0.001"} 0
nubo_http_request_duration_seconds_bucket{service="orders",method="GET",route="/api/v1/orders",le="0.002"} 50
nubo_http_request_duration_seconds_bucket{service="orders",method="GET",route="/api/v1/orders",le="0.004"} 100
nubo_http_request_duration_seconds_bucket{service="orders",method="GET",route="/api/v1/orders",le="+Inf"} 100
nubo_client_requests_total{service="orders",target="payments",method="POST",outcome="201"} 8
nubo_client_requests_total{service="orders",target="payments",method="POST",outcome="timeout"} 2
nubo_client_circuit_state{service="orders",target="payments"} 2
nubo_consumer_lag{service="orders",consumer="a \"b\""} 3
"#;

    #[test]
    fn a_scrape_reads_into_the_numbers_the_console_charts() {
        let t = totals(TEXT);
        assert_eq!((t.requests, t.errors), (100.0, 10.0));
        assert_eq!(t.consumer_lag, 3.0);
        assert_eq!(t.breakers["payments"], 2.0);
        let calls = &t.calls["payments"];
        assert_eq!((calls.requests, calls.errors), (10.0, 2.0));
        let p50 = quantile_ms(&t.buckets, &BTreeMap::new(), 0.5).unwrap();
        assert!((p50 - 2.0).abs() < 1e-9, "{p50}");
        let p99 = quantile_ms(&t.buckets, &BTreeMap::new(), 0.99).unwrap();
        assert!(p99 > 3.9 && p99 <= 4.0, "{p99}");
        assert_eq!(quantile_ms(&t.buckets, &t.buckets, 0.5), None);
    }
}
