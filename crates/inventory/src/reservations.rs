//! Reserving, committing and releasing stock for a checkout. Each operation is one transaction
//! and idempotent on the caller's reservation id; the conditional UPDATEs in [`crate::store`]
//! decide every race (two checkouts for the last unit, a commit against an expiry sweep, a
//! release that overtakes its reserve).

use nubo_contracts::inventory::{RETURNED, Reservation, ReservationState, StockReleased};
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::error::FieldError;
use nubo_platform::storage::Tx;
use nubo_platform::uuid::Uuid;
use nubo_platform::{Context, sqlx};

use crate::domain::{Reason, ValidReservation, field};
use crate::store;

/// Why a reservation call was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    #[error("no stock is kept for some SKUs")]
    UnknownSkus(Vec<FieldError>),
    #[error("not enough stock for some lines")]
    Short(Vec<FieldError>),
    #[error("reservation {0} was released")]
    Released(Uuid),
    #[error("reservation {0} exists already with different lines")]
    LinesDiffer(Uuid),
    #[error("reservation not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ReservationError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// Holds every line or none. Returns the reservation and whether this call created it (false:
/// it existed already with the same lines, and nothing more was held).
pub async fn reserve_stock(
    ctx: &Context,
    request: &ValidReservation,
) -> Result<(Reservation, bool), ReservationError> {
    let now = nubo_platform::clock::now();
    let mut tx = ctx.db.begin().await?;
    // The reservation row first: a second call with this id (even a concurrent one) finds it and
    // holds nothing more.
    if !store::insert_reservation(&mut tx, request.id, now + request.ttl, now).await? {
        let existing = load_existing(&mut tx, request.id).await?;
        tx.rollback().await?;
        return match existing {
            r if r.state == ReservationState::Released && r.lines.is_empty() => {
                Err(ReservationError::Released(request.id))
            }
            r if r.lines != request.stock_lines() => Err(ReservationError::LinesDiffer(request.id)),
            r => Ok((r, false)),
        };
    }
    let mut unknown = Vec::new();
    let mut short = Vec::new();
    for line in &request.lines {
        let (sku, quantity) = (line.sku.as_str(), line.quantity.get());
        if store::hold(&mut tx, sku, quantity).await? {
            store::insert_line(&mut tx, request.id, sku, quantity).await?;
            continue;
        }
        match store::available(&mut tx, sku).await? {
            None => unknown.push(field(
                &format!("lines[{}].sku", line.index),
                format!("no stock is kept for {sku}"),
            )),
            Some(available) => short.push(field(
                &format!("lines[{}].quantity", line.index),
                format!("{sku}: {available} available, {quantity} requested"),
            )),
        }
    }
    if !unknown.is_empty() || !short.is_empty() {
        tx.rollback().await?;
        return Err(if unknown.is_empty() {
            ReservationError::Short(short)
        } else {
            ReservationError::UnknownSkus(unknown)
        });
    }
    let reservation = load_existing(&mut tx, request.id).await?;
    ctx.commit(tx).await?;
    Ok((reservation, true))
}

/// Turns held stock into sold stock. Committing twice is fine; a released or expired
/// reservation cannot be committed.
pub async fn commit_stock(ctx: &Context, id: Uuid) -> Result<Reservation, ReservationError> {
    let now = nubo_platform::clock::now();
    let mut tx = ctx.db.begin().await?;
    if store::mark_committed(&mut tx, id, now).await? {
        let reservation = load_existing(&mut tx, id).await?;
        for line in &reservation.lines {
            if !store::ship(&mut tx, &line.sku, line.quantity).await? {
                return Err(anyhow::anyhow!(
                    "reservation {id} holds {} of {} but the stock row does not",
                    line.quantity,
                    line.sku
                )
                .into());
            }
        }
        ctx.commit(tx).await?;
        return Ok(reservation);
    }
    let Some(existing) = store::load(&mut tx, id).await? else {
        return Err(ReservationError::NotFound);
    };
    match existing.state {
        ReservationState::Committed => Ok(existing),
        ReservationState::Released => Err(ReservationError::Released(id)),
        ReservationState::Held => {
            // Held but past its time: the sweep has not got to it yet. Release it now so the
            // answer and the stock agree.
            release_held(ctx, &mut tx, id, &Reason::expired(), now).await?;
            ctx.commit(tx).await?;
            Err(ReservationError::Released(id))
        }
    }
}

/// Gives the stock back. Held stock is released; committed stock (the units of an order that
/// completed and is now cancelled) comes back on hand as a return, and the reservation's
/// `release_reason` says `returned: <reason>`. Releasing twice is fine; an unknown id is
/// recorded as released, so its reserve, should it land later, is refused.
pub async fn release_stock(
    ctx: &Context,
    id: Uuid,
    reason: &Reason,
) -> Result<Reservation, ReservationError> {
    // Twice at most: a tombstone can lose only to a reserve that committed meanwhile, and that
    // one the second round releases.
    for _ in 0..2 {
        let now = nubo_platform::clock::now();
        let mut tx = ctx.db.begin().await?;
        if release_held(ctx, &mut tx, id, reason, now).await? {
            let reservation = load_existing(&mut tx, id).await?;
            ctx.commit(tx).await?;
            return Ok(reservation);
        }
        match store::load(&mut tx, id).await? {
            Some(r) if r.state == ReservationState::Released => return Ok(r),
            Some(_) => {
                if return_committed(ctx, &mut tx, id, reason, now).await? {
                    let reservation = load_existing(&mut tx, id).await?;
                    ctx.commit(tx).await?;
                    return Ok(reservation);
                }
            }
            None => {
                if store::insert_tombstone(&mut tx, id, reason.as_str(), now).await? {
                    let reservation = load_existing(&mut tx, id).await?;
                    ctx.commit(tx).await?;
                    return Ok(reservation);
                }
            }
        }
    }
    Err(anyhow::anyhow!("reservation {id} changed under two release attempts").into())
}

/// Releases `id` in `tx` if it is held: stock back, `StockReleased` into the outbox. False if it
/// was not held (someone else settled it first).
pub async fn release_held(
    ctx: &Context,
    tx: &mut Tx,
    id: Uuid,
    reason: &Reason,
    now: DateTime<Utc>,
) -> Result<bool, ReservationError> {
    give_back(
        ctx,
        tx,
        id,
        ReservationState::Held,
        reason.as_str().to_owned(),
        now,
    )
    .await
}

/// Returns `id`'s committed units to stock in `tx`, `StockReleased` (with the `returned:`
/// reason) into the outbox. False if it was not committed.
async fn return_committed(
    ctx: &Context,
    tx: &mut Tx,
    id: Uuid,
    reason: &Reason,
    now: DateTime<Utc>,
) -> Result<bool, ReservationError> {
    let reason = format!("{RETURNED}{}", reason.as_str());
    give_back(ctx, tx, id, ReservationState::Committed, reason, now).await
}

/// Moves `id` from `from` to released in `tx` and puts its units back: held units are unheld,
/// committed ones come back on hand. `StockReleased` goes into the outbox. False if it was not
/// in `from`.
async fn give_back(
    ctx: &Context,
    tx: &mut Tx,
    id: Uuid,
    from: ReservationState,
    reason: String,
    now: DateTime<Utc>,
) -> Result<bool, ReservationError> {
    if !store::mark_released(tx, id, from, &reason, now).await? {
        return Ok(false);
    }
    let reservation = load_existing(tx, id).await?;
    for line in &reservation.lines {
        let (sku, quantity) = (&line.sku, line.quantity);
        let refused = match from {
            ReservationState::Committed => (!store::restock(tx, sku, quantity).await?).then(|| {
                format!("reservation {id} committed {quantity} of {sku}, which has no stock row")
            }),
            _ => (!store::unhold(tx, sku, quantity).await?).then(|| {
                format!("reservation {id} holds {quantity} of {sku} but the stock row does not")
            }),
        };
        if let Some(message) = refused {
            return Err(anyhow::anyhow!(message).into());
        }
    }
    let event = StockReleased {
        reservation_id: id,
        lines: reservation.lines,
        reason,
    };
    ctx.publish(tx, &event).await?;
    Ok(true)
}

async fn load_existing(tx: &mut Tx, id: Uuid) -> Result<Reservation, ReservationError> {
    store::load(tx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("reservation {id} vanished inside its transaction").into())
}

/// Releases every held reservation past its expiry, each in its own transaction; returns how
/// many this replica released. Replicas may sweep at once: the conditional UPDATE in
/// [`store::mark_released`] lets exactly one of them release each reservation.
pub async fn release_expired(ctx: &Context) -> Result<usize, ReservationError> {
    let mut released = 0;
    let now = nubo_platform::clock::now();
    for id in store::expired_held(&ctx.db, now, 100).await? {
        let mut tx = ctx.db.begin().await?;
        if release_held(ctx, &mut tx, id, &Reason::expired(), now).await? {
            ctx.commit(tx).await?;
            released += 1;
        }
    }
    Ok(released)
}

/// The background task: sweeps every `every` until cancelled, and keeps the gauge of held
/// reservations (`nubo_reservations_held`) current.
pub async fn expire_reservations(
    ctx: Context,
    every: std::time::Duration,
    token: nubo_platform::tokio_util::sync::CancellationToken,
) {
    let held = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    ctx.metrics.register(
        "reservations_held",
        "Reservations holding stock now (neither committed nor released)",
        held.clone(),
    );
    loop {
        if let Ok(n) = store::held_count(&ctx.db).await {
            held.set(n);
        }
        match release_expired(&ctx).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "released expired reservations"),
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "cannot release expired reservations"
            ),
        }
        nubo_platform::tokio::select! {
            _ = token.cancelled() => return,
            _ = nubo_platform::tokio::time::sleep(every) => {}
        }
    }
}
