//! The dashboard: static files from `web/` at the repository root, embedded in the binary
//! (rust-embed with `debug-embed`: debug builds carry them too, so a test binary never reads
//! a stale checkout through a shared target directory),
//! served with a strict Content-Security-Policy. No CDN, no build step: plain ES modules.
//!
//! Also the security headers every answer carries, and the JSON 404 for unknown routes.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::error::ApiError;

#[derive(Embed)]
#[folder = "../../web/"]
struct Assets;

/// Content-Security-Policy of every answer: only this origin's scripts, styles, images
/// and connections; no framing, no plugins, no inline script.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Names of the embedded files (for tests and docs).
pub fn asset_names() -> Vec<String> {
    Assets::iter().map(|c| c.into_owned()).collect()
}

/// Serves a dashboard file, or the JSON 404 for anything else (API paths included).
pub async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path.starts_with("/agent/") {
        return ApiError::not_found("no such route; see /api/v1/openapi.json").into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "dashboard files are read-only")
            .into_response();
    }
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    if name.split('/').any(|seg| seg == ".." || seg.starts_with('.')) {
        return ApiError::not_found("no such file").into_response();
    }
    let Some(file) = Assets::get(name) else {
        return ApiError::not_found("no such route or file; the dashboard is at /").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    if req.headers().get(IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut resp = file.data.into_owned().into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
    // Revalidate every time: the ETag makes that cheap and an upgrade is seen at once.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    resp
}

/// Middleware: security headers on every answer; API answers are not cached.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/") || req.uri().path() == "/metrics";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    h.insert("strict-transport-security", HeaderValue::from_static("max-age=31536000"));
    if api && !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_is_embedded() {
        let names = asset_names();
        assert!(names.iter().any(|n| n == "index.html"), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with(".js")), "{names:?}");
    }

    #[test]
    fn types() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
