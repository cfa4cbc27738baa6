//! Notifications' HTTP API, for admins only: every message (email or text) the shop wrote,
//! newest first, one message by id, and what the simulated SMS gateway received. Thin handlers
//! that extract, authorize, call the store and map errors.

use std::str::FromStr;

use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::{self, Router};
use nubo_platform::error::{FieldError, Json, Path, Query};
use nubo_platform::openapi::{Shared, problems};
use nubo_platform::uuid::Uuid;
use nubo_platform::{ApiError, Context, OrNotFound};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{Channel, Kind, Notification, Phone, Status};
use crate::sms::simulated::{self, ReceivedSms};
use crate::store::{self, Filter};

/// Every message, for admins: `GET`, filtered by `?order_id=`, `?channel=`, `?status=`,
/// `?kind=`, paged with `?limit=` and `?before=`.
pub const ADMIN_NOTIFICATIONS_PATH: &str = "/api/v1/admin/notifications";

/// What the simulated SMS gateway received, for admins: `GET`, filtered by `?to=`.
pub const ADMIN_SMS_GATEWAY_PATH: &str = "/api/v1/admin/notifications/sms-gateway";

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

pub fn router(ctx: Context) -> Router {
    let (public, _) = public_routes().split_for_parts();
    public.with_state(ctx)
}

/// Notifications' part of the public API document (the gateway serves all of them merged).
pub fn openapi() -> utoipa::openapi::OpenApi {
    public_routes().into_openapi()
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "notifications", description = "Every email and text message the shop wrote to customers (admins)")),
    modifiers(&Shared)
)]
struct ApiDoc;

fn public_routes() -> OpenApiRouter<Context> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_notifications))
        .routes(routes!(sms_gateway_received))
        .routes(routes!(get_notification))
}

/// The query of the listing. Words are checked after parsing so a wrong one is a 422 naming the
/// field and the words it may be; a value of the wrong type (an order id that is not a UUID) or
/// an unknown parameter is a 400.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only messages about this order.
    pub order_id: Option<Uuid>,
    /// `email` or `sms`.
    #[param(value_type = Option<Channel>)]
    pub channel: Option<String>,
    /// `recorded`, `pending`, `sent` or `failed`.
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    /// `order_confirmed`, `order_cancelled` or `payment_refunded`.
    #[param(value_type = Option<Kind>)]
    pub kind: Option<String>,
    /// 1 to 100.
    #[param(default = 50, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    pub before: Option<Uuid>,
}

/// A page of messages, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `?before=` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

impl ListQuery {
    fn parse(self) -> Result<(Filter, u32), ApiError> {
        let mut errors = Vec::new();
        let channel = word::<Channel>("channel", self.channel, &mut errors);
        let status = word::<Status>("status", self.status, &mut errors);
        let kind = word::<Kind>("kind", self.kind, &mut errors);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError {
                field: "limit".to_owned(),
                message: format!("must be between 1 and {MAX_LIMIT}"),
            });
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        let filter = Filter {
            order_id: self.order_id,
            channel,
            status,
            kind,
            before: self.before,
        };
        Ok((filter, limit))
    }
}

/// A word of the query (`channel`, `status`, `kind`), if given; a word it may not be is noted in `errors`.
fn word<T: FromStr<Err = String>>(
    field: &str,
    value: Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match value?.parse() {
        Ok(word) => Some(word),
        Err(message) => {
            errors.push(FieldError {
                field: field.to_owned(),
                message,
            });
            None
        }
    }
}

/// Every email and text message the shop wrote, newest first (admins).
#[utoipa::path(
    get,
    path = "/api/v1/admin/notifications",
    tag = "notifications",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of messages", body = NotificationPage),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn list_notifications(
    _: Admin,
    State(ctx): State<Context>,
    Query(query): Query<ListQuery>,
) -> Result<Json<NotificationPage>, ApiError> {
    let (filter, limit) = query.parse()?;
    let items = store::list(&ctx.db, &filter, limit).await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|n| n.id))
        .flatten();
    Ok(Json(NotificationPage { items, next_before }))
}

/// One message (admins).
#[utoipa::path(
    get,
    path = "/api/v1/admin/notifications/{id}",
    tag = "notifications",
    params(("id" = Uuid, Path, description = "The message's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The message as rendered, with its sending status", body = Notification),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Internal,
    )
)]
async fn get_notification(
    _: Admin,
    State(ctx): State<Context>,
    Path(id): Path<Uuid>,
) -> Result<Json<Notification>, ApiError> {
    Ok(Json(
        store::get(&ctx.db, id).await.or_not_found("notification")?,
    ))
}

/// The query of what the simulated SMS gateway received.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GatewayQuery {
    /// Only messages to this mobile number, E.164 (`+4915123456789`; send the `+` as `%2B`, though
    /// a `+` that arrives as a space is read as one).
    #[param(pattern = "^[+ ][1-9][0-9]{6,14}$")]
    pub to: Option<String>,
    /// 1 to 100.
    #[param(default = 50, minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl GatewayQuery {
    fn parse(self) -> Result<(Option<Phone>, u32), ApiError> {
        let mut errors = Vec::new();
        // An unencoded `+` in a query string means a space: `?to=+49...` arrives as " 49...".
        let to = self.to.map(|to| match to.strip_prefix(' ') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => format!("+{rest}"),
            _ => to,
        });
        let to = word::<Phone>("to", to, &mut errors);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError {
                field: "limit".to_owned(),
                message: format!("must be between 1 and {MAX_LIMIT}"),
            });
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors));
        }
        Ok((to, limit))
    }
}

/// What the simulated SMS gateway received, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SmsGatewayPage {
    pub items: Vec<ReceivedSms>,
}

/// What the simulated SMS gateway received, newest first (admins): the far side's own record,
/// one entry per idempotency key however often a message was sent.
#[utoipa::path(
    get,
    path = "/api/v1/admin/notifications/sms-gateway",
    tag = "notifications",
    params(GatewayQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The messages the gateway received", body = SmsGatewayPage),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Invalid,
        problems::Internal,
    )
)]
async fn sms_gateway_received(
    _: Admin,
    State(ctx): State<Context>,
    Query(query): Query<GatewayQuery>,
) -> Result<Json<SmsGatewayPage>, ApiError> {
    let (to, limit) = query.parse()?;
    let items = simulated::received(&ctx.db, to.as_ref(), limit).await?;
    Ok(Json(SmsGatewayPage { items }))
}
