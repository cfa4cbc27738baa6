//! A typed call to another service: the request encoded, the answer decoded, and whatever went
//! wrong sorted into the three things a caller can act on: the other service refused (and said
//! why), the thing asked for does not exist, or no usable answer came (try again later).
//!
//! The typed clients in `nubo_contracts` are thin layers over [`ServiceClient::call`], one method
//! per route; every caller of another service goes through them.

use bytes::Bytes;
use http::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{IDEMPOTENCY_KEY, ServiceClient};
use crate::error::Problem;

/// One request to another service, built before it is sent.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    path: String,
    body: Option<Result<Bytes, String>>,
    key: Option<String>,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Self::new(Method::POST, path)
    }

    pub fn put(path: impl Into<String>) -> Self {
        Self::new(Method::PUT, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
            key: None,
        }
    }

    /// Sends `body` as JSON.
    pub fn json<B: Serialize>(mut self, body: &B) -> Self {
        self.body = Some(
            serde_json::to_vec(body)
                .map(Bytes::from)
                .map_err(|e| e.to_string()),
        );
        self
    }

    /// Marks the call as safe to replay: the other service de-duplicates on `key`, so the
    /// platform client may retry it even when its method alone would not allow that.
    pub fn idempotent_on(mut self, key: impl std::fmt::Display) -> Self {
        self.key = Some(key.to_string());
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A call that did not end with a 2xx answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The other service understood and said no (a 4xx other than 404, 408 and 429). Calling
    /// again with the same request would get the same answer.
    #[error("{service} refused: {}", .problem.reason())]
    Refused { service: String, problem: Problem },
    /// The other service has no such thing (404).
    #[error("{service} has no such thing")]
    NotFound { service: String },
    /// No usable answer: it could not be reached, timed out, its circuit is open, it answered
    /// 5xx, 408 or 429, or its answer could not be read. Worth trying again later.
    #[error("{0}")]
    Unavailable(String),
}

impl CallError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl Problem {
    /// The refusal in words: the detail, and every field error's message.
    pub fn reason(&self) -> String {
        let detail = self.detail.clone().unwrap_or_else(|| self.title.clone());
        if self.errors.is_empty() {
            detail
        } else {
            let fields: Vec<&str> = self.errors.iter().map(|e| e.message.as_str()).collect();
            format!("{detail}: {}", fields.join("; "))
        }
    }
}

impl ServiceClient {
    /// Sends `call` and decodes a 2xx answer as `T` (a 204, or an empty body, reads as JSON
    /// `null`, so `T = ()` fits it). Retries, deadlines and the circuit breaker apply as for
    /// [`ServiceClient::send`].
    pub async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T, CallError> {
        let target = self.target().to_owned();
        let mut builder = http::Request::builder()
            .method(call.method)
            .uri(call.path.as_str())
            .header(header::ACCEPT, "application/json");
        if let Some(key) = &call.key {
            builder = builder.header(IDEMPOTENCY_KEY, key.as_str());
        }
        let body = match call.body {
            Some(Ok(body)) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                body
            }
            Some(Err(why)) => {
                return Err(CallError::Unavailable(format!(
                    "cannot encode a request to {target}: {why}"
                )));
            }
            None => Bytes::new(),
        };
        let request = builder.body(body).map_err(|e| {
            CallError::Unavailable(format!("cannot build a request to {target}: {e}"))
        })?;
        let response = self
            .send(request)
            .await
            .map_err(|e| CallError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            let body: &[u8] = match response.body() {
                b if b.is_empty() => b"null",
                b => b,
            };
            return serde_json::from_slice(body).map_err(|e| {
                CallError::Unavailable(format!("cannot read the answer of {target}: {e}"))
            });
        }
        match status {
            StatusCode::NOT_FOUND => Err(CallError::NotFound { service: target }),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => Err(
                CallError::Unavailable(format!("{target} answered {status}")),
            ),
            s if s.is_client_error() => {
                let problem = serde_json::from_slice(response.body())
                    .unwrap_or_else(|_| Problem::status(status));
                Err(CallError::Refused {
                    service: target,
                    problem,
                })
            }
            _ => Err(CallError::Unavailable(format!(
                "{target} answered {status}"
            ))),
        }
    }
}
