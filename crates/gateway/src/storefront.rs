//! The storefront page: plain HTML and a little script over the public API, served by the
//! gateway so `nubo up` has something to open in a browser.

use nubo_platform::axum::response::Html;

pub async fn page() -> Html<&'static str> {
    Html(include_str!("storefront.html"))
}
