//! Which service owns which path. The gateway knows prefixes, not endpoints: a service adds a
//! route under its prefix without the gateway changing.

use http::{HeaderValue, header};
use nubo_platform::Context;
use nubo_platform::axum::Router;
use nubo_platform::axum::middleware;
use nubo_platform::axum::response::Response;
use nubo_platform::axum::routing::{any, get};
use tower_http::compression::CompressionLayer;

use crate::authenticate;
use crate::console;
use crate::openapi;
use crate::proxy::{self, Upstreams};
use crate::rate_limit::{self, Limits};
use crate::storefront;

/// Path prefix under `/api/v1/` and the service that owns it.
pub const ROUTES: &[(&str, &str)] = &[
    ("identity", "identity"),
    ("admin/identity", "identity"),
    ("products", "catalog"),
    ("categories", "catalog"),
    ("admin/products", "catalog"),
    ("admin/categories", "catalog"),
    ("inventory", "inventory"),
    ("admin/inventory", "inventory"),
    ("admin/payments", "payments"),
    ("cart", "cart"),
    ("admin/carts", "cart"),
    ("checkout", "orders"),
    ("orders", "orders"),
    ("admin/orders", "orders"),
    ("admin/notifications", "notifications"),
    // The ops console's admin API, which the gateway answers itself.
    ("admin/ops", "gateway"),
];

/// The service owning `path`, if any: the longest matching prefix wins.
pub fn owner(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1/")?;
    ROUTES
        .iter()
        .filter(|(prefix, _)| {
            rest == *prefix
                || rest
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('/'))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, service)| *service)
}

pub fn router(ctx: Context, limits: Limits) -> Router {
    let upstreams = Upstreams::new(&ctx);
    let storefront_folder = ctx
        .env
        .get(storefront::DIR)
        .filter(|dir| !dir.is_empty())
        .map(Into::into);
    Router::new()
        .route("/api/v1/{*path}", any(proxy::forward).with_state(upstreams))
        // The ops console's admin API is the gateway's own, behind the same limits and checks.
        .merge(console::api(ctx.clone()))
        // Outer to inner: count the request against its client's rate first (cheap), then
        // check its token, then proxy.
        .route_layer(middleware::from_fn_with_state(
            ctx.clone(),
            authenticate::caller,
        ))
        .route_layer(middleware::from_fn_with_state(
            (ctx, limits),
            rate_limit::enforce,
        ))
        // The storefront, like the document below, needs no token and is not rate limited.
        .merge(storefront::routes(storefront_folder))
        .merge(console::pages())
        // Added after the layers above: the document needs no token and is not rate limited.
        .route(openapi::PATH, get(openapi::serve))
        // gzip or brotli for a client that asks, on every answer worth it (tower-http leaves
        // out small bodies, images and event streams).
        .layer(CompressionLayer::new())
        .layer(middleware::map_response(weaken_compressed_etag))
}

/// A compressed answer is another representation than the one its strong `ETag` names: the tag
/// becomes weak (RFC 9110 8.8.1), which `If-None-Match` still matches, as nginx does.
async fn weaken_compressed_etag(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if headers.contains_key(header::CONTENT_ENCODING)
        && let Some(tag) = headers.get(header::ETAG).and_then(|t| t.to_str().ok())
        && tag.starts_with('"')
        && let Ok(weak) = HeaderValue::from_str(&format!("W/{tag}"))
    {
        headers.insert(header::ETAG, weak);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn the_longest_prefix_owns_a_path() {
        assert_eq!(owner("/api/v1/products"), Some("catalog"));
        assert_eq!(owner("/api/v1/products/123"), Some("catalog"));
        assert_eq!(owner("/api/v1/admin/products/1"), Some("catalog"));
        assert_eq!(owner("/api/v1/productsx"), None);
        assert_eq!(owner("/api/v1/unknown"), None);
        assert_eq!(owner("/products"), None);
    }

    #[test]
    fn every_route_goes_to_a_declared_upstream() {
        for (_, service) in super::ROUTES {
            assert!(
                *service == crate::SERVICE.name || crate::SERVICE.calls().contains(service),
                "the gateway does not call {service} (platform::config::SERVICES)"
            );
        }
    }
}
