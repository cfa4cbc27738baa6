//! Payments' HTTP API: thin handlers that extract, authorize, call the domain and map errors.
//!
//! `/internal/v1/payments/...` is for orders and is never routed by the gateway, which only
//! proxies `/api/v1/...`; `/api/v1/admin/payments/{id}` lets an admin look a payment up.

use nubo_contracts::payments::{AuthorizePayment, PAYMENTS_PATH, Payment, payment_path};
use nubo_platform::auth::Admin;
use nubo_platform::axum::Router;
use nubo_platform::axum::extract::{FromRef, State};
use nubo_platform::axum::http::{StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::{get, post};
use nubo_platform::error::{Json, Path};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context, OrNotFound, Problem};

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
    Router::new()
        .route(PAYMENTS_PATH, post(authorize))
        .route("/internal/v1/payments/{id}", get(get_payment))
        .route("/internal/v1/payments/{id}/capture", post(capture))
        .route("/internal/v1/payments/{id}/void", post(void))
        .route("/internal/v1/payments/{id}/refund", post(refund))
        .route("/api/v1/admin/payments/{id}", get(admin_get_payment))
        .with_state(Payments { ctx, provider })
}

async fn authorize(
    State(state): State<Payments>,
    Json(input): Json<AuthorizePayment>,
) -> Result<Response, ApiError> {
    let today = nubo_platform::clock::now().date_naive();
    let request = ValidAuthorization::parse(&input, today).map_err(ApiError::Invalid)?;
    // The request (and with it the card) goes no further than here.
    drop(input);
    let (payment, created) = payments::authorize_payment(&state.ctx, &state.provider, &request)
        .await
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

async fn admin_get_payment(
    _: Admin,
    state: State<Payments>,
    id: Path<Uuid>,
) -> Result<Json<Payment>, ApiError> {
    get_payment(state, id).await
}

async fn step(state: &Payments, id: Uuid, step: Step) -> Result<Json<Payment>, ApiError> {
    let payment = payments::take_step(&state.ctx, &state.provider, id, step)
        .await
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
