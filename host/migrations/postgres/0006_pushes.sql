-- Pushes (docs/PROTOCOL.md, "Pushes"): the outbox every host delivers from, written in the
-- transaction of the turn that pushed. One row per push, to a player or to a module's group
-- (fanned out when delivered). Ids come from `push_counter`, whose row each pushing
-- transaction locks last, up to its commit: ids are given in commit order, so "every push
-- after N" is a complete cursor (a sequence would hand them out in start order).
CREATE TABLE pushes (
    id          BIGINT PRIMARY KEY,
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
CREATE TABLE push_counter (
    id   BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO push_counter (id, last) VALUES (1, 0);
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
