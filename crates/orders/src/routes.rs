//! Orders' HTTP API: the checkout, a customer's own orders, and every order for admins. Thin
//! handlers that extract, authorize, call the domain ([`crate::placing`], the saga) or the store
//! and map errors.
//!
//! A checkout answers once the saga has finished, the order confirmed or cancelled (201), or,
//! when it takes longer than `NUBO_ORDERS_CHECKOUT_WAIT_MS`, with the pending order (202) whose
//! `Location` the client polls; the saga goes on either way. The same `Idempotency-Key` again
//! answers with the same order (200, or 202 while pending), never a second one.

use nubo_contracts::orders::{
    CancelOrder, Checkout, Order, OrderPage, OrderStatus, ShippingOptions, order_path,
};
use nubo_platform::auth::{Admin, Caller};
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::{HeaderMap, StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::{self, Router};
use nubo_platform::chrono::{DateTime, Utc};
use nubo_platform::error::PROBLEM_JSON;
use nubo_platform::error::{Json, Path, Query};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Problem};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::State as SagaState;
use crate::placing::{self, PlaceOrder, bad_key};
use crate::saga::Checkouts;
use crate::store::{self, Listing, StoredOrder};

pub fn router(checkouts: Checkouts) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public.with_state(checkouts)
}

/// Orders' part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "orders", description = "The checkout and customers' orders")),
    modifiers(&Shared)
)]
struct ApiDoc;

fn public_routes() -> OpenApiRouter<Checkouts> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(checkout))
        .routes(routes!(shipping_options))
        .routes(routes!(my_orders))
        .routes(routes!(one_order))
        .routes(routes!(all_orders))
        .routes(routes!(cancel_order))
}

impl nubo_platform::axum::extract::FromRef<Checkouts> for nubo_platform::Context {
    fn from_ref(checkouts: &Checkouts) -> Self {
        checkouts.ctx().clone()
    }
}

/// Check out the signed-in customer's cart, paying by card.
#[utoipa::path(
    post,
    path = "/api/v1/checkout",
    tag = "orders",
    params(("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,200}$",
        description = "A new random value (a UUID) per checkout; the same one again when retrying it. 1 to 200 visible ASCII characters.")),
    request_body = Checkout,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The order, confirmed or cancelled (`cancel_reason` says why)", body = Order,
            headers(("location" = String, description = "The order's URL"))),
        (status = 200, description = "The order placed earlier under this Idempotency-Key", body = Order),
        (status = 202, description = "The order, still pending: poll its Location", body = Order,
            headers(("location" = String, description = "The order's URL"))),
        problems::BadRequest,
        problems::Unauthorized,
        (status = 402, description = "The card is well formed but cannot pay (wrong check digit, expired, or expiring more than 20 years ahead); `errors` says which field. Nothing was ordered.",
            body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "The cart cannot be bought as it is (empty, products no longer sold, a total over one card payment, mixed currencies), or this Idempotency-Key was used with another card. Nothing was ordered.",
            body = Problem, content_type = PROBLEM_JSON),
        problems::Invalid,
        problems::Internal,
        problems::Unavailable,
    )
)]
async fn checkout(
    caller: Caller,
    State(checkouts): State<Checkouts>,
    headers: HeaderMap,
    Json(input): Json<Checkout>,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| {
            bad_key("the Idempotency-Key header may only hold visible ASCII characters")
        })?;
    let checkout = PlaceOrder {
        user_id: caller.user_id,
        email: caller.email,
        idempotency_key: key,
        card: input.card,
        contact: input.contact,
        shipping: input.shipping,
    };
    let placed = placing::place(&checkouts, checkout).await?;
    let done = if placed.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    answer(&checkouts, placed.order_id, done).await
}

/// How the shop delivers, what it costs, and where to.
#[utoipa::path(
    get,
    path = "/api/v1/checkout/shipping-options",
    tag = "orders",
    responses(
        (status = 200, description = "The shipping options (prices in euros) and the countries the shop delivers to", body = ShippingOptions),
        problems::Internal,
    )
)]
async fn shipping_options() -> Json<ShippingOptions> {
    Json(crate::delivery::options("EUR"))
}

/// The order once its saga has finished (`done`: 201 for a new order, 200 for a replay), or as
/// it is when the wait runs out (202); its `Location` either way.
async fn answer(checkouts: &Checkouts, id: Uuid, done: StatusCode) -> Result<Response, ApiError> {
    let order = checkouts
        .wait(id, checkouts.config().checkout_wait, answered)
        .await?;
    let status = if answered(order.state) {
        done
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        [(header::LOCATION, order_path(id))],
        Json(order.order),
    )
        .into_response())
}

/// Whether the customer has their answer: the order is completed (confirmed, paid, its stock
/// gone and its lines out of the cart, so the shopper's next view of the cart no longer shows
/// them) or cancelled.
fn answered(state: SagaState) -> bool {
    state.is_final()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders with this status.
    pub status: Option<OrderStatus>,
    /// Only orders placed before this time: the previous page's `next_before`.
    pub before: Option<DateTime<Utc>>,
    /// 1 to 100.
    #[param(default = 20, minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminListQuery {
    /// Only this customer's orders.
    pub user_id: Option<Uuid>,
    /// Only orders with this status.
    pub status: Option<OrderStatus>,
    /// Only orders placed before this time: the previous page's `next_before`.
    pub before: Option<DateTime<Utc>>,
    /// 1 to 100.
    #[param(default = 20, minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

async fn page(
    checkouts: &Checkouts,
    user_id: Option<Uuid>,
    status: Option<OrderStatus>,
    before: Option<DateTime<Utc>>,
    limit: Option<i64>,
) -> Result<Json<OrderPage>, ApiError> {
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let listing = Listing {
        user_id,
        states: status.map(SagaState::with_status).unwrap_or_default(),
        before,
        limit: limit + 1,
    };
    let mut orders = store::list(&checkouts.ctx().db, &listing).await?;
    let more = orders.len() as i64 > limit;
    orders.truncate(limit as usize);
    let next_before = more
        .then(|| orders.last().map(|o| o.order.created_at))
        .flatten();
    Ok(Json(OrderPage {
        items: orders.into_iter().map(|o| o.order).collect(),
        next_before,
    }))
}

/// The signed-in customer's orders, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn my_orders(
    caller: Caller,
    State(checkouts): State<Checkouts>,
    Query(query): Query<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    page(
        &checkouts,
        Some(caller.user_id),
        query.status,
        query.before,
        query.limit,
    )
    .await
}

/// One order: the signed-in customer's own, or any for admins.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|NB-[0-9A-HJKMNP-TV-Z]{8})$",
        description = "The order's id, or its number (`NB-7K3M9QX2`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The order with every step its checkout took", body = Order),
        problems::BadRequest,
        problems::Unauthorized,
        problems::NotFound,
        problems::Internal,
    )
)]
async fn one_order(
    caller: Caller,
    State(checkouts): State<Checkouts>,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    let db = &checkouts.ctx().db;
    let id = if crate::domain::is_order_number(&id) {
        store::id_by_number(db, &id).await?
    } else {
        Some(Uuid::parse_str(&id).map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "name an order by its id (a UUID) or its number (NB- and 8 characters)",
            )
        })?)
    };
    let order = match id {
        Some(id) => store::get(db, id).await?,
        None => None,
    };
    let order = order
        // Another customer's order is as absent as one that does not exist.
        .filter(|o| caller.may_act_for(o.order.user_id))
        .ok_or_else(|| ApiError::NotFound("order not found".into()))?;
    Ok(Json(order.order))
}

/// Every customer's orders, newest first (admins).
#[utoipa::path(
    get,
    path = "/api/v1/admin/orders",
    tag = "orders",
    params(AdminListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn all_orders(
    _: Admin,
    State(checkouts): State<Checkouts>,
    Query(query): Query<AdminListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    page(
        &checkouts,
        query.user_id,
        query.status,
        query.before,
        query.limit,
    )
    .await
}

/// Cancel an order (admins): its payment is voided or refunded and its stock released.
#[utoipa::path(
    post,
    path = "/api/v1/admin/orders/{id}/cancel",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order id")),
    request_body = CancelOrder,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The order, being cancelled (or already cancelled)", body = Order),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Conflict,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn cancel_order(
    _: Admin,
    State(checkouts): State<Checkouts>,
    Path(id): Path<Uuid>,
    Json(input): Json<CancelOrder>,
) -> Result<Response, ApiError> {
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::invalid("reason", "must have 1 to 200 characters"));
    }
    let db = &checkouts.ctx().db;
    let order: StoredOrder = store::get(db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("order not found".into()))?;
    if !checkouts.cancel_by_shop(&order, reason).await? {
        return Err(ApiError::Conflict(
            "the order changed meanwhile; look at it again and retry".into(),
        ));
    }
    let order = checkouts
        .wait(id, checkouts.config().checkout_wait, |s| {
            s == SagaState::Cancelled
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(order.order)).into_response())
}
