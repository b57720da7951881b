//! What only the embedded store has: its own schema history. The behaviour every store shares
//! is held by the contract suite (`host/tests/it/store_contract.rs`), which runs on SQLite too.

use super::*;

fn note(reason: &str) -> AuditNote {
    AuditNote {
        operator: "ops".into(),
        reason: reason.into(),
        at_ms: 7,
    }
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
    let store = SqliteStore::open(&path, Durability::Normal).unwrap();
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
async fn the_durability_setting_is_the_connections_synchronous_mode() {
    let dir = tempfile::tempdir().unwrap();
    for (durability, expected) in [(Durability::Normal, 1), (Durability::Full, 2)] {
        let store =
            SqliteStore::open(&dir.path().join(format!("{expected}.db")), durability).unwrap();
        let synchronous = store
            .with_conn(|conn| {
                conn.query_row("PRAGMA synchronous", [], |row| row.get::<_, i64>(0))
                    .map_err(db_error)
            })
            .await
            .unwrap();
        assert_eq!(synchronous, expected, "{durability:?}");
    }
}
