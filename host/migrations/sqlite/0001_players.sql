-- Schema v1 of the embedded store: players, module data and sessions.
CREATE TABLE players (
    player_id  TEXT PRIMARY KEY,
    account    TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    head_img   TEXT NOT NULL,
    gold       INTEGER NOT NULL CHECK (gold >= 0),
    diamond    INTEGER NOT NULL CHECK (diamond >= 0),
    items      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE module_data (
    player_id TEXT NOT NULL REFERENCES players (player_id),
    module    TEXT NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (player_id, module)
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    player_id  TEXT NOT NULL REFERENCES players (player_id),
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
