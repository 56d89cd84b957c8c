//! Signing keys, JWKS, JWS signing/verification and agent public keys. (being written)
