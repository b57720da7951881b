-- A counter every write to a player (a turn's, an operator's grant) increases: a turn writes
-- only if the player's version is still the one it read (the server store's optimistic turn).
ALTER TABLE players ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
