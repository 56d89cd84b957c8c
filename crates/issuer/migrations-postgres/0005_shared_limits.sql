-- State shared by replicas for the limits of the hardening issue (I-113):
-- GCRA rate-limit buckets, the penalty box and one-time values (DPoP proof
-- jti, RFC 9449 §11.1), so N replicas do not multiply an attacker's budget.

-- GCRA: `tat_ms` is the theoretical arrival time of the next cell; the
-- bucket is full again once tat_ms <= now (then it may be pruned).
CREATE TABLE rate_limit_buckets (
    key    TEXT   NOT NULL PRIMARY KEY,
    tat_ms BIGINT NOT NULL
);

CREATE INDEX rate_limit_buckets_tat ON rate_limit_buckets (tat_ms);

-- The penalty box: `key` is refused until `until_ms`.
CREATE TABLE rate_limit_blocks (
    key      TEXT   NOT NULL PRIMARY KEY,
    until_ms BIGINT NOT NULL
);

CREATE INDEX rate_limit_blocks_until ON rate_limit_blocks (until_ms);

-- One-time values, remembered until `expires_ms`.
CREATE TABLE once_values (
    scope      TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, value)
);

CREATE INDEX once_values_expires ON once_values (expires_ms);
