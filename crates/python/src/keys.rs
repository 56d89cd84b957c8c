//! Agent keys and DPoP proofs (RFC 9449 §4.2; draft-goswami-agentic-jwt-00
//! §9.2.2, agent-level proof of possession): `AgentKey` wraps
//! `ajwt_jose::SigningKey`, the one key type the issuer, the verifier's
//! tests and the Rust client use. Private JWKs (RFC 7517 §4, RFC 7518 §6,
//! RFC 8037 §2) are read with OpenSSL into PKCS#8 and then loaded exactly
//! like a PEM key, so both paths end in the same checks (I-167).

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use ajwt_jose::{Alg, JoseError, KeyType, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use pyo3::prelude::*;
use serde_json::{Map, Value};

use crate::errors::agent_key_error;
use crate::pyjson;

/// Largest PEM or JWK document read (bytes).
const MAX_KEY_DOCUMENT: usize = 64 * 1024;

/// An agent's private key: it signs DPoP proofs (RFC 9449 §4.2) bound to
/// the intent token's `cnf.jkt` (RFC 7638 thumbprint; draft §9.2.2).
///
/// Make one with AgentKey.generate(alg="ES256") ("ES256", "EdDSA",
/// "Ed25519"; "RS256"/"PS256" too), AgentKey.from_pem(pem) (unencrypted
/// PKCS#8) or AgentKey.from_jwk(jwk) (a private JWK as dict, str or bytes).
/// repr() never shows private material.
#[pyclass(module = "agentic_jwt", name = "AgentKey", frozen)]
pub struct AgentKey {
    pub(crate) key: SigningKey,
}

fn parse_alg(alg: &str) -> PyResult<Alg> {
    Alg::from_str(alg).map_err(|_| {
        agent_key_error(format!(
            "unsupported algorithm {alg:?} (expected one of {})",
            Alg::names(&Alg::ALL)
        ))
    })
}

fn key_error(what: &str, e: &JoseError) -> PyErr {
    agent_key_error(format!("{what}: {e}"))
}

fn text_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let bytes = match pyjson::document_bytes(obj)? {
        Some(b) => b,
        None => {
            return Err(agent_key_error(format!(
                "{what} must be str or bytes{}",
                if what == "JWK" { " or dict" } else { "" }
            )))
        }
    };
    if bytes.len() > MAX_KEY_DOCUMENT {
        return Err(agent_key_error(format!(
            "{what} longer than {MAX_KEY_DOCUMENT} bytes"
        )));
    }
    Ok(bytes)
}

/// The default algorithm of a key type; `requested` must fit it.
fn alg_for(key_type: KeyType, requested: Option<Alg>) -> PyResult<Alg> {
    let allowed = Alg::for_key_type(key_type);
    match requested {
        Some(alg) if allowed.contains(&alg) => Ok(alg),
        Some(alg) => Err(agent_key_error(format!(
            "a {} key cannot sign {alg} (it signs {})",
            key_type.kty(),
            Alg::names(allowed)
        ))),
        None => Ok(allowed[0]),
    }
}

fn b64(jwk: &Map<String, Value>, name: &str) -> PyResult<Vec<u8>> {
    match jwk.get(name) {
        Some(Value::String(s)) => URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| agent_key_error(format!("JWK member {name:?} is not base64url"))),
        Some(_) => Err(agent_key_error(format!(
            "JWK member {name:?} must be a string"
        ))),
        None => Err(agent_key_error(format!("JWK member {name:?} is missing"))),
    }
}

fn bn(bytes: &[u8]) -> PyResult<BigNum> {
    BigNum::from_slice(bytes).map_err(|e| agent_key_error(format!("invalid JWK integer: {e}")))
}

fn ssl(what: &str) -> impl Fn(openssl::error::ErrorStack) -> PyErr + '_ {
    move |e| agent_key_error(format!("{what}: {e}"))
}

/// A private JWK as an OpenSSL key (P-256, Ed25519 or RSA with CRT members),
/// its public half checked against the JWK's public members.
fn private_key_from_jwk(jwk: &Map<String, Value>) -> PyResult<(PKey<Private>, KeyType)> {
    let kty = match jwk.get("kty") {
        Some(Value::String(s)) => s.as_str(),
        _ => {
            return Err(agent_key_error(
                "JWK member \"kty\" is missing or not a string",
            ))
        }
    };
    let crv = jwk.get("crv").and_then(Value::as_str);
    if !jwk.contains_key("d") {
        return Err(agent_key_error(
            "not a private JWK (no \"d\" member): an agent key signs proofs",
        ));
    }
    match (kty, crv) {
        ("EC", Some("P-256")) => {
            let (d, x, y) = (b64(jwk, "d")?, b64(jwk, "x")?, b64(jwk, "y")?);
            // RFC 7518 §6.2.1.2, §6.2.2.1: full-length coordinates and d.
            if d.len() != 32 || x.len() != 32 || y.len() != 32 {
                return Err(agent_key_error(
                    "P-256 JWK members d, x, y must be 32 bytes each",
                ));
            }
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl("P-256"))?;
            let mut ctx = BigNumContext::new().map_err(ssl("P-256"))?;
            let mut point = EcPoint::new(&group).map_err(ssl("P-256"))?;
            let (x, y, d) = (bn(&x)?, bn(&y)?, bn(&d)?);
            point
                .set_affine_coordinates_gfp(&group, &x, &y, &mut ctx)
                .map_err(ssl("invalid P-256 public point"))?;
            let key = EcKey::from_private_components(&group, &d, &point)
                .map_err(ssl("invalid P-256 private key"))?;
            // d·G must be (x, y).
            key.check_key()
                .map_err(ssl("the JWK's d does not match its x, y"))?;
            Ok((PKey::from_ec_key(key).map_err(ssl("P-256"))?, KeyType::P256))
        }
        ("OKP", Some("Ed25519")) => {
            let (d, x) = (b64(jwk, "d")?, b64(jwk, "x")?);
            if d.len() != 32 {
                return Err(agent_key_error("Ed25519 JWK member d must be 32 bytes"));
            }
            let key = PKey::private_key_from_raw_bytes(&d, Id::ED25519)
                .map_err(ssl("invalid Ed25519 private key"))?;
            let public = key.raw_public_key().map_err(ssl("Ed25519"))?;
            if public != x {
                return Err(agent_key_error("the JWK's d does not match its x"));
            }
            Ok((key, KeyType::Ed25519))
        }
        ("RSA", _) => {
            let names = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];
            let mut parts = Vec::with_capacity(names.len());
            for name in names {
                parts.push(bn(&b64(jwk, name)?)?);
            }
            let mut it = parts.into_iter();
            let mut next = || {
                it.next()
                    .ok_or_else(|| agent_key_error("internal error: RSA members"))
            };
            let rsa = Rsa::from_private_components(
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
                next()?,
            )
            .map_err(ssl("invalid RSA private key"))?;
            if !rsa.check_key().map_err(ssl("invalid RSA private key"))? {
                return Err(agent_key_error("inconsistent RSA private key"));
            }
            Ok((PKey::from_rsa(rsa).map_err(ssl("RSA"))?, KeyType::Rsa))
        }
        (kty, crv) => Err(agent_key_error(format!(
            "unsupported JWK kty {kty:?} crv {crv:?} (EC P-256, OKP Ed25519 or RSA)"
        ))),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[pymethods]
impl AgentKey {
    /// AgentKey.generate(alg="ES256") -> AgentKey
    ///
    /// A fresh key: P-256 for ES256, Ed25519 for EdDSA/Ed25519 (RFC 8037,
    /// RFC 9864), 2048-bit RSA for RS256/PS256 (draft §9.4.1 key types).
    #[staticmethod]
    #[pyo3(signature = (alg = "ES256"))]
    fn generate(py: Python<'_>, alg: &str) -> PyResult<AgentKey> {
        let alg = parse_alg(alg)?;
        let key = py
            .detach(|| SigningKey::generate(alg))
            .map_err(|e| key_error("cannot generate a key", &e))?;
        Ok(AgentKey { key })
    }

    /// AgentKey.from_pem(pem, alg=None) -> AgentKey
    ///
    /// Loads an unencrypted PKCS#8 PEM private key (`-----BEGIN PRIVATE
    /// KEY-----`, what private_pem() and `ajwt` write). `alg` defaults to the
    /// key type's first algorithm (ES256, EdDSA, RS256).
    #[staticmethod]
    #[pyo3(signature = (pem, alg = None))]
    fn from_pem(pem: &Bound<'_, PyAny>, alg: Option<&str>) -> PyResult<AgentKey> {
        if pem.cast::<pyo3::types::PyDict>().is_ok() {
            return Err(agent_key_error("PEM must be str or bytes"));
        }
        let pem = text_of(pem, "PEM")?;
        let requested = alg.map(parse_alg).transpose()?;
        let text = String::from_utf8_lossy(&pem);
        if !text.trim_start().starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(agent_key_error(
                "expected an unencrypted PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----)",
            ));
        }
        // The key type (never a passphrase prompt: the callback gives none).
        let parsed = PKey::private_key_from_pem_callback(&pem, |_| Ok(0))
            .map_err(ssl("not a PKCS#8 private key"))?;
        let key_type = match parsed.id() {
            Id::EC => KeyType::P256,
            Id::ED25519 => KeyType::Ed25519,
            Id::RSA => KeyType::Rsa,
            other => {
                return Err(agent_key_error(format!(
                    "unsupported key type {other:?} (P-256, Ed25519 or RSA)"
                )))
            }
        };
        let alg = alg_for(key_type, requested)?;
        let key = SigningKey::from_pkcs8_pem(&pem, alg)
            .map_err(|e| key_error("cannot load the key", &e))?;
        Ok(AgentKey { key })
    }

    /// AgentKey.from_jwk(jwk, alg=None) -> AgentKey
    ///
    /// Loads a private JWK (RFC 7517; EC P-256 with d/x/y, OKP Ed25519 with
    /// d/x, RSA with n/e/d/p/q/dp/dq/qi) given as a dict, or JSON str/bytes
    /// read strictly. The algorithm is `alg`, else the JWK's own `alg`
    /// member, else the key type's first algorithm; the two must agree.
    #[staticmethod]
    #[pyo3(signature = (jwk, alg = None))]
    fn from_jwk(jwk: &Bound<'_, PyAny>, alg: Option<&str>) -> PyResult<AgentKey> {
        let bytes = text_of(jwk, "JWK")?;
        let map = ajwt_checksum::json::parse_object(&bytes)
            .map_err(|e| agent_key_error(format!("not a JWK: {e}")))?;
        let requested = alg.map(parse_alg).transpose()?;
        let member_alg = match map.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(parse_alg(a)?),
            Some(_) => return Err(agent_key_error("JWK member \"alg\" must be a string")),
        };
        if let (Some(a), Some(b)) = (requested, member_alg) {
            if a != b {
                return Err(agent_key_error(format!(
                    "alg {a} differs from the JWK's alg {b}"
                )));
            }
        }
        let (pkey, key_type) = private_key_from_jwk(&map)?;
        let alg = alg_for(key_type, requested.or(member_alg))?;
        let pem = pkey
            .private_key_to_pem_pkcs8()
            .map_err(ssl("cannot encode the key"))?;
        let key = SigningKey::from_pkcs8_pem(&pem, alg)
            .map_err(|e| key_error("cannot load the key", &e))?;
        Ok(AgentKey { key })
    }

    /// The JWS algorithm this key signs with ("ES256", "EdDSA", ...).
    #[getter]
    fn alg(&self) -> &'static str {
        self.key.alg().as_str()
    }

    /// public_jwk() -> dict
    ///
    /// The public JWK (public members only: kty, crv, x[, y] or n, e), as
    /// it goes into a DPoP proof header (RFC 9449 §4.2) and agent
    /// registration (draft §9.2.2).
    fn public_jwk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pyjson::to_py(py, &Value::Object(self.key.public_jwk()))
    }

    /// thumbprint() -> str
    ///
    /// The RFC 7638 JWK SHA-256 thumbprint of the public key, base64url
    /// without padding: the intent token's `cnf.jkt` (RFC 9449 §6.1).
    fn thumbprint(&self) -> String {
        self.key.thumbprint()
    }

    /// private_pem() -> str
    ///
    /// The private key as unencrypted PKCS#8 PEM. Keep it secret.
    fn private_pem(&self) -> PyResult<String> {
        self.key
            .to_pkcs8_pem()
            .map_err(|e| key_error("cannot encode the key", &e))
    }

    /// dpop_proof(method, url, access_token=None, nonce=None, iat=None) -> str
    ///
    /// A DPoP proof JWT (RFC 9449 §4.2): header {typ: "dpop+jwt", alg, jwk},
    /// claims {jti (128 random bits), htm: method, htu: url normalized
    /// without query and fragment, iat (now unless given), ath: base64url
    /// SHA-256 of access_token when given (§4.3 step 10), nonce when given
    /// (§8)}. Send a fresh one with every request (draft §9.2.2).
    #[pyo3(signature = (method, url, access_token = None, nonce = None, iat = None))]
    fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: Option<i64>,
    ) -> PyResult<String> {
        self.key
            .proof(method, url, access_token, nonce, iat.unwrap_or_else(now))
            .map_err(|e| key_error("cannot make a DPoP proof", &e))
    }

    /// sign(typ, claims) -> str: a compact JWS over `claims` (dict) with
    /// header {typ, alg}. For tests and tools that need a signed JWT.
    fn sign(&self, typ: &str, claims: &Bound<'_, PyAny>) -> PyResult<String> {
        let bytes = text_of(claims, "claims")?;
        let map = ajwt_checksum::json::parse_object(&bytes)
            .map_err(|e| agent_key_error(format!("claims must be a JSON object: {e}")))?;
        self.key
            .sign_jws(typ, &map)
            .map_err(|e| key_error("cannot sign", &e))
    }

    fn __repr__(&self) -> String {
        format!(
            "AgentKey(alg={:?}, thumbprint={:?})",
            self.key.alg().as_str(),
            self.key.thumbprint()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<AgentKey>().is_ok_and(|o| {
            let o = o.get();
            o.key.alg() == self.key.alg() && o.key.thumbprint() == self.key.thumbprint()
        })
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.key.thumbprint().hash(&mut h);
        h.finish()
    }

    /// Pickling is refused: a private key never travels implicitly.
    fn __reduce__(&self) -> PyResult<()> {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "AgentKey cannot be pickled; use private_pem() explicitly",
        ))
    }
}

/// jwk_thumbprint(jwk) -> str
///
/// The RFC 7638 JWK SHA-256 thumbprint of any JWK (dict, or JSON str/bytes
/// read strictly): base64url of SHA-256 over the required members in
/// lexicographic order (EC crv/kty/x/y, OKP crv/kty/x, RSA e/kty/n). It is
/// what an intent token's `cnf.jkt` holds for the agent's key (RFC 9449 §6.1).
#[pyfunction]
fn jwk_thumbprint(jwk: &Bound<'_, PyAny>) -> PyResult<String> {
    let bytes = text_of(jwk, "JWK")?;
    let map = ajwt_checksum::json::parse_object(&bytes)
        .map_err(|e| agent_key_error(format!("not a JWK: {e}")))?;
    ajwt_jose::jwk_thumbprint(&map).map_err(|e| key_error("no thumbprint", &e))
}

/// Adds this part's classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<AgentKey>()?;
    m.add_function(wrap_pyfunction!(jwk_thumbprint, m)?)?;
    Ok(())
}
