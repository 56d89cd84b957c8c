-- Token records, status lists and agent activity (issue 13; §5.6, §9.3.2,
-- RFC 7009, RFC 7662, draft-ietf-oauth-status-list).

-- Token Status Lists (draft-ietf-oauth-status-list §4). `allocated` is a
-- bitmap of the indices ever handed out (never freed, so an index is never
-- reused within a list); the status bits themselves are the `revoked`
-- column of the token records. A list is full when used = size; a full list
-- with no token records left is deleted by pruning.
CREATE TABLE status_lists (
    -- AUTOINCREMENT: a pruned list's id (its URI) is never given to a new list.
    list_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    size          INTEGER NOT NULL CHECK (size > 0),
    allocated     BLOB    NOT NULL,
    used          INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= size),
    created_at_ms INTEGER NOT NULL
) STRICT;

-- One row per issued intent token (§9.3.2 "a server-side record of
-- delegation chains"), pruned after exp + leeway.
CREATE TABLE intent_tokens (
    jti             TEXT    NOT NULL PRIMARY KEY,
    agent_id        TEXT    NOT NULL,
    registration_id TEXT    NOT NULL,
    -- The client that requested the token (RFC 7009 §2.1 ownership).
    client_id       TEXT    NOT NULL,
    iat             INTEGER NOT NULL,
    exp             INTEGER NOT NULL,
    list_id         INTEGER NOT NULL,
    idx             INTEGER NOT NULL CHECK (idx >= 0),
    revoked         INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    revoked_at_ms   INTEGER
) STRICT;

CREATE UNIQUE INDEX intent_tokens_status ON intent_tokens (list_id, idx);
CREATE INDEX intent_tokens_exp ON intent_tokens (exp);
CREATE INDEX intent_tokens_agent ON intent_tokens (agent_id);
CREATE INDEX intent_tokens_registration ON intent_tokens (registration_id);

-- What a token's delegation chain contains (§9.3.2): every agent and
-- registration of the chain and every ancestor token (the parents' jti, I-82).
-- kind: 'agent', 'registration' or 'ancestor'.
CREATE TABLE intent_token_links (
    jti   TEXT NOT NULL REFERENCES intent_tokens (jti) ON DELETE CASCADE,
    kind  TEXT NOT NULL CHECK (kind IN ('agent', 'registration', 'ancestor')),
    value TEXT NOT NULL,
    PRIMARY KEY (jti, kind, value)
) STRICT;

CREATE INDEX intent_token_links_value ON intent_token_links (kind, value);

-- Per registration: when it first and last obtained a token (§5.6.1
-- VERIFIED) and when a different checksum was last presented for it
-- (§5.6.1 UPDATED, I-86).
CREATE TABLE registration_activity (
    registration_id     TEXT    NOT NULL PRIMARY KEY,
    agent_id            TEXT    NOT NULL,
    first_token_at_ms   INTEGER,
    last_token_at_ms    INTEGER,
    last_mismatch_at_ms INTEGER,
    revoked_at_ms       INTEGER
) STRICT;

CREATE INDEX registration_activity_agent ON registration_activity (agent_id);
