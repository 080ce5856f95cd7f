//! The web dashboard at `/`: one page and its scripts, embedded in the
//! binary (uPlot vendored from the npm registry with its licence), served
//! with a Content-Security-Policy that lets the page load and connect to
//! nothing but this dispatcher. The page asks for a token itself; these
//! routes need none (they hold no data).

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../assets/dashboard/index.html");

/// (name, content type, bytes) of each asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/dashboard/app.css"),
    ),
    (
        "uplot.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard/vendor/uplot.iife.min.js"),
    ),
    (
        "uplot.css",
        "text/css; charset=utf-8",
        include_str!("../assets/dashboard/vendor/uplot.min.css"),
    ),
    (
        "uplot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("../assets/dashboard/vendor/uplot.LICENSE"),
    ),
];

fn page(ctype: &'static str, body: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, ctype)], body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The dashboard page.
pub(crate) async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// One of its assets.
pub(crate) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, ctype, body)| page(ctype, body))
        .ok_or_else(|| ApiError::not_found(format!("no asset {name:?}")))
}
