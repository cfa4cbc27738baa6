//! `nubo fuzz`: hostile and malformed requests against a running shop's gateway, as many as
//! asked, from a seed: every public route of its OpenAPI document (and some that are not), with
//! odd path segments and queries, wrong methods, broken, mistyped and oversized bodies, bad
//! tokens and a real customer's. Every answer must be a clear client error, a success, or a 503
//! with `Retry-After`; a 500, any other 5xx, a hang or a dropped connection is a finding. With
//! `--pid` it reports the resident memory of the process under test before and after, which
//! must not grow with the number of requests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};
use tokio::task::JoinSet;

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// The gateway of the shop under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// How many requests.
    #[arg(long, default_value_t = 25_000)]
    pub requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A process whose resident memory to report before and after (e.g. `nubo up`'s).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Send to a non-loopback target too.
    #[arg(long)]
    pub allow_remote: bool,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
const SEGMENTS: [&str; 14] = [
    "TEA-001",
    "tea",
    "0",
    "-1",
    "99999999999999999999",
    "01a22b4c-2b29-73f0-905d-b1996d217c99",
    "not-a-uuid",
    "%00",
    "%2e%2e",
    "..",
    "é漢字🫖",
    "a;b=c",
    "%252e",
    "x",
];

pub async fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let base = args.target.trim_end_matches('/').to_owned();
    let url = reqwest::Url::parse(&base).context("--target is not a URL")?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !local && !args.allow_remote {
        bail!("{base} is not on this machine; pass --allow-remote to fuzz it anyway");
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let document: Value = http
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .context("the target serves no OpenAPI document at /api/openapi.json")?;
    let mut paths: Vec<String> = document["paths"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    paths.extend(
        [
            "/api/v1/nope",
            "/api/v2/products",
            "/internal/v1/carts/x",
            "/",
            "/api/v1/",
        ]
        .map(String::from),
    );
    let customer = http
        .post(format!("{base}/api/v1/identity/login"))
        .json(&json!({ "email": "customer@nubo.example", "password": "nubo-customer-demo" }))
        .send()
        .await
        .ok();
    let token = match customer {
        Some(r) if r.status().is_success() => r.json::<Value>().await?["access_token"]
            .as_str()
            .map(str::to_owned),
        _ => None,
    };
    let before = args.pid.and_then(resident_kib);
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut findings: Vec<String> = Vec::new();
    let mut running = JoinSet::new();
    let mut record = |answer: (String, String, Result<reqwest::Response, reqwest::Error>)| {
        let (method, path, answer) = answer;
        let verdict = match answer {
            Ok(r) => {
                let status = r.status();
                let retry = r.headers().contains_key("retry-after");
                if status.is_server_error() && !(status == 503 && retry) {
                    findings.push(format!("{method} {path}: {status}"));
                }
                status.as_u16().to_string()
            }
            Err(e) => {
                findings.push(format!("{method} {path}: {:#}", anyhow::Error::from(e)));
                "no answer".to_owned()
            }
        };
        *statuses.entry(verdict).or_default() += 1;
    };
    for _ in 0..args.requests {
        if running.len() >= args.concurrency
            && let Some(done) = running.join_next().await
        {
            record(done?);
        }
        let (method, path, send) = build(&mut rng, &http, &base, &paths, token.as_deref());
        running.spawn(async move { (method, path, send.send().await) });
    }
    while let Some(done) = running.join_next().await {
        record(done?);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} requests in {secs:.1} s ({:.0}/s), seed {}",
        args.requests,
        args.requests as f64 / secs,
        args.seed
    );
    let by_status: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} ×{n}")).collect();
    println!("answers: {}", by_status.join(", "));
    if let (Some(pid), Some(before)) = (args.pid, before) {
        let after = resident_kib(pid).unwrap_or_default();
        println!(
            "resident memory of pid {pid}: {} MiB before, {} MiB after",
            before / 1024,
            after / 1024
        );
    }
    if findings.is_empty() {
        println!("no 500, no other 5xx without Retry-After, no dropped connection");
        return Ok(());
    }
    findings.sort();
    findings.dedup();
    for f in findings.iter().take(30) {
        println!("  {f}");
    }
    bail!("{} requests got no clear answer", findings.len())
}

type Built = (String, String, reqwest::RequestBuilder);

/// One request, hostile in a few random ways.
fn build(
    rng: &mut StdRng,
    http: &reqwest::Client,
    base: &str,
    paths: &[String],
    token: Option<&str>,
) -> Built {
    let template = paths.choose(rng).cloned().unwrap_or_default();
    let mut path = String::new();
    for part in template.split('/').skip(1) {
        path.push('/');
        if part.starts_with('{') {
            path.push_str(SEGMENTS.choose(rng).copied().unwrap_or("x"));
        } else {
            path.push_str(part);
        }
    }
    if rng.random_bool(0.3) {
        let key = ["page", "per_page", "q", "category", "limit", "state", "x"]
            .choose(rng)
            .copied()
            .unwrap_or("x");
        let value = SEGMENTS.choose(rng).copied().unwrap_or("1");
        path.push_str(&format!("?{key}={value}"));
    }
    let method = METHODS.choose(rng).copied().unwrap_or("GET");
    let mut request = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET),
        format!("{base}{path}"),
    );
    request = match rng.random_range(0..4) {
        0 => request,
        1 => request.bearer_auth("not.a.token"),
        _ => match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        },
    };
    if rng.random_bool(0.5) {
        request = request.header("idempotency-key", rng.random::<u64>().to_string());
    }
    if method != "GET" && method != "HEAD" {
        request = match rng.random_range(0..6) {
            0 => request.json(&json!({ "sku": "TEA-001", "quantity": rng.random_range(-5..2000) })),
            1 => {
                request.json(&json!({ "email": "x", "password": 12, "card": { "number": "4242" } }))
            }
            2 => request
                .header("content-type", "application/json")
                .body("{\"unterminated"),
            3 => request
                .header("content-type", "application/json")
                .body(vec![b'['; 64 * 1024]),
            4 => request.header("content-type", "text/plain").body("hello"),
            _ => request.json(&json!({
                "name": "é".repeat(rng.random_range(0..400)),
                "price": { "amount_minor": rng.random::<i64>(), "currency": "XXX" },
                "on_hand": rng.random::<i32>(),
                "reason": "",
            })),
        };
    }
    (method.to_owned(), path, request)
}

/// Resident memory of `pid`, in KiB (Linux).
pub(crate) fn resident_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A figure in KiB from `/proc/<pid>/status`, e.g. `VmHWM:` (peak resident memory).
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
