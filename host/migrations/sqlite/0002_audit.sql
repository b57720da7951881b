-- Schema v2 of the embedded store: the audit log, append-only (triggers refuse UPDATE and
-- DELETE).
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    operator  TEXT NOT NULL,
    action    TEXT NOT NULL,
    player_id TEXT NOT NULL,
    reason    TEXT NOT NULL,
    before    TEXT NOT NULL,
    after     TEXT NOT NULL
);
CREATE INDEX audit_by_player ON audit (player_id, id);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
