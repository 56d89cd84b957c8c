-- Initial schema of the ajwt-issuer PostgreSQL store, equivalent to the
-- SQLite migrations/0001_initial.sql (draft-goswami-agentic-jwt-00 §4.7.1
-- agent registry, §4.7.2 workflow registry, OAuth clients of the issuer).
-- Integers are BIGINT (SQLite INTEGER is 64-bit), flags are BOOLEAN.

-- One row per registration of an agent (§4.7.1, §5.4.2 step 5). A
-- re-registration (§5.4.4) adds a row with version + 1; rows are never
-- updated except for `revoked` (and `spec_json` when it is re-sealed, I-112).
CREATE TABLE agent_registrations (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id         TEXT    NOT NULL,
    -- 1 for the first registration, +1 for each re-registration (§5.4.4).
    version          BIGINT  NOT NULL CHECK (version >= 1),
    -- "reg_" || agent_id || "_" || timestamp (§5.4.2 step 4, I-70).
    registration_id  TEXT    NOT NULL,
    -- The Unix second of the registration.
    reg_second       BIGINT  NOT NULL,
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
    -- The registered specification, JSON text (sealed at rest, I-112).
    spec_json        TEXT    NOT NULL,
    -- Unix milliseconds (§5.4.2 registered_at).
    registered_at_ms BIGINT  NOT NULL,
    revoked          BOOLEAN NOT NULL DEFAULT FALSE
);

-- Versions are unique per agent: with the per-agent advisory lock of
-- register_agent (I-115) this is a backstop across replicas.
CREATE UNIQUE INDEX agent_registrations_agent_version
    ON agent_registrations (agent_id, version);

-- A checksum is registered at most once, across all agents and versions
-- (§5.4.2 step 3); concurrent registrations of one checksum by two agents
-- on two replicas meet here (exactly one wins).
CREATE UNIQUE INDEX agent_registrations_checksum
    ON agent_registrations (checksum);

-- Registration ids are unique (§4.7.1).
CREATE UNIQUE INDEX agent_registrations_registration_id
    ON agent_registrations (registration_id);

-- Workflows (§4.7.2) are immutable; `definition` is the serde JSON of
-- ajwt_protocol::registration::Workflow (steps in order).
CREATE TABLE workflows (
    workflow_id   TEXT   NOT NULL PRIMARY KEY,
    definition    TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- OAuth clients (RFC 6749 §2) of the issuer. Only a hash of the secret is
-- stored (I-72).
CREATE TABLE clients (
    client_id      TEXT   NOT NULL PRIMARY KEY,
    secret_hash    TEXT   NOT NULL,
    -- JSON array of scope strings.
    allowed_scopes TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    description    TEXT
);
