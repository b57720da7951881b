-- Schema v4 of the embedded store: the fleet's module releases (`game-host publish`), stored
-- once by identity (the library's sha256, with its tables' if it has any); which release each
-- module should run; a change counter the host polls; and what the host serves. A single
-- host uses them as a fleet of one, so the same commands work from day one.
-- The library is stored zlib-compressed.
CREATE TABLE module_releases (
    release_id   TEXT PRIMARY KEY,
    module       TEXT NOT NULL,
    version      TEXT NOT NULL,
    library_zlib BLOB NOT NULL,
    signature    BLOB,
    tables       TEXT,
    published_at INTEGER NOT NULL,
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
    canary_percent INTEGER NOT NULL,
    watch_until    INTEGER NOT NULL,
    changed_at     INTEGER NOT NULL
);
CREATE TABLE fleet_changes (
    id      INTEGER PRIMARY KEY,
    counter INTEGER NOT NULL
);
INSERT INTO fleet_changes (id, counter) VALUES (1, 0);
CREATE TABLE fleet_hosts (
    host_id        TEXT PRIMARY KEY,
    address        TEXT NOT NULL,
    binary_version TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    modules        TEXT NOT NULL
);
