-- The issuer's signing keys, shared by every replica on the database
-- (issue 14, I-110; rotation I-90). One row per key, `kid` its RFC 7638
-- thumbprint; times are Unix seconds. A live key has `retired_at` NULL and
-- its PKCS#8 PEM private key in `private_key_pem` (sealed under the
-- key-encryption key, I-112); retiring a key sets `retired_at` and deletes
-- the private key, keeping the public record for `ajwt keys list` (at most
-- MAX_RETIRED_KEY_RECORDS such records are kept).
CREATE TABLE signing_keys (kid TEXT NOT NULL PRIMARY KEY, alg TEXT NOT NULL, created_at INTEGER NOT NULL, activates_at INTEGER NOT NULL, retires_at INTEGER, retired_at INTEGER, private_key_pem TEXT) STRICT;
