//! `paths.static_dir`: a folder the client listener serves beside the API, so that a newcomer
//! opens the demo page on the same address the game answers on. In production nginx serves
//! such files; the host does it for development and small deployments.
//!
//! `hyper-staticfile` resolves the path (no way out of the folder), picks the content type,
//! answers conditional and range requests, and redirects a folder to its `index.html`. What is
//! ours: hidden files are never served, and every reply says `Cache-Control: no-cache`, so a
//! browser revalidates (a cheap 304 by `ETag` or `Last-Modified`) and an edited file shows at
//! the next load. Anything not found answers like any unknown path of the API.

use hyper::header::{HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS};
use hyper::{Request, Response, StatusCode};
use hyper_staticfile::{ResolveResult, Resolver, ResponseBuilder};
use std::path::{Component, Path};

/// The folder being served.
#[derive(Clone)]
pub struct StaticFiles {
    resolver: Resolver,
}

/// A static file's reply body.
pub type FileBody = hyper_staticfile::Body;

impl StaticFiles {
    pub fn new(root: &Path) -> StaticFiles {
        StaticFiles {
            resolver: Resolver::new(root),
        }
    }

    /// The reply for a `GET` or `HEAD` of a file in the folder (or a redirect from a folder to
    /// its index); `None` when there is no such file to serve.
    pub async fn serve<B>(&self, request: &Request<B>) -> Option<Response<FileBody>> {
        let result = self.resolver.resolve_request(request).await.ok()?;
        match &result {
            ResolveResult::Found(file) if !is_hidden(&file.path) => {}
            ResolveResult::IsDirectory { .. } => {}
            _ => return None,
        }
        let mut response = ResponseBuilder::new().request(request).build(result).ok()?;
        if etag_matches(request, &response) {
            // `hyper-staticfile` answers `If-Modified-Since`; `If-None-Match` is ours.
            let etag = response.headers().get(ETAG).cloned();
            response = Response::new(FileBody::Empty);
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response.headers_mut().extend(etag.map(|etag| (ETAG, etag)));
        }
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        Some(response)
    }
}

/// Whether the request's `If-None-Match` names the file's current `ETag` (or `*`).
fn etag_matches<B>(request: &Request<B>, response: &Response<FileBody>) -> bool {
    let (Some(wanted), Some(etag)) = (
        request
            .headers()
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok()),
        response.headers().get(ETAG).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    response.status() == StatusCode::OK
        && wanted
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag == etag)
}

/// Whether a path has a component starting with a dot (`.git`, `.env`): never served.
fn is_hidden(path: &Path) -> bool {
    path.components().any(|component| match component {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => false,
    })
}
