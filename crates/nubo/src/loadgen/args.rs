//! What `nubo loadgen` is told: the target, the scenario, and one of the two load models.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::rate::{PEAK, RateCurve};
use super::scenario::{Mix, Scenario};

const EXAMPLES: &str = "\
Examples:
  nubo loadgen --shoppers 8 --seconds 30                        8 shoppers checking out
  nubo loadgen --scenario mixed --rate 200 --seconds 60         200 visits a second
  nubo loadgen --scenario browse --ramp 100:2000 --seconds 60   a ramp, to find the knee
  nubo loadgen --scenario mixed --rate 50 --profile black-friday --seconds 300 --json

The shop under test limits sign-ups and logins per address and requests per client; start it
with NUBO_GATEWAY_RATE_LIMIT_RPS=1000000, NUBO_IDENTITY_SIGNUPS_PER_ADDRESS_HOUR=1000000 and
NUBO_IDENTITY_LOGINS_PER_ADDRESS_MINUTE=1000 to prepare more than 20 shoppers, and with
NUBO_HTTP_MAX_CONNECTIONS_PER_CLIENT=2000 for more than 512 shoppers or visits in flight.";

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct LoadArgs {
    /// The gateway of the shop under load.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Load a target that is not on this machine (loopback) too.
    #[arg(long)]
    pub allow_remote: bool,
    /// What the shoppers do.
    #[arg(long, value_enum, default_value_t = Scenario::CheckoutHeavy)]
    pub scenario: Scenario,
    /// How the `mixed` scenario weighs its visits.
    #[arg(long, value_name = "VISIT=WEIGHT,...", default_value = Mix::MIXED)]
    pub mix: String,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Shoppers visiting at once, each with a customer account of its own [default: 8].
    #[arg(long, help_heading = "Closed model (the default)", conflicts_with_all = ["rate", "ramp"],
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub shoppers: Option<u32>,
    /// Milliseconds a shopper pauses between visits (half to one and a half times this).
    #[arg(long, help_heading = "Closed model (the default)", default_value_t = 0)]
    pub think_ms: u64,
    /// Visits arriving per second, whatever the shop does.
    #[arg(long, help_heading = "Open model", conflicts_with = "ramp", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Visits per second rising (or falling) in a straight line over the run, e.g. 10:200.
    #[arg(long, help_heading = "Open model", value_name = "FROM:TO", value_parser = ramp)]
    pub ramp: Option<Ramp>,
    /// The rate's shape over the run. black-friday: from --rate up to 10 times it and back (20%
    /// of the run calm, 30% rising, 20% at the peak, 30% falling).
    #[arg(long, help_heading = "Open model", value_enum, requires = "rate")]
    pub profile: Option<Profile>,
    /// Visits running at most at once, each on a connection of its own; an arrival beyond is
    /// dropped and counted as an error. The shop accepts 512 connections per client address
    /// unless NUBO_HTTP_MAX_CONNECTIONS_PER_CLIENT says otherwise.
    #[arg(long, help_heading = "Open model", default_value_t = 500,
        value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,
    /// Customer accounts prepared for the visits that need one (cart, checkout), taken in turn.
    #[arg(long, help_heading = "Open model", default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub accounts: u32,
    /// How many products (the first of the catalog) go into carts and orders.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub products: u32,
    /// Units on hand each of those products gets before a run that checks out.
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: i64,
    /// An admin account of the shop (the demo one by default), to set the stock.
    #[arg(long, default_value = "admin@nubo.example")]
    pub admin_email: String,
    /// That admin's password.
    #[arg(long, default_value = "nubo-admin-demo")]
    pub admin_password: String,
    /// Seed of the shoppers' choices (pages, products, words, visits).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The full report as JSON on standard output (with the time series) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Profile {
    BlackFriday,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
}

const MOST_PER_SECOND: f64 = 100_000.0;

fn rate_in_range(raw: &str) -> Result<f64, String> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && (0.0..=MOST_PER_SECOND).contains(r))
        .ok_or_else(|| format!("{raw:?} is not a rate of 0 to {MOST_PER_SECOND} a second"))
}

fn positive_rate(raw: &str) -> Result<f64, String> {
    rate_in_range(raw)
        .ok()
        .filter(|r| *r > 0.0)
        .ok_or_else(|| format!("{raw:?} is not a rate above 0 and up to {MOST_PER_SECOND}"))
}

fn ramp(raw: &str) -> Result<Ramp, String> {
    let (from, to) = raw
        .split_once(':')
        .ok_or_else(|| format!("{raw:?} is not FROM:TO"))?;
    let ramp = Ramp {
        from: rate_in_range(from)?,
        to: rate_in_range(to)?,
    };
    if ramp.from + ramp.to <= 0.0 {
        return Err("a ramp from 0 to 0 brings no visits".to_owned());
    }
    Ok(ramp)
}

/// How the load is applied.
pub enum Load {
    Closed { shoppers: u32, think: Duration },
    Open { curve: RateCurve, described: String },
}

impl LoadArgs {
    pub fn load(&self) -> Load {
        let seconds = self.seconds as f64;
        match (self.rate, self.ramp, self.profile) {
            (Some(base), _, Some(Profile::BlackFriday)) => Load::Open {
                curve: RateCurve::black_friday(base, seconds),
                described: format!("black-friday from {base}/s to {}/s and back", base * PEAK),
            },
            (Some(rate), _, None) => Load::Open {
                curve: RateCurve::constant(rate, seconds),
                described: format!("{rate} visits/s"),
            },
            (None, Some(Ramp { from, to }), _) => Load::Open {
                curve: RateCurve::ramp(from, to, seconds),
                described: format!("{from} to {to} visits/s"),
            },
            (None, None, _) => Load::Closed {
                shoppers: self.shoppers.unwrap_or(8),
                think: Duration::from_millis(self.think_ms),
            },
        }
    }
}

/// The target without a trailing slash, if it is on this machine or remote targets are allowed:
/// a load test is an attack on anyone else's shop.
pub fn on_this_machine(target: &str, allow_remote: bool) -> anyhow::Result<String> {
    let base = target.trim_end_matches('/');
    let url = reqwest::Url::parse(base).context("--target is not a URL")?;
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !local && !allow_remote {
        bail!("{base} is not on this machine; pass --allow-remote to load it anyway");
    }
    Ok(base.to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadArgs,
    }

    fn parse(line: &str) -> Result<LoadArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadgen").chain(line.split_whitespace()))
            .map(|c| c.args)
    }

    #[test]
    fn only_this_machine_is_loaded_unless_told_otherwise() {
        for local in [
            "http://127.0.0.1:8080/",
            "http://127.9.0.1",
            "http://localhost:1",
            "http://[::1]:8080",
        ] {
            assert!(on_this_machine(local, false).is_ok(), "{local}");
        }
        assert_eq!(
            on_this_machine("http://127.0.0.1:8080/", false).unwrap(),
            "http://127.0.0.1:8080"
        );
        let remote = on_this_machine("http://shop.example.com", false).unwrap_err();
        assert!(remote.to_string().contains("--allow-remote"));
        assert!(on_this_machine("http://10.0.0.1", false).is_err());
        assert!(on_this_machine("http://10.0.0.1", true).is_ok());
    }

    #[test]
    fn the_ci_command_is_the_closed_model_with_eight_shoppers() {
        let args = parse("--target http://127.0.0.1:18680 --shoppers 8 --seconds 20").unwrap();
        assert_eq!(args.scenario, Scenario::CheckoutHeavy);
        assert!(matches!(
            args.load(),
            Load::Closed { shoppers: 8, think } if think.is_zero()
        ));
    }

    #[test]
    fn a_rate_ramp_or_profile_chooses_the_open_model() {
        let Load::Open { curve, .. } = parse("--rate 20 --profile black-friday --seconds 100")
            .unwrap()
            .load()
        else {
            panic!("open");
        };
        assert_eq!(curve.rate_at(60.0), 200.0);
        let Load::Open { curve, described } = parse("--ramp 10:30 --seconds 10").unwrap().load()
        else {
            panic!("open");
        };
        assert_eq!(
            (curve.rate_at(5.0), described.as_str()),
            (20.0, "10 to 30 visits/s")
        );
        assert!(
            parse("--shoppers 8 --rate 5").is_err(),
            "one model at a time"
        );
        assert!(
            parse("--profile black-friday").is_err(),
            "the profile needs a base rate"
        );
        assert!(parse("--ramp 0:0").is_err());
        assert!(parse("--rate 0").is_err());
        assert!(parse("--shoppers 1001").is_err());
        assert!(parse("--shoppers 1000").is_ok());
    }
}
