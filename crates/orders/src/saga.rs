//! The checkout saga: price the cart (done when the order is placed), reserve the stock,
//! authorize the card, confirm the order, capture the money, commit the stock, take the
//! bought lines out of the cart.
//! Every step is persisted before the next begins, and every call it makes is idempotent on the
//! order id, so a saga can be resumed from its last recorded state by any replica, after any
//! crash, and a step repeated is harmless. A refusal (no stock, a declined card) turns the order
//! to `compensating`, which voids or refunds the payment, releases the stock and ends
//! `cancelled`; a service that does not answer is retried with backoff, and before the order is
//! confirmed only until the payment deadline, after which the checkout is compensated too.
//!
//! Who runs a saga: the replica that placed the order, under a lease in the order's row that it
//! renews before each step. A replica that stops gives its leases up; one that crashes loses
//! them when they expire, and any replica's recovery sweep resumes the orphans.
//!
//! The card number is held in memory only, by the replica that placed the order, until payments
//! has authorized it: orders never stores it. A saga resumed elsewhere before its card was
//! authorized asks payments what became of the payment, and if nothing did, the checkout is
//! cancelled (nothing was charged) and the customer checks out again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nubo_contracts::cart::{CartClient, OrderedLine, OrderedLines};
use nubo_contracts::inventory::{
    InventoryClient, ReleaseStock, ReservationState, ReserveStock, StockLine,
};
use nubo_contracts::orders::{OrderCancelled, OrderConfirmed, OrderLine};
use nubo_contracts::payments::{AuthorizePayment, Card, Payment, PaymentState, PaymentsClient};
use nubo_platform::chrono::TimeDelta;
use nubo_platform::client::CallError;
use nubo_platform::tokio::sync::{broadcast, mpsc};
use nubo_platform::tokio::task::JoinSet;
use nubo_platform::tokio_util::sync::CancellationToken;
use nubo_platform::uuid::Uuid;
use nubo_platform::{Context, clock, tokio};
use tracing::Instrument;

use crate::config::Config;
use crate::domain::{State, show};
use crate::metrics::SagaMetrics;
use crate::store::{self, StoredOrder};

/// How many sagas one replica runs at once; more wait for the recovery sweep.
const MAX_RUNNING: usize = 256;
/// How many orphans one sweep picks up.
const SWEEP_BATCH: i64 = 64;
/// First and longest pause between attempts at a step whose service did not answer.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a stopping replica lets its running sagas reach a pause before it drops them.
const DRAIN: Duration = Duration::from_secs(2);
/// Attempts at clearing the cart before the order completes with the cart left as it was: the
/// order is paid and its stock gone, and an idle cart expires on its own.
const CLEAR_CART_ATTEMPTS: i32 = 10;

pub const INTERRUPTED: &str = "the checkout was interrupted before your card was charged; \
                               nothing was charged, please check out again";
pub const TIMED_OUT: &str = "the shop could not complete the checkout in time; nothing was \
                             charged, please try again later";

/// A saga to run now, with the span of the request that placed it (its trace goes on).
pub struct Job {
    order_id: Uuid,
    span: tracing::Span,
}

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

    /// Runs the saga of `order_id`, placed here, paying with `card`.
    pub fn start(&self, order_id: Uuid, card: Card) {
        self.cards().insert(order_id, card);
        let job = Job {
            order_id,
            span: tracing::Span::current(),
        };
        // The receiver lives as long as the service; after a stop the order is an orphan that
        // the next replica resumes.
        let _ = self.inner.jobs.send(job);
    }

    /// Asks for the saga of `order_id` to run (again) now, e.g. after an admin turned it back.
    pub fn nudge(&self, order_id: Uuid) {
        let _ = self.inner.jobs.send(Job {
            order_id,
            span: tracing::Span::current(),
        });
    }

    fn cards(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Card>> {
        self.inner.cards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The order once `done` says so of its state, or as it is when `wait` runs out.
    pub async fn wait(
        &self,
        order_id: Uuid,
        wait: Duration,
        done: impl Fn(State) -> bool,
    ) -> anyhow::Result<StoredOrder> {
        let mut changes = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Only the state while waiting; the whole order (lines, steps) once, at the end.
            let state = store::state(&self.inner.ctx.db, order_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("order {order_id} vanished"))?;
            let now = tokio::time::Instant::now();
            if done(state) || now >= deadline {
                return store::get(&self.inner.ctx.db, order_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("order {order_id} vanished"));
            }
            // Woken by a change here; another replica's changes are seen by looking again.
            let look_again = deadline.min(now + Duration::from_millis(250));
            let _ = tokio::time::timeout_at(look_again, async {
                loop {
                    match changes.recv().await {
                        Ok(id) if id == order_id => return,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            })
            .await;
        }
    }

    /// The background task: runs sagas placed here, resumes orphans, samples the gauges. On
    /// stop it lets running sagas reach a pause, drops the rest, and gives its leases up.
    pub async fn run(self, mut jobs: mpsc::UnboundedReceiver<Job>, token: CancellationToken) {
        let mut running = JoinSet::new();
        let mut tasks: HashMap<tokio::task::Id, Uuid> = HashMap::new();
        let mut active: HashSet<Uuid> = HashSet::new();
        let mut sweep = tokio::time::interval(self.inner.config.recovery_interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                Some(job) = jobs.recv() => {
                    let span = tracing::info_span!(
                        parent: &job.span, "checkout saga", service = "orders", order_id = %job.order_id
                    );
                    self.launch(&mut running, &mut tasks, &mut active, job.order_id, span, &token);
                }
                _ = sweep.tick() => {
                    self.sample().await;
                    for order_id in self.orphans().await {
                        let span = tracing::info_span!(
                            parent: None, "resumed checkout saga", service = "orders", order_id = %order_id
                        );
                        self.launch(&mut running, &mut tasks, &mut active, order_id, span, &token);
                    }
                }
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            tracing::error!(error = %e, "a checkout saga panicked; it resumes after its lease");
                            e.id()
                        }
                    };
                    if let Some(order_id) = tasks.remove(&id) {
                        active.remove(&order_id);
                    }
                }
            }
        }
        let drained = tokio::time::timeout(DRAIN, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
        match store::release_leases(&self.inner.ctx.db, self.inner.owner).await {
            Ok(n) if n > 0 => tracing::info!(sagas = n, "gave up the leases of unfinished sagas"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot give up saga leases; they expire"),
        }
    }

    fn launch(
        &self,
        running: &mut JoinSet<()>,
        tasks: &mut HashMap<tokio::task::Id, Uuid>,
        active: &mut HashSet<Uuid>,
        order_id: Uuid,
        span: tracing::Span,
        token: &CancellationToken,
    ) {
        if active.contains(&order_id) || active.len() >= MAX_RUNNING {
            return;
        }
        let saga = self.clone();
        let token = token.clone();
        let handle =
            running.spawn(async move { saga.drive(order_id, token).instrument(span).await });
        tasks.insert(handle.id(), order_id);
        active.insert(order_id);
    }

    async fn orphans(&self) -> Vec<Uuid> {
        match store::orphans(&self.inner.ctx.db, clock::now(), SWEEP_BATCH).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for unfinished sagas");
                Vec::new()
            }
        }
    }

    async fn sample(&self) {
        let stuck_before = clock::now()
            - TimeDelta::from_std(self.inner.config.stuck_after).unwrap_or(TimeDelta::MAX);
        match store::open_counts(&self.inner.ctx.db, stuck_before).await {
            Ok(counts) => self.inner.metrics.sample(&counts),
            Err(e) => tracing::warn!(error = %e, "cannot count unfinished sagas"),
        }
    }

    /// Runs one order's saga until it is final, another replica holds it, or the service stops.
    async fn drive(&self, order_id: Uuid, token: CancellationToken) {
        let mut backoff = BACKOFF_FIRST;
        // Read on the first pass and kept: an order's lines never change once placed.
        let mut lines = None;
        while !token.is_cancelled() {
            let pause = match self.pass(order_id, &mut lines).await {
                Pass::Moved => {
                    backoff = BACKOFF_FIRST;
                    let _ = self.inner.changed.send(order_id);
                    continue;
                }
                Pass::Finished => break,
                Pass::Retry => backoff,
            };
            backoff = (backoff * 2).min(BACKOFF_MAX);
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        self.cards().remove(&order_id);
    }

    /// One step of the saga, under a fresh lease taken in the same statement that reads the order.
    async fn pass(&self, order_id: Uuid, lines: &mut Option<Vec<OrderLine>>) -> Pass {
        let db = &self.inner.ctx.db;
        let now = clock::now();
        let until = now + TimeDelta::from_std(self.inner.config.lease).unwrap_or(TimeDelta::MAX);
        let leased = store::lease(db, order_id, self.inner.owner, now, until, lines.as_deref());
        let order = match leased.await {
            Ok(Some(order)) => order,
            // Final (or gone), or another replica runs it.
            Ok(None) => return Pass::Finished,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the saga's lease");
                return Pass::Retry;
            }
        };
        if lines.is_none() {
            *lines = Some(order.order.lines.clone());
        }
        let step = step_name(order.state);
        let result = match order.state {
            State::Placed => self.reserve_stock(&order).await,
            State::Reserved => self.authorize_payment(&order).await,
            State::Authorized => self.confirm(&order).await,
            State::Confirmed => self.capture_payment(&order).await,
            State::Captured => self.commit_stock(&order).await,
            State::StockCommitted => self.clear_cart(&order).await,
            State::Compensating => self.compensate(&order).await,
            State::Completed | State::Cancelled => return Pass::Finished,
        };
        match result {
            Ok(()) => {
                self.inner.metrics.step(step, "done");
                Pass::Moved
            }
            Err(Failure::Refused(reason)) => {
                self.inner.metrics.step(step, "failed");
                tracing::info!(step, reason = %reason, "checkout step refused; compensating");
                match self.turn_back(&order, step, &reason).await {
                    Ok(()) => Pass::Moved,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot turn the checkout back");
                        Pass::Retry
                    }
                }
            }
            Err(Failure::Unavailable(why)) => {
                self.inner.metrics.step(step, "retrying");
                tracing::warn!(step, error = %why, "checkout step could not run; retrying");
                self.after_unavailable(&order, step, &why).await
            }
        }
    }

    /// Counts the failed attempt; past the payment deadline an unconfirmed checkout turns back.
    async fn after_unavailable(&self, order: &StoredOrder, step: &'static str, why: &str) -> Pass {
        let db = &self.inner.ctx.db;
        let id = order.order.order_id;
        if let Ok(1) = store::count_attempt(db, id).await {
            let _ = self.record(id, step, "retrying", Some(why)).await;
        }
        let deadline =
            TimeDelta::from_std(self.inner.config.payment_deadline).unwrap_or(TimeDelta::MAX);
        let late = clock::now() - order.order.created_at > deadline;
        let before_confirmation = !order.state.is_confirmed() && order.state != State::Compensating;
        if late && before_confirmation {
            return match self.turn_back(order, step, TIMED_OUT).await {
                Ok(()) => Pass::Moved,
                Err(_) => Pass::Retry,
            };
        }
        Pass::Retry
    }

    async fn record(
        &self,
        id: Uuid,
        step: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.inner.ctx.db.begin().await?;
        store::record_step(&mut tx, id, step, outcome, detail, clock::now()).await?;
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
        let now = clock::now();
        let id = order.order.order_id;
        if !store::transition(&mut tx, id, order.state, to, None, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        store::record_step(&mut tx, id, step, outcome, detail, now).await?;
        if to == State::Confirmed {
            let event = OrderConfirmed {
                order_id: id,
                user_id: order.order.user_id,
                email: order.email.clone(),
                lines: order.order.lines.clone(),
                total: order.order.total.clone(),
            };
            self.inner.ctx.publish(&mut tx, &event).await?;
        }
        self.inner.ctx.commit(tx).await?;
        Ok(true)
    }

    /// The checkout cannot go on: record why, and turn to compensating.
    async fn turn_back(&self, order: &StoredOrder, step: &str, reason: &str) -> anyhow::Result<()> {
        if self.to_compensating(order, step, reason).await? && !order.state.is_confirmed() {
            self.inner.metrics.checkout("cancelled");
        }
        Ok(())
    }

    /// Turns an order back at an admin's request: the saga voids or refunds and releases.
    /// False if the order changed meanwhile.
    pub async fn cancel_confirmed(
        &self,
        order: &StoredOrder,
        reason: &str,
    ) -> anyhow::Result<bool> {
        let moved = self.to_compensating(order, "cancel", reason).await?;
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
        let now = clock::now();
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

    // ----- the steps -----

    async fn reserve_stock(&self, order: &StoredOrder) -> Result<(), Failure> {
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

    async fn authorize_payment(&self, order: &StoredOrder) -> Result<(), Failure> {
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
            PaymentState::Declined => Err(Failure::Refused(format!(
                "your card was declined: {}",
                payment
                    .decline_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ))),
            PaymentState::Pending => Err(Failure::Unavailable(
                "the card is still being authorized".to_owned(),
            )),
            PaymentState::Voided | PaymentState::Refunded => {
                Err(Failure::Refused("the payment was cancelled".to_owned()))
            }
        }
    }

    async fn confirm(&self, order: &StoredOrder) -> Result<(), Failure> {
        if self
            .advance(order, State::Confirmed, "confirm", None)
            .await?
        {
            self.inner.metrics.checkout("confirmed");
        }
        Ok(())
    }

    async fn capture_payment(&self, order: &StoredOrder) -> Result<(), Failure> {
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

    async fn commit_stock(&self, order: &StoredOrder) -> Result<(), Failure> {
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

    async fn clear_cart(&self, order: &StoredOrder) -> Result<(), Failure> {
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

    /// Undoes what the checkout did, then ends it cancelled. Each part is idempotent or asks the
    /// other service where things stand first, so running it again after a crash redoes nothing.
    /// The order stays `compensating` until payments can say what became of the payment: an
    /// authorization whose answer was lost may still hold the customer's money.
    async fn compensate(&self, order: &StoredOrder) -> Result<(), Failure> {
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
                PaymentState::Pending => {
                    return Err(Failure::Unavailable(
                        "the card is still being authorized".to_owned(),
                    ));
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
                        clock::now(),
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
        let now = clock::now();
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
                user_id: order.order.user_id,
                email: order.email.clone(),
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
        let released = self.inner.inventory.release(id, &release).await;
        let detail = match released {
            Ok(_) => None,
            // Committed: the units left the shop with a completed order an admin cancels.
            Err(CallError::Refused { .. }) => Some("the stock had left the shop already"),
            Err(e) => return Err(undo_failed(e)),
        };
        self.record(id, "release_stock", "done", detail).await?;
        Ok(())
    }
}

enum Pass {
    /// The order moved on: take the next step at once.
    Moved,
    /// Nothing more to do here.
    Finished,
    /// Try again after a pause.
    Retry,
}

/// The step the saga takes from `state`.
fn step_name(state: State) -> &'static str {
    match state {
        State::Placed => "reserve_stock",
        State::Reserved => "authorize_payment",
        State::Authorized => "confirm",
        State::Confirmed => "capture_payment",
        State::Captured => "commit_stock",
        State::StockCommitted => "clear_cart",
        State::Compensating => "compensate",
        State::Completed | State::Cancelled => "none",
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

/// A failed undo is always tried again: compensation must finish.
fn undo_failed(e: CallError) -> Failure {
    match e {
        CallError::Refused { problem, .. } => Failure::Unavailable(problem.reason()),
        CallError::NotFound { .. } => Failure::Unavailable("not found".to_owned()),
        CallError::Unavailable(why) => Failure::Unavailable(why),
    }
}
