//! One HTTP load run with wrk (Debian's `wrk`), the tool the gateway's figures were first taken
//! with: a closed loop of keep-alive connections, its latency percentiles, its request rate.

use std::time::Duration;

use anyhow::{Context as _, bail};

/// What one wrk run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Run {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers that were not 2xx or 3xx, and socket errors (connect, read, write, timeout).
    pub errors: u64,
}

/// Loads `url` for `duration` over `connections` keep-alive connections from two threads.
pub async fn run(url: &str, connections: u32, duration: Duration) -> anyhow::Result<Run> {
    let out = tokio::process::Command::new("wrk")
        .args(["-t2", "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["--latency", url])
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run wrk (Debian's package `wrk`)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk against {url} failed: {}{}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse(&text).with_context(|| format!("cannot read what wrk printed:\n{text}"))
}

/// Reads wrk's report: `Requests/sec:`, the `--latency` distribution, and its error lines.
pub fn parse(text: &str) -> anyhow::Result<Run> {
    let mut run = Run {
        requests_per_second: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(rate)) => run.requests_per_second = rate.parse()?,
            (Some("50%"), Some(latency)) => run.p50_ms = millis(latency)?,
            (Some("99%"), Some(latency)) => run.p99_ms = millis(latency)?,
            (Some("Non-2xx"), _) => {
                run.errors += line.rsplit(' ').next().unwrap_or("0").parse::<u64>()?;
            }
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            (Some("Socket"), Some("errors:")) => {
                run.errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if run.requests_per_second.is_nan() || run.p50_ms.is_nan() || run.p99_ms.is_nan() {
        bail!("no request rate or latency distribution in it");
    }
    Ok(run)
}

/// wrk's durations: `731.00us`, `3.30ms`, `1.20s`.
fn millis(text: &str) -> anyhow::Result<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("{text} is not a duration");
    };
    Ok(number.parse::<f64>()? * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 8s test @ http://127.0.0.1:7100/api/v1/products/x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  640.12us  12.37ms   85.20%
    Req/Sec    10.73k   452.25    11.67k    62.50%
  Latency Distribution
     50%  1.45ms
     75%    1.80ms
     90%    2.20ms
     99%    4.07s
  170640 requests in 8.00s, 69.55MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:  21329.99
Transfer/sec:      8.69MB
";

    #[test]
    fn reads_rate_percentiles_and_every_kind_of_error() {
        let run = parse(REPORT).unwrap();
        assert_eq!(run.requests_per_second, 21329.99);
        assert_eq!(run.p50_ms, 1.45);
        assert!((run.p99_ms - 4070.0).abs() < 1e-6, "{}", run.p99_ms);
        assert_eq!(run.errors, 10);
    }

    #[test]
    fn a_report_without_latencies_is_refused() {
        assert!(parse("Requests/sec: 10\n").is_err());
        assert!(millis("12 parsecs").is_err());
        assert_eq!(millis("731.00us").unwrap(), 0.731);
    }
}
