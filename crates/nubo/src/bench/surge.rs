//! Black friday: `nubo loadgen --profile black-friday` against a fresh embedded shop, arrivals
//! from a fifth of the checkout's measured peak up to twice it and back, and what the shipped
//! HorizontalPodAutoscaler of orders would have done with that load: replicas over time, on
//! paper, with the HPA's own formula (no cluster runs here).
//!
//! The HPA of the prod overlay scales orders on CPU, 70% of a 250m request, between 3 and 10
//! replicas. Its formula: every 15 s, desired = ceil(current × utilization ÷ target), skipped
//! within a 10% tolerance; up by at most max(100%, 4 pods) per 15 s (Kubernetes' default
//! scale-up), down by at most 1 pod a minute and only to the highest recommendation of the last
//! 300 s (the manifests' scale-down). Utilization is the load's CPU over the pods' requests, the
//! CPU of one order measured on the shop itself during the peak run. That charges each orders
//! pod with the whole checkout's work, all eight services', so the replicas are an upper bound.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::Shop;

/// The orders HPA of the prod overlay (crates/nubo/src/manifests).
const MIN_REPLICAS: u32 = 3;
const MAX_REPLICAS: u32 = 10;
const CPU_REQUEST_CORES: f64 = 0.25;
const TARGET_UTILIZATION: f64 = 0.70;
const TOLERANCE: f64 = 0.10;
const SYNC_SECONDS: usize = 15;
const SCALE_DOWN_WINDOW: usize = 300;

/// One second of the loadgen's time series (the fields the chart needs).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Second {
    pub second: u64,
    #[serde(default)]
    pub target_rate: Option<f64>,
    pub arrivals: u64,
    pub completions: u64,
    pub errors: u64,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Surge {
    pub base_rate: f64,
    pub cpu_ms_per_order: f64,
    pub seconds: Vec<Second>,
    /// Replicas of orders the HPA would run, per second.
    pub replicas: Vec<u32>,
    pub orders: u64,
    pub errors: u64,
    /// Errors by operation and kind, e.g. `arrival: dropped (in-flight cap)`.
    pub errors_by_kind: std::collections::BTreeMap<String, u64>,
}

/// Runs the black-friday profile for `seconds` from `base_rate` arrivals/s.
pub async fn measure(
    port: u16,
    work: &Path,
    base_rate: f64,
    cpu_ms_per_order: f64,
    seconds: u64,
) -> anyhow::Result<Surge> {
    let (mut shop, _) = Shop::start(
        port,
        &work.join("surge"),
        &[
            ("NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR", "1000000"),
            ("NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE", "1000000"),
        ],
    )
    .await?;
    eprintln!(
        "black friday: from {base_rate:.1} arrivals/s to ten times that and back, {seconds} s"
    );
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args(["loadgen", "--target", &format!("http://127.0.0.1:{port}")])
        .args([
            "--scenario",
            "checkout-heavy",
            "--profile",
            "black-friday",
            "--json",
        ])
        .args([
            "--rate",
            &format!("{base_rate:.2}"),
            "--seconds",
            &seconds.to_string(),
        ])
        .args(["--accounts", "64"])
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await?;
    shop.stop().await;
    if !out.status.success() {
        bail!(
            "nubo loadgen --profile black-friday failed ({})",
            out.status
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("nubo loadgen printed no JSON report")?;
    let series: Vec<Second> = serde_json::from_value(report["series"].clone())
        .context("no time series in nubo loadgen's report")?;
    let replicas = autoscale(&series, cpu_ms_per_order);
    let mut errors_by_kind = std::collections::BTreeMap::new();
    for operation in report["operations"].as_array().into_iter().flatten() {
        let name = operation["operation"].as_str().unwrap_or("?");
        for (kind, n) in operation["errors_by_kind"]
            .as_object()
            .into_iter()
            .flatten()
        {
            *errors_by_kind.entry(format!("{name}: {kind}")).or_insert(0) +=
                n.as_u64().unwrap_or(0);
        }
    }
    Ok(Surge {
        base_rate,
        cpu_ms_per_order,
        orders: report["orders"].as_u64().unwrap_or(0),
        errors: report["errors"].as_u64().unwrap_or(0),
        errors_by_kind,
        seconds: series,
        replicas,
    })
}

/// The replicas the orders HPA would run each second under `series`' arrivals.
pub fn autoscale(series: &[Second], cpu_ms_per_order: f64) -> Vec<u32> {
    let mut current = MIN_REPLICAS;
    let mut recommendations: Vec<u32> = Vec::new();
    let mut last_scale_down: Option<usize> = None;
    let mut out = Vec::with_capacity(series.len());
    for t in 0..series.len() {
        if t > 0 && t % SYNC_SECONDS == 0 {
            // The metrics pipeline averages CPU over the last sync period.
            let window = &series[t + 1 - SYNC_SECONDS..=t];
            let load = window.iter().map(|p| p.arrivals as f64).sum::<f64>() / SYNC_SECONDS as f64;
            let cores = load * cpu_ms_per_order / 1000.0;
            let utilization = cores / (current as f64 * CPU_REQUEST_CORES);
            let ratio = utilization / TARGET_UTILIZATION;
            let mut desired = if (ratio - 1.0).abs() <= TOLERANCE {
                current
            } else {
                (current as f64 * ratio).ceil() as u32
            };
            desired = desired.clamp(MIN_REPLICAS, MAX_REPLICAS);
            recommendations.push(desired);
            if desired > current {
                let most = (current * 2).max(current + 4);
                current = desired.min(most);
            } else {
                // Down only to the highest recommendation of the window, one pod a minute.
                let kept = SCALE_DOWN_WINDOW / SYNC_SECONDS;
                let floor = recommendations
                    .iter()
                    .rev()
                    .take(kept)
                    .max()
                    .copied()
                    .unwrap_or(current);
                let minute_passed = last_scale_down.is_none_or(|at| t - at >= 60);
                if floor < current && minute_passed {
                    current -= 1;
                    last_scale_down = Some(t);
                }
            }
        }
        out.push(current);
    }
    out
}

/// The report's section.
pub fn section(surge: &Surge) -> String {
    let mut out = String::new();
    let peak_rate = surge
        .seconds
        .iter()
        .filter_map(|p| p.target_rate)
        .fold(0.0, f64::max);
    let worst_p99 = surge
        .seconds
        .iter()
        .filter_map(|p| p.p99_ms)
        .fold(0.0, f64::max);
    let most = surge.replicas.iter().max().copied().unwrap_or(MIN_REPLICAS);
    let first_up = surge.replicas.iter().position(|r| *r > MIN_REPLICAS);
    let _ = writeln!(
        out,
        "Embedded shop, `nubo loadgen --scenario checkout-heavy --profile black-friday --rate {:.2}`, \
         {} s: arrivals from {:.1}/s up to {:.1}/s and back, card provider at its default 50 ms. \
         {} orders, {} errors; the worst second's p99 was {:.0} ms.\n",
        surge.base_rate,
        surge.seconds.len(),
        surge.base_rate,
        peak_rate,
        surge.orders,
        surge.errors,
        worst_p99
    );
    if !surge.errors_by_kind.is_empty() {
        let kinds: Vec<String> = surge
            .errors_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} × {n}"))
            .collect();
        let _ = writeln!(out, "Errors: {}.\n", kinds.join("; "));
    }
    let _ = writeln!(
        out,
        "![arrivals, completions, errors, p99 and the HPA's replicas over time](bench/surge.svg)\n"
    );
    let _ = writeln!(
        out,
        "The orders HPA of the prod overlay, fed this load at {:.2} ms of CPU per order (measured): \
         {} replicas at most{}; it never goes below {MIN_REPLICAS}.",
        surge.cpu_ms_per_order,
        most,
        first_up.map_or(String::new(), |t| format!(
            ", the first scale-up at second {}",
            t + 1
        ))
    );
    out
}

/// Three panels over time: rates, p99 latency, replicas.
pub fn chart(surge: &Surge) -> String {
    let (width, left, panel, gap) = (760.0, 60.0, 130.0, 40.0);
    let right = width - 20.0;
    let n = surge.seconds.len().max(2) as f64;
    let x = |i: usize| left + (right - left) * i as f64 / (n - 1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{h}\" viewBox=\"0 0 {width} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n",
        h = 3.0 * (panel + gap) + 30.0
    );
    let line = |values: &[f64], top: f64, most: f64, colour: &str, svg: &mut String| {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    x(i),
                    top + panel - panel * (v / most).min(1.0)
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
    };
    let panels = [
        (
            "per second: intended arrivals (grey), completed visits (blue), errors (red)",
            20.0,
        ),
        (
            "p99 latency of the second's requests, ms",
            20.0 + panel + gap,
        ),
        (
            "replicas of orders the HPA would run",
            20.0 + 2.0 * (panel + gap),
        ),
    ];
    for (title, top) in panels {
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{title}</text>\n\
             <line x1=\"{left}\" x2=\"{right}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#718096\"/>\n\
             <line x1=\"{left}\" x2=\"{left}\" y1=\"{}\" y2=\"{b}\" stroke=\"#718096\"/>",
            top + 2.0,
            top + 10.0,
            b = top + 10.0 + panel
        );
    }
    let s = &surge.seconds;
    let rates: Vec<f64> = s
        .iter()
        .map(|p| p.target_rate.unwrap_or(p.arrivals as f64))
        .collect();
    let done: Vec<f64> = s.iter().map(|p| p.completions as f64).collect();
    let errors: Vec<f64> = s.iter().map(|p| p.errors as f64).collect();
    let most_rate = rates
        .iter()
        .chain(&done)
        .chain(&errors)
        .fold(1.0_f64, |a, b| a.max(*b));
    let top = panels[0].1 + 10.0;
    line(&rates, top, most_rate, "#a0aec0", &mut svg);
    line(&done, top, most_rate, "#2b6cb0", &mut svg);
    line(&errors, top, most_rate, "#c53030", &mut svg);
    let p99: Vec<f64> = s.iter().map(|p| p.p99_ms.unwrap_or(0.0)).collect();
    let most_p99 = p99.iter().fold(1.0_f64, |a, b| a.max(*b));
    line(&p99, panels[1].1 + 10.0, most_p99, "#2b6cb0", &mut svg);
    // Replicas change in steps: each second's count held until the next.
    let top = panels[2].1 + 10.0;
    let y = |r: u32| top + panel - panel * r as f64 / MAX_REPLICAS as f64;
    let steps: Vec<String> = surge
        .replicas
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let before = if i == 0 { *r } else { surge.replicas[i - 1] };
            [
                format!("{:.1},{:.1}", x(i), y(before)),
                format!("{:.1},{:.1}", x(i), y(*r)),
            ]
        })
        .collect();
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"#2f855a\" stroke-width=\"1.5\" points=\"{}\"/>",
        steps.join(" ")
    );
    for (label, (_, top)) in [
        (format!("{most_rate:.0}/s"), panels[0]),
        (format!("{most_p99:.0} ms"), panels[1]),
        (format!("{MAX_REPLICAS}"), panels[2]),
    ] {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>",
            left - 4.0,
            top + 14.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{right}\" y=\"{}\" text-anchor=\"end\">{} s</text>\n</svg>",
        3.0 * (panel + gap) + 20.0,
        s.len()
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rates: &[(usize, u64)]) -> Vec<Second> {
        rates
            .iter()
            .flat_map(|(seconds, rate)| std::iter::repeat_n(*rate, *seconds))
            .enumerate()
            .map(|(i, arrivals)| Second {
                second: i as u64 + 1,
                target_rate: Some(arrivals as f64),
                arrivals,
                completions: arrivals,
                errors: 0,
                p99_ms: Some(10.0),
            })
            .collect()
    }

    #[test]
    fn the_hpa_scales_up_fast_and_down_slowly() {
        // 10 ms of CPU per order: 3 pods of 250m at 70% hold 52.5 orders/s.
        let series = load(&[(60, 20), (120, 200), (900, 20)]);
        let replicas = autoscale(&series, 10.0);
        assert_eq!(replicas[59], MIN_REPLICAS, "calm: the minimum");
        // 200/s needs 2 cores: 8 pods at 70% of 250m would be 1.4 cores; so it goes to the max.
        let peak = replicas[60..180].iter().max().copied().unwrap();
        assert_eq!(peak, MAX_REPLICAS);
        // Up within two sync periods of the surge (at most doubling or +4 a step).
        assert!(
            replicas[60 + 2 * SYNC_SECONDS] > MIN_REPLICAS,
            "{replicas:?}"
        );
        // Down no sooner than the window after the surge ended, one pod a minute.
        assert_eq!(replicas[180 + 200], MAX_REPLICAS, "{:?}", &replicas[180..]);
        let drops: Vec<usize> = (1..replicas.len())
            .filter(|i| replicas[*i] < replicas[i - 1])
            .collect();
        assert!(drops.windows(2).all(|w| w[1] - w[0] >= 60), "{drops:?}");
        assert_eq!(*replicas.last().unwrap(), MIN_REPLICAS);
    }

    #[test]
    fn within_tolerance_nothing_moves() {
        // 3 pods × 0.25 × 0.7 = 0.525 cores = 52.5 orders/s at 10 ms: 55/s is within 10%.
        let replicas = autoscale(&load(&[(120, 55)]), 10.0);
        assert!(replicas.iter().all(|r| *r == MIN_REPLICAS));
    }
}
