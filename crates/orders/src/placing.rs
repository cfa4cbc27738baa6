//! Placing an order: what turns a customer's checkout into an order before its saga starts. The
//! Idempotency-Key and the card are checked, the cart is read from cart and priced, and the
//! order, its first step (`place`) and `OrderPlaced` are written in one transaction; then the
//! saga starts with the card, which only this replica's memory holds. A key the customer used
//! before (also by a twin request racing this one) places nothing: the answer is the order
//! placed under it, and only with the same card.

use nubo_contracts::card::{BadCard, ValidCard};
use nubo_contracts::cart::CartClient;
use nubo_contracts::orders::{Contact, OrderPlaced, Shipping};
use nubo_contracts::payments::Card;
use nubo_platform::axum::http::StatusCode;
use nubo_platform::chrono::TimeDelta;
use nubo_platform::error::FieldError;
use nubo_platform::sqlx;
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Problem};

use crate::delivery;
use crate::domain::{self, IdempotencyKey, MAX_TOTAL_MINOR, State, Unbuyable};
use crate::saga::Checkouts;
use crate::store::{self, NewOrder};

/// A customer's checkout, as they sent it.
pub struct PlaceOrder<'a> {
    pub user_id: Uuid,
    /// Where the order's messages go: the address in the customer's access token.
    pub email: Option<String>,
    /// The `Idempotency-Key` header, if there was one.
    pub idempotency_key: Option<&'a str>,
    pub card: Card,
    pub contact: Option<Contact>,
    pub shipping: Option<Shipping>,
}

/// How many numbers a checkout draws before it gives up: two orders drawing the same one is
/// rare (40 random bits), three times in a row is a broken random source.
const NUMBER_DRAWS: usize = 3;

/// The order a checkout answers with.
#[derive(Clone, Copy, Debug)]
pub struct Placed {
    pub order_id: Uuid,
    /// Placed earlier under the same key: this checkout placed nothing.
    pub replayed: bool,
}

/// Why a checkout placed no order.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{0}")]
    BadKey(String),
    #[error("the card is not valid")]
    BadCard(BadCard),
    #[error("the access token carries no email address")]
    NoEmail,
    #[error("the contact or shipping details are not valid")]
    BadDetails(Vec<FieldError>),
    #[error("the Idempotency-Key was used for a checkout with another card")]
    KeyReused,
    #[error("the cart cannot be read")]
    CartUnavailable,
    #[error("the cart cannot be bought")]
    Unbuyable(Unbuyable),
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Places the customer's cart as an order and starts its saga, or finds the order placed under
/// the same key before.
pub async fn place(checkouts: &Checkouts, request: PlaceOrder<'_>) -> Result<Placed, PlaceError> {
    let key = IdempotencyKey::parse(request.idempotency_key).map_err(PlaceError::BadKey)?;
    let clock = &checkouts.ctx().clock;
    let card = match ValidCard::parse(&request.card, clock.now().date_naive()) {
        Ok(card) => card,
        Err(mut bad) => {
            // Every mistake at once: the contact and address are checked too (priced at
            // nothing: only their form matters here). A card that is well formed but cannot
            // pay (402) is only that when the rest of the form is right.
            let nothing = nubo_contracts::Money {
                amount_minor: 0,
                currency: "EUR".to_owned(),
            };
            let (contact, shipping) = (request.contact.clone(), request.shipping.clone());
            if let Err(more) = delivery::check(contact, shipping, "", &nothing) {
                bad.errors.extend(more);
                return Err(PlaceError::BadDetails(bad.errors));
            }
            return Err(PlaceError::BadCard(bad));
        }
    };
    let email = request.email.ok_or(PlaceError::NoEmail)?;
    let fingerprint = domain::fingerprint(&card);
    let user_id = request.user_id;
    let ctx = checkouts.ctx();

    if let Some(known) = store::find_by_key(&ctx.db, user_id, key.as_str()).await? {
        return replay(checkouts, known, &fingerprint, request.card).await;
    }

    let cart = CartClient::of(ctx).cart(user_id).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read the cart for a checkout");
        PlaceError::CartUnavailable
    })?;
    let (lines, items_total) = domain::price(&cart).map_err(|e| {
        checkouts.metrics().checkout("rejected");
        PlaceError::Unbuyable(e)
    })?;
    let (contact, shipping) =
        delivery::check(request.contact, request.shipping, &email, &items_total)
            .map_err(PlaceError::BadDetails)?;
    let mut total = items_total.clone();
    total.amount_minor += shipping.price.amount_minor;
    if total.amount_minor > MAX_TOTAL_MINOR {
        return Err(PlaceError::Unbuyable(Unbuyable::TooExpensive(total)));
    }

    let id = Uuid::now_v7();
    let now = clock.now();
    let lease = TimeDelta::from_std(checkouts.config().lease).map_err(anyhow::Error::from)?;
    let mut draws = 0;
    let (mut tx, number) = loop {
        let drawn = domain::order_number();
        let new = NewOrder {
            id,
            user_id,
            idempotency_key: key.as_str(),
            fingerprint: &fingerprint,
            number: &drawn,
            contact: &contact,
            shipping: &shipping,
            lines: &lines,
            total: &total,
            lease_owner: checkouts.owner(),
            lease_until: now + lease,
        };
        let mut tx = ctx.db.begin().await?;
        if store::insert(&mut tx, &new, now).await? {
            break (tx, drawn);
        }
        tx.rollback().await?;
        if let Some(known) = store::find_by_key(&ctx.db, user_id, key.as_str()).await? {
            // A twin request with the same key placed it a moment ago.
            return replay(checkouts, known, &fingerprint, request.card).await;
        }
        // Another order has this number: draw again.
        draws += 1;
        if draws == NUMBER_DRAWS {
            return Err(anyhow::anyhow!("no free order number in {NUMBER_DRAWS} draws").into());
        }
    };
    let detail = format!("{} line(s), {}", lines.len(), domain::show(&total));
    store::record_step(&mut tx, id, "place", "done", Some(&detail), now).await?;
    let placed = OrderPlaced {
        order_id: id,
        number,
        user_id,
        email: contact.email,
        phone: contact.phone,
        lines,
        total,
    };
    ctx.publish(&mut tx, &placed).await?;
    ctx.commit(tx).await?;
    tracing::info!(order_id = %id, "order placed; checkout saga starting");

    checkouts.start(id, request.card);
    Ok(Placed {
        order_id: id,
        replayed: false,
    })
}

/// A checkout under a key used before: the order placed under it, if the card is the one it
/// was placed with.
async fn replay(
    checkouts: &Checkouts,
    (id, fingerprint): (Uuid, String),
    presented: &str,
    card: Card,
) -> Result<Placed, PlaceError> {
    if fingerprint != presented {
        return Err(PlaceError::KeyReused);
    }
    let order = store::get(&checkouts.ctx().db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order {id} vanished"))?;
    // Its card may have been lost with the replica that placed it: the retry brings it again.
    if matches!(order.state, State::Placed | State::Reserved) {
        checkouts.start(id, card);
    }
    Ok(Placed {
        order_id: id,
        replayed: true,
    })
}

impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> Self {
        match e {
            PlaceError::BadKey(message) => bad_key(&message),
            PlaceError::BadCard(BadCard {
                errors,
                refused: false,
            }) => ApiError::Invalid(errors),
            PlaceError::BadCard(BadCard {
                errors,
                refused: true,
            }) => {
                let mut problem = Problem::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "this card cannot pay: check its number and expiry date, or use another card",
                )
                .with_kind("card-refused");
                problem.errors = errors;
                problem.into()
            }
            PlaceError::BadDetails(errors) => ApiError::Invalid(errors),
            PlaceError::NoEmail => ApiError::Unauthorized(
                "this access token carries no email address; sign in again".into(),
            ),
            PlaceError::KeyReused => Problem::new(
                StatusCode::CONFLICT,
                "this Idempotency-Key was used for a checkout with another card; use a new key for a new checkout",
            )
            .with_kind("idempotency-key-reused")
            .into(),
            PlaceError::CartUnavailable => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "your cart cannot be read right now; nothing was ordered, try again with the same Idempotency-Key",
            )
            .retry_after(1)
            .into(),
            PlaceError::Unbuyable(e) => unbuyable(e),
            PlaceError::Storage(e) => e.into(),
            PlaceError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

pub fn bad_key(message: &str) -> ApiError {
    Problem::new(StatusCode::BAD_REQUEST, message)
        .with_kind("idempotency-key")
        .into()
}

fn unbuyable(e: Unbuyable) -> ApiError {
    match e {
        Unbuyable::Empty => Problem::new(
            StatusCode::CONFLICT,
            "your cart is empty: add something to it before checking out",
        )
        .with_kind("empty-cart")
        .into(),
        Unbuyable::Unavailable(errors) => {
            let mut problem = Problem::new(
                StatusCode::CONFLICT,
                "some products in your cart are no longer sold; remove them and check out again",
            )
            .with_kind("unavailable-products");
            problem.errors = errors;
            problem.into()
        }
        Unbuyable::TooExpensive(total) => Problem::new(
            StatusCode::CONFLICT,
            format!(
                "your cart's total ({}) is more than one card payment may be (EUR 100000.00); split it into several orders",
                domain::show(&total)
            ),
        )
        .with_kind("total-too-large")
        .into(),
        Unbuyable::MixedCurrencies => Problem::new(
            StatusCode::CONFLICT,
            "your cart holds prices in more than one currency; one order is paid in one",
        )
        .with_kind("mixed-currencies")
        .into(),
    }
}
