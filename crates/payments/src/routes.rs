//! Payments' HTTP API: thin handlers that extract, authorize, call the domain and map errors.
//!
//! `/internal/v1/payments/...` is for orders and is never routed by the gateway, which only
//! proxies `/api/v1/...`; `/api/v1/admin/payments/{id}` lets an admin look a payment up.

use nubo_contracts::payments::{AuthorizePayment, PAYMENTS_PATH, Payment, payment_path};
use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::{FromRef, State};
use nubo_platform::axum::http::{StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::{get, post};
use nubo_platform::axum::{self, Router};
use nubo_platform::error::{Json, Path};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context, OrNotFound, Problem};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::ValidAuthorization;
use crate::payments::{self, PaymentError, Step};
use crate::provider::{Provider, ProviderError};
use crate::store;

/// What every handler works with: the platform's context and the card provider.
#[derive(Clone)]
pub struct Payments {
    pub ctx: Context,
    pub provider: Provider,
}

impl FromRef<Payments> for Context {
    fn from_ref(state: &Payments) -> Self {
        state.ctx.clone()
    }
}

pub fn router(ctx: Context, provider: Provider) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public
        .route(PAYMENTS_PATH, post(authorize))
        .route("/internal/v1/payments/{id}", get(get_payment))
        .route("/internal/v1/payments/{id}/capture", post(capture))
        .route("/internal/v1/payments/{id}/void", post(void))
        .route("/internal/v1/payments/{id}/refund", post(refund))
        .with_state(Payments { ctx, provider })
}

/// Payments' part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "payments", description = "Card payments, for admins to look up")),
    modifiers(&Shared)
)]
struct ApiDoc;

/// The routes under `/api/v1`, each registered with its documented operation so neither can go
/// without the other.
fn public_routes() -> OpenApiRouter<Payments> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(admin_get_payment))
}

async fn authorize(
    State(state): State<Payments>,
    Json(input): Json<AuthorizePayment>,
) -> Result<Response, ApiError> {
    let today = nubo_platform::clock::now().date_naive();
    let request = ValidAuthorization::parse(&input, today).map_err(ApiError::Invalid)?;
    // The request (and with it the card) goes no further than here.
    drop(input);
    // On a task of its own: a caller that hangs up (a timeout, a crash) drops this handler, and
    // the authorization must still settle, or its pending row would outlive the provider's
    // answer and every retry would wait on it.
    let Payments { ctx, provider } = state;
    let (payment, created) = nubo_platform::tokio::spawn(
        async move { payments::authorize_payment(&ctx, &provider, &request).await }
            .instrument(tracing::Span::current()),
    )
    .await
    .map_err(ApiError::internal)?
    .map_err(payment_error)?;
    if !created {
        return Ok(Json(payment).into_response());
    }
    let location = payment_path(payment.payment_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(payment),
    )
        .into_response())
}

async fn get_payment(
    State(state): State<Payments>,
    Path(id): Path<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    Ok(Json(
        store::get(&state.ctx.db, id)
            .await
            .or_not_found("payment")?,
    ))
}

/// One payment, as payments keeps it: never the card number (admins).
#[utoipa::path(
    get,
    path = "/api/v1/admin/payments/{id}",
    tag = "payments",
    params(("id" = Uuid, Path, description = "The payment's id (the order's id)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment", body = Payment),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Internal,
    )
)]
async fn admin_get_payment(
    _: Admin,
    state: State<Payments>,
    id: Path<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    get_payment(state, id).await
}

async fn step(state: &Payments, id: Uuid, step: Step) -> Result<Json<Payment>, ApiError> {
    // On a task of its own, like an authorization: the provider has been asked once a call is
    // under way, and the row must follow its answer even if our caller hangs up.
    let Payments { ctx, provider } = state.clone();
    let payment = nubo_platform::tokio::spawn(
        async move { payments::take_step(&ctx, &provider, id, step).await }
            .instrument(tracing::Span::current()),
    )
    .await
    .map_err(ApiError::internal)?
    .map_err(payment_error)?;
    Ok(Json(payment))
}

async fn capture(
    State(state): State<Payments>,
    Path(id): Path<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    step(&state, id, Step::Capture).await
}

async fn void(
    State(state): State<Payments>,
    Path(id): Path<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    step(&state, id, Step::Void).await
}

async fn refund(
    State(state): State<Payments>,
    Path(id): Path<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    step(&state, id, Step::Refund).await
}

fn payment_error(e: PaymentError) -> ApiError {
    match e {
        PaymentError::NotFound => ApiError::NotFound("payment not found".into()),
        PaymentError::AmountDiffers(id) => ApiError::Conflict(format!(
            "payment {id} exists already with a different amount"
        )),
        PaymentError::WrongState(message) => ApiError::Conflict(message),
        PaymentError::InProgress(id) => {
            ApiError::Unavailable(format!("payment {id} is being authorized; try again"))
        }
        PaymentError::Provider(e) => {
            let kind = match e {
                ProviderError::Unavailable => "provider-unavailable",
                ProviderError::TimedOut => "provider-timeout",
            };
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .with_kind(kind)
                .retry_after(1)
                .into()
        }
        PaymentError::Internal(e) => ApiError::Internal(e),
    }
}
