//! The web console: one page and its scripts, from `dashboards/console/`, compiled in.
//! They hold no data (everything comes through the API with the signed-in token), so
//! they are served without one; the headers keep the page from loading anything else.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("../../dashboards/console/index.html");
const SCRIPT: &str = include_str!("../../dashboards/console/app.js");
const ENTITIES: &str = include_str!("../../dashboards/console/entities.js");
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
}

pub async fn page() -> impl IntoResponse {
    (headers("text/html; charset=utf-8"), PAGE)
}

pub async fn script() -> impl IntoResponse {
    (headers("text/javascript; charset=utf-8"), SCRIPT)
}

pub async fn entities_script() -> impl IntoResponse {
    (headers("text/javascript; charset=utf-8"), ENTITIES)
}
