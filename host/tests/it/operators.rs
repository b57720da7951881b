//! The admin API's players and audit log: find, read, grant, revoke, and what is kept.

use crate::harness::TestHost;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_operator_finds_a_player_and_reads_the_record_and_module_data() {
    let host = TestHost::start().await;
    let (player_id, token) = host.login("opal").await;
    host.ok(&token, "1001", json!({})).await; // the activity module keeps a streak

    let (status, found) = host
        .admin(Method::GET, "/admin/players?account=opal", None)
        .await;
    assert_eq!(status, 200, "{found}");
    let players = found["players"].as_array().unwrap();
    assert_eq!(players.len(), 1);
    assert_eq!(players[0]["player"]["player_id"], player_id.as_str());
    assert_eq!(players[0]["account"], "opal");

    let (_, none) = host
        .admin(Method::GET, "/admin/players?account=nobody", None)
        .await;
    assert_eq!(none["players"], json!([]));
    let (status, body) = host.admin(Method::GET, "/admin/players", None).await;
    assert_eq!((status, body["ret"].as_i64()), (400, Some(-2)), "{body}");

    let (status, shown) = host
        .admin(Method::GET, &format!("/admin/players/{player_id}"), None)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["player"]["player"]["gold"], 1100);
    // Stored with the schema that wrote it (the console shows data as it is stored).
    let activity = &shown["player"]["modules"]["activity"];
    assert_eq!(
        (
            &activity["streak"]["days"],
            &activity["best"],
            &activity["$schema"]
        ),
        (&json!(1), &json!(1), &json!(2)),
        "{activity}"
    );

    let (status, missing) = host.admin(Method::GET, "/admin/players/nope", None).await;
    assert_eq!(
        (status, missing["ret"].as_i64()),
        (404, Some(-1)),
        "{missing}"
    );
}

#[tokio::test]
async fn a_grant_changes_balances_with_a_reason_kept_in_the_audit_log() {
    let host = TestHost::start().await;
    let (player_id, token) = host.login("gia").await;
    let path = format!("/admin/players/{player_id}/grant");

    let (status, granted) = host.admin_post(&path,
        json!({ "operator": "ops-ann", "reason": "ticket 42: lost purchase", "gold": 500, "items": { "potion": 2 } }),
    )
    .await;
    assert_eq!(
        (status, granted["ret"].as_i64()),
        (200, Some(0)),
        "{granted}"
    );
    let record = host.ok(&token, "1203", json!({})).await;
    assert_eq!(record["gold"], 1500);
    assert_eq!(record["items"]["potion"], 2);

    // Taking more than there is changes nothing and says why.
    let (status, refused) = host
        .admin_post(
            &path,
            json!({ "operator": "ops-ann", "reason": "oops", "gold": -2000 }),
        )
        .await;
    assert_eq!(
        (status, refused["ret"].as_i64()),
        (200, Some(1)),
        "{refused}"
    );
    assert!(
        refused["msg"].as_str().unwrap().contains("1500 gold"),
        "{refused}"
    );
    let (_, refused) = host
        .admin_post(
            &path,
            json!({ "operator": "ops-ann", "reason": "oops", "items": { "potion": -3 } }),
        )
        .await;
    assert_eq!(refused["ret"], 1, "{refused}");
    assert_eq!(host.ok(&token, "1203", json!({})).await["gold"], 1500);

    // Who and why are required; a grant must change something.
    for body in [
        json!({ "reason": "r", "gold": 1 }),
        json!({ "operator": "o", "reason": " ", "gold": 1 }),
        json!({ "operator": "o", "reason": "r" }),
        json!({ "operator": "o", "reason": "r", "gold": "lots" }),
    ] {
        let (status, error) = host.admin_post(&path, body.clone()).await;
        assert_eq!(
            (status, error["ret"].as_i64()),
            (400, Some(-2)),
            "{body}: {error}"
        );
        assert!(error["msg"].as_str().unwrap().len() > 10, "{error}");
    }

    let (_, log) = host.admin(Method::GET, "/admin/audit", None).await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        1,
        "refused and invalid grants leave no row: {log}"
    );
    let entry = &entries[0];
    assert_eq!(entry["operator"], "ops-ann");
    assert_eq!(entry["action"], "grant");
    assert_eq!(entry["player_id"], player_id.as_str());
    assert_eq!(entry["reason"], "ticket 42: lost purchase");
    assert_eq!(entry["before"]["gold"], 1000);
    assert_eq!(entry["after"]["gold"], 1500);
    assert_eq!(entry["after"]["items"]["potion"], 2);

    // The audit log survives a restart, and the API has no way to change it.
    let (dirs, _) = host.stop().await;
    let host = TestHost::start_in(dirs, |_| {}).await;
    let (_, log) = host
        .admin(
            Method::GET,
            &format!("/admin/audit?player_id={player_id}"),
            None,
        )
        .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 1);
    for method in [Method::DELETE, Method::PUT, Method::POST] {
        let (status, _) = host.admin(method.clone(), "/admin/audit", None).await;
        assert_eq!(status, 405, "{method}");
    }
}

#[tokio::test]
async fn a_revoke_logs_the_player_out_at_their_next_call() {
    let host = TestHost::start().await;
    let (player_id, phone) = host.login("rex").await;
    let (_, laptop) = host.login("rex").await;
    let (_, other) = host.login("someone-else").await;
    host.ok(&phone, "1203", json!({})).await; // cached by the host

    let (status, revoked) = host
        .admin_post(
            &format!("/admin/players/{player_id}/revoke"),
            json!({ "operator": "ops-bo", "reason": "account shared" }),
        )
        .await;
    assert_eq!(
        (status, revoked["ret"].as_i64()),
        (200, Some(0)),
        "{revoked}"
    );
    assert_eq!(revoked["audit"]["before"]["sessions"], 2);

    for token in [&phone, &laptop] {
        let (status, body) = host.logic(token, "1203", json!({})).await;
        assert_eq!((status, body["ret"].as_i64()), (401, Some(-3)), "{body}");
    }
    host.ok(&other, "1203", json!({})).await;
    let (_, fresh) = host.login("rex").await;
    host.ok(&fresh, "1203", json!({})).await;

    let (_, log) = host.admin(Method::GET, "/admin/audit?limit=1", None).await;
    assert_eq!(log["entries"][0]["action"], "revoke");
    assert_eq!(log["entries"][0]["reason"], "account shared");
    let (status, _) = host
        .admin_post(
            "/admin/players/nope/revoke",
            json!({ "operator": "o", "reason": "r" }),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_console_page_is_served_without_a_token_and_its_data_is_not() {
    let dirs = crate::harness::Dirs::new();
    for module in crate::harness::DEMO_MODULES {
        dirs.install(module);
    }
    let host = TestHost::start_in(dirs, |config| {
        config.admin.token = Some("s3cret-token".into());
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| {
        client
            .get(format!("http://{}{path}", host.admin_addr))
            .send()
    };

    let page = get("/console/").await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |name: &str| page.headers()[name].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    assert!(header("content-security-policy").contains("default-src 'self'"));
    assert!(page.text().await.unwrap().contains("/console/console.js"));
    for (path, content_type) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let file = get(path).await.unwrap();
        assert_eq!(file.status(), 200, "{path}");
        assert!(file.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content_type));
    }
    assert_eq!(get("/console").await.unwrap().status(), 301);

    let (status, body) = host
        .admin(Method::GET, "/admin/players?account=anyone", None)
        .await;
    assert_eq!((status, body["ret"].as_i64()), (401, Some(-3)), "{body}");
    let (status, _) = host
        .admin(Method::GET, "/admin/audit", Some("s3cret-token"))
        .await;
    assert_eq!(status, 200);
}
