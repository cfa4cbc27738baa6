//! The category routes: shoppers list the categories with their product counts, admins create,
//! rename and delete them.

use nubo_platform::auth::Admin;
use nubo_platform::axum::extract::State;
use nubo_platform::axum::http::StatusCode;
use nubo_platform::error::{Json, Path};
use nubo_platform::openapi::problems;
use nubo_platform::{ApiError, Context};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::NotModified;
use crate::domain::{Category, CategoryInfo, CategoryInput, CategoryUpdate};
use crate::store::{self, CategoryError};

/// A category and how many products it has.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryCount {
    /// The slug.
    pub category: String,
    pub name: String,
    pub description: String,
    pub products: i64,
}

/// List categories with their product counts.
#[utoipa::path(
    get,
    path = "/api/v1/categories",
    tag = "catalog",
    responses(
        (status = 200, description = "Every category", body = Vec<CategoryCount>),
        NotModified,
        problems::Internal,
    )
)]
pub async fn list_categories(
    State(ctx): State<Context>,
) -> Result<Json<Vec<CategoryCount>>, ApiError> {
    let categories = store::categories(&ctx.db).await?;
    Ok(Json(
        categories
            .into_iter()
            .map(|c| CategoryCount {
                category: c.slug,
                name: c.name,
                description: c.description,
                products: c.products,
            })
            .collect(),
    ))
}

/// Create a category (admins).
#[utoipa::path(
    post,
    path = "/api/v1/admin/categories",
    tag = "catalog",
    request_body = CategoryInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CategoryInfo),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::Conflict,
        problems::Invalid,
        problems::Internal,
    )
)]
pub async fn create_category(
    _: Admin,
    State(ctx): State<Context>,
    Json(input): Json<CategoryInput>,
) -> Result<(StatusCode, Json<CategoryInfo>), ApiError> {
    let valid = input.validate().map_err(ApiError::Invalid)?;
    let mut tx = ctx.db.begin().await?;
    store::insert_category(&mut tx, &valid)
        .await
        .map_err(category_error)?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CategoryInfo {
            slug: valid.slug.as_str().to_owned(),
            name: valid.name,
            description: valid.description,
        }),
    ))
}

/// Rename or re-describe a category (admins).
#[utoipa::path(
    put,
    path = "/api/v1/admin/categories/{slug}",
    tag = "catalog",
    params(("slug" = String, Path, pattern = "^[a-z0-9-]{1,40}$", description = "The category's slug")),
    request_body = CategoryUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The category as it is now", body = CategoryInfo),
        problems::BadRequest,
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Invalid,
        problems::Internal,
    )
)]
pub async fn update_category(
    _: Admin,
    State(ctx): State<Context>,
    Path(slug): Path<String>,
    Json(input): Json<CategoryUpdate>,
) -> Result<Json<CategoryInfo>, ApiError> {
    // A slug that cannot be valid names no category.
    let slug = Category::parse(&slug).map_err(|_| category_error(CategoryError::NotFound))?;
    let valid = input.validate(slug).map_err(ApiError::Invalid)?;
    let mut tx = ctx.db.begin().await?;
    let category = store::update_category(&mut tx, &valid)
        .await
        .map_err(category_error)?;
    tx.commit().await?;
    Ok(Json(category))
}

/// Delete an empty category (admins).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/categories/{slug}",
    tag = "catalog",
    params(("slug" = String, Path, pattern = "^[a-z0-9-]{1,40}$", description = "The category's slug")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        problems::Unauthorized,
        problems::Forbidden,
        problems::NotFound,
        problems::Conflict,
        problems::Internal,
    )
)]
pub async fn delete_category(
    _: Admin,
    State(ctx): State<Context>,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = ctx.db.begin().await?;
    store::delete_category(&mut tx, &slug)
        .await
        .map_err(category_error)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn category_error(e: CategoryError) -> ApiError {
    match e {
        CategoryError::SlugTaken => ApiError::Conflict("a category with this slug exists".into()),
        CategoryError::NotFound => ApiError::NotFound("category not found".into()),
        CategoryError::InUse => {
            ApiError::Conflict("products are still in this category; move them first".into())
        }
        CategoryError::Database(e) => e.into(),
    }
}
