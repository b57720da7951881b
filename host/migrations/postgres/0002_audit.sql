-- The operators' audit log. Rows are only ever added: UPDATE, DELETE and TRUNCATE raise.
CREATE TABLE audit (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms        BIGINT NOT NULL,
    operator     TEXT NOT NULL,
    action       TEXT NOT NULL,
    player_id    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    state_before TEXT NOT NULL,
    state_after  TEXT NOT NULL
);
CREATE INDEX audit_by_player ON audit (player_id, id);
CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_no_rewrite BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_is_append_only();
