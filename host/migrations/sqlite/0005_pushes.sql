-- Pushes (docs/PROTOCOL.md, "Pushes"): the outbox every host delivers from, written in the
-- transaction of the turn that pushed. One row per push, to a player or to a module's group
-- (fanned out when delivered). AUTOINCREMENT: ids never come back after old rows are pruned,
-- so "every push after N" stays a complete cursor; the one writer gives them in commit order.
CREATE TABLE pushes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind TEXT NOT NULL,
    target      TEXT NOT NULL,
    module      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    persistent  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX pushes_by_target ON pushes (target_kind, target, id);
CREATE INDEX pushes_by_age ON pushes (created_at);
-- The members of each module's groups (a guild, a room), since `joined_at`.
CREATE TABLE push_groups (
    module     TEXT NOT NULL,
    group_name TEXT NOT NULL,
    player_id  TEXT NOT NULL REFERENCES players (player_id),
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (module, group_name, player_id)
);
CREATE INDEX push_groups_by_player ON push_groups (player_id);
-- Each fleet host's report says how many players have a socket open on it (the console).
ALTER TABLE fleet_hosts ADD COLUMN players_online BIGINT NOT NULL DEFAULT 0;
