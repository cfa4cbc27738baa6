//! The card provider payments talks to, behind [`CardProvider`], and [`SimulatedProvider`], the
//! one nubo ships: it answers after a configured latency, fails a configured fraction of calls
//! transiently, and knows a few magic cards (declined, insufficient funds, never answers).
//! [`Provider`] puts the deadline around every call, so a provider that hangs is a 503, never
//! a request that hangs with it. Every call carries the payment id, which a real provider takes
//! as its idempotency key, so a retried call never charges twice.

use std::sync::Arc;
use std::time::Duration;

use nubo_contracts::Money;
use nubo_platform::async_trait::async_trait;
use nubo_platform::ops::{Faults, Knob};
use nubo_platform::uuid::Uuid;

use crate::config::Config;
use crate::domain::ValidCard;

/// The card the simulated provider declines.
pub const DECLINED_CARD: &str = "4000000000000002";
/// The card the simulated provider declines for insufficient funds.
pub const INSUFFICIENT_FUNDS_CARD: &str = "4000000000009995";
/// The card the simulated provider never answers for.
pub const TIMEOUT_CARD: &str = "4000000000000119";

/// Why a provider refused an authorization, in words a customer can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decline {
    CardDeclined,
    InsufficientFunds,
}

impl Decline {
    pub fn reason(self) -> &'static str {
        match self {
            Self::CardDeclined => "the card was declined",
            Self::InsufficientFunds => "insufficient funds",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    Approved,
    Declined(Decline),
}

/// A provider call that did not get an answer; the same call may succeed later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider is unavailable; try again")]
    Unavailable,
    #[error("payment provider did not answer")]
    TimedOut,
}

#[async_trait]
pub trait CardProvider: Send + Sync {
    async fn authorize(
        &self,
        payment_id: Uuid,
        amount: &Money,
        card: &ValidCard,
    ) -> Result<Authorization, ProviderError>;
    async fn capture(&self, payment_id: Uuid, amount: &Money) -> Result<(), ProviderError>;
    async fn void(&self, payment_id: Uuid) -> Result<(), ProviderError>;
    async fn refund(&self, payment_id: Uuid, amount: &Money) -> Result<(), ProviderError>;
}

/// A provider behind a deadline.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<dyn CardProvider>,
    pub deadline: Duration,
}

impl Provider {
    pub fn new(inner: Arc<dyn CardProvider>, deadline: Duration) -> Self {
        Self { inner, deadline }
    }

    /// The simulated provider as configured; an operator's switches in `faults` override its
    /// failure rate and latency while they are set.
    pub fn from_config(config: &Config, faults: Faults) -> Self {
        let mut simulated =
            SimulatedProvider::new(config.provider_latency, config.provider_failure_rate);
        simulated.switches = Some(faults);
        Self::new(Arc::new(simulated), config.provider_timeout)
    }

    async fn within<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        nubo_platform::tokio::time::timeout(self.deadline, call)
            .await
            .map_err(|_| ProviderError::TimedOut)?
    }

    pub async fn authorize(
        &self,
        payment_id: Uuid,
        amount: &Money,
        card: &ValidCard,
    ) -> Result<Authorization, ProviderError> {
        self.within(self.inner.authorize(payment_id, amount, card))
            .await
    }

    pub async fn capture(&self, payment_id: Uuid, amount: &Money) -> Result<(), ProviderError> {
        self.within(self.inner.capture(payment_id, amount)).await
    }

    pub async fn void(&self, payment_id: Uuid) -> Result<(), ProviderError> {
        self.within(self.inner.void(payment_id)).await
    }

    pub async fn refund(&self, payment_id: Uuid, amount: &Money) -> Result<(), ProviderError> {
        self.within(self.inner.refund(payment_id, amount)).await
    }
}

/// The switches the ops console shows for payments, overriding the configured values.
pub const KNOBS: [Knob; 2] = [
    Knob {
        name: FAILURE_RATE_KNOB,
        meaning: "the fraction of simulated card provider calls that fail transiently",
        min: 0.0,
        max: 1.0,
        unit: "fraction",
    },
    Knob {
        name: LATENCY_KNOB,
        meaning: "how long the simulated card provider takes to answer",
        min: 0.0,
        max: 30_000.0,
        unit: "milliseconds",
    },
];
pub const FAILURE_RATE_KNOB: &str = "provider_failure_rate";
pub const LATENCY_KNOB: &str = "provider_latency_ms";

/// A provider that lives in the process: for development, demos and tests.
#[derive(Clone)]
pub struct SimulatedProvider {
    latency: Duration,
    failure_rate: f64,
    /// An operator's switches, read on every call.
    switches: Option<Faults>,
}

impl SimulatedProvider {
    /// `failure_rate` is clamped to 0.0..=1.0 (config has checked it already).
    pub fn new(latency: Duration, failure_rate: f64) -> Self {
        Self {
            latency,
            failure_rate: failure_rate.clamp(0.0, 1.0),
            switches: None,
        }
    }

    /// What every call goes through: the latency, then maybe a transient failure.
    async fn answer(&self) -> Result<(), ProviderError> {
        let switch = |name| self.switches.as_ref().and_then(|f| f.knob(name));
        let latency = switch(LATENCY_KNOB)
            .map_or(self.latency, |ms| Duration::from_millis(ms.max(0.0) as u64));
        let failure_rate =
            switch(FAILURE_RATE_KNOB).map_or(self.failure_rate, |r| r.clamp(0.0, 1.0));
        if !latency.is_zero() {
            nubo_platform::tokio::time::sleep(latency).await;
        }
        if rand::random_bool(failure_rate) {
            return Err(ProviderError::Unavailable);
        }
        Ok(())
    }
}

#[async_trait]
impl CardProvider for SimulatedProvider {
    async fn authorize(
        &self,
        _payment_id: Uuid,
        _amount: &Money,
        card: &ValidCard,
    ) -> Result<Authorization, ProviderError> {
        self.answer().await?;
        match card.number.expose() {
            DECLINED_CARD => Ok(Authorization::Declined(Decline::CardDeclined)),
            INSUFFICIENT_FUNDS_CARD => Ok(Authorization::Declined(Decline::InsufficientFunds)),
            TIMEOUT_CARD => {
                // Longer than any deadline payments allows: the caller gives up first.
                nubo_platform::tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(ProviderError::TimedOut)
            }
            _ => Ok(Authorization::Approved),
        }
    }

    async fn capture(&self, _payment_id: Uuid, _amount: &Money) -> Result<(), ProviderError> {
        self.answer().await
    }

    async fn void(&self, _payment_id: Uuid) -> Result<(), ProviderError> {
        self.answer().await
    }

    async fn refund(&self, _payment_id: Uuid, _amount: &Money) -> Result<(), ProviderError> {
        self.answer().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubo_contracts::payments::Card;

    fn card(number: &str) -> ValidCard {
        let card = Card {
            number: number.to_owned(),
            expiry_month: 12,
            expiry_year: 2099,
            cvc: "123".to_owned(),
        };
        let today = nubo_platform::chrono::NaiveDate::from_ymd_opt(2090, 1, 1).unwrap();
        ValidCard::parse(&card, today).unwrap()
    }

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".to_owned(),
        }
    }

    fn provider(failure_rate: f64, deadline_ms: u64) -> Provider {
        Provider::new(
            Arc::new(SimulatedProvider::new(Duration::ZERO, failure_rate)),
            Duration::from_millis(deadline_ms),
        )
    }

    #[tokio::test]
    async fn magic_cards_decline_and_others_authorize() {
        let p = provider(0.0, 1000);
        let id = Uuid::now_v7();
        assert_eq!(
            p.authorize(id, &eur(100), &card("4242424242424242")).await,
            Ok(Authorization::Approved)
        );
        assert_eq!(
            p.authorize(id, &eur(100), &card(DECLINED_CARD)).await,
            Ok(Authorization::Declined(Decline::CardDeclined))
        );
        assert_eq!(
            p.authorize(id, &eur(100), &card(INSUFFICIENT_FUNDS_CARD))
                .await,
            Ok(Authorization::Declined(Decline::InsufficientFunds))
        );
    }

    #[tokio::test]
    async fn a_provider_that_never_answers_is_cut_off_at_the_deadline() {
        let started = std::time::Instant::now();
        let answer = provider(0.0, 50)
            .authorize(Uuid::now_v7(), &eur(100), &card(TIMEOUT_CARD))
            .await;
        assert_eq!(answer, Err(ProviderError::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_failing_provider_fails_every_call_and_a_healthy_one_none() {
        let (failing, healthy) = (provider(1.0, 1000), provider(0.0, 1000));
        let id = Uuid::now_v7();
        let visa = card("4242424242424242");
        for _ in 0..20 {
            assert_eq!(
                failing.authorize(id, &eur(1), &visa).await,
                Err(ProviderError::Unavailable)
            );
            assert_eq!(
                failing.capture(id, &eur(1)).await,
                Err(ProviderError::Unavailable)
            );
            assert_eq!(failing.void(id).await, Err(ProviderError::Unavailable));
            assert_eq!(
                failing.refund(id, &eur(1)).await,
                Err(ProviderError::Unavailable)
            );
        }
        // The retry, once the provider is back.
        assert_eq!(
            healthy.authorize(id, &eur(1), &visa).await,
            Ok(Authorization::Approved)
        );
        assert_eq!(healthy.capture(id, &eur(1)).await, Ok(()));
    }
}
