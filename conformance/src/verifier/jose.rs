//! Independent JOSE construction for the verifier mode: keys generated and
//! signatures made with josekit, compact JWS assembled by hand (so headers
//! and payloads can be exactly what a test needs, including tokens no
//! well-behaved issuer would produce: `alg: none`, HMAC confusion, tampered
//! parts). Nothing here uses ajwt-jose, ajwt-issuer or ajwt-verifier, so a
//! bug shared with our own implementation cannot hide itself.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwk::KeyPair as _;
use josekit::jws::JwsSigner;
use rand::RngCore as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::Error;

/// A signing algorithm the test issuer and the test agents can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigAlg {
    /// ECDSA P-256 with SHA-256 (RFC 7518 §3.4).
    #[value(name = "ES256")]
    Es256,
    /// Ed25519 (RFC 8037).
    #[value(name = "EdDSA")]
    EdDsa,
    /// Ed25519 under its RFC 9864 fully-specified name: the same signature
    /// as `EdDsa` (josekit's EdDSA signer), with `alg: "Ed25519"` in the
    /// header and the JWKS (josekit does not know the name; the header is
    /// written by hand here anyway).
    #[value(name = "Ed25519")]
    Ed25519,
}

impl SigAlg {
    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::Es256 => "ES256",
            SigAlg::EdDsa => "EdDSA",
            SigAlg::Ed25519 => "Ed25519",
        }
    }
}

/// A private key with its public JWK.
pub struct Key {
    alg: SigAlg,
    kid: String,
    public: Map<String, Value>,
    private: Map<String, Value>,
    signer: Box<dyn JwsSigner>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn setup(what: &str) -> impl Fn(josekit::JoseError) -> Error + '_ {
    move |e| Error::Setup(format!("cannot {what}: {e}"))
}

impl Key {
    /// A fresh key of `alg` named `kid`.
    pub fn generate(alg: SigAlg, kid: &str) -> Result<Key, Error> {
        let (public, pair, signer): (josekit::jwk::Jwk, josekit::jwk::Jwk, Box<dyn JwsSigner>) =
            match alg {
                SigAlg::Es256 => {
                    let kp = josekit::jws::ES256
                        .generate_key_pair()
                        .map_err(setup("generate an ES256 key"))?;
                    let pair = kp.to_jwk_key_pair();
                    let signer = josekit::jws::ES256
                        .signer_from_jwk(&pair)
                        .map_err(setup("load an ES256 key"))?;
                    (kp.to_jwk_public_key(), pair, Box::new(signer))
                }
                SigAlg::EdDsa | SigAlg::Ed25519 => {
                    let kp = josekit::jws::EdDSA
                        .generate_key_pair(josekit::jwk::Ed25519)
                        .map_err(setup("generate an Ed25519 key"))?;
                    let pair = kp.to_jwk_key_pair();
                    let signer = josekit::jws::EdDSA
                        .signer_from_jwk(&pair)
                        .map_err(setup("load an Ed25519 key"))?;
                    (kp.to_jwk_public_key(), pair, Box::new(signer))
                }
            };
        // Only the key members: no alg/kid/use from josekit.
        let keep = |jwk: &josekit::jwk::Jwk, private: bool| {
            let mut m = Map::new();
            for name in ["kty", "crv", "x", "y"] {
                if let Some(v) = jwk.parameter(name) {
                    m.insert(name.to_owned(), v.clone());
                }
            }
            if private {
                if let Some(v) = jwk.parameter("d") {
                    m.insert("d".to_owned(), v.clone());
                }
            }
            m
        };
        Ok(Key {
            alg,
            kid: kid.to_owned(),
            public: keep(&public, false),
            private: keep(&pair, true),
            signer,
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> SigAlg {
        self.alg
    }

    /// The key id used in JWS headers and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The bare public JWK (`kty`, `crv`, `x`, `y`).
    pub fn public_jwk(&self) -> Map<String, Value> {
        self.public.clone()
    }

    /// The JWK including the private member `d` (for the "private key in
    /// the proof's jwk" attack).
    pub fn private_jwk(&self) -> Map<String, Value> {
        self.private.clone()
    }

    /// The JWKS entry: public JWK plus `kid`, `alg` and `use: sig`.
    pub fn jwks_entry(&self) -> Value {
        let mut m = self.public_jwk();
        m.insert("kid".into(), Value::String(self.kid.clone()));
        m.insert("alg".into(), Value::String(self.alg.name().into()));
        m.insert("use".into(), Value::String("sig".into()));
        Value::Object(m)
    }

    /// A compact JWS of `payload` under exactly `header` (which should
    /// name this key's `alg`), signed with this key.
    pub fn sign(&self, header: &Value, payload: &Value) -> Result<String, Error> {
        let input = format!("{}.{}", b64_json(header), b64_json(payload));
        let sig = self
            .signer
            .sign(input.as_bytes())
            .map_err(setup("sign a JWS"))?;
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

/// An HMAC-SHA-256 compact JWS with `secret` (algorithm confusion attack,
/// RFC 8725 §2.1).
pub fn sign_hs256(header: &Value, payload: &Value, secret: &[u8]) -> Result<String, Error> {
    let signer = josekit::jws::HS256
        .signer_from_bytes(secret)
        .map_err(setup("make an HS256 signer"))?;
    let input = format!("{}.{}", b64_json(header), b64_json(payload));
    let sig = signer.sign(input.as_bytes()).map_err(setup("sign HS256"))?;
    Ok(format!("{input}.{}", b64(&sig)))
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url of the JSON text of `v`.
pub fn b64_json(v: &Value) -> String {
    b64(v.to_string().as_bytes())
}

/// The DPoP `ath` of a token: base64url(SHA-256(token)) (RFC 9449 §4.2).
pub fn ath(token: &str) -> String {
    b64(&Sha256::digest(token.as_bytes()))
}

/// A fresh random identifier (`jti`), 128 bits, base64url.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    b64(&bytes)
}

/// `token` with its payload replaced by `edit(payload)`, the original
/// signature kept. `None` when `token` is not a three-part JWS with a JSON
/// payload (never the case for tokens this module made).
pub fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> Option<String> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    edit(&mut payload);
    Some(format!("{h}.{}.{s}", b64_json(&payload)))
}

/// `token` with one bit of its signature flipped.
pub fn tamper_signature(token: &str) -> Option<String> {
    let (input, sig) = token.rsplit_once('.')?;
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let first = bytes.first_mut()?;
    *first ^= 0x01;
    Some(format!("{input}.{}", b64(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn verify(key: &Key, token: &str) -> bool {
        let jwk = josekit::jwk::Jwk::from_map(key.public_jwk()).unwrap();
        let verifier: Box<dyn josekit::jws::JwsVerifier> = match key.alg() {
            SigAlg::Es256 => Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap()),
            SigAlg::EdDsa | SigAlg::Ed25519 => {
                Box::new(josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap())
            }
        };
        let (input, sig) = token.rsplit_once('.').unwrap();
        verifier
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .is_ok()
    }

    #[test]
    fn keys_sign_verifiable_compact_jws_and_tampering_breaks_them() {
        for alg in [SigAlg::Es256, SigAlg::EdDsa, SigAlg::Ed25519] {
            let key = Key::generate(alg, "k1").unwrap();
            assert!(!key.public_jwk().contains_key("d"));
            assert!(key.private_jwk().contains_key("d"));
            assert_eq!(key.jwks_entry()["alg"], alg.name());
            let header = json!({"alg": alg.name(), "kid": "k1", "typ": "JWT"});
            let token = key.sign(&header, &json!({"a": 1})).unwrap();
            assert!(verify(&key, &token), "{alg:?}");
            let t = tamper_payload(&token, |p| p["a"] = json!(2)).unwrap();
            assert!(!verify(&key, &t));
            assert!(!verify(&key, &tamper_signature(&token).unwrap()));
        }
    }

    #[test]
    fn ath_is_rfc9449_example() {
        // RFC 9449 §7.1 example access token and its ath.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
