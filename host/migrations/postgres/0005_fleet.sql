-- The fleet's module releases (`game-host publish`): each release stored once, by its identity
-- (the library's sha256, with its tables' if it has any); which release each module should
-- run on every host; a change counter the hosts poll; and what each host serves.
-- The library is stored zlib-compressed.
CREATE TABLE module_releases (
    release_id   TEXT PRIMARY KEY,
    module       TEXT NOT NULL,
    version      TEXT NOT NULL,
    library_zlib BYTEA NOT NULL,
    signature    BYTEA,
    tables       TEXT,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL
);
CREATE INDEX module_releases_by_module ON module_releases (module, published_at);
-- Per module: the release every player runs, the one before it (a rollback's target), a
-- canary serving a share of the players, and until when a new release is watched.
CREATE TABLE module_desired (
    module         TEXT PRIMARY KEY,
    release_id     TEXT NOT NULL,
    previous_id    TEXT,
    canary_id      TEXT,
    canary_percent SMALLINT NOT NULL,
    watch_until    BIGINT NOT NULL,
    changed_at     BIGINT NOT NULL
);
-- One row: bumped by every change of `module_desired`, so a host's poll reads one integer.
CREATE TABLE fleet_changes (
    id      INT PRIMARY KEY,
    counter BIGINT NOT NULL
);
INSERT INTO fleet_changes (id, counter) VALUES (1, 0);
CREATE TABLE fleet_hosts (
    host_id        TEXT PRIMARY KEY,
    address        TEXT NOT NULL,
    binary_version TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL,
    modules        TEXT NOT NULL
);
