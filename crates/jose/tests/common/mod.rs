//! Helpers shared by the ajwt-jose integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::OnceLock;

use ajwt_jose::{Alg, DpopKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// A JSON object literal as a map.
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// One key per algorithm, generated once (RSA generation is slow).
pub fn key(alg: Alg) -> &'static DpopKey {
    static KEYS: OnceLock<Vec<DpopKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        Alg::ALL
            .iter()
            .map(|a| DpopKey::generate(*a).unwrap())
            .collect()
    });
    &keys[Alg::ALL.iter().position(|a| *a == alg).unwrap()]
}

/// A second, different key per algorithm ("another agent").
pub fn other_key(alg: Alg) -> &'static DpopKey {
    static KEYS: OnceLock<Vec<DpopKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        Alg::ALL
            .iter()
            .map(|a| DpopKey::generate(*a).unwrap())
            .collect()
    });
    &keys[Alg::ALL.iter().position(|a| *a == alg).unwrap()]
}

/// `conformance/vectors/external/<rel>` in the repository.
pub fn external(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/vectors/external")
        .join(rel)
}

pub fn read_json(rel: &str) -> Value {
    let path = external(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The RSA public JWK with the ROCA fingerprint (CVE-2017-15361) of
/// Wycheproof `json_web_key_test.json`, group `jws_rsa_roca_key`.
pub fn wycheproof_roca_jwk() -> Value {
    let doc = read_json("wycheproof/testvectors_v1/json_web_key_test.json");
    let group = doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["comment"] == "jws_rsa_roca_key")
        .unwrap();
    group["public"]["keys"][0].clone()
}

/// `header.payload.signature` from raw JSON texts and signature bytes.
pub fn compact(header: &str, payload: &[u8], signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}
