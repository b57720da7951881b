//! The operator console: one page with its script and style (`host/console/`), built into the
//! binary so that every host serves it on its admin listener at `/console/`, whatever folders
//! it runs from. The page holds no data: it calls the admin API, with the token the operator
//! types, so it is served without one.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Response, StatusCode};

/// Path, content type, content.
const FILES: [(&str, &str, &str); 3] = [
    (
        "/console/",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "/console/console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/console.js"),
    ),
    (
        "/console/console.css",
        "text/css; charset=utf-8",
        include_str!("../../console/console.css"),
    ),
];

/// The console file at `path`, or a redirect from `/console`; `None` for any other path.
pub fn serve(path: &str) -> Option<Response<Full<Bytes>>> {
    if path == "/console" {
        let mut redirect = Response::new(Full::new(Bytes::new()));
        *redirect.status_mut() = StatusCode::MOVED_PERMANENTLY;
        redirect
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/console/"));
        return Some(redirect);
    }
    let (_, content_type, content) = FILES.iter().find(|(file, _, _)| *file == path)?;
    let mut response = Response::new(Full::new(Bytes::from_static(content.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Only its own script and style, and calls to its own origin.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    Some(response)
}
