//! Undoing a checkout that cannot go on: turning the order back to `compensating` (a step was
//! refused, the payment deadline passed, or an admin cancels it), then releasing its stock,
//! voiding or refunding its payment, and ending it `cancelled` with `OrderCancelled`. Each undo
//! is idempotent or asks the other service where things stand first, and is tried until it
//! succeeds: compensation must finish.

use nubo_contracts::inventory::ReleaseStock;
use nubo_contracts::orders::OrderCancelled;
use nubo_contracts::payments::{Payment, PaymentState};
use nubo_platform::client::CallError;
use nubo_platform::uuid::Uuid;

use super::{Checkouts, Failure};
use crate::domain::{State, show};
use crate::store::{self, StoredOrder};

impl Checkouts {
    /// The checkout cannot go on: record why, and turn to compensating.
    pub(super) async fn turn_back(
        &self,
        order: &StoredOrder,
        step: &str,
        reason: &str,
    ) -> anyhow::Result<()> {
        if self.to_compensating(order, step, reason).await? && !order.state.is_confirmed() {
            self.inner.metrics.checkout("cancelled");
        }
        Ok(())
    }

    /// Cancels an order at an admin's request with `reason`: the saga then voids or refunds its
    /// payment and releases its stock. An order already being undone (or undone) stays as it is.
    /// False if the order changed meanwhile.
    pub async fn cancel_by_shop(&self, order: &StoredOrder, reason: &str) -> anyhow::Result<bool> {
        if matches!(order.state, State::Cancelled | State::Compensating) {
            return Ok(true);
        }
        let reason = format!("cancelled by the shop: {reason}");
        let moved = self.to_compensating(order, "cancel", &reason).await?;
        if moved {
            self.nudge(order.order.order_id);
        }
        Ok(moved)
    }

    /// Moves the order from the state it was read in to compensating with `reason`, recording
    /// `step` as failed; false if someone else moved it first.
    async fn to_compensating(
        &self,
        order: &StoredOrder,
        step: &str,
        reason: &str,
    ) -> anyhow::Result<bool> {
        let mut tx = self.inner.ctx.db.begin().await?;
        let now = self.now();
        let id = order.order.order_id;
        let moved = store::transition(
            &mut tx,
            id,
            order.state,
            State::Compensating,
            Some(reason),
            now,
        )
        .await?;
        if moved {
            store::record_step(&mut tx, id, step, "failed", Some(reason), now).await?;
            self.inner.ctx.commit(tx).await?;
        } else {
            tx.rollback().await?;
        }
        Ok(moved)
    }

    /// Undoes what the checkout did, then ends it cancelled. Each part is idempotent or asks the
    /// other service where things stand first, so running it again after a crash redoes nothing.
    /// The order stays `compensating` until payments can say what became of the payment: an
    /// authorization whose answer was lost may still hold the customer's money.
    pub(super) async fn compensate(&self, order: &StoredOrder) -> Result<(), Failure> {
        let id = order.order.order_id;
        // The stock first: it does not depend on what became of the payment, and goes back
        // on sale even while payments cannot say.
        if !store::step_done(&self.inner.ctx.db, id, "release_stock").await? {
            self.release_stock(id).await?;
        }
        let mut refunded = order.order.refunded;
        match self.inner.payments.payment(id).await {
            Err(CallError::NotFound { .. }) => {}
            Err(CallError::Unavailable(why)) => return Err(Failure::Unavailable(why)),
            Err(CallError::Refused { problem, .. }) => {
                return Err(Failure::Unavailable(problem.reason()));
            }
            Ok(payment) => match payment.state {
                // An authorization under way, or one whose authorizer died mid-call: payments
                // refuses the void (503) while its authorizer may yet answer, and voids it once
                // that is past, so the checkout is undone either way.
                PaymentState::Pending => {
                    self.inner.payments.void(id).await.map_err(undo_failed)?;
                    self.record(id, "void_payment", "done", None).await?;
                }
                PaymentState::Authorized => {
                    self.inner.payments.void(id).await.map_err(undo_failed)?;
                    self.record(id, "void_payment", "done", None).await?;
                }
                PaymentState::Captured => {
                    let payment: Payment =
                        self.inner.payments.refund(id).await.map_err(undo_failed)?;
                    let detail = show(&payment.amount);
                    let mut tx = self.inner.ctx.db.begin().await?;
                    store::mark_refunded(&mut tx, id).await?;
                    store::record_step(
                        &mut tx,
                        id,
                        "refund_payment",
                        "done",
                        Some(&detail),
                        self.now(),
                    )
                    .await?;
                    tx.commit().await?;
                    refunded = true;
                }
                PaymentState::Refunded if !refunded => {
                    let mut tx = self.inner.ctx.db.begin().await?;
                    store::mark_refunded(&mut tx, id).await?;
                    tx.commit().await?;
                    refunded = true;
                }
                PaymentState::Refunded | PaymentState::Declined | PaymentState::Voided => {}
            },
        }

        let mut tx = self.inner.ctx.db.begin().await?;
        let now = self.now();
        if store::transition(
            &mut tx,
            id,
            State::Compensating,
            State::Cancelled,
            None,
            now,
        )
        .await?
        {
            let reason = order
                .order
                .cancel_reason
                .clone()
                .unwrap_or_else(|| "the order was cancelled".to_owned());
            store::record_step(&mut tx, id, "cancel", "done", None, now).await?;
            let event = OrderCancelled {
                order_id: id,
                number: order.order.number.clone(),
                user_id: order.order.user_id,
                email: order.email.clone(),
                phone: order.order.contact.phone.clone(),
                reason,
                refunded,
                total: order.order.total.clone(),
            };
            self.inner.ctx.publish(&mut tx, &event).await?;
            self.inner.ctx.commit(tx).await?;
        } else {
            tx.rollback().await?;
        }
        Ok(())
    }

    /// Gives the order's stock back (idempotent on inventory's side) and records it.
    async fn release_stock(&self, id: Uuid) -> Result<(), Failure> {
        let release = ReleaseStock {
            reason: "order_cancelled".to_owned(),
        };
        // A completed order's units come back on hand as a return; anything short of an
        // answer is tried again, so the log never records a release that did not happen.
        let released = self
            .inner
            .inventory
            .release(id, &release)
            .await
            .map_err(undo_failed)?;
        let detail = released
            .returned()
            .then_some("its units had left the shop and are back in stock");
        self.record(id, "release_stock", "done", detail).await?;
        Ok(())
    }
}

/// A failed undo is always tried again: compensation must finish.
fn undo_failed(e: CallError) -> Failure {
    match e {
        CallError::Refused { problem, .. } => Failure::Unavailable(problem.reason()),
        CallError::NotFound { .. } => Failure::Unavailable("not found".to_owned()),
        CallError::Unavailable(why) => Failure::Unavailable(why),
    }
}
