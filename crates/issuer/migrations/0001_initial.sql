-- Initial schema of the ajwt-issuer SQLite store
-- (draft-goswami-agentic-jwt-00 §4.7.1 agent registry, §4.7.2 workflow
-- registry, OAuth clients of the issuer). Tables are STRICT so a value of the
-- wrong type is refused at write time rather than discovered at read time.

-- One row per registration of an agent (§4.7.1, §5.4.2 step 5). A
-- re-registration (§5.4.4) adds a row with version + 1; rows are never
-- updated except for `revoked`.
CREATE TABLE agent_registrations (
    id               INTEGER PRIMARY KEY,
    agent_id         TEXT    NOT NULL,
    -- 1 for the first registration, +1 for each re-registration (§5.4.4).
    version          INTEGER NOT NULL CHECK (version >= 1),
    -- "reg_" || agent_id || "_" || reg_second (§5.4.2 step 4).
    registration_id  TEXT    NOT NULL,
    -- The Unix second in registration_id; strictly increasing per agent.
    reg_second       INTEGER NOT NULL,
    -- "sha256:<64 lowercase hex>" (§4.2.1).
    checksum         TEXT    NOT NULL,
    -- "jcs" or "python-ref".
    checksum_profile TEXT    NOT NULL,
    -- JWK object as JSON text, or NULL.
    public_jwk       TEXT,
    -- RFC 7638 thumbprint of public_jwk, or NULL.
    jwk_thumbprint   TEXT,
    -- JSON array of scope strings, or NULL for "unrestricted".
    allowed_scopes   TEXT,
    app_id           TEXT,
    -- The registered specification, JSON text (audit).
    spec_json        TEXT    NOT NULL,
    -- Unix milliseconds (§5.4.2 registered_at).
    registered_at_ms INTEGER NOT NULL,
    revoked          INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) STRICT;

-- Latest-registration and history lookups by agent_id (§4.7.3 "indexed
-- database queries on agent_id"): agent_id is the leading column, so this
-- index also serves plain `WHERE agent_id = ?`; it makes versions unique per
-- agent.
CREATE UNIQUE INDEX agent_registrations_agent_version
    ON agent_registrations (agent_id, version);

-- A checksum is registered at most once, across all agents and versions
-- (§5.4.2 step 3).
CREATE UNIQUE INDEX agent_registrations_checksum
    ON agent_registrations (checksum);

-- Registration ids are unique (§4.7.1).
CREATE UNIQUE INDEX agent_registrations_registration_id
    ON agent_registrations (registration_id);

-- Workflows (§4.7.2) are immutable; `definition` is the serde JSON of
-- ajwt_protocol::registration::Workflow (steps in order).
CREATE TABLE workflows (
    workflow_id   TEXT    NOT NULL PRIMARY KEY,
    definition    TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;

-- OAuth clients (RFC 6749 §2) of the issuer. Only an Argon2id PHC string of
-- the secret is stored.
CREATE TABLE clients (
    client_id      TEXT    NOT NULL PRIMARY KEY,
    secret_hash    TEXT    NOT NULL,
    -- JSON array of scope strings.
    allowed_scopes TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    description    TEXT
) STRICT;
