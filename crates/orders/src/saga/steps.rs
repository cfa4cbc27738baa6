//! The forward steps of a checkout, each a call to the service that does it and the order's
//! move once it answered: reserve the stock (inventory), authorize the card (payments), confirm
//! the order (`OrderConfirmed`), capture the money (payments), commit the stock (inventory), and
//! take the bought lines out of the cart (cart). A refusal is the customer's reason the checkout
//! ends; a service that does not answer is tried again by the runner.

use nubo_contracts::cart::{OrderedLine, OrderedLines};
use nubo_contracts::inventory::{ReservationState, ReserveStock, StockLine};
use nubo_contracts::payments::{AuthorizePayment, Payment, PaymentState};
use nubo_platform::client::CallError;

use super::{Checkouts, Failure, INTERRUPTED};
use crate::domain::{State, show};
use crate::store::StoredOrder;

/// Attempts at clearing the cart before the order completes with the cart left as it was: the
/// order is paid and its stock gone, and an idle cart expires on its own.
const CLEAR_CART_ATTEMPTS: i32 = 10;

impl Checkouts {
    pub(super) async fn reserve_stock(&self, order: &StoredOrder) -> Result<(), Failure> {
        let request = ReserveStock {
            reservation_id: order.order.order_id,
            lines: order
                .order
                .lines
                .iter()
                .map(|l| StockLine {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            ttl_secs: self.inner.config.reservation_ttl.as_secs() as i64,
        };
        let reservation = self
            .inner
            .inventory
            .reserve(&request)
            .await
            .map_err(|e| refusal(e, "your items could not be reserved"))?;
        match reservation.state {
            ReservationState::Held | ReservationState::Committed => {
                self.advance(order, State::Reserved, "reserve_stock", None)
                    .await?;
                Ok(())
            }
            ReservationState::Released => Err(Failure::Refused(
                "your items could not be reserved in time".to_owned(),
            )),
        }
    }

    pub(super) async fn authorize_payment(&self, order: &StoredOrder) -> Result<(), Failure> {
        let id = order.order.order_id;
        let card = self.cards().get(&id).cloned();
        let payment: Payment = match card {
            Some(card) => {
                let request = AuthorizePayment {
                    payment_id: id,
                    amount: order.order.total.clone(),
                    card,
                };
                self.inner
                    .payments
                    .authorize(&request)
                    .await
                    .map_err(|e| refusal(e, "your card was refused"))?
            }
            // Placed by a replica that is gone (or before a restart): payments knows whether
            // the card was authorized.
            None => match self.inner.payments.payment(id).await {
                Ok(payment) => payment,
                Err(CallError::NotFound { .. }) => {
                    return Err(Failure::Refused(INTERRUPTED.to_owned()));
                }
                Err(e) => return Err(refusal(e, "your card was refused")),
            },
        };
        match payment.state {
            PaymentState::Authorized | PaymentState::Captured => {
                let detail = format!("{} card ending {}", payment.card_brand, payment.card_last4);
                self.advance(order, State::Authorized, "authorize_payment", Some(&detail))
                    .await?;
                self.cards().remove(&id);
                Ok(())
            }
            PaymentState::Declined => Err(Failure::Refused(declined(
                payment.decline_reason.as_deref(),
            ))),
            PaymentState::Pending => Err(Failure::Unavailable(
                "the card is still being authorized".to_owned(),
            )),
            PaymentState::Voided | PaymentState::Refunded => {
                Err(Failure::Refused("the payment was cancelled".to_owned()))
            }
        }
    }

    pub(super) async fn confirm(&self, order: &StoredOrder) -> Result<(), Failure> {
        if self
            .advance(order, State::Confirmed, "confirm", None)
            .await?
        {
            self.inner.metrics.checkout("confirmed");
        }
        Ok(())
    }

    pub(super) async fn capture_payment(&self, order: &StoredOrder) -> Result<(), Failure> {
        let id = order.order.order_id;
        let payment = self
            .inner
            .payments
            .capture(id)
            .await
            .map_err(|e| refusal(e, "your payment could not be taken"))?;
        if payment.state != PaymentState::Captured {
            return Err(Failure::Refused(
                "your payment could not be taken".to_owned(),
            ));
        }
        let detail = show(&payment.amount);
        self.advance(order, State::Captured, "capture_payment", Some(&detail))
            .await?;
        Ok(())
    }

    pub(super) async fn commit_stock(&self, order: &StoredOrder) -> Result<(), Failure> {
        let id = order.order.order_id;
        let reservation = self.inner.inventory.commit(id).await.map_err(|e| {
            refusal(
                e,
                "your items could not be held for you; your payment is refunded",
            )
        })?;
        if reservation.state != ReservationState::Committed {
            return Err(Failure::Refused(
                "your items could not be held for you; your payment is refunded".to_owned(),
            ));
        }
        self.advance(order, State::StockCommitted, "commit_stock", None)
            .await?;
        Ok(())
    }

    pub(super) async fn clear_cart(&self, order: &StoredOrder) -> Result<(), Failure> {
        let id = order.order.order_id;
        // Only what the order bought leaves the cart: a line added while the checkout ran stays.
        let ordered = OrderedLines {
            lines: order
                .order
                .lines
                .iter()
                .map(|line| OrderedLine {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                })
                .collect(),
        };
        let taken = self
            .inner
            .cart
            .take_ordered(order.order.user_id, id, &ordered)
            .await;
        let cleared = match taken {
            Ok(()) | Err(CallError::NotFound { .. }) => None,
            Err(CallError::Refused { problem, .. }) => Some(problem.reason()),
            Err(CallError::Unavailable(why)) if order.attempts + 1 >= CLEAR_CART_ATTEMPTS => {
                Some(why)
            }
            Err(CallError::Unavailable(why)) => return Err(Failure::Unavailable(why)),
        };
        match cleared {
            None => {
                self.advance(order, State::Completed, "clear_cart", None)
                    .await?
            }
            Some(why) => {
                let detail = format!("the cart was left as it was: {why}");
                self.advance_as(
                    order,
                    State::Completed,
                    "clear_cart",
                    "failed",
                    Some(&detail),
                )
                .await?
            }
        };
        Ok(())
    }
}

/// A decline in the customer's words: what their bank said, if it said more than "declined".
fn declined(reason: Option<&str>) -> String {
    match reason {
        Some("insufficient funds") => {
            "your card was declined for insufficient funds, and nothing was charged".to_owned()
        }
        _ => "your card was declined by your bank, and nothing was charged".to_owned(),
    }
}

/// A failed forward call: a refusal ends the checkout with `prefix` and the service's reason;
/// anything else is tried again.
fn refusal(e: CallError, prefix: &str) -> Failure {
    match e {
        CallError::Refused { problem, .. } => {
            Failure::Refused(format!("{prefix}: {}", problem.reason()))
        }
        CallError::NotFound { .. } => Failure::Refused(prefix.to_owned()),
        CallError::Unavailable(why) => Failure::Unavailable(why),
    }
}
