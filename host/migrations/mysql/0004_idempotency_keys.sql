-- The replies of keyed commands (the `Idempotency-Key` header), by player and key, written in
-- the same transaction as the command's write. Rows older than 24 h are ignored by lookups and
-- deleted in the background (`created_at` index). A key is printable ASCII (checked by the
-- host), so it is stored as ASCII: the primary key stays well within InnoDB's limit.
CREATE TABLE idempotency_keys (
    player_id   VARCHAR(64) NOT NULL,
    idem_key    VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    fingerprint CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    reply       MEDIUMTEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (player_id, idem_key),
    KEY idempotency_keys_by_age (created_at),
    FOREIGN KEY (player_id) REFERENCES players (player_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
