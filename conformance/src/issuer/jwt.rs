//! JWT handling independent of the issuer's code: decoding, signature
//! verification with josekit against the issuer's published JWK Set, and the
//! forged tokens of the protection tests (tampered signature, `alg: none`,
//! a foreign key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// Algorithms an intent token may be signed with (§9.4.1 plus RS256/PS256;
/// `none` and HMAC never, RFC 8725 §3.1).
pub(crate) const ALLOWED_ALGS: &[&str] = &["ES256", "EdDSA", "RS256", "PS256"];

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
