//! Authorizing, capturing, voiding and refunding a payment for a checkout. Every operation is
//! idempotent on the caller's payment id. An authorization is recorded as `pending` before the
//! provider is asked, so a retry racing its original finds the row and waits for its answer
//! instead of asking again; a provider that does not answer leaves nothing behind. Later steps
//! ask the provider first and then move the row with a conditional UPDATE, which lets exactly
//! one of several concurrent callers change it and publish the event.

use std::time::{Duration, Instant};

use nubo_contracts::payments::{Payment, PaymentCaptured, PaymentRefunded, PaymentState};
use nubo_platform::chrono::TimeDelta;
use nubo_platform::uuid::Uuid;
use nubo_platform::{Context, sqlx};

use crate::domain::ValidAuthorization;
use crate::provider::{Authorization, Provider, ProviderError};
use crate::store::{self, NewPayment};

/// Why a payment call was refused.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("payment not found")]
    NotFound,
    #[error("payment {0} exists already with a different amount")]
    AmountDiffers(Uuid),
    #[error("{0}")]
    WrongState(String),
    #[error("payment {0} is being authorized; try again")]
    InProgress(Uuid),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PaymentError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// How often a retry waiting for its original looks again.
const POLL: Duration = Duration::from_millis(25);

/// Authorizes once per payment id. Returns the payment and whether this call created it (false:
/// it existed already with the same amount, and the provider was not asked again).
pub async fn authorize_payment(
    ctx: &Context,
    provider: &Provider,
    request: &ValidAuthorization,
) -> Result<(Payment, bool), PaymentError> {
    let new = NewPayment {
        id: request.id,
        amount: request.amount.money(),
        card_last4: request.card.number.last4(),
        card_brand: request.card.number.brand(),
    };
    // Long enough for the original's provider call to finish or time out.
    let give_up = Instant::now() + provider.deadline + Duration::from_secs(1);
    loop {
        let now = nubo_platform::clock::now();
        let mut tx = ctx.db.begin().await?;
        if store::insert_pending(&mut tx, &new, now).await? {
            ctx.commit(tx).await?;
            break;
        }
        let existing = store::load(&mut tx, request.id).await?;
        tx.rollback().await?;
        match existing {
            Some(p) if p.amount != *request.amount.money() => {
                return Err(PaymentError::AmountDiffers(request.id));
            }
            Some(p) if p.state != PaymentState::Pending => return Ok((p, false)),
            Some(p) => {
                // A pending row nobody has touched for well past the deadline was left by an
                // authorizer that crashed: this call takes it over.
                let stale_before = now - stale(provider)?;
                if p.updated_at < stale_before
                    && store::take_over_pending(&ctx.db, request.id, stale_before, now).await?
                {
                    break;
                }
            }
            // Its original gave up and removed it between our insert and our read: go again.
            None => {}
        }
        if Instant::now() > give_up {
            return Err(PaymentError::InProgress(request.id));
        }
        nubo_platform::tokio::time::sleep(POLL).await;
    }

    let answer = provider
        .authorize(request.id, request.amount.money(), &request.card)
        .await;
    let now = nubo_platform::clock::now();
    let (state, reason) = match answer {
        Ok(Authorization::Approved) => (PaymentState::Authorized, None),
        Ok(Authorization::Declined(decline)) => (PaymentState::Declined, Some(decline.reason())),
        Err(e) => {
            tracing::warn!(payment_id = %request.id, error = %e, "card provider did not authorize");
            store::delete_pending(&ctx.db, request.id).await?;
            return Err(e.into());
        }
    };
    if !store::settle_pending(&ctx.db, request.id, state, reason, now).await? {
        return Err(
            anyhow::anyhow!("payment {} left pending under its authorizer", request.id).into(),
        );
    }
    let payment = store::get(&ctx.db, request.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("payment {} vanished after authorizing", request.id))?;
    Ok((payment, true))
}

/// How long a pending payment goes untouched before its authorizer is taken to be gone: well
/// past the provider's deadline, which bounds every call to it.
fn stale(provider: &Provider) -> Result<TimeDelta, PaymentError> {
    Ok(
        TimeDelta::from_std(provider.deadline * 2 + Duration::from_secs(5))
            .map_err(anyhow::Error::from)?,
    )
}

/// Voids a payment whose authorizer died mid-call (a crash, a lost database): nobody will
/// settle it, and the checkout it belongs to is being undone. The provider is asked to void
/// first, so whatever the lost call did at the provider is cancelled; then the row moves,
/// unless an authorization retry took the payment over meanwhile.
async fn void_abandoned(
    ctx: &Context,
    provider: &Provider,
    payment: Payment,
) -> Result<Payment, PaymentError> {
    let id = payment.payment_id;
    let stale_before = nubo_platform::clock::now() - stale(provider)?;
    if payment.updated_at >= stale_before {
        return Err(PaymentError::InProgress(id));
    }
    provider.void(id).await?;
    let now = nubo_platform::clock::now();
    if store::void_stale_pending(&ctx.db, id, stale_before, now).await? {
        tracing::info!(payment_id = %id, "voided a payment its authorizer left pending");
    }
    let now_stored = store::get(&ctx.db, id)
        .await?
        .ok_or(PaymentError::NotFound)?;
    match now_stored.state {
        PaymentState::Voided => Ok(now_stored),
        state => Err(Step::Void.refusal(id, state)),
    }
}

/// A step after authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Capture,
    Void,
    Refund,
}

impl Step {
    fn from(self) -> PaymentState {
        match self {
            Self::Capture | Self::Void => PaymentState::Authorized,
            Self::Refund => PaymentState::Captured,
        }
    }

    fn to(self) -> PaymentState {
        match self {
            Self::Capture => PaymentState::Captured,
            Self::Void => PaymentState::Voided,
            Self::Refund => PaymentState::Refunded,
        }
    }

    /// Why a payment in `state` cannot take this step.
    fn refusal(self, id: Uuid, state: PaymentState) -> PaymentError {
        let verb = match self {
            Self::Capture => "captured",
            Self::Void => "voided",
            Self::Refund => "refunded",
        };
        let message = match (self, state) {
            (_, PaymentState::Pending) => return PaymentError::InProgress(id),
            (Self::Void, PaymentState::Captured) => {
                format!("payment {id} was captured; refund it instead")
            }
            (Self::Refund, PaymentState::Authorized) => {
                format!("payment {id} was not captured; void it instead")
            }
            (_, state) => format!(
                "payment {id} is {}; it cannot be {verb}",
                store::state_name(state)
            ),
        };
        PaymentError::WrongState(message)
    }
}

/// Captures, voids or refunds `id`. Taking a step twice is fine; the provider is asked before
/// the row moves, and a provider failure leaves the payment as it was.
pub async fn take_step(
    ctx: &Context,
    provider: &Provider,
    id: Uuid,
    step: Step,
) -> Result<Payment, PaymentError> {
    let payment = store::get(&ctx.db, id)
        .await?
        .ok_or(PaymentError::NotFound)?;
    if payment.state == step.to() {
        return Ok(payment);
    }
    if step == Step::Void && payment.state == PaymentState::Pending {
        return void_abandoned(ctx, provider, payment).await;
    }
    if payment.state != step.from() {
        return Err(step.refusal(id, payment.state));
    }
    match step {
        Step::Capture => provider.capture(id, &payment.amount).await?,
        Step::Void => provider.void(id).await?,
        Step::Refund => provider.refund(id, &payment.amount).await?,
    }
    let mut tx = ctx.db.begin().await?;
    let now = nubo_platform::clock::now();
    if store::transition(&mut tx, id, step.from(), step.to(), now).await? {
        let amount = payment.amount.clone();
        match step {
            Step::Capture => {
                ctx.publish(
                    &mut tx,
                    &PaymentCaptured {
                        payment_id: id,
                        amount,
                    },
                )
                .await?;
            }
            Step::Refund => {
                ctx.publish(
                    &mut tx,
                    &PaymentRefunded {
                        payment_id: id,
                        amount,
                    },
                )
                .await?;
            }
            Step::Void => {}
        }
        let moved = store::load(&mut tx, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("payment {id} vanished inside its transaction"))?;
        ctx.commit(tx).await?;
        return Ok(moved);
    }
    // Someone else moved it first: their answer is ours if they took the same step.
    let now_stored = store::load(&mut tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("payment {id} vanished inside its transaction"))?;
    tx.rollback().await?;
    if now_stored.state == step.to() {
        Ok(now_stored)
    } else {
        Err(step.refusal(id, now_stored.state))
    }
}
