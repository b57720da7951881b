-- The fleet's module releases (`game-host publish`): each release stored once, by its identity
-- (the library's sha256, with its tables' if it has any); which release each module should
-- run on every host; a change counter the hosts poll; and what each host serves. A library
-- is stored zlib-compressed; the server's max_allowed_packet must exceed its compressed size.
CREATE TABLE module_releases (
    release_id   VARCHAR(160) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    module       VARCHAR(64) NOT NULL,
    version      VARCHAR(255) NOT NULL,
    library_zlib LONGBLOB NOT NULL,
    signature    BLOB,
    tables       LONGTEXT,
    published_at BIGINT NOT NULL,
    published_by VARCHAR(255) NOT NULL,
    KEY module_releases_by_module (module, published_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- Per module: the release every player runs, the one before it (a rollback's target), a
-- canary serving a share of the players, and until when a new release is watched.
CREATE TABLE module_desired (
    module         VARCHAR(64) NOT NULL PRIMARY KEY,
    release_id     VARCHAR(160) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    previous_id    VARCHAR(160) CHARACTER SET ascii COLLATE ascii_bin,
    canary_id      VARCHAR(160) CHARACTER SET ascii COLLATE ascii_bin,
    canary_percent SMALLINT NOT NULL,
    watch_until    BIGINT NOT NULL,
    changed_at     BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- One row: bumped by every change of `module_desired`, so a host's poll reads one integer.
CREATE TABLE fleet_changes (
    id      INT NOT NULL PRIMARY KEY,
    counter BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO fleet_changes (id, counter) VALUES (1, 0);
CREATE TABLE fleet_hosts (
    host_id        VARCHAR(255) NOT NULL PRIMARY KEY,
    address        VARCHAR(255) NOT NULL,
    binary_version VARCHAR(64) NOT NULL,
    started_at     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    modules        MEDIUMTEXT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
