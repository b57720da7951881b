//! Cross-origin calls from H5 pages served elsewhere: the preflight, and the headers that let
//! an allowed origin's page read replies (errors included); none for other origins, and none
//! at all by default.

use crate::harness::{Dirs, TestHost, DEMO_MODULES};
use reqwest::{Method, Response};
use serde_json::{json, Value};

const GAME: &str = "https://game.example.com";

async fn host_allowing(origins: &[&str]) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
    TestHost::start_in(dirs, move |config| config.server.cors_origins = origins).await
}

async fn preflight(host: &TestHost, path: &str, origin: &str) -> Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, host.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("the host answers")
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn post_from(
    host: &TestHost,
    origin: &str,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> Response {
    let mut request = reqwest::Client::new()
        .post(host.url(path))
        .header("Origin", origin)
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the host answers")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_origin_passes_the_preflight_and_reads_every_reply() {
    let host = host_allowing(&[GAME]).await;
    let answer = preflight(&host, "/logic", GAME).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(GAME));
    assert_eq!(
        header(&answer, "access-control-allow-methods"),
        Some("POST")
    );
    let allowed = header(&answer, "access-control-allow-headers").unwrap_or_default();
    assert!(
        allowed.contains("authorization")
            && allowed.contains("content-type")
            && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    assert!(header(&answer, "access-control-max-age").is_some());
    assert_eq!(
        header(&answer, "access-control-allow-credentials"),
        None,
        "no cookies across origins"
    );

    let login = post_from(
        &host,
        GAME,
        "/login",
        json!({ "account": "cdn-player" }),
        None,
    )
    .await;
    assert_eq!(header(&login, "access-control-allow-origin"), Some(GAME));
    assert_eq!(header(&login, "vary"), Some("Origin"));
    let token = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let logic = post_from(
        &host,
        GAME,
        "/logic",
        json!({ "cmd": "1203", "data": {} }),
        Some(&token),
    )
    .await;
    assert_eq!(header(&logic, "access-control-allow-origin"), Some(GAME));
    // The page may read a replayed command's mark (safe retries).
    assert_eq!(
        header(&logic, "access-control-expose-headers"),
        Some("idempotent-replayed")
    );
    assert_eq!(logic.json::<Value>().await.unwrap()["ret"], 0);
    // An error reply too, so that the page can read why.
    let refused = post_from(
        &host,
        GAME,
        "/logic",
        json!({ "cmd": "1203", "data": {} }),
        Some("forged"),
    )
    .await;
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(GAME));

    // Another origin is refused at the preflight, with what to do, and gets no header.
    let other = preflight(&host, "/logic", "https://evil.example.com").await;
    assert_eq!(other.status(), 403);
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["ret"], -2);
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("server.cors_origins"),
        "{body}"
    );
    let login = post_from(
        &host,
        "https://evil.example.com",
        "/login",
        json!({ "account": "x" }),
        None,
    )
    .await;
    assert_eq!(header(&login, "access-control-allow-origin"), None);
    assert_eq!(
        header(&login, "vary"),
        Some("Origin"),
        "caches keep origins apart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_no_origin_is_allowed() {
    let host = host_allowing(&[]).await;
    let answer = preflight(&host, "/login", GAME).await;
    assert_eq!(answer.status(), 403);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    let login = post_from(
        &host,
        GAME,
        "/login",
        json!({ "account": "elsewhere" }),
        None,
    )
    .await;
    assert_eq!(
        login.status(),
        200,
        "served: the browser, not the host, withholds the reply"
    );
    assert_eq!(header(&login, "access-control-allow-origin"), None);
    // An OPTIONS that is not a preflight is a method the path does not take.
    let (status, body) =
        crate::harness::send(reqwest::Client::new().request(Method::OPTIONS, host.url("/logic")))
            .await;
    assert_eq!((status, body["ret"].as_i64()), (405, Some(-2)), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn any_origin_is_echoed_when_all_are_allowed() {
    let host = host_allowing(&["*"]).await;
    let origin = "http://localhost:5173";
    let answer = preflight(&host, "/health", origin).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(origin));
    assert_eq!(header(&answer, "access-control-allow-methods"), Some("GET"));
}
