//! Inventory's HTTP API: thin handlers that extract, authorize, call the domain and map errors.
//!
//! `/api/v1/...` is public (reads) or for admins; `/internal/v1/...` is for orders and is never
//! routed by the gateway, which only proxies `/api/v1/...`.

use nubo_contracts::inventory::{
    RESERVATIONS_PATH, ReleaseStock, Reservation, ReserveStock, reservation_path,
};
use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::{StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::{get, post};
use nubo_platform::axum::{self, Router};
use nubo_platform::error::{Json, Path};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context, OrNotFound, Problem};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{OnHand, Reason, Sku, ValidReservation};
use crate::reservations::{self, ReservationError};
use crate::store::{self, StockLevel};

pub fn router(ctx: Context) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public
        .route(RESERVATIONS_PATH, post(reserve))
        .route("/internal/v1/reservations/{id}", get(get_reservation))
        .route("/internal/v1/reservations/{id}/commit", post(commit))
        .route("/internal/v1/reservations/{id}/release", post(release))
        .with_state(ctx)
}

/// Inventory's part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "inventory", description = "Stock per SKU")),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The routes under `/api/v1`, each registered with its documented operation so neither can go
/// without the other.
fn public_routes() -> OpenApiRouter<Context> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(availability))
        .routes(routes!(set_stock))
}

/// What a shopper may know about a SKU.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Availability {
    pub sku: String,
    /// Units that can still be bought.
    pub available: i64,
}

/// What an admin counted in the warehouse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    /// Units on hand, 0 to 1000000, not fewer than are reserved (409 otherwise).
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(deserialize_with = "nubo_platform::error::whole")]
    pub on_hand: i64,
}

fn sku(raw: &str) -> Result<Sku, ApiError> {
    Sku::parse(raw).map_err(|m| ApiError::invalid("sku", m))
}

/// How many units of a SKU can be bought.
#[utoipa::path(
    get,
    path = "/api/v1/inventory/{sku}",
    tag = "inventory",
    params(("sku" = String, Path, pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$", description = "The SKU, e.g. `TEA-001`")),
    responses(
        (status = 200, description = "The SKU's availability", body = Availability),
        problems::NotFound,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn availability(
    State(ctx): State<Context>,
    Path(raw): Path<String>,
) -> Result<Json<Availability>, ApiError> {
    let sku = sku(&raw)?;
    let level = store::stock(&ctx.db, sku.as_str())
        .await
        .or_not_found("SKU")?;
    Ok(Json(Availability {
        sku: level.sku,
        available: level.available,
    }))
}

/// Set what is on hand of a SKU (admins).
#[utoipa::path(
    put,
    path = "/api/v1/admin/inventory/{sku}",
    tag = "inventory",
    params(("sku" = String, Path, pattern = "^[A-Z0-9][A-Z0-9-]{2,31}$", description = "The SKU, e.g. `TEA-001`")),
    request_body = SetStock,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The SKU's stock as it is now", body = StockLevel),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Conflict,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn set_stock(
    _: Admin,
    State(ctx): State<Context>,
    Path(raw): Path<String>,
    Json(input): Json<SetStock>,
) -> Result<Json<StockLevel>, ApiError> {
    let sku = sku(&raw)?;
    let on_hand = OnHand::parse(input.on_hand).map_err(|m| ApiError::invalid("on_hand", m))?;
    let mut tx = ctx.db.begin().await?;
    let Some(level) = store::set_on_hand(&mut tx, sku.as_str(), on_hand.get()).await? else {
        tx.rollback().await?;
        return Err(ApiError::Conflict(format!(
            "more than {} units of {} are reserved for checkouts in progress",
            on_hand.get(),
            sku.as_str()
        )));
    };
    ctx.commit(tx).await?;
    Ok(Json(level))
}

async fn reserve(
    State(ctx): State<Context>,
    Json(input): Json<ReserveStock>,
) -> Result<Response, ApiError> {
    let request = ValidReservation::try_from(input).map_err(ApiError::Invalid)?;
    let (reservation, created) = reservations::reserve_stock(&ctx, &request)
        .await
        .map_err(reservation_error)?;
    if !created {
        return Ok(Json(reservation).into_response());
    }
    let location = reservation_path(reservation.reservation_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(reservation),
    )
        .into_response())
}

async fn get_reservation(
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(
        store::get(&ctx.db, id).await.or_not_found("reservation")?,
    ))
}

async fn commit(
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
) -> Result<Json<Reservation>, ApiError> {
    let reservation = reservations::commit_stock(&ctx, id)
        .await
        .map_err(reservation_error)?;
    Ok(Json(reservation))
}

async fn release(
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
    Json(input): Json<ReleaseStock>,
) -> Result<Json<Reservation>, ApiError> {
    let reason = Reason::try_from(input).map_err(ApiError::Invalid)?;
    let reservation = reservations::release_stock(&ctx, id, &reason)
        .await
        .map_err(reservation_error)?;
    Ok(Json(reservation))
}

fn reservation_error(e: ReservationError) -> ApiError {
    match e {
        ReservationError::UnknownSkus(errors) => ApiError::Invalid(errors),
        ReservationError::Short(errors) => {
            let mut problem = Problem::new(
                StatusCode::CONFLICT,
                "not enough stock for every line; nothing was reserved",
            )
            .with_kind("insufficient-stock");
            problem.errors = errors;
            problem.into()
        }
        ReservationError::Released(id) => {
            ApiError::Conflict(format!("reservation {id} was released"))
        }
        ReservationError::LinesDiffer(id) => ApiError::Conflict(format!(
            "reservation {id} exists already with different lines"
        )),
        ReservationError::NotFound => ApiError::NotFound("reservation not found".into()),
        ReservationError::Internal(e) => ApiError::Internal(e),
    }
}
