//! JWT handling independent of the issuer's code: decoding, signature
//! verification with josekit against the issuer's published JWK Set, and the
//! forged tokens of the protection tests (tampered signature, `alg: none`,
//! a foreign key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// Algorithms an intent token may be signed with (§9.4.1 plus RS256/PS256,
/// and `Ed25519`, the RFC 9864 fully-specified name of EdDSA over Ed25519;
/// `none` and HMAC never, RFC 8725 §3.1).
pub(crate) const ALLOWED_ALGS: &[&str] = &["ES256", "EdDSA", "Ed25519", "RS256", "PS256"];

/// Header and payload of a compact JWS, without verification.
pub(crate) fn decode_unverified(token: &str) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(format!(
            "not a compact JWS: {} parts instead of 3",
            parts.len()
        ));
    }
    let part = |p: &str, what: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|e| format!("{what} is not base64url: {e}"))?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{what} is not JSON: {e}"))?;
        if !v.is_object() {
            return Err(format!("{what} is not a JSON object"));
        }
        Ok(v)
    };
    Ok((part(parts[0], "header")?, part(parts[1], "payload")?))
}

/// Verifies `token` with the key its header `kid` names in `jwks`, using
/// josekit; returns the header and the payload.
pub(crate) fn verify(token: &str, jwks: &Value) -> Result<(Value, Value), String> {
    let (header, _) = decode_unverified(token)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or("header has no alg")?;
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(format!(
            "header alg '{alg}' is not one of {}",
            ALLOWED_ALGS.join(", ")
        ));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or("header has no kid, so no key of the JWKS can be selected")?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no keys array")?;
    let matching: Vec<&Value> = keys
        .iter()
        .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .collect();
    let key = match matching.as_slice() {
        [one] => *one,
        [] => return Err(format!("kid '{kid}' is not in the issuer's JWKS")),
        _ => return Err(format!("kid '{kid}' occurs more than once in the JWKS")),
    };
    let map = key
        .as_object()
        .cloned()
        .ok_or("JWKS entry is not an object")?;
    if alg == "Ed25519" {
        let kid = kid.to_owned();
        return verify_ed25519(token, header, map, &kid);
    }
    let jwk = josekit::jwk::Jwk::from_map(map).map_err(|e| format!("JWKS key '{kid}': {e}"))?;
    let verified = match alg {
        "ES256" => josekit::jws::ES256
            .verifier_from_jwk(&jwk)
            .and_then(|v| josekit::jws::deserialize_compact(token, &v)),
        "EdDSA" => josekit::jws::EdDSA
            .verifier_from_jwk(&jwk)
            .and_then(|v| josekit::jws::deserialize_compact(token, &v)),
        "RS256" => josekit::jws::RS256
            .verifier_from_jwk(&jwk)
            .and_then(|v| josekit::jws::deserialize_compact(token, &v)),
        _ => josekit::jws::PS256
            .verifier_from_jwk(&jwk)
            .and_then(|v| josekit::jws::deserialize_compact(token, &v)),
    };
    let (payload, _) = verified
        .map_err(|e| format!("signature does not verify with JWKS key '{kid}' ({alg}): {e}"))?;
    let claims: Value =
        serde_json::from_slice(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    Ok((header, claims))
}

/// RFC 9864 `Ed25519`: the same signature as RFC 8037 `EdDSA` over an
/// Ed25519 key, under a name josekit does not know. The key must be an OKP
/// Ed25519 key whose `alg`, when present, is `Ed25519` (RFC 7517 §4.4: the
/// algorithm intended for the key); the signature is checked with josekit's
/// EdDSA verifier over the JWS signing input.
fn verify_ed25519(
    token: &str,
    header: Value,
    mut map: serde_json::Map<String, Value>,
    kid: &str,
) -> Result<(Value, Value), String> {
    if map.get("kty").and_then(Value::as_str) != Some("OKP")
        || map.get("crv").and_then(Value::as_str) != Some("Ed25519")
    {
        return Err(format!(
            "header alg 'Ed25519' but JWKS key '{kid}' is not an OKP Ed25519 key (RFC 9864)"
        ));
    }
    match map.remove("alg") {
        None => {}
        Some(Value::String(a)) if a == "Ed25519" => {}
        Some(other) => {
            return Err(format!(
                "header alg 'Ed25519' but JWKS key '{kid}' is meant for alg {other} (RFC 7517 §4.4)"
            ))
        }
    }
    let jwk = josekit::jwk::Jwk::from_map(map).map_err(|e| format!("JWKS key '{kid}': {e}"))?;
    let verifier = josekit::jws::EdDSA
        .verifier_from_jwk(&jwk)
        .map_err(|e| format!("JWKS key '{kid}': {e}"))?;
    let (input, sig) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|e| format!("signature is not base64url: {e}"))?;
    josekit::jws::JwsVerifier::verify(&verifier, input.as_bytes(), &sig)
        .map_err(|e| format!("signature does not verify with JWKS key '{kid}' (Ed25519): {e}"))?;
    let (_, claims) = decode_unverified(token)?;
    Ok((header, claims))
}

/// `token` with one bit of its signature flipped.
pub(crate) fn tamper_signature(token: &str) -> String {
    match token.rsplit_once('.') {
        Some((rest, sig)) => match URL_SAFE_NO_PAD.decode(sig) {
            Ok(mut bytes) if !bytes.is_empty() => {
                let i = bytes.len() / 2;
                bytes[i] ^= 0x01;
                format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes))
            }
            _ => format!("{rest}.AAAA"),
        },
        None => format!("{token}.AAAA"),
    }
}

/// `token` with its header replaced by `alg: none` and no signature (RFC 8725 §3.1).
pub(crate) fn alg_none(token: &str) -> Result<String, String> {
    let (mut header, _) = decode_unverified(token)?;
    if let Some(h) = header.as_object_mut() {
        h.insert("alg".into(), Value::String("none".into()));
    }
    let payload = token.split('.').nth(1).unwrap_or("");
    let h = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    Ok(format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(h)))
}

/// The claims of `token` re-signed with a freshly generated P-256 key the
/// issuer has never seen, keeping the header's `typ` and `kid`.
pub(crate) fn resign_with_foreign_key(token: &str) -> Result<String, String> {
    let (header, claims) = decode_unverified(token)?;
    let pair = josekit::jws::ES256
        .generate_key_pair()
        .map_err(|e| e.to_string())?;
    let signer = josekit::jws::ES256
        .signer_from_jwk(&pair.to_jwk_key_pair())
        .map_err(|e| e.to_string())?;
    let mut h = josekit::jws::JwsHeader::new();
    if let Some(typ) = header.get("typ").and_then(Value::as_str) {
        h.set_token_type(typ);
    }
    if let Some(kid) = header.get("kid").and_then(Value::as_str) {
        h.set_key_id(kid);
    }
    let payload = serde_json::to_vec(&claims).map_err(|e| e.to_string())?;
    josekit::jws::serialize_compact(&payload, &h, &signer).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jwk::KeyPair as _;
    use josekit::jws::JwsSigner as _;
    use serde_json::json;

    /// An Ed25519 token under header alg `Ed25519` (RFC 9864), signed with
    /// josekit's EdDSA signer, and the public JWK.
    fn ed25519_token() -> (String, serde_json::Map<String, Value>) {
        let pair = josekit::jws::EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let signer = josekit::jws::EdDSA
            .signer_from_jwk(&pair.to_jwk_key_pair())
            .unwrap();
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "Ed25519", "kid": "k1", "typ": "JWT"})),
            b64(&json!({"iss": "https://issuer.example", "sub": "a"}))
        );
        let sig = signer.sign(input.as_bytes()).unwrap();
        let mut public = serde_json::Map::new();
        let jwk = pair.to_jwk_public_key();
        for m in ["kty", "crv", "x"] {
            public.insert(m.into(), jwk.parameter(m).unwrap().clone());
        }
        public.insert("kid".into(), json!("k1"));
        (format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)), public)
    }

    fn jwks(key: &serde_json::Map<String, Value>) -> Value {
        json!({"keys": [key]})
    }

    #[test]
    fn rfc9864_ed25519_tokens_verify_with_an_ed25519_jwk() {
        let (token, mut key) = ed25519_token();
        let (h, c) = verify(&token, &jwks(&key)).unwrap();
        assert_eq!(h["alg"], "Ed25519");
        assert_eq!(c["sub"], "a");
        key.insert("alg".into(), json!("Ed25519"));
        assert!(verify(&token, &jwks(&key)).is_ok());
    }

    #[test]
    fn rfc9864_ed25519_refused_for_a_key_meant_for_another_alg_or_tampered() {
        let (token, mut key) = ed25519_token();
        assert!(verify(&tamper_signature(&token), &jwks(&key))
            .unwrap_err()
            .contains("does not verify"));
        key.insert("alg".into(), json!("EdDSA"));
        assert!(verify(&token, &jwks(&key))
            .unwrap_err()
            .contains("RFC 7517"));
        let p256 = josekit::jws::ES256.generate_key_pair().unwrap();
        let mut ec = p256.to_jwk_public_key().as_ref().clone();
        ec.insert("kid".into(), json!("k1"));
        assert!(verify(&token, &jwks(&ec))
            .unwrap_err()
            .contains("not an OKP Ed25519 key"));
    }
}
