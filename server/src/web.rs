//! The web app, built into the binary: `web/dist` (the committed Vite build)
//! served at `/`, so `ticketflow serve` needs nothing else to show it.
//!
//! A path that names a file gets it; any other page a browser asks for
//! (`Accept: text/html`) gets `index.html`, since the app routes on the
//! client. Everything else stays the API's 404, in the contract's format.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir, File};
use ticketflow_app::ApiError;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/dist");

/// Vite names its assets by content hash: they never change under a name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` names the current assets: always ask again.
const REVALIDATE: &str = "no-cache";

/// Answers what no route took: a file of the app, the app's page, or 404.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::not_found("route").into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = DIST.get_file(path).filter(|_| !path.is_empty()) {
        return file_response(file, IMMUTABLE);
    }
    match DIST.get_file("index.html") {
        Some(index) if wants_html(&headers) => file_response(index, REVALIDATE),
        _ => ApiError::not_found("route").into_response(),
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn file_response(file: &'static File<'static>, cache: &'static str) -> Response {
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(file)),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    (StatusCode::OK, headers, Body::from(file.contents())).into_response()
}

fn content_type(file: &File<'_>) -> &'static str {
    let extension = file.path().extension().and_then(|e| e.to_str());
    match extension.unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
