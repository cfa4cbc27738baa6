//! What the checkout saga counts, in the names the alert rules and the checkout dashboard read:
//! `nubo_checkouts_total{outcome}`, `nubo_saga_steps_total{step,outcome}`,
//! `nubo_sagas_in_progress{state}` and `nubo_sagas_stuck`. The two gauges are computed from the
//! orders table by every replica alike, so dashboards take their max, never their sum.

use nubo_platform::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::domain::State;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Orders' own metrics, registered with the service's. Cheap to clone.
#[derive(Clone)]
pub struct SagaMetrics {
    checkouts: Family<OutcomeLabels, Counter>,
    steps: Family<StepLabels, Counter>,
    in_progress: Family<StateLabels, Gauge>,
    stuck: Gauge,
}

impl SagaMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let checkouts = Family::<OutcomeLabels, Counter>::default();
        metrics.register(
            "checkouts",
            "Checkouts by outcome: confirmed, cancelled (before confirmation), rejected (refused before an order was placed)",
            checkouts.clone(),
        );
        let steps = Family::<StepLabels, Counter>::default();
        metrics.register(
            "saga_steps",
            "Checkout saga steps by outcome: done, failed (the checkout turns back), retrying (a service did not answer)",
            steps.clone(),
        );
        let in_progress = Family::<StateLabels, Gauge>::default();
        metrics.register(
            "sagas_in_progress",
            "Unfinished checkout sagas by state",
            in_progress.clone(),
        );
        let stuck = Gauge::default();
        metrics.register(
            "sagas_stuck",
            "Unfinished checkout sagas that have not moved for longer than NUBO_ORDERS_STUCK_AFTER_SECS",
            stuck.clone(),
        );
        // Present at zero from the start, so a rate or an alert has a series to read.
        for outcome in ["confirmed", "cancelled", "rejected"] {
            let _ = checkouts.get_or_create(&OutcomeLabels { outcome });
        }
        Self {
            checkouts,
            steps,
            in_progress,
            stuck,
        }
    }

    pub fn checkout(&self, outcome: &'static str) {
        self.checkouts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn step(&self, step: &'static str, outcome: &'static str) {
        self.steps
            .get_or_create(&StepLabels { step, outcome })
            .inc();
    }

    /// Sets the gauges from (state, unfinished, of which stuck) counts.
    pub fn sample(&self, counts: &[(String, i64, i64)]) {
        let mut stuck = 0;
        for state in State::ALL.into_iter().filter(|s| !s.is_final()) {
            let (open, state_stuck) = counts
                .iter()
                .find(|(name, _, _)| name == state.as_str())
                .map_or((0, 0), |(_, open, stuck)| (*open, *stuck));
            stuck += state_stuck;
            self.in_progress
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(open);
        }
        self.stuck.set(stuck);
    }
}
