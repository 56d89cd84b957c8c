-- The issuer's signing keys, shared by every replica (I-110): a key rotated
-- on one replica signs and verifies on all. Same columns as the SQLite
-- migrations/0004_signing_keys.sql. `private_key_pem` holds the sealed
-- (AES-256-GCM, I-112) PKCS#8 PEM and is NULL once the key is retired.
CREATE TABLE signing_keys (
    kid             TEXT   NOT NULL PRIMARY KEY,
    alg             TEXT   NOT NULL,
    created_at      BIGINT NOT NULL CHECK (created_at >= 0),
    activates_at    BIGINT NOT NULL CHECK (activates_at >= 0),
    retires_at      BIGINT CHECK (retires_at >= 0),
    retired_at      BIGINT CHECK (retired_at >= 0),
    private_key_pem TEXT,
    -- A retired key keeps no private key.
    CHECK (retired_at IS NULL OR private_key_pem IS NULL)
);
