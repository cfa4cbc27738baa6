//! The storefront: a shop in plain HTML, CSS and script over the public API on the same origin,
//! served by the gateway so `nubo up` has something to open in a browser. Every page has its own
//! URL (`/products/TEA-001`, `/orders/NB-7K3M9QX2`, ...); each answers the same shell, and the
//! script draws the view the path names, so deep links, Back and reload work. The files are
//! compiled in; there is no build step and nothing is fetched from anywhere else.
//!
//! Assets are named in the shell with a version (`/assets/shop.js?v=1f3a...`, a hash of every
//! file): a versioned asset never changes and is cached for a year; the shell itself is
//! revalidated, so a new binary's first page brings its new files. `NUBO_STOREFRONT_DIR` serves
//! the files from a folder instead, read on every request, for working on them.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use nubo_platform::axum::Router;
use nubo_platform::axum::extract::{Path, RawQuery, Request, State};
use nubo_platform::axum::response::{IntoResponse, Response};
use nubo_platform::axum::routing::{any, get};
use nubo_platform::server::{ErrorPage, unknown_route};
use nubo_platform::{http_cache, tracing};
use sha2::{Digest, Sha256};

/// The folder the storefront's files are read from on every request instead of the compiled-in
/// copies: for editing them without a build.
pub const DIR: &str = "NUBO_STOREFRONT_DIR";

/// Only this origin's own files, and calls to its own API: no inline script or style, no
/// framing, no form posted elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The paths that are pages of the shop; each answers the shell.
const PAGES: &[&str] = &[
    "/",
    "/category/{slug}",
    "/search",
    "/products/{sku}",
    "/cart",
    "/checkout",
    "/account",
    "/orders",
    "/orders/{number}",
];

/// Every file under `/assets/`, with its type.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "shop.css",
        "text/css; charset=utf-8",
        include_bytes!("shop.css"),
    ),
    ("shop.js", JS, include_bytes!("shop.js")),
    ("shop-catalog.js", JS, include_bytes!("shop-catalog.js")),
    ("shop-cart.js", JS, include_bytes!("shop-cart.js")),
    ("shop-checkout.js", JS, include_bytes!("shop-checkout.js")),
    ("shop-account.js", JS, include_bytes!("shop-account.js")),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("favicon.svg"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";
const SHELL: &str = include_str!("shop.html");
/// Where the shell names the assets' version.
const VERSION_MARK: &str = "__V__";

/// The compiled-in files, or the folder they are read from.
#[derive(Clone)]
enum Files {
    Compiled(Arc<Compiled>),
    Folder(Arc<PathBuf>),
}

struct Compiled {
    version: String,
    shell: Bytes,
    shell_etag: HeaderValue,
    /// Each asset's tag, in the order of [`ASSETS`].
    asset_etags: Vec<HeaderValue>,
}

static COMPILED: LazyLock<Arc<Compiled>> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (name, _, body) in ASSETS {
        hash.update(name.as_bytes());
        hash.update(body);
    }
    let version = hex(&hash.finalize()[..8]);
    let shell = Bytes::from(SHELL.replace(VERSION_MARK, &version));
    let shell_etag = http_cache::etag_of(&shell);
    let asset_etags = ASSETS
        .iter()
        .map(|(_, _, body)| http_cache::etag_of(body))
        .collect();
    Arc::new(Compiled {
        version,
        shell,
        shell_etag,
        asset_etags,
    })
});

/// The pages, the assets and the favicon, none behind a token or a rate limit.
pub fn routes(folder: Option<PathBuf>) -> Router {
    let files = match folder {
        Some(dir) => Files::Folder(Arc::new(dir)),
        None => Files::Compiled(COMPILED.clone()),
    };
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router
        .route("/assets/{name}", get(asset_file))
        .route("/favicon.ico", get(favicon))
        .route("/{*path}", any(not_a_page))
        .with_state(files)
}

/// Any other path: a browser asking for a page gets the shell, which shows its "page not found"
/// view, with a 404; anything else gets the problem every unknown route gets.
async fn not_a_page(State(files): State<Files>, request: Request) -> Response {
    let wants_page = request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if !wants_page {
        return unknown_route(request).await.into_response();
    }
    let mut page = shell(State(files), HeaderMap::new()).await;
    *page.status_mut() = StatusCode::NOT_FOUND;
    page.extensions_mut().insert(ErrorPage);
    page
}

async fn shell(State(files): State<Files>, request: HeaderMap) -> Response {
    match files {
        Files::Compiled(c) => cached(
            &request,
            &c.shell_etag,
            "no-cache",
            "text/html; charset=utf-8",
            c.shell.clone(),
        ),
        Files::Folder(dir) => match std::fs::read_to_string(dir.join("shop.html")) {
            Ok(text) => fresh(
                "text/html; charset=utf-8",
                Bytes::from(text.replace(VERSION_MARK, "dev")),
            ),
            Err(e) => unreadable(&dir, "shop.html", &e),
        },
    }
}

async fn asset_file(
    State(files): State<Files>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    request: HeaderMap,
) -> Response {
    let Some(index) = ASSETS.iter().position(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (name, content_type, body) = ASSETS[index];
    match files {
        Files::Compiled(c) => {
            // Only the current version's URL is forever; any other revalidates.
            let current = query.is_some_and(|q| q == format!("v={}", c.version));
            let policy = if current {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let tag = &c.asset_etags[index];
            cached(
                &request,
                tag,
                policy,
                content_type,
                Bytes::from_static(body),
            )
        }
        Files::Folder(dir) => match std::fs::read(dir.join(name)) {
            Ok(bytes) => fresh(content_type, Bytes::from(bytes)),
            Err(e) => unreadable(&dir, name, &e),
        },
    }
}

async fn favicon(State(files): State<Files>, request: HeaderMap) -> Response {
    asset_file(
        State(files),
        Path("favicon.svg".to_owned()),
        RawQuery(None),
        request,
    )
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cached(
    request: &HeaderMap,
    tag: &HeaderValue,
    policy: &'static str,
    content_type: &'static str,
    body: Bytes,
) -> Response {
    let mut response = if http_cache::none_match_hits(request, tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        with_headers(content_type, body)
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    response
}

/// A file read from the folder: never cached.
fn fresh(content_type: &'static str, body: Bytes) -> Response {
    let mut response = with_headers(content_type, body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn unreadable(dir: &std::path::Path, name: &str, e: &std::io::Error) -> Response {
    tracing::warn!(dir = %dir.display(), name, error = %e, "cannot read a storefront file");
    StatusCode::NOT_FOUND.into_response()
}

fn with_headers(content_type: &'static str, body: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A compiled-in page or script of the gateway's own (the console's), revalidated on each use:
/// a new binary serves new files.
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = with_headers(content_type, Bytes::from_static(body.as_bytes()));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_names_this_builds_assets() {
        let c = &*COMPILED;
        assert_eq!(c.version.len(), 16);
        let shell = String::from_utf8(c.shell.to_vec()).unwrap();
        assert!(!shell.contains(VERSION_MARK));
    }
}
