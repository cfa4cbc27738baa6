//! HTTP caching of public reads: a tower layer a service puts on the routes whose answers anyone
//! may reuse. For a `GET` or `HEAD` answered `200 OK` it sets a strong `ETag` (a hash of the
//! body's bytes, so two replicas agree without sharing anything), `Cache-Control` (the handler's
//! own if it set one, else the layer's) and `Vary: Accept-Encoding`, and turns the answer into
//! `304 Not Modified` when the request's `If-None-Match` names that tag (RFC 9110 §13.1.2).
//! Anything else (errors, other methods, bodies too large or of unknown length to hold in memory)
//! passes through untouched, apart from `Cache-Control` and `Vary` on large `200`s.
//!
//! ```ignore
//! router.route_layer(http_cache::public(60))
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::error::Problem;

/// Bodies larger than this are not held in memory to be hashed; they get no `ETag`.
pub const MAX_HASHED_BODY: usize = 4 << 20;

/// How many bytes of the SHA-256 an `ETag` carries (as hex): 128 bits never collide by chance.
const TAG_BYTES: usize = 16;

/// The layer for answers anyone may reuse for `max_age_secs` seconds.
pub fn public(max_age_secs: u32) -> HttpCacheLayer {
    HttpCacheLayer {
        cache_control: cache_control(max_age_secs, false),
    }
}

/// `public, max-age=N`, and `, immutable` for an answer that will never change at its URL (one
/// that carries a version): what a handler sets itself when it knows better than its layer.
pub fn cache_control(max_age_secs: u32, immutable: bool) -> HeaderValue {
    let value = if immutable {
        format!("public, max-age={max_age_secs}, immutable")
    } else {
        format!("public, max-age={max_age_secs}")
    };
    HeaderValue::from_str(&value).expect("digits and ASCII words make a header value")
}

/// A strong entity tag for `bytes`: the first 128 bits of their SHA-256, in hex, quoted.
pub fn etag_of(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..TAG_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex in quotes is a header value")
}

/// Whether `If-None-Match` (every line of it) names `etag`: `*` does, and so does any listed
/// tag equal to it under the weak comparison (RFC 9110 §8.8.3.2: `W/` ignored on either side).
pub fn none_match_hits(if_none_match: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(ours) = etag.to_str().ok().map(opaque) else {
        return false;
    };
    if_none_match
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.is_empty() && opaque(tag) == ours))
}

/// The opaque part of an entity tag: without `W/`.
fn opaque(tag: &str) -> &str {
    tag.trim().strip_prefix("W/").unwrap_or(tag.trim())
}

/// See [`public`].
#[derive(Clone, Debug)]
pub struct HttpCacheLayer {
    cache_control: HeaderValue,
}

impl<S> tower::Layer<S> for HttpCacheLayer {
    type Service = HttpCache<S>;

    fn layer(&self, inner: S) -> HttpCache<S> {
        HttpCache {
            inner,
            cache_control: self.cache_control.clone(),
        }
    }
}

/// The service [`HttpCacheLayer`] wraps a route in.
#[derive(Clone, Debug)]
pub struct HttpCache<S> {
    inner: S,
    cache_control: HeaderValue,
}

impl<S> tower::Service<Request> for HttpCache<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was made ready is the one to call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let cache_control = self.cache_control.clone();
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return Box::pin(inner.call(request));
        }
        let mut conditions = HeaderMap::new();
        for value in request.headers().get_all(header::IF_NONE_MATCH) {
            conditions.append(header::IF_NONE_MATCH, value.clone());
        }
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(revalidate(response, &conditions, cache_control).await)
        })
    }
}

async fn revalidate(
    mut response: Response,
    conditions: &HeaderMap,
    cache_control: HeaderValue,
) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(cache_control);
    vary_on_encoding(headers);
    // A tag the handler set itself is compared as it is.
    if let Some(etag) = response.headers().get(header::ETAG).cloned() {
        return match none_match_hits(conditions, &etag) {
            true => not_modified(response.into_parts().0),
            false => response,
        };
    }
    let fits = response
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= MAX_HASHED_BODY as u64);
    if !fits {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::error!(error = %e, "a response body failed while it was read to be hashed");
            return Problem::status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        }
    };
    let etag = etag_of(&bytes);
    parts.headers.insert(header::ETAG, etag.clone());
    if none_match_hits(conditions, &etag) {
        return not_modified(parts);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer with its status `304` and no body. It keeps what a cache needs to refresh its copy
/// (`ETag`, `Cache-Control`, `Vary`), not the representation's metadata (RFC 9110 §15.4.5).
fn not_modified(mut parts: axum::http::response::Parts) -> Response {
    parts.status = StatusCode::NOT_MODIFIED;
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_LANGUAGE,
    ] {
        parts.headers.remove(name);
    }
    Response::from_parts(parts, Body::empty())
}

/// Adds `Accept-Encoding` to `Vary` unless it is there already (or `Vary: *`).
fn vary_on_encoding(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == "*" || v.trim().eq_ignore_ascii_case("accept-encoding"));
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route(
                "/thing",
                get(|| async { "a thing" }).post(|| async { "posted" }),
            )
            .route(
                "/forever",
                get(|| async {
                    (
                        [(header::CACHE_CONTROL, cache_control(86400, true))],
                        "versioned",
                    )
                }),
            )
            .route(
                "/tagged",
                get(|| async { ([(header::ETAG, "\"v1\"")], "tagged by its handler") }),
            )
            .route(
                "/missing",
                get(|| async { Problem::new(StatusCode::NOT_FOUND, "no such thing") }),
            )
            .route("/huge", get(|| async { vec![b'x'; MAX_HASHED_BODY + 1] }))
            .route_layer(public(60))
    }

    async fn send(method: Method, path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> Vec<u8> {
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn a_read_gets_a_strong_tag_of_its_bytes_and_the_layers_freshness() {
        let response = send(Method::GET, "/thing", None).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers[header::ETAG], etag_of(b"a thing"));
        let tag = headers[header::ETAG].to_str().unwrap();
        assert!(tag.starts_with('"') && !tag.starts_with("W/"));
        assert_eq!(tag.len(), 2 + 2 * TAG_BYTES);
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=60");
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert_eq!(body(response).await, b"a thing");
    }

    #[tokio::test]
    async fn a_matching_tag_gets_304_without_a_body() {
        let tag = etag_of(b"a thing");
        let tag = tag.to_str().unwrap();
        for condition in [
            tag.to_owned(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            format!("W/\"other\" ,W/{tag}"),
            "*".to_owned(),
        ] {
            let response = send(Method::GET, "/thing", Some(&condition)).await;
            assert_eq!(response.status(), 304, "{condition}");
            assert_eq!(response.headers()[header::ETAG], tag);
            assert_eq!(
                response.headers()[header::CACHE_CONTROL],
                "public, max-age=60"
            );
            assert_eq!(response.headers()[header::VARY], "accept-encoding");
            assert!(!response.headers().contains_key(header::CONTENT_TYPE));
            assert!(body(response).await.is_empty());
        }
    }

    #[tokio::test]
    async fn another_tag_gets_the_whole_answer() {
        for condition in ["\"other\"", "W/\"other\", \"more\"", "", "garbage"] {
            let response = send(Method::GET, "/thing", Some(condition)).await;
            assert_eq!(response.status(), 200, "{condition}");
            assert_eq!(body(response).await, b"a thing");
        }
    }

    #[tokio::test]
    async fn head_is_tagged_like_get() {
        let get = send(Method::GET, "/thing", None).await;
        let head = send(Method::HEAD, "/thing", None).await;
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()[header::ETAG], get.headers()[header::ETAG]);
        let tag = get.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(send(Method::HEAD, "/thing", Some(&tag)).await.status(), 304);
    }

    #[tokio::test]
    async fn a_handlers_own_cache_control_wins() {
        let response = send(Method::GET, "/forever", None).await;
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=86400, immutable"
        );
        assert!(response.headers().contains_key(header::ETAG));
    }

    #[tokio::test]
    async fn a_handlers_own_tag_is_kept_and_compared() {
        let fresh = send(Method::GET, "/tagged", None).await;
        assert_eq!(fresh.headers()[header::ETAG], "\"v1\"");
        assert_eq!(body(fresh).await, b"tagged by its handler");
        let again = send(Method::GET, "/tagged", Some("W/\"v1\"")).await;
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()[header::ETAG], "\"v1\"");
    }

    #[tokio::test]
    async fn errors_writes_and_huge_bodies_are_left_alone() {
        let missing = send(Method::GET, "/missing", Some("*")).await;
        assert_eq!(missing.status(), 404);
        assert!(!missing.headers().contains_key(header::ETAG));
        assert!(!missing.headers().contains_key(header::CACHE_CONTROL));

        let posted = send(Method::POST, "/thing", Some("*")).await;
        assert_eq!(posted.status(), 200);
        assert!(!posted.headers().contains_key(header::ETAG));
        assert!(!posted.headers().contains_key(header::CACHE_CONTROL));

        let huge = send(Method::GET, "/huge", Some("*")).await;
        assert_eq!(huge.status(), 200);
        assert!(!huge.headers().contains_key(header::ETAG));
        assert_eq!(huge.headers()[header::CACHE_CONTROL], "public, max-age=60");
        assert_eq!(body(huge).await.len(), MAX_HASHED_BODY + 1);
    }

    #[test]
    fn vary_is_not_repeated() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Accept-Encoding"),
        );
        vary_on_encoding(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
        vary_on_encoding(&mut headers);
        let all: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(all, ["origin", "accept-encoding"]);
    }
}
