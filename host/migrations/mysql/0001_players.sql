-- Players, each module's private data per player, and sessions (by token hash).
-- utf8mb4_bin: text compares byte for byte, as on SQLite and PostgreSQL ("Alice" is not
-- "alice").
CREATE TABLE players (
    player_id  VARCHAR(64) NOT NULL PRIMARY KEY,
    account    VARCHAR(64) NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    head_img   TEXT NOT NULL,
    gold       BIGINT NOT NULL CHECK (gold >= 0),
    diamond    BIGINT NOT NULL CHECK (diamond >= 0),
    items      MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE module_data (
    player_id VARCHAR(64) NOT NULL,
    module    VARCHAR(64) NOT NULL,
    data      MEDIUMTEXT NOT NULL,
    PRIMARY KEY (player_id, module),
    FOREIGN KEY (player_id) REFERENCES players (player_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE sessions (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    player_id  VARCHAR(64) NOT NULL,
    expires_at BIGINT NOT NULL,
    KEY sessions_by_expiry (expires_at),
    KEY sessions_by_player (player_id),
    FOREIGN KEY (player_id) REFERENCES players (player_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
