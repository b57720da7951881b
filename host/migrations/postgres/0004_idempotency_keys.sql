-- The replies of keyed commands (the `Idempotency-Key` header), by player and key, written by
-- the same statement as the command's write. Rows older than 24 h are ignored by lookups and
-- deleted in the background (`created_at` index).
CREATE TABLE idempotency_keys (
    player_id   TEXT NOT NULL REFERENCES players (player_id),
    idem_key    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    reply       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (player_id, idem_key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
