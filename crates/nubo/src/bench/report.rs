//! Writing a bench run into BENCHMARKS.md: each generated part of the document sits between
//! markers such as `<!-- bench:http -->` and `<!-- /bench:http -->`, so the prose around it,
//! which says what the figures mean and what limits them, stays as written. The chart is an SVG
//! file beside it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::{Figures, Target, wrk};

#[cfg(test)]
const BEGIN: &str = "<!-- bench:http -->";
#[cfg(test)]
const END: &str = "<!-- /bench:http -->";
/// The chart, relative to the report.
const CHART: &str = "bench/http.svg";

/// What the figures were measured on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: u64,
    pub kernel: String,
    pub nubo: String,
    pub date: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: (memory_kib + 512 * 1024) / (1024 * 1024),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            nubo: format!(
                "{} ({} build)",
                env!("CARGO_PKG_VERSION"),
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            ),
            date: nubo_platform::chrono::Utc::now()
                .format("%Y-%m-%d %H:%M UTC")
                .to_string(),
        }
    }
}

/// The median of every round's figure.
fn median(runs: &[wrk::Run], figure: impl Fn(&wrk::Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(figure).collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn rate(figures: &Figures, target: Target) -> f64 {
    figures
        .http
        .iter()
        .find(|(t, _)| *t == target)
        .map_or(f64::NAN, |(_, runs)| {
            median(runs, |r| r.requests_per_second)
        })
}

/// The product read four ways, medians over the rounds, with the ratios the targets are set in.
pub fn http_table(figures: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| read of one product | requests/s | p50 | p99 | errors | min–max requests/s |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (target, runs) in &figures.http {
        let rates = runs.iter().map(|r| r.requests_per_second);
        let (low, high) = rates.fold((f64::MAX, 0.0_f64), |(l, h), r| (l.min(r), h.max(r)));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0}–{:.0} |",
            target.label(),
            median(runs, |r| r.requests_per_second),
            median(runs, |r| r.p50_ms),
            median(runs, |r| r.p99_ms),
            runs.iter().map(|r| r.errors).sum::<u64>(),
            low,
            high,
        );
    }
    let gateway = rate(figures, Target::Gateway);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- gateway ÷ nginx: **{:.2}×** (target ≥ 1.0)",
        gateway / rate(figures, Target::Nginx)
    );
    let _ = writeln!(
        out,
        "- gateway ÷ hyper's fixed body: **{:.2}×** (target ≥ 0.40)",
        gateway / rate(figures, Target::Ceiling)
    );
    let _ = writeln!(
        out,
        "- gateway ÷ catalog direct: {:.2}×; nginx ÷ catalog direct: {:.2}×",
        gateway / rate(figures, Target::Direct),
        rate(figures, Target::Nginx) / rate(figures, Target::Direct)
    );
    out
}

fn section(figures: &Figures) -> String {
    let m = &figures.machine;
    let f = &figures.footprint;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured {} by `nubo bench` ({}) on {} cores of {}, {} GiB, Linux {}: \
         {} rounds of {} s per target, wrk with 2 threads and {} connections, \
         targets in rotating order; medians over the rounds.\n",
        m.date,
        m.nubo,
        m.cores,
        m.cpu,
        m.memory_gib,
        m.kernel,
        figures.rounds,
        figures.seconds,
        figures.connections
    );
    out.push_str(&http_table(figures));
    let _ = writeln!(out, "\n![requests per second, by target]({CHART})\n");
    let _ = writeln!(out, "| footprint of the embedded shop | figure |");
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(
        out,
        "| start to every service ready | {} ms |",
        f.start_to_ready_ms
    );
    let _ = writeln!(
        out,
        "| resident memory, idle | {:.1} MiB |",
        f.idle_rss_kib as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "| resident memory, after the reads above (peak) | {:.1} MiB ({:.1} MiB) |",
        f.loaded_rss_kib as f64 / 1024.0,
        f.peak_rss_kib as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "| size of the `nubo` binary | {:.1} MiB |",
        f.binary_bytes as f64 / (1024.0 * 1024.0)
    );
    let _ = writeln!(
        out,
        "| content of an image built `FROM scratch`: the binary and the shared libraries it links | {:.1} MiB |",
        f.image_bytes as f64 / (1024.0 * 1024.0)
    );
    out
}

/// `text` with the section `name` holding `body`: replaced between its markers, or appended.
fn replace_section(text: &str, name: &str, body: &str) -> String {
    let (begin, end) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let fresh = format!("{begin}\n{}\n{end}", body.trim_end());
    match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{fresh}{}", &text[..b], &text[e + end.len()..])
        }
        _ => format!("{}\n\n{fresh}\n", text.trim_end()),
    }
}

/// Replaces the `bench:http` section of `path` (or appends one, or creates the file) and
/// writes the chart beside it.
pub fn write(path: &Path, figures: &Figures) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let mut text = replace_section(&existing, "http", &section(figures));
    if !figures.checkout.is_empty() {
        let table =
            super::checkout::table("Embedded shop", &figures.checkout, figures.checkout_seconds);
        text = replace_section(&text, "checkout", &table);
    }
    if let Some(surge) = &figures.surge {
        text = replace_section(&text, "surge", &super::surge::section(surge));
    }
    if let Some(d) = &figures.distributed {
        let section = super::distributed::section(d, figures.checkout_seconds);
        text = replace_section(&text, "distributed", &section);
    }
    if let Some(c) = &figures.console {
        let section = super::console::section(c, figures.checkout_seconds);
        text = replace_section(&text, "console", &section);
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let chart = path.parent().unwrap_or(Path::new(".")).join(CHART);
    if let Some(dir) = chart.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&chart, bar_chart(figures))
        .with_context(|| format!("cannot write {}", chart.display()))?;
    if let Some(surge) = &figures.surge {
        let chart = chart.with_file_name("surge.svg");
        std::fs::write(&chart, super::surge::chart(surge))
            .with_context(|| format!("cannot write {}", chart.display()))?;
    }
    Ok(())
}

/// Horizontal bars of the median request rate per target, each round as a tick.
fn bar_chart(figures: &Figures) -> String {
    let (width, left, bar, gap) = (760.0, 190.0, 28.0, 14.0);
    let top = 40.0;
    let height = top + figures.http.len() as f64 * (bar + gap) + 40.0;
    let most = figures
        .http
        .iter()
        .flat_map(|(_, runs)| runs.iter().map(|r| r.requests_per_second))
        .fold(1.0_f64, f64::max);
    let scale = (width - left - 90.0) / most;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"{left}\" y=\"22\" font-weight=\"bold\">Requests per second, one product read \
         (median of {} rounds; ticks: each round)</text>\n",
        figures.rounds
    );
    for (i, (target, runs)) in figures.http.iter().enumerate() {
        let y = top + i as f64 * (bar + gap);
        let value = median(runs, |r| r.requests_per_second);
        // The label goes after the bar and after every round's tick, so none crosses it.
        let label_at = runs
            .iter()
            .map(|r| r.requests_per_second)
            .fold(value, f64::max);
        let colour = if *target == Target::Gateway {
            "#2b6cb0"
        } else {
            "#a0aec0"
        };
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{bar}\" fill=\"{colour}\"/>\n\
             <text x=\"{:.1}\" y=\"{}\">{value:.0}</text>",
            left - 8.0,
            y + bar * 0.65,
            target.label(),
            value * scale,
            left + label_at * scale + 6.0,
            y + bar * 0.65,
        );
        for run in runs {
            let x = left + run.requests_per_second * scale;
            let _ = writeln!(
                svg,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#1a202c\"/>",
                y + 4.0,
                y + bar - 4.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: f64) -> wrk::Run {
        wrk::Run {
            requests_per_second: rate,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
        }
    }

    #[test]
    fn medians_of_odd_and_even_rounds() {
        assert_eq!(
            median(&[run(3.0), run(1.0), run(2.0)], |r| r.requests_per_second),
            2.0
        );
        assert_eq!(
            median(&[run(4.0), run(1.0)], |r| r.requests_per_second),
            2.5
        );
    }

    #[test]
    fn the_section_is_replaced_and_the_prose_around_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("BENCHMARKS.md");
        let figures = Figures {
            machine: Machine::read(),
            seconds: 1,
            rounds: 1,
            connections: 1,
            checkout_seconds: 0,
            checkout: Vec::new(),
            surge: None,
            distributed: None,
            console: None,
            http: Target::ALL.iter().map(|t| (*t, vec![run(100.0)])).collect(),
            footprint: super::super::Footprint {
                start_to_ready_ms: 1,
                idle_rss_kib: 1,
                loaded_rss_kib: 1,
                peak_rss_kib: 1,
                binary_bytes: 1,
                image_bytes: 1,
            },
        };
        std::fs::write(
            &path,
            format!("# B\n\nbefore\n\n{BEGIN}\nold\n{END}\n\nafter\n"),
        )
        .unwrap();
        write(&path, &figures).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# B\n\nbefore\n\n<!-- bench:http -->"),
            "{text}"
        );
        assert!(text.ends_with(&format!("{END}\n\nafter\n")), "{text}");
        assert!(!text.contains("old"));
        assert!(text.contains("gateway ÷ nginx: **1.00×**"), "{text}");
        assert!(dir.path().join(CHART).is_file());
    }
}
