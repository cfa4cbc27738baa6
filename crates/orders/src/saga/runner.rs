//! Who runs a saga, and when: the jobs of orders placed here, the lease in the order's row that
//! a replica renews before each step, the recovery sweep that resumes orphans (sagas of a replica
//! that crashed, once their lease ran out, or that stopped and gave its leases up), the backoff
//! after a service did not answer, the payment deadline, the drain on stop, and [`Checkouts::wait`]
//! for a request that waits on its order.
//!
//! The drain: a stopping replica's sagas stop at their next pause, except those still holding
//! a card, which only this replica knows. They run on until the card is authorized (or refused),
//! within the service's shutdown deadline, so that a stop does not cancel an order one call
//! from being paid.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use nubo_contracts::orders::OrderLine;
use nubo_contracts::payments::Card;
use nubo_platform::chrono::TimeDelta;
use nubo_platform::tokio;
use nubo_platform::tokio::sync::{broadcast, mpsc};
use nubo_platform::tokio::task::JoinSet;
use nubo_platform::tokio_util::sync::CancellationToken;
use nubo_platform::uuid::Uuid;
use tracing::Instrument;

use super::{Checkouts, Failure, TIMED_OUT};
use crate::domain::State;
use crate::store::{self, StoredOrder};

/// How many sagas one replica runs at once; more wait for the recovery sweep.
const MAX_RUNNING: usize = 256;
/// How many orphans one sweep picks up.
const SWEEP_BATCH: i64 = 64;
/// First and longest pause between attempts at a step whose service did not answer.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// What a stopping replica keeps of its shutdown deadline for giving its leases up after the
/// drain.
const AFTER_DRAIN: Duration = Duration::from_secs(1);

/// A saga to run now, with the span of the request that placed it (its trace goes on).
pub struct Job {
    order_id: Uuid,
    span: tracing::Span,
}

enum Pass {
    /// The order moved on: take the next step at once.
    Moved,
    /// Nothing more to do here.
    Finished,
    /// Try again after a pause.
    Retry,
}

impl Checkouts {
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
    /// stop it drains (see the module's comment), drops what is left when the deadline comes,
    /// and gives its leases up.
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
        let holding = self.cards().len();
        let drain = self
            .inner
            .ctx
            .settings
            .shutdown_timeout
            .saturating_sub(AFTER_DRAIN);
        let drained = tokio::time::timeout(drain, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let dropped = self.cards().len();
            tracing::warn!(
                sagas = running.len(),
                cards = dropped,
                "the stop's deadline came before every saga reached a pause; their orders resume elsewhere"
            );
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
        if holding > 0 {
            tracing::info!(
                cards = holding,
                unauthorized = self.cards().len(),
                "drained the checkouts that held a card"
            );
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
        match store::orphans(&self.inner.ctx.db, self.now(), SWEEP_BATCH).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for unfinished sagas");
                Vec::new()
            }
        }
    }

    async fn sample(&self) {
        let stuck_before = self.now()
            - TimeDelta::from_std(self.inner.config.stuck_after).unwrap_or(TimeDelta::MAX);
        match store::open_counts(&self.inner.ctx.db, stuck_before).await {
            Ok(counts) => self.inner.metrics.sample(&counts),
            Err(e) => tracing::warn!(error = %e, "cannot count unfinished sagas"),
        }
    }

    /// Runs one order's saga until it is final, another replica holds it, or the service stops
    /// (and the saga holds no card: then it goes on until the card is used).
    async fn drive(&self, order_id: Uuid, token: CancellationToken) {
        let mut backoff = BACKOFF_FIRST;
        // Read on the first pass and kept: an order's lines never change once placed.
        let mut lines = None;
        loop {
            let stopping = token.is_cancelled();
            if stopping && !self.cards().contains_key(&order_id) {
                break;
            }
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
            // A stop wakes the pause, to see whether this saga may stop there.
            tokio::select! {
                _ = token.cancelled(), if !stopping => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        self.cards().remove(&order_id);
    }

    /// One step of the saga, under a fresh lease taken in the same statement that reads the order.
    async fn pass(&self, order_id: Uuid, lines: &mut Option<Vec<OrderLine>>) -> Pass {
        let db = &self.inner.ctx.db;
        let now = self.now();
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
        let late = self.now() - order.order.created_at > deadline;
        let before_confirmation = !order.state.is_confirmed() && order.state != State::Compensating;
        if late && before_confirmation {
            return match self.turn_back(order, step, TIMED_OUT).await {
                Ok(()) => Pass::Moved,
                Err(_) => Pass::Retry,
            };
        }
        Pass::Retry
    }
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
