-- The tamper-evident audit trail (§9.1.1, §9.1.4, §9.4.1; I-100..I-104), as
-- the SQLite migrations/0003_audit.sql. Appends from every replica form ONE
-- chain: each batch is written under a transaction-scoped advisory lock
-- (I-115), reading the head and inserting after it in one step.
CREATE TABLE audit_log (
    -- 1, 2, 3, ... without gaps.
    seq             BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    time_ms         BIGINT NOT NULL,
    event           TEXT   NOT NULL,
    client_id       TEXT,
    agent_id        TEXT,
    registration_id TEXT,
    jti             TEXT,
    error_code      TEXT,
    intent_hash     TEXT,
    -- Further fields of the event kind, a JSON object (text: hashed as stored).
    detail          TEXT   NOT NULL,
    prev_hash       TEXT   NOT NULL,
    record_hash     TEXT   NOT NULL
);

-- Append-only at the SQL level too (someone who can drop triggers can
-- still edit: the hash chain detects it, `ajwt audit verify`).
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Signed checkpoints of the chain's head (I-104).
CREATE TABLE audit_checkpoints (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq          BIGINT NOT NULL,
    record_hash  TEXT   NOT NULL,
    signed_at_ms BIGINT NOT NULL,
    jws          TEXT   NOT NULL
);
