-- The tamper-evident audit trail (draft-goswami-agentic-jwt-00 §9.1.1 "Log
-- all checksum mismatch events", §9.1.4 "Log all registry access for audit
-- trails", §9.4.1 intent hash; I-100..I-103). One hash chain: record `seq`
-- carries `prev_hash`, the `record_hash` of record `seq - 1` (64 zeros for
-- seq 1), and its own `record_hash`, the lowercase hex SHA-256 of the RFC
-- 8785 (JCS) form of the record without `record_hash` (crates/issuer/src/audit.rs).
-- No secrets or tokens are stored; prompts only inside the agent checksum.
CREATE TABLE audit_log (
    -- 1, 2, 3, ... without gaps; assigned under the write lock.
    seq             INTEGER PRIMARY KEY CHECK (seq >= 1),
    -- Unix milliseconds.
    time_ms         INTEGER NOT NULL,
    -- Event kind, e.g. "agent_registered", "token_issued", "token_refused".
    event           TEXT    NOT NULL,
    -- The authenticated client that caused the event (NULL: the issuer itself).
    client_id       TEXT,
    agent_id        TEXT,
    registration_id TEXT,
    jti             TEXT,
    -- The OAuth error code of a refusal (RFC 6749 §5.2, §4.5).
    error_code      TEXT,
    -- SHA-256 over the JCS form of the issued claims (§9.4.1, I-101).
    intent_hash     TEXT,
    -- Further fields of the event kind, a JSON object.
    detail          TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    record_hash     TEXT    NOT NULL
) STRICT;

-- Append-only at the SQL level too: the issuer never updates or deletes a
-- record. (Someone who can write the file can drop these triggers; the hash
-- chain is what detects that, `ajwt audit verify`.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Signed checkpoints of the chain's head (I-104): every
-- `audit_checkpoint_interval` and at shutdown, `serve` signs
-- {iss, seq, record_hash, iat} with the issuer key (JWS typ
-- "audit-checkpoint+jwt"), stores it here and logs it on target `audit`, so
-- a copy kept outside the file makes truncation of the tail detectable.
CREATE TABLE audit_checkpoints (
    id           INTEGER PRIMARY KEY,
    seq          INTEGER NOT NULL,
    record_hash  TEXT    NOT NULL,
    signed_at_ms INTEGER NOT NULL,
    jws          TEXT    NOT NULL
) STRICT;
