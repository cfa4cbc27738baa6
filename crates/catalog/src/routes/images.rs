//! A product's image: shoppers read it at the width they show it, admins upload a photo or
//! remove it to return to the drawn illustration. An upload replaces every stored width and
//! bumps the product's version in one transaction, announced like any other edit, so the
//! `image` URL in the product (which carries the version) changes exactly when the image does.

use std::collections::BTreeMap;

use nubo_contracts::catalog::ProductChange;
use nubo_platform::auth::Admin;
use nubo_platform::axum::body::Bytes;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::error::{Json, Path, Query};
use nubo_platform::openapi::{problem_response, problems};
use nubo_platform::tokio::sync::Semaphore;
use nubo_platform::{ApiError, Context, OrNotFound, Problem, http_cache};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::{RefOr, response::Response as DocResponse};

use super::NotModified;
use crate::cached;
use crate::domain::{Product, ProductRef};
use crate::images::photo::{self, Format, PhotoError};
use crate::images::{drawing, store};

/// How long an image at a URL with the product's current version is kept: a day, unchanged.
const VERSIONED_MAX_AGE: u32 = 86_400;
/// How long any other image answer is kept (no version, or not the current one).
pub const UNVERSIONED_MAX_AGE: u32 = 300;
/// An image is a document of its own: nothing in it may load or run anything.
const IMAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";
/// Photos decoded at once: each may take up to `photo::MAX_DECODED_BYTES` and a core.
static DECODING: Semaphore = Semaphore::const_new(2);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// The product's version, as in its `image` URL. An answer for the current version may be
    /// kept for a day (`immutable`); any other for five minutes.
    pub v: Option<i64>,
    /// The width wanted, in pixels. A photo answers at the narrowest stored width at least this
    /// wide (320, 640 or 1280, never wider than uploaded), else its widest; without `w`, its
    /// widest. An illustration is vector and fits any width.
    #[param(minimum = 1, maximum = 10000)]
    pub w: Option<u32>,
}

/// An image's bytes, as the body of a request or an answer: a binary string in the document.
pub struct ImageBytes;

impl utoipa::PartialSchema for ImageBytes {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for ImageBytes {}

/// A product's image.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}/image",
    tag = "catalog",
    params(
        ("id" = String, Path, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Z0-9][A-Z0-9-]{2,31})$", description = "The product's id (a UUID) or its SKU (`TEA-001`)"),
        ImageQuery,
    ),
    responses(
        (status = 200, description = "The uploaded photo (JPEG, or PNG if it has transparency) \
            or the product's illustration (SVG, 800 × 800 view box). With a strong `ETag`, \
            `Cache-Control`, and `Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'`.",
            content((inline(ImageBytes) = "image/svg+xml"), (inline(ImageBytes) = "image/jpeg"),
                (inline(ImageBytes) = "image/png"))),
        NotModified,
        problems::BadRequest,
        problems::NotFound,
        problems::Invalid,
        problems::Internal,
    )
)]
pub async fn product_image(
    State(ctx): State<Context>,
    Path(id): Path<String>,
    Query(q): Query<ImageQuery>,
) -> Result<Response, ApiError> {
    if q.w.is_some_and(|w| !(1..=10_000).contains(&w)) {
        return Err(ApiError::invalid("w", "must be between 1 and 10000"));
    }
    let product = find(&ctx, &id).await?;
    let cache_control = if q.v == Some(product.version) {
        http_cache::cache_control(VERSIONED_MAX_AGE, true)
    } else {
        http_cache::cache_control(UNVERSIONED_MAX_AGE, false)
    };
    let (content_type, body) =
        match store::variant(&ctx.db, product.id, q.w.unwrap_or(u32::MAX)).await? {
            Some(photo) => (
                HeaderValue::from_str(&photo.content_type).map_err(ApiError::internal)?,
                photo.bytes,
            ),
            None => (
                HeaderValue::from_static("image/svg+xml"),
                drawing::draw(&product).into_bytes(),
            ),
        };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache_control),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(IMAGE_CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    Ok((headers, body).into_response())
}

/// Replace a product's image with a photo (admins). The body is the PNG or JPEG itself, at most
/// 8 MiB and the service's request body limit (`NUBO_BODY_LIMIT_BYTES`, 256 KiB unless raised),
/// at most 8192 pixels a side and 128 MiB decoded. It is stored at 320, 640 and 1280 pixels wide
/// (never wider than uploaded) and the product's version goes up by one.
#[utoipa::path(
    put,
    path = "/api/v1/admin/products/{id}/image",
    tag = "catalog",
    params(("id" = String, Path, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Z0-9][A-Z0-9-]{2,31})$", description = "The product's id (a UUID) or its SKU (`TEA-001`)")),
    request_body(description = "The photo's bytes, with a matching `Content-Type`",
        content((inline(ImageBytes) = "image/png"), (inline(ImageBytes) = "image/jpeg"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The product as it is now, with its new `image` URL", body = Product),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        TooLarge,
        UnsupportedType,
        problems::Invalid,
        problems::Internal,
    )
)]
pub async fn put_product_image(
    _: Admin,
    State(ctx): State<Context>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let reference = parse_ref(&id)?;
    let format = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Format::from_content_type);
    let Some(format) = format else {
        return Ok(unsupported_type());
    };
    if body.len() > photo::MAX_UPLOAD_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a photo may be at most {} bytes", photo::MAX_UPLOAD_BYTES),
        )
        .into());
    }
    let product = cached::find(&ctx, &reference)
        .await
        .or_not_found("product")?;
    let permit = DECODING.acquire().await.map_err(ApiError::internal)?;
    let variants =
        nubo_platform::tokio::task::spawn_blocking(move || photo::variants(&body, format))
            .await
            .map_err(ApiError::internal)?;
    drop(permit);
    let variants = variants.map_err(|e| match e {
        PhotoError::Encoding(_) => ApiError::internal(e),
        refused => ApiError::invalid("body", refused.to_string()),
    })?;
    let mut tx = ctx.db.begin().await?;
    // The product row first: on PostgreSQL it locks the product against a concurrent change.
    let product = crate::store::touch(&mut tx, product.id)
        .await
        .or_not_found("product")?;
    store::replace(&mut tx, product.id, &variants).await?;
    ctx.publish(&mut tx, &product.changed(ProductChange::Updated))
        .await?;
    ctx.commit(tx).await?;
    cached::invalidate(&ctx, product.id).await;
    Ok(Json(product).into_response())
}

/// Remove a product's photo, returning it to its illustration (admins).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/products/{id}/image",
    tag = "catalog",
    params(("id" = String, Path, pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Z0-9][A-Z0-9-]{2,31})$", description = "The product's id (a UUID) or its SKU (`TEA-001`)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The product as it is now; its version went up if it had a photo", body = Product),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Internal,
    )
)]
pub async fn delete_product_image(
    _: Admin,
    State(ctx): State<Context>,
    Path(id): Path<String>,
) -> Result<Json<Product>, ApiError> {
    let before = find(&ctx, &id).await?;
    let mut tx = ctx.db.begin().await?;
    // Locked in the order an upload locks: the product, then its photo.
    let product = crate::store::touch(&mut tx, before.id)
        .await
        .or_not_found("product")?;
    if store::remove(&mut tx, product.id).await? == 0 {
        // It had no photo: nothing changed, and the version bump is rolled back.
        return Ok(Json(before));
    }
    ctx.publish(&mut tx, &product.changed(ProductChange::Updated))
        .await?;
    ctx.commit(tx).await?;
    cached::invalidate(&ctx, product.id).await;
    Ok(Json(product))
}

async fn find(ctx: &Context, raw: &str) -> Result<Product, ApiError> {
    let reference = parse_ref(raw)?;
    cached::find(ctx, &reference).await.or_not_found("product")
}

fn parse_ref(raw: &str) -> Result<ProductRef, ApiError> {
    ProductRef::parse(raw).map_err(ApiError::BadRequest)
}

fn unsupported_type() -> Response {
    let mut response = Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "send the photo's bytes as `Content-Type: image/png` or `image/jpeg`",
    )
    .into_response();
    response.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("image/png, image/jpeg"),
    );
    response
}

/// 413 in the document: the upload is larger than the catalog takes.
pub struct TooLarge;

impl utoipa::IntoResponses for TooLarge {
    fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
        BTreeMap::from([(
            "413".to_owned(),
            RefOr::T(problem_response(
                "The body is larger than the catalog takes (8 MiB, and the service's body limit).",
            )),
        )])
    }
}

/// 415 in the document: the body is not declared as PNG or JPEG (the answer carries `Accept`).
pub struct UnsupportedType;

impl utoipa::IntoResponses for UnsupportedType {
    fn responses() -> BTreeMap<String, RefOr<DocResponse>> {
        BTreeMap::from([(
            "415".to_owned(),
            RefOr::T(problem_response(
                "The `Content-Type` is not `image/png` or `image/jpeg`; `Accept` lists them.",
            )),
        )])
    }
}
