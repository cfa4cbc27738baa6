//! Fault switches an operator flips at run time: added latency, a fraction of requests answered
//! 503, an outage of the whole service or of some of its routes, and the service's own knobs
//! (for payments, the simulated card provider's failure rate and latency). The server stack
//! applies the first three to every request but the console's own ([`inject`]); a service reads
//! its knobs where it needs them ([`Faults::knob`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError, Problem};

/// The most latency a switch may add: past every deadline the shop has, so "never answers" can
/// be tried, and short of keeping a connection for ever.
pub const MAX_LATENCY_MS: u64 = 30_000;

/// A switch a service declares beyond the platform's own, with the range it accepts.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Knob {
    pub name: &'static str,
    pub meaning: &'static str,
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
}

/// What the switches of one service are set to. All off by default; the switches a request
/// leaves out are off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSettings {
    /// Added to every request the service answers, in milliseconds.
    #[schema(minimum = 0, maximum = 30000)]
    pub latency_ms: u64,
    /// The fraction of requests answered 503, 0.0 to 1.0.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub error_rate: f64,
    /// Every request is answered 503.
    pub outage: bool,
    /// Path prefixes (each starting with `/`, at most 20) whose requests are answered 503.
    pub outage_routes: Vec<String>,
    /// The service's own switches that are set, by name (payments: `provider_failure_rate`,
    /// 0 to 1, and `provider_latency_ms`, 0 to 30000); another name is refused with 422.
    pub knobs: BTreeMap<String, f64>,
}

impl FaultSettings {
    /// Whether any switch is on.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// Checks every value against its range and `knobs`, naming each field that is wrong.
    pub fn validate(&self, knobs: &[Knob]) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let mut wrong = |field: String, message: String| errors.push(FieldError { field, message });
        if self.latency_ms > MAX_LATENCY_MS {
            wrong(
                "latency_ms".into(),
                format!("must be 0 to {MAX_LATENCY_MS} milliseconds"),
            );
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            wrong("error_rate".into(), "must be a fraction from 0 to 1".into());
        }
        for (i, route) in self.outage_routes.iter().enumerate() {
            if !route.starts_with('/') || route.len() > 200 {
                wrong(
                    format!("outage_routes[{i}]"),
                    "must be a path prefix starting with / (at most 200 characters)".into(),
                );
            }
        }
        if self.outage_routes.len() > 20 {
            wrong("outage_routes".into(), "at most 20 prefixes".into());
        }
        for (name, value) in &self.knobs {
            match knobs.iter().find(|k| k.name == name) {
                None => wrong(
                    format!("knobs.{name}"),
                    "this service has no such switch".into(),
                ),
                Some(k) if !(k.min..=k.max).contains(value) => wrong(
                    format!("knobs.{name}"),
                    format!("must be {} to {} ({})", k.min, k.max, k.unit),
                ),
                Some(_) => {}
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(errors))
        }
    }

    /// One line saying what is on, for the audit trail ("off" when nothing is).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.latency_ms > 0 {
            parts.push(format!("latency {} ms", self.latency_ms));
        }
        if self.error_rate > 0.0 {
            parts.push(format!("error rate {}", self.error_rate));
        }
        if self.outage {
            parts.push("outage".to_owned());
        }
        if !self.outage_routes.is_empty() {
            parts.push(format!("outage of {}", self.outage_routes.join(", ")));
        }
        for (name, value) in &self.knobs {
            parts.push(format!("{name} {value}"));
        }
        if parts.is_empty() {
            "off".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// One service's switches, shared by its server stack, its code and the console's routes.
#[derive(Clone, Default)]
pub struct Faults(Arc<RwLock<FaultSettings>>);

impl Faults {
    pub fn get(&self) -> FaultSettings {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, settings: FaultSettings) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// A knob's value while an operator has it set.
    pub fn knob(&self, name: &str) -> Option<f64> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .knobs
            .get(name)
            .copied()
    }

    /// What the stack does to a request for `path` now: how long to wait, then whether to fail.
    fn decide(&self, path: &str) -> (Duration, Option<&'static str>) {
        let s = self.0.read().unwrap_or_else(|e| e.into_inner());
        let latency = Duration::from_millis(s.latency_ms);
        let failure = if s.outage {
            Some("the service is switched off by an operator (outage)")
        } else if s.outage_routes.iter().any(|p| path.starts_with(p.as_str())) {
            Some("this route is switched off by an operator (outage)")
        } else if s.error_rate > 0.0 && rand::random_bool(s.error_rate.min(1.0)) {
            Some("an operator's fault switch failed this request (error rate)")
        } else {
            None
        };
        (latency, failure)
    }
}

/// The console's own routes, which its switches never touch: "restore all" must always work.
pub const EXEMPT_PREFIX: &str = "/api/v1/admin/ops/";

/// Applies the switches to a request: wait, then fail it with 503 or pass it on.
pub async fn inject(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.starts_with(EXEMPT_PREFIX) {
        return next.run(request).await;
    }
    let (latency, failure) = faults.decide(path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match failure {
        Some(detail) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, detail)
            .with_kind("fault-injected")
            .retry_after(1)
            .into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: Knob = Knob {
        name: "provider_failure_rate",
        meaning: "",
        min: 0.0,
        max: 1.0,
        unit: "fraction",
    };

    #[test]
    fn every_out_of_range_switch_is_named() {
        let bad = FaultSettings {
            latency_ms: MAX_LATENCY_MS + 1,
            error_rate: 1.5,
            outage: false,
            outage_routes: vec!["products".into()],
            knobs: [("provider_failure_rate".into(), 2.0), ("nope".into(), 0.0)].into(),
        };
        let Err(ApiError::Invalid(errors)) = bad.validate(&[PROVIDER]) else {
            panic!("accepted {bad:?}");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "latency_ms",
                "error_rate",
                "outage_routes[0]",
                "knobs.nope",
                "knobs.provider_failure_rate"
            ]
        );
    }

    #[test]
    fn an_outage_of_a_route_fails_only_that_route_and_describes_itself() {
        let faults = Faults::default();
        faults.set(FaultSettings {
            outage_routes: vec!["/api/v1/products".into()],
            knobs: [("provider_failure_rate".into(), 0.5)].into(),
            ..FaultSettings::default()
        });
        assert!(faults.decide("/api/v1/products/1").1.is_some());
        assert!(faults.decide("/api/v1/cart").1.is_none());
        assert_eq!(faults.knob("provider_failure_rate"), Some(0.5));
        assert_eq!(
            faults.get().describe(),
            "outage of /api/v1/products, provider_failure_rate 0.5"
        );
        faults.set(FaultSettings::default());
        assert_eq!(faults.get().describe(), "off");
        assert!(!faults.get().any());
    }
}
