//! Cross-origin access (CORS) for H5 clients served from another origin than the host's,
//! such as a game page on a CDN calling the API: which origins may, the preflight, and the
//! headers on each reply.
//!
//! `server.cors_origins` lists the origins allowed (`"https://game.example.com"`), or `"*"`
//! for any; empty (the default) allows none, and browsers then refuse cross-origin calls.
//! Clients authenticate with `Authorization: Bearer <token>`, so credentials (cookies) are
//! never allowed across origins: the session cookie stays same-origin.

use hyper::header::{
    HeaderName, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use hyper::HeaderMap;

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE_SECS: u32 = 600;

/// The request headers a cross-origin client may send (`idempotency-key`: safe retries).
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key";

/// The reply headers a cross-origin page may read besides the safelisted ones: a replayed
/// command's mark (`crate::idempotency::REPLAYED_HEADER`).
const EXPOSED_HEADERS: &str = "idempotent-replayed";

/// Headers to add to a reply.
pub type Headers = Vec<(HeaderName, String)>;

/// The request's `Origin`, if it is one of `allowed`.
pub fn allowed_origin<'a>(allowed: &[String], headers: &'a HeaderMap) -> Option<&'a str> {
    let origin = headers.get(hyper::header::ORIGIN)?.to_str().ok()?;
    allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// What to add to a reply to a request with `headers`: `None` when CORS is off; otherwise
/// `Vary: Origin` (caches must keep replies apart by origin, allowed or not), and for an
/// allowed origin the header that lets its page read the reply.
pub fn headers_for(allowed: &[String], headers: &HeaderMap) -> Option<Headers> {
    if allowed.is_empty() {
        return None;
    }
    Some(match allowed_origin(allowed, headers) {
        Some(origin) => api_reply_headers(origin),
        None => vec![(VARY, "Origin".to_owned())],
    })
}

/// The headers that let `origin`'s page read a reply. Browsers cache replies per origin
/// (`Vary`), as the header differs by the caller.
pub fn reply_headers(origin: &str) -> Headers {
    vec![
        (ACCESS_CONTROL_ALLOW_ORIGIN, origin.to_owned()),
        (VARY, "Origin".to_owned()),
    ]
}

/// [`reply_headers`] for an API reply: the page may also read which headers it needs.
fn api_reply_headers(origin: &str) -> Headers {
    let mut headers = reply_headers(origin);
    headers.push((ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS.to_owned()));
    headers
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed
/// `origin` for a path that takes `method`.
pub fn preflight_headers(origin: &str, method: &str) -> Headers {
    let mut headers = reply_headers(origin);
    headers.extend([
        (ACCESS_CONTROL_ALLOW_METHODS, method.to_owned()),
        (ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS.to_owned()),
        (ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_SECS.to_string()),
    ]);
    headers
}

/// Why a `server.cors_origins` entry is not an origin, if it is not: an origin is `*` or
/// `scheme://host[:port]`, without a path or a trailing slash, as browsers send it.
pub fn invalid_origin(origin: &str) -> Option<&'static str> {
    if origin == "*" {
        return None;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some("it has no scheme: write it as https://host[:port]");
    };
    if scheme != "http" && scheme != "https" {
        return Some("the scheme must be http or https");
    }
    if rest.is_empty() || rest.contains('/') || rest.contains('*') {
        return Some("it must be scheme://host[:port] exactly, without a path, a trailing slash or a wildcard");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderValue, ORIGIN};

    fn from(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let allowed = vec!["https://game.example.com".to_owned()];
        assert_eq!(
            allowed_origin(&allowed, &from("https://game.example.com")),
            Some("https://game.example.com")
        );
        assert_eq!(
            allowed_origin(&allowed, &from("https://evil.example.com")),
            None
        );
        assert_eq!(
            allowed_origin(&allowed, &from("http://game.example.com")),
            None
        );
        assert_eq!(allowed_origin(&allowed, &HeaderMap::new()), None);
        assert_eq!(allowed_origin(&[], &from("https://game.example.com")), None);
        let any = vec!["*".to_owned()];
        assert_eq!(
            allowed_origin(&any, &from("http://localhost:5173")),
            Some("http://localhost:5173"),
            "the origin itself is echoed, never `*`"
        );
    }

    #[test]
    fn entries_must_be_origins() {
        assert_eq!(invalid_origin("*"), None);
        assert_eq!(invalid_origin("https://game.example.com"), None);
        assert_eq!(invalid_origin("http://localhost:5173"), None);
        for bad in [
            "game.example.com",
            "ftp://game.example.com",
            "https://game.example.com/",
            "https://game.example.com/play",
            "https://*.example.com",
            "https://",
        ] {
            assert!(invalid_origin(bad).is_some(), "{bad}");
        }
    }
}
