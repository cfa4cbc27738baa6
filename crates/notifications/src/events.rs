//! What notifications does with events: every order event teaches it who to write to about the
//! order, and a confirmed order, a cancelled order and a refund each write one email; a confirmed
//! or cancelled order also writes one text message when the customer gave a mobile number.
//!
//! Each handler runs in the consumer's transaction, which also records the event id as handled,
//! and every message row is keyed by the event id and its channel too: however often an event is
//! delivered, its email and its text are written once. Nothing is sent here; each channel's
//! outbox sends what this writes, so a slow or absent mail server or SMS provider never holds up
//! the events.

use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderPlaced};
use nubo_contracts::payments::PaymentRefunded;
use nubo_platform::async_trait::async_trait;
use nubo_platform::events::Envelope;
use nubo_platform::events::consumer::Handler;
use nubo_platform::storage::Tx;
use nubo_platform::uuid::Uuid;

use crate::domain::{Channel, Message, Status};
use crate::emails::{self, KnownOrder};
use crate::metrics::NotificationMetrics;
use crate::sms::texts;
use crate::store;

/// A refund names only its order; until an order event has said who placed it, the refund cannot
/// be addressed. Events of different subjects arrive in any order, so this is a wait, not a
/// fault: the error makes the consumer redeliver the refund later, with backoff.
#[derive(Debug, thiserror::Error)]
#[error(
    "order {0} is not known yet (its order events have not arrived); the refund waits for them"
)]
pub struct OrderNotKnownYet(pub Uuid);

/// Writes messages: emails `pending` when an SMTP server is configured, else `recorded` only;
/// texts always `pending`, since an SMS provider always is (the simulated one by default).
#[derive(Clone)]
pub struct Writer {
    /// Whether emails are sent (an SMTP server is configured).
    pub sending: bool,
    pub metrics: NotificationMetrics,
}

impl Writer {
    async fn write(&self, tx: &mut Tx, event: &Envelope, message: &Message) -> anyhow::Result<()> {
        let status = match message.channel {
            Channel::Email if !self.sending => Status::Recorded,
            Channel::Email | Channel::Sms => Status::Pending,
        };
        let id = Uuid::now_v7();
        let now = nubo_platform::clock::now();
        // False only if the event had its message already; the processed-event record makes that
        // unreachable, and the unique event id and channel keep it harmless if it ever were not.
        if store::record_message(tx, id, event.id, message, status, now).await? {
            self.metrics
                .written(message.channel, message.kind, id, event.id);
        }
        Ok(())
    }

    /// The email, and the text if there is one.
    async fn write_all(
        &self,
        tx: &mut Tx,
        event: &Envelope,
        email: &Message,
        text: Option<&Message>,
    ) -> anyhow::Result<()> {
        self.write(tx, event, email).await?;
        if let Some(text) = text {
            self.write(tx, event, text).await?;
        }
        Ok(())
    }
}

async fn remember(
    tx: &mut Tx,
    order_id: Uuid,
    number: &str,
    user_id: Uuid,
    email: &str,
    total: &nubo_contracts::Money,
) -> anyhow::Result<()> {
    let order = KnownOrder {
        order_id,
        number: number.trim().to_owned(),
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
            &placed.number,
            placed.user_id,
            &placed.email,
            &placed.total,
        )
        .await
    }
}

/// `OrderConfirmed`: an email, and a text to the customer's mobile if they gave one.
pub struct NotifyConfirmedOrders(pub Writer);

#[async_trait]
impl Handler for NotifyConfirmedOrders {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let confirmed: OrderConfirmed = event.decode()?;
        remember(
            tx,
            confirmed.order_id,
            &confirmed.number,
            confirmed.user_id,
            &confirmed.email,
            &confirmed.total,
        )
        .await?;
        let email = emails::order_confirmed(&confirmed);
        let text = texts::order_confirmed(&confirmed);
        self.0.write_all(tx, event, &email, text.as_ref()).await
    }
}

/// `OrderCancelled`: an email, and a text to the customer's mobile if they gave one.
pub struct NotifyCancelledOrders(pub Writer);

#[async_trait]
impl Handler for NotifyCancelledOrders {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let cancelled: OrderCancelled = event.decode()?;
        remember(
            tx,
            cancelled.order_id,
            &cancelled.number,
            cancelled.user_id,
            &cancelled.email,
            &cancelled.total,
        )
        .await?;
        let email = emails::order_cancelled(&cancelled);
        let text = texts::order_cancelled(&cancelled);
        self.0.write_all(tx, event, &email, text.as_ref()).await
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
