use super::*;
use serde_json::json;

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("game.db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn login_creates_once_then_finds_the_same_player() {
    let (_dir, store) = open();
    let first = store
        .login("alice", Player::new("p1", "Alice", ""), 1)
        .await
        .unwrap();
    let again = store
        .login("alice", Player::new("p2", "Other", ""), 2)
        .await
        .unwrap();
    assert_eq!(first.player_id, "p1");
    assert_eq!(again, first);
}

#[tokio::test]
async fn sessions_expire_and_end() {
    let (_dir, store) = open();
    store
        .login("alice", Player::new("p1", "Alice", ""), 0)
        .await
        .unwrap();
    store.create_session("h1", "p1", 100).await.unwrap();
    assert_eq!(
        store.session("h1", 99).await.unwrap(),
        Some(SessionRecord {
            player_id: "p1".into(),
            expires_at_ms: 100
        })
    );
    assert_eq!(store.session("h1", 100).await.unwrap(), None);
    assert_eq!(store.session("nope", 0).await.unwrap(), None);
    assert!(store.end_session("h1").await.unwrap());
    assert!(!store.end_session("h1").await.unwrap());
}

#[tokio::test]
async fn commit_writes_record_and_module_data_and_module_data_is_per_module() {
    let (_dir, store) = open();
    let mut player = store
        .login("alice", Player::new("p1", "Alice", ""), 0)
        .await
        .unwrap();
    player.gold = 10;
    player.items.insert("sword".into(), 2);
    let data = json!({ "streak": 3 }).as_object().unwrap().clone();
    store
        .commit("p1", "activity", Some(&player), Some(&data), 5)
        .await
        .unwrap();
    let (read, activity) = store.load("p1", "activity").await.unwrap();
    assert_eq!(read, player);
    assert_eq!(activity, data);
    let (_, mall) = store.load("p1", "mall").await.unwrap();
    assert!(
        mall.is_empty(),
        "another module's data must not show: {mall:?}"
    );
}

#[tokio::test]
async fn a_failed_commit_changes_nothing() {
    let (_dir, store) = open();
    let mut player = store
        .login("alice", Player::new("p1", "Alice", ""), 0)
        .await
        .unwrap();
    let before = player.clone();
    player.gold = -1; // the CHECK constraint fails after the module data is written
    let data = json!({ "x": 1 }).as_object().unwrap().clone();
    let err = store.commit("p1", "m", Some(&player), Some(&data), 1).await;
    assert!(matches!(err, Err(StoreError::Unavailable(_))), "{err:?}");
    let (read, module_data) = store.load("p1", "m").await.unwrap();
    assert_eq!(read, before);
    assert!(module_data.is_empty());
}

#[tokio::test]
async fn data_survives_reopening() {
    let (dir, store) = open();
    store
        .login("alice", Player::new("p1", "Alice", ""), 0)
        .await
        .unwrap();
    store.create_session("h1", "p1", i64::MAX).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&dir.path().join("game.db")).unwrap();
    assert_eq!(
        store
            .session("h1", 0)
            .await
            .unwrap()
            .map(|s| s.player_id)
            .as_deref(),
        Some("p1")
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = SqliteStore::open(&path).err().expect("refused");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[tokio::test]
async fn unknown_player_is_reported() {
    let (_dir, store) = open();
    assert!(matches!(
        store.load("ghost", "m").await,
        Err(StoreError::NoSuchPlayer(_))
    ));
}

fn note(reason: &str) -> AuditNote {
    AuditNote {
        operator: "ops".into(),
        reason: reason.into(),
        at_ms: 7,
    }
}

#[tokio::test]
async fn the_audit_log_cannot_be_rewritten_even_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .login("alice", Player::new("p1", "Alice", ""), 0)
        .await
        .unwrap();
    let grant = Grant {
        gold: 5,
        ..Grant::default()
    };
    store.grant("p1", &grant, &note("why")).await.unwrap();
    store.close().await.unwrap();

    let conn = Connection::open(&path).unwrap();
    for statement in ["UPDATE audit SET reason = 'rewritten'", "DELETE FROM audit"] {
        let err = conn.execute(statement, []).unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let reason: String = conn
        .query_row("SELECT reason FROM audit", [], |row| row.get(0))
        .unwrap();
    assert_eq!(reason, "why");
}

#[tokio::test]
async fn a_version_1_database_gains_the_audit_log_and_keeps_its_players() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("game.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA_V1} PRAGMA user_version = 1; COMMIT;"
        ))
        .unwrap();
        conn.execute(
            "INSERT INTO players VALUES ('p1', 'alice', 'Alice', '', 10, 0, '{}', 0, 0)",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let entry = store
        .grant(
            "p1",
            &Grant {
                gold: 1,
                ..Grant::default()
            },
            &note("upgrade"),
        )
        .await
        .unwrap();
    assert_eq!(entry.after["gold"], 11);
    assert_eq!(store.audit_log(None, 10).await.unwrap(), vec![entry]);
    store.close().await.unwrap();
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

#[tokio::test]
async fn a_refused_grant_writes_nothing() {
    let (_dir, store) = open();
    store
        .login("alice", Player::new("p1", "Alice", ""), 0)
        .await
        .unwrap();
    let take = Grant {
        gold: -5_000,
        ..Grant::default()
    };
    assert!(matches!(
        store.grant("p1", &take, &note("too much")).await,
        Err(StoreError::Refused(_))
    ));
    assert_eq!(store.audit_log(Some("p1"), 10).await.unwrap(), vec![]);
    assert_eq!(store.load("p1", "m").await.unwrap().0.gold, 1000);
}
