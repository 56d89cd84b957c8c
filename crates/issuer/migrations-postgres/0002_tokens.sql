-- Token records, status lists and agent activity (issue 13; §5.6, §9.3.2,
-- RFC 7009, RFC 7662, draft-ietf-oauth-status-list), as the SQLite
-- migrations/0002_tokens.sql.

-- Token Status Lists (draft-ietf-oauth-status-list §4). `allocated` is a
-- bitmap of the indices ever handed out (never freed); the status bits are
-- the `revoked` column of the token records. Allocation runs under one
-- advisory lock (I-115), so replicas never hand out one index twice.
CREATE TABLE status_lists (
    -- An identity: a pruned list's id (its URI) is never given to a new list.
    list_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size          BIGINT NOT NULL CHECK (size > 0),
    allocated     BYTEA  NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= size),
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX status_lists_open ON status_lists (list_id) WHERE used < size;

-- One row per issued intent token (§9.3.2), pruned after exp + leeway.
CREATE TABLE intent_tokens (
    jti             TEXT    NOT NULL PRIMARY KEY,
    agent_id        TEXT    NOT NULL,
    registration_id TEXT    NOT NULL,
    -- The client that requested the token (RFC 7009 §2.1 ownership).
    client_id       TEXT    NOT NULL,
    iat             BIGINT  NOT NULL,
    exp             BIGINT  NOT NULL,
    list_id         BIGINT  NOT NULL,
    idx             BIGINT  NOT NULL CHECK (idx >= 0),
    revoked         BOOLEAN NOT NULL DEFAULT FALSE,
    revoked_at_ms   BIGINT
);

CREATE UNIQUE INDEX intent_tokens_status ON intent_tokens (list_id, idx);
CREATE INDEX intent_tokens_exp ON intent_tokens (exp);
CREATE INDEX intent_tokens_agent ON intent_tokens (agent_id);
CREATE INDEX intent_tokens_registration ON intent_tokens (registration_id);

-- What a token's delegation chain contains (§9.3.2, I-82).
CREATE TABLE intent_token_links (
    jti   TEXT NOT NULL REFERENCES intent_tokens (jti) ON DELETE CASCADE,
    kind  TEXT NOT NULL CHECK (kind IN ('agent', 'registration', 'ancestor')),
    value TEXT NOT NULL,
    PRIMARY KEY (jti, kind, value)
);

CREATE INDEX intent_token_links_value ON intent_token_links (kind, value);

-- Per registration: token and mismatch times (§5.6.1, I-86).
CREATE TABLE registration_activity (
    registration_id     TEXT   NOT NULL PRIMARY KEY,
    agent_id            TEXT   NOT NULL,
    first_token_at_ms   BIGINT,
    last_token_at_ms    BIGINT,
    last_mismatch_at_ms BIGINT,
    revoked_at_ms       BIGINT
);

CREATE INDEX registration_activity_agent ON registration_activity (agent_id);
