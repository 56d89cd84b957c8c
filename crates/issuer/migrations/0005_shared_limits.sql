-- Shared rate limits and one-time values (issue 14, I-113): the failure
-- limits of I-73 and the DPoP proof `jti` replay check (RFC 9449 §11.1)
-- hold for every issuer process on this database, not per process.
-- Every row expires; `prune_shared_state` deletes expired rows, so the
-- tables hold at most what the last minute or so of failures wrote.

-- GCRA buckets: `tat_ms` is the theoretical arrival time (Unix ms) of the
-- next cell; the bucket is full again once `tat_ms <= now`.
CREATE TABLE rate_limit_buckets (
    key    TEXT    NOT NULL PRIMARY KEY,
    tat_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_limit_buckets_tat ON rate_limit_buckets (tat_ms);

-- The penalty box: keys over a failure limit, refused until `until_ms`.
CREATE TABLE rate_limit_blocks (
    key      TEXT    NOT NULL PRIMARY KEY,
    until_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_limit_blocks_until ON rate_limit_blocks (until_ms);

-- One-time values (DPoP proof `jti`s), remembered until `expires_ms`.
CREATE TABLE once_values (
    scope      TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (scope, value)
) STRICT;
CREATE INDEX once_values_expires ON once_values (expires_ms);
