-- The operators' audit log. Rows are only ever added: UPDATE and DELETE raise. (TRUNCATE
-- skips triggers in MariaDB and MySQL: do not grant the host's user DROP on this table.)
CREATE TABLE audit (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms        BIGINT NOT NULL,
    operator     TEXT NOT NULL,
    action       VARCHAR(16) NOT NULL,
    player_id    VARCHAR(64) NOT NULL,
    reason       TEXT NOT NULL,
    state_before TEXT NOT NULL,
    state_after  TEXT NOT NULL,
    KEY audit_by_player (player_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the audit log is append-only';
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the audit log is append-only';
