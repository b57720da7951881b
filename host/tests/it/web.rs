//! `paths.static_dir`: the client listener serves the demo page and the SDK beside the API.

use crate::harness::{Dirs, TestHost, DEMO_MODULES};
use reqwest::header::ETAG;

/// The repository's `client/` folder: the demo page and the SDK, as the dev profile serves it.
const CLIENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../client");

async fn web_host(static_dir: &std::path::Path) -> TestHost {
    let dirs = Dirs::new();
    for module in DEMO_MODULES {
        dirs.install(module);
    }
    let static_dir = static_dir.to_owned();
    TestHost::start_in(dirs, move |config| {
        config.paths.static_dir = Some(static_dir)
    })
    .await
}

async fn get(host: &TestHost, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(host.url(path))
        .send()
        .await
        .expect("request")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_demo_page_and_the_sdk_are_served_with_their_types_and_revalidated() {
    let host = web_host(std::path::Path::new(CLIENT_DIR)).await;

    let page = get(&host, "/").await;
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let etag = header(&page, "etag").to_owned();
    assert!(!etag.is_empty(), "an ETag to revalidate with");
    let page_headers = get(&host, "/").await;
    assert!(page.text().await.unwrap().contains("demo/app.js"));

    for (path, content_type) in [
        ("/src/index.js", "text/javascript"),
        ("/demo/app.js", "text/javascript"),
        ("/demo/style.css", "text/css"),
    ] {
        let file = get(&host, path).await;
        assert_eq!(file.status(), 200, "{path}");
        assert!(
            header(&file, "content-type").starts_with(content_type),
            "{path}: {}",
            header(&file, "content-type")
        );
    }

    // A browser that has the page asks again with its ETag: nothing is sent twice.
    let again = reqwest::Client::new()
        .get(host.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers().get(ETAG).unwrap(), etag.as_str());
    let last_modified = header(&page_headers, "last-modified").to_owned();
    let again = reqwest::Client::new()
        .get(host.url("/"))
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "by date too ({last_modified})");

    let folder = get(&host, "/demo").await;
    assert_eq!(folder.status(), 301, "a folder redirects to its index");
    assert_eq!(header(&folder, "location"), "/demo/");
}

#[tokio::test]
async fn the_api_still_answers_and_unknown_or_hidden_files_get_the_api_404() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "<p>hi</p>").unwrap();
    std::fs::write(root.path().join(".env"), "SECRET=1").unwrap();
    std::fs::create_dir(root.path().join(".git")).unwrap();
    std::fs::write(root.path().join(".git/config"), "secret").unwrap();
    let host = web_host(root.path()).await;

    let (status, body) = host.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = host.get("/logic").await;
    assert_eq!(status, 405, "the API's own answer for a GET: {body}");

    for path in [
        "/missing.js",
        "/.env",
        "/.git/config",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
    ] {
        let (status, body) = host.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["msg"].is_string(),
            "{path}: a JSON error like the API's: {body}"
        );
    }
    let (status, _) = host.post("/index.html", &serde_json::json!({}), None).await;
    assert_eq!(status, 404, "files are only for GET and HEAD");
}

#[tokio::test]
async fn a_static_dir_that_is_not_a_folder_stops_the_start_with_what_to_do() {
    let missing = std::env::temp_dir().join("game-host-no-such-static-dir");
    let dirs = Dirs::new();
    let mut config = dirs.config();
    config.paths.static_dir = Some(missing.clone());
    let listeners = host::Listeners::bind(&config).unwrap();
    let deps = host::Deps::new(crate::harness::test_logger());
    let error = host::Host::start(config, deps, listeners)
        .await
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(text.contains("static_dir"), "{text}");
}
