-- Pushes (docs/PROTOCOL.md, "Pushes"): the outbox every host delivers from, written in the
-- transaction of the turn that pushed. One row per push, to a player or to a module's group
-- (fanned out when delivered). Ids come from `push_counter`, whose row each pushing
-- transaction locks last, up to its commit: ids are given in commit order, so "every push
-- after N" is a complete cursor (AUTO_INCREMENT hands them out in insert order).
CREATE TABLE pushes (
    id          BIGINT NOT NULL PRIMARY KEY,
    target_kind VARCHAR(16) NOT NULL,
    target      VARCHAR(64) NOT NULL,
    module      VARCHAR(64) NOT NULL,
    kind        VARCHAR(64) NOT NULL,
    data        MEDIUMTEXT NOT NULL,
    persistent  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    KEY pushes_by_target (target_kind, target, id),
    KEY pushes_by_age (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE push_counter (
    id   BIGINT NOT NULL PRIMARY KEY,
    last BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO push_counter (id, last) VALUES (1, 0);
-- The members of each module's groups (a guild, a room), since `joined_at`.
CREATE TABLE push_groups (
    module     VARCHAR(64) NOT NULL,
    group_name VARCHAR(64) NOT NULL,
    player_id  VARCHAR(64) NOT NULL,
    joined_at  BIGINT NOT NULL,
    PRIMARY KEY (module, group_name, player_id),
    KEY push_groups_by_player (player_id),
    FOREIGN KEY (player_id) REFERENCES players (player_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- Each fleet host's report says how many players have a socket open on it (the console).
ALTER TABLE fleet_hosts ADD COLUMN players_online BIGINT NOT NULL DEFAULT 0;
