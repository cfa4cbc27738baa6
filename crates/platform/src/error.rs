//! One error type for every handler, rendered as RFC 9457 `application/problem+json`.
//!
//! The cause of a server-side failure is logged with its whole chain and never sent: the client
//! sees a status, a title and a detail written for it, and the request's trace id to quote.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document: every error answer of every route, as
/// `application/problem+json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://nubo.dev/problems/not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase, the same for every problem of a kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, written for the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field-level problems of a rejected input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

/// One rejected field: its name and why.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        Self {
            kind: format!("https://nubo.dev/problems/{}", slug(&title)),
            title,
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// A problem for a bare status, when there is nothing more to say.
    pub fn status(status: StatusCode) -> Self {
        let mut p = Self::new(status, "");
        p.detail = None;
        p
    }

    pub fn with_kind(mut self, kind: &str) -> Self {
        self.kind = format!("https://nubo.dev/problems/{kind}");
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_secs;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// What a handler can fail with. Client errors carry a message for the client; `Internal` carries
/// a cause for the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{}", .0.title)]
    Problem(Box<Problem>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        Self::Problem(Box::new(p))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(m) => Problem::new(StatusCode::BAD_REQUEST, m).into_response(),
            Self::Invalid(errors) => {
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the request has invalid fields",
                )
                .with_kind("validation");
                p.errors = errors;
                p.into_response()
            }
            Self::NotFound(m) => Problem::new(StatusCode::NOT_FOUND, m).into_response(),
            Self::Conflict(m) => Problem::new(StatusCode::CONFLICT, m).into_response(),
            Self::Unauthorized(m) => Problem::new(StatusCode::UNAUTHORIZED, m).into_response(),
            Self::Forbidden(m) => Problem::new(StatusCode::FORBIDDEN, m).into_response(),
            Self::Unavailable(m) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, m)
                .retry_after(1)
                .into_response(),
            Self::Problem(p) => p.into_response(),
            Self::Internal(cause) if is_transient(cause.as_ref()) => {
                tracing::warn!(
                    error = format!("{cause:#}"),
                    "request failed on a passing fault"
                );
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a store this needs cannot answer right now; try again",
                )
                .with_kind("unavailable")
                .retry_after(1)
                .into_response()
            }
            Self::Internal(cause) => {
                // The whole chain goes to the log, joined to the request by its trace id.
                tracing::error!(error = format!("{cause:#}"), "request failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on our side; quote the trace id when reporting it",
                )
                .into_response()
            }
        }
    }
}

/// Whether `error`, or anything that caused it, is a fault that passes: a database, cache or
/// connection that cannot answer now (refused, dropped, timed out, restarting, out of
/// connections, busy, or out of disk space). A request that failed on one changed nothing it
/// committed, so it is answered 503 with `Retry-After`, never 500.
pub fn is_transient(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        let transient = if let Some(e) = e.downcast_ref::<sqlx::Error>() {
            transient_sql(e)
        } else if let Some(e) = e.downcast_ref::<redis::RedisError>() {
            e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_cluster_error()
                || matches!(
                    e.kind(),
                    redis::ErrorKind::Server(
                        redis::ServerErrorKind::BusyLoading
                            | redis::ServerErrorKind::MasterDown
                            | redis::ServerErrorKind::ReadOnly
                    )
                )
        } else if let Some(e) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            matches!(
                e.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | BrokenPipe
                    | TimedOut
                    | UnexpectedEof
                    | StorageFull
            )
        } else {
            false
        };
        if transient {
            return true;
        }
        next = e.source();
    }
    false
}

fn transient_sql(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code() {
            // SQLite: a numeric result code, whose low byte is the primary one.
            Some(code) if code.bytes().all(|b| b.is_ascii_digit()) => {
                // BUSY, LOCKED, IOERR, FULL, CANTOPEN.
                let primary = code.parse::<u32>().unwrap_or(0) & 0xff;
                matches!(primary, 5 | 6 | 10 | 13 | 14)
            }
            // PostgreSQL: SQLSTATE. Connection exceptions, insufficient resources (disk full,
            // out of memory, too many connections), the server shutting down or starting, and
            // the serialization failures and deadlocks a retry resolves.
            Some(state) => {
                state.starts_with("08")
                    || state.starts_with("53")
                    || matches!(&*state, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
            }
            None => false,
        },
        // I/O and TLS failures are read from their source by the caller's walk.
        _ => false,
    }
}

/// `.or_not_found("product")` turns a missing row into a 404 in one readable line.
pub trait OrNotFound<T> {
    fn or_not_found(self, what: &str) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> OrNotFound<T> for Result<Option<T>, E> {
    fn or_not_found(self, what: &str) -> Result<T, ApiError> {
        self.map_err(Into::into)?
            .ok_or_else(|| ApiError::NotFound(format!("{what} not found")))
    }
}

/// A JSON body extractor whose rejections are problem documents.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    let status = rejection.status();
    let detail = match &rejection {
        JsonRejection::JsonSyntaxError(_) => {
            format!("the body is not valid JSON: {}", rejection.body_text())
        }
        JsonRejection::JsonDataError(_) => format!(
            "the body does not have the expected shape: {}",
            rejection.body_text()
        ),
        JsonRejection::MissingJsonContentType(_) => {
            "expected `Content-Type: application/json`".to_owned()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this service accepts".to_owned()
        }
        _ => rejection.body_text(),
    };
    Problem::new(status, detail)
}

/// A query-string extractor whose rejections are problem documents.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// A path extractor whose rejections are problem documents (a malformed id is a 400, not a 500).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e: PathRejection| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// Reads a JSON number into an integer field when its value is a whole number, however it is
/// written: JSON (RFC 8259) and JSON Schema's `integer` do not tell `3` from `3.0` or `3e0`,
/// so neither may a request body. Use as `#[serde(deserialize_with = "nubo_platform::error::whole")]`.
pub fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::Deserialize;
    use serde::de::{Error, Unexpected};
    let number = serde_json::Number::deserialize(d)?;
    let value = match (number.as_i64(), number.as_f64()) {
        (Some(i), _) => Some(i),
        // Beyond ±2^53 a float no longer holds every whole number exactly; none of our fields
        // goes near that, so such a value is refused rather than rounded.
        (None, Some(f)) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Some(f as i64),
        _ => None,
    };
    let unexpected = || match number.as_f64() {
        Some(f) => Unexpected::Float(f),
        None => Unexpected::Other("a number"),
    };
    value
        .and_then(|i| T::try_from(i).ok())
        .ok_or_else(|| D::Error::invalid_value(unexpected(), &"a whole number in range"))
}

#[cfg(test)]
mod whole_tests {
    #[derive(serde::Deserialize, Debug)]
    struct Line {
        #[serde(deserialize_with = "super::whole")]
        quantity: u32,
    }

    fn read(json: &str) -> Result<u32, String> {
        serde_json::from_str::<Line>(json)
            .map(|l| l.quantity)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_reads_however_it_is_written() {
        for json in [
            r#"{"quantity":3}"#,
            r#"{"quantity":3.0}"#,
            r#"{"quantity":3e0}"#,
        ] {
            assert_eq!(read(json), Ok(3), "{json}");
        }
    }

    #[test]
    fn fractions_strings_and_numbers_out_of_range_are_refused() {
        for json in [
            r#"{"quantity":3.5}"#,
            r#"{"quantity":"3"}"#,
            r#"{"quantity":-1}"#,
            r#"{"quantity":4294967296}"#,
            r#"{"quantity":1e300}"#,
        ] {
            let error = read(json).unwrap_err();
            assert!(
                error.contains("whole number") || error.contains("invalid type"),
                "{json}: {error}"
            );
        }
    }
}

#[cfg(test)]
mod transient_tests {
    use axum::response::IntoResponse;
    use sqlx::Connection;
    use sqlx::sqlite::SqliteConnection;

    use super::{ApiError, is_transient};

    /// A real SQLite database that runs out of room: what a full disk does to the embedded shop.
    async fn full_database_error() -> sqlx::Error {
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("PRAGMA max_page_count = 8")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&mut db)
            .await
            .unwrap();
        for _ in 0..64 {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(4096))")
                .execute(&mut db)
                .await
            {
                return e;
            }
        }
        panic!("the database never filled up");
    }

    #[tokio::test]
    async fn a_full_store_is_a_503_with_retry_after_not_a_500() {
        let full = full_database_error().await;
        assert!(is_transient(&full), "{full}");
        let response = ApiError::internal(anyhow::Error::new(full).context("saving the order"))
            .into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[tokio::test]
    async fn servers_that_do_not_answer_are_passing_faults() {
        // Nothing listens on port 1 of loopback.
        let pg = sqlx::PgConnection::connect("postgres://nubo@127.0.0.1:1/nubo")
            .await
            .unwrap_err();
        assert!(is_transient(&pg), "{pg}");
        let redis = redis::Client::open("redis://127.0.0.1:1/")
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap_err();
        assert!(is_transient(&redis), "{redis}");
        let wrapped = anyhow::Error::new(redis).context("reading the cart");
        assert!(is_transient(wrapped.as_ref()));
    }

    #[tokio::test]
    async fn a_broken_rule_or_a_bug_is_still_a_500() {
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut db)
            .await
            .unwrap();
        let duplicate = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut db)
            .await
            .unwrap_err();
        assert!(!is_transient(&duplicate), "{duplicate}");
        let missing = sqlx::query("SELECT k FROM t WHERE k = 2")
            .fetch_one(&mut db)
            .await
            .unwrap_err();
        assert!(!is_transient(&missing));
        let response = ApiError::internal(duplicate).into_response();
        assert_eq!(response.status(), 500);
    }
}
