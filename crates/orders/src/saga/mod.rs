//! The checkout saga: after the order is placed (see [`crate::placing`]), reserve the stock,
//! authorize the card, confirm the order, capture the money, commit the stock, take the bought
//! lines out of the cart, or undo what was done when a step is refused. This module owns
//! [`Checkouts`], the handle every part of the saga works through, and how an order moves: each
//! move is one transaction (its state, its step, its event), so a saga resumes from its last
//! recorded state on any replica after any crash, and every call a step makes is idempotent on
//! the order id, so a step repeated is harmless. Its parts: `runner` runs sagas (jobs, leases,
//! the recovery sweep, the stop), `steps` takes the forward steps, and `compensation` undoes a
//! checkout that cannot go on.
//!
//! The card number is held in memory only, by the replica that placed the order, until payments
//! has authorized it: orders never stores it. A saga resumed elsewhere before its card was
//! authorized asks payments what became of the payment, and if nothing did, the checkout is
//! cancelled (nothing was charged) and the customer checks out again.

mod compensation;
mod runner;
mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nubo_contracts::cart::CartClient;
use nubo_contracts::inventory::InventoryClient;
use nubo_contracts::orders::OrderConfirmed;
use nubo_contracts::payments::{Card, PaymentsClient};
use nubo_platform::Context;
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::tokio::sync::{broadcast, mpsc};
use nubo_platform::uuid::Uuid;

use crate::config::Config;
use crate::domain::State;
use crate::metrics::SagaMetrics;
use crate::store::{self, StoredOrder};

pub use runner::Job;

pub const INTERRUPTED: &str = "the checkout was interrupted before your card was charged; \
                               nothing was charged, please check out again";
pub const TIMED_OUT: &str = "the shop could not complete the checkout in time; nothing was \
                             charged, please try again later";

/// Runs checkout sagas. Cheap to clone.
#[derive(Clone)]
pub struct Checkouts {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Context,
    inventory: InventoryClient,
    payments: PaymentsClient,
    cart: CartClient,
    config: Config,
    metrics: SagaMetrics,
    /// This replica's name in the leases it holds.
    owner: Uuid,
    cards: Mutex<HashMap<Uuid, Card>>,
    jobs: mpsc::UnboundedSender<Job>,
    /// The id of every order a saga here moved, for requests waiting on it.
    changed: broadcast::Sender<Uuid>,
}

/// Why a step did not complete.
#[derive(Debug)]
enum Failure {
    /// The checkout cannot go on: the customer reads this reason.
    Refused(String),
    /// A service did not answer (or answered 5xx), or the database failed: try again later.
    Unavailable(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Unavailable(format!("{e:#}"))
    }
}

impl From<nubo_platform::sqlx::Error> for Failure {
    fn from(e: nubo_platform::sqlx::Error) -> Self {
        Self::Unavailable(format!("database: {e}"))
    }
}

impl Checkouts {
    pub fn new(ctx: Context, config: Config) -> (Self, mpsc::UnboundedReceiver<Job>) {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let (changed, _) = broadcast::channel(1024);
        let metrics = SagaMetrics::register(&ctx.metrics);
        let inner = Inner {
            inventory: InventoryClient::of(&ctx),
            payments: PaymentsClient::of(&ctx),
            cart: CartClient::of(&ctx),
            ctx,
            config,
            metrics,
            owner: Uuid::new_v4(),
            cards: Mutex::new(HashMap::new()),
            jobs,
            changed,
        };
        (
            Self {
                inner: Arc::new(inner),
            },
            receiver,
        )
    }

    pub fn ctx(&self) -> &Context {
        &self.inner.ctx
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn metrics(&self) -> &SagaMetrics {
        &self.inner.metrics
    }

    /// The lease owner an order placed here starts with.
    pub fn owner(&self) -> Uuid {
        self.inner.owner
    }

    /// The time by the service's clock: every deadline, lease and step of a saga is judged and
    /// recorded by it, never by the system's.
    fn now(&self) -> DateTime<Utc> {
        self.inner.ctx.clock.now()
    }

    /// The cards of orders placed here whose payment is not authorized yet.
    fn cards(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Card>> {
        self.inner.cards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a step to the order's history, leaving its state as it is.
    async fn record(
        &self,
        id: Uuid,
        step: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.inner.ctx.db.begin().await?;
        store::record_step(&mut tx, id, step, outcome, detail, self.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves the order from the state it was read in, recording the step as `done`; false if
    /// someone else moved it first (the next pass reads it again).
    async fn advance(
        &self,
        order: &StoredOrder,
        to: State,
        step: &str,
        detail: Option<&str>,
    ) -> Result<bool, Failure> {
        self.advance_as(order, to, step, "done", detail).await
    }

    /// [`Self::advance`], recording the step with `outcome`.
    async fn advance_as(
        &self,
        order: &StoredOrder,
        to: State,
        step: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<bool, Failure> {
        let mut tx = self.inner.ctx.db.begin().await?;
        let now = self.now();
        let id = order.order.order_id;
        if !store::transition(&mut tx, id, order.state, to, None, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        store::record_step(&mut tx, id, step, outcome, detail, now).await?;
        if to == State::Confirmed {
            let event = OrderConfirmed {
                order_id: id,
                number: order.order.number.clone(),
                user_id: order.order.user_id,
                email: order.email.clone(),
                phone: order.order.contact.phone.clone(),
                lines: order.order.lines.clone(),
                total: order.order.total.clone(),
            };
            self.inner.ctx.publish(&mut tx, &event).await?;
        }
        self.inner.ctx.commit(tx).await?;
        Ok(true)
    }
}
