//! What notifications does with events: every order event teaches it who to write to about the
//! order, and a confirmed order, a cancelled order and a refund each write one email.
//!
//! Each handler runs in the consumer's transaction, which also records the event id as handled,
//! and the email row is keyed by the event id too: however often an event is delivered, its
//! email is written once. Nothing is sent here; the mail outbox sends what this writes, so a
//! slow or absent mail server never holds up the events.

use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderPlaced};
use nubo_contracts::payments::PaymentRefunded;
use nubo_platform::async_trait::async_trait;
use nubo_platform::events::Envelope;
use nubo_platform::events::consumer::Handler;
use nubo_platform::storage::Tx;
use nubo_platform::uuid::Uuid;

use crate::domain::Status;
use crate::emails::{self, Email, KnownOrder};
use crate::metrics::NotificationMetrics;
use crate::store;

/// A refund names only its order; until an order event has said who placed it, the refund cannot
/// be addressed. Events of different subjects arrive in any order, so this is a wait, not a
/// fault: the error makes the consumer redeliver the refund later, with backoff.
#[derive(Debug, thiserror::Error)]
#[error(
    "order {0} is not known yet (its order events have not arrived); the refund waits for them"
)]
pub struct OrderNotKnownYet(pub Uuid);

/// Writes emails: `pending` when an SMTP server is configured, else `recorded` only.
#[derive(Clone)]
pub struct Writer {
    pub sending: bool,
    pub metrics: NotificationMetrics,
}

impl Writer {
    async fn write(&self, tx: &mut Tx, event: &Envelope, email: &Email) -> anyhow::Result<()> {
        let status = if self.sending {
            Status::Pending
        } else {
            Status::Recorded
        };
        let id = Uuid::now_v7();
        let now = nubo_platform::clock::now();
        // False only if the event had its email already; the processed-event record makes that
        // unreachable, and the unique event id keeps it harmless if it ever were not.
        if store::record_message(tx, id, event.id, email, status, now).await? {
            self.metrics.written(email.kind, id, event.id);
        }
        Ok(())
    }
}

async fn remember(
    tx: &mut Tx,
    order_id: Uuid,
    user_id: Uuid,
    email: &str,
    total: &nubo_contracts::Money,
) -> anyhow::Result<()> {
    let order = KnownOrder {
        order_id,
        user_id,
        email: email.to_owned(),
        total: total.clone(),
    };
    store::remember_order(tx, &order, nubo_platform::clock::now()).await?;
    Ok(())
}

/// `OrderPlaced`: no email (the checkout may still fail), but the order becomes known.
pub struct LearnPlacedOrders;

#[async_trait]
impl Handler for LearnPlacedOrders {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let placed: OrderPlaced = event.decode()?;
        remember(
            tx,
            placed.order_id,
            placed.user_id,
            &placed.email,
            &placed.total,
        )
        .await
    }
}

pub struct EmailConfirmedOrders(pub Writer);

#[async_trait]
impl Handler for EmailConfirmedOrders {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let confirmed: OrderConfirmed = event.decode()?;
        remember(
            tx,
            confirmed.order_id,
            confirmed.user_id,
            &confirmed.email,
            &confirmed.total,
        )
        .await?;
        self.0
            .write(tx, event, &emails::order_confirmed(&confirmed))
            .await
    }
}

pub struct EmailCancelledOrders(pub Writer);

#[async_trait]
impl Handler for EmailCancelledOrders {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let cancelled: OrderCancelled = event.decode()?;
        remember(
            tx,
            cancelled.order_id,
            cancelled.user_id,
            &cancelled.email,
            &cancelled.total,
        )
        .await?;
        self.0
            .write(tx, event, &emails::order_cancelled(&cancelled))
            .await
    }
}

pub struct EmailRefunds(pub Writer);

#[async_trait]
impl Handler for EmailRefunds {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let refunded: PaymentRefunded = event.decode()?;
        // A payment's id is the id of the order it pays for.
        let order = store::known_order(tx, refunded.payment_id)
            .await?
            .ok_or(OrderNotKnownYet(refunded.payment_id))?;
        self.0
            .write(tx, event, &emails::payment_refunded(&refunded, &order))
            .await
    }
}
