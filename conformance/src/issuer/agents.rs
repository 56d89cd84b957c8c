//! Test agents of the issuer plan: uniquely named §5.2.1 specifications,
//! agent key pairs generated with josekit (Ed25519 or P-256, §9.4.1), the
//! checksum computed independently of the issuer, and the §4.2.1 request
//! bodies; plus the §4.4.4 sequence hashes recomputed with `sha2`.
//!
//! Checksums: the expected value of every agent is computed here with
//! `ajwt_checksum` (profile `jcs`, §5.3.1 — the crate the conformance
//! vectors validate against CPython), never taken from the issuer's
//! registration response; `ISS-5.4.3-registration-response` checks that the
//! issuer computed the same value.

use ajwt_checksum::Profile;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// The kind of an agent's proof-of-possession key (§9.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// EdDSA over Ed25519.
    Ed25519,
    /// ECDSA over P-256.
    P256,
}

/// A test agent: specification, checksum and the public half of its key.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    /// `agent_id` (unique per run).
    pub id: String,
    /// The §5.2.1 specification.
    pub spec: Value,
    /// `sha256:<hex>` of the specification under the `jcs` profile.
    pub checksum: String,
    /// Public JWK of the agent's key.
    pub jwk: Map<String, Value>,
    /// The same public key as a PEM `PUBLIC KEY` (SPKI) document.
    pub pem: String,
}

/// How the registration sends the agent's public key (§6.2.3 step 2 shows
/// a PEM; a JWK is what `cnf.jwk` carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyFormat {
    /// `public_key` as a JWK object.
    #[default]
    Jwk,
    /// `public_key` as a PEM `PUBLIC KEY` string.
    Pem,
}

/// Members of a public JWK that identify the key (RFC 7638 §3.2).
pub(crate) fn key_members(kty: &str) -> &'static [&'static str] {
    match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => &["kty"],
    }
}

/// Generates a key pair of `kind`; returns the public JWK and PEM.
pub(crate) fn generate_key(kind: KeyKind) -> Result<(Map<String, Value>, String), String> {
    let (jwk, pem) = match kind {
        KeyKind::Ed25519 => {
            let pair = josekit::jws::EdDSA
                .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                .map_err(|e| format!("Ed25519 key generation failed: {e}"))?;
            (pair.to_jwk_public_key(), pair.to_pem_public_key())
        }
        KeyKind::P256 => {
            let pair = josekit::jws::ES256
                .generate_key_pair()
                .map_err(|e| format!("P-256 key generation failed: {e}"))?;
            (pair.to_jwk_public_key(), pair.to_pem_public_key())
        }
    };
    let pem = String::from_utf8(pem).map_err(|e| format!("PEM is not UTF-8: {e}"))?;
    Ok((jwk.as_ref().clone(), pem))
}

/// A §5.2.1 specification with two tools and a configuration.
pub(crate) fn spec(agent_id: &str, prompt: &str) -> Value {
    json!({
        "agent_id": agent_id,
        "prompt": prompt,
        "tools": [
            {
                "name": "read_manifest",
                "description": "Read package manifest file",
                "parameters": {
                    "type": "object",
                    "properties": {"file_path": {"type": "string"}},
                    "required": ["file_path"]
                }
            },
            {
                "name": "create_patch",
                "description": "Create patch for vulnerable package",
                "parameters": {"type": "object", "properties": {"package": {"type": "string"}}}
            }
        ],
        "configuration": {"model_name": "conformance-model", "temperature": 0.0, "max_tokens": 4096}
    })
}

/// The `jcs` checksum (§5.3.1) of a specification, computed by `ajwt_checksum`.
pub(crate) fn checksum_of(spec: &Value) -> Result<String, String> {
    let bytes = serde_json::to_vec(spec).map_err(|e| e.to_string())?;
    ajwt_checksum::compute_json(&bytes, Profile::Jcs)
        .map(|c| c.checksum.to_string())
        .map_err(|e| format!("checksum of the test specification: {e}"))
}

impl Agent {
    /// A new agent `id` with a prompt naming it and a key of `kind`.
    pub fn new(id: &str, kind: KeyKind) -> Result<Agent, String> {
        Agent::with_prompt(
            id,
            &format!("You are {id}, a careful security agent."),
            kind,
        )
    }

    /// A new agent with the given prompt.
    pub fn with_prompt(id: &str, prompt: &str, kind: KeyKind) -> Result<Agent, String> {
        let spec = spec(id, prompt);
        let (jwk, pem) = generate_key(kind)?;
        Ok(Agent {
            id: id.to_owned(),
            checksum: checksum_of(&spec)?,
            spec,
            jwk,
            pem,
        })
    }

    /// The same agent with another prompt (a re-registration, §5.4.4), same key.
    pub fn updated(&self, prompt: &str) -> Result<Agent, String> {
        let spec = spec(&self.id, prompt);
        Ok(Agent {
            id: self.id.clone(),
            checksum: checksum_of(&spec)?,
            spec,
            jwk: self.jwk.clone(),
            pem: self.pem.clone(),
        })
    }

    /// Registration body (§5.4, §6.2.3): the specification plus `public_key`.
    pub fn registration_body(&self, format: KeyFormat) -> Value {
        let key = match format {
            KeyFormat::Jwk => Value::Object(self.jwk.clone()),
            KeyFormat::Pem => Value::String(self.pem.clone()),
        };
        let mut body = self.spec.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("public_key".into(), key);
        }
        body
    }

    /// A §4.2.1 request without workflow.
    pub fn request(&self, audience: &str, scopes: &[&str]) -> Value {
        json!({
            "grant_type": "agent_checksum",
            "agent_id": self.id,
            "computed_checksum": self.checksum,
            "requested_scopes": scopes,
            "audience": audience,
        })
    }

    /// A §4.2.2-shaped workflow request.
    pub fn step_request(
        &self,
        audience: &str,
        workflow_id: &str,
        step: &str,
        chain: &[&str],
        completed: &[&str],
        scopes: &[&str],
    ) -> Value {
        json!({
            "grant_type": "agent_checksum",
            "agent_id": self.id,
            "computed_checksum": self.checksum,
            "workflow_id": workflow_id,
            "workflow_step": step,
            "workflow_enabled": true,
            "requested_scopes": scopes,
            "audience": audience,
            "delegation_context": {"chain": chain, "completed_steps": completed},
        })
    }
}

/// §4.4.4: SHA-256 over the `|`-joined items, first 16 lowercase hex digits.
pub(crate) fn seq_hash(items: &[&str]) -> String {
    let digest = Sha256::digest(items.join("|").as_bytes());
    let hex = hex::encode(digest);
    hex.get(..16).unwrap_or(&hex).to_owned()
}

/// The full delegation chain of I-16: the request's chain with the
/// requesting agent appended unless it is already last.
pub(crate) fn full_chain<'a>(chain: &[&'a str], requester: &'a str) -> Vec<&'a str> {
    let mut full = chain.to_vec();
    if full.last() != Some(&requester) {
        full.push(requester);
    }
    full
}

/// Compares `cnf.jwk` with the registered public key: same identifying
/// members (RFC 7638), no private members (I-23).
pub(crate) fn compare_cnf_jwk(
    cnf_jwk: &Value,
    registered: &Map<String, Value>,
) -> Result<(), String> {
    let Some(got) = cnf_jwk.as_object() else {
        return Err(format!("cnf.jwk is not an object: {cnf_jwk}"));
    };
    let kty = registered.get("kty").and_then(Value::as_str).unwrap_or("");
    for m in key_members(kty) {
        if got.get(*m) != registered.get(*m) {
            return Err(format!(
                "cnf.jwk.{m} is {}, the registered key has {}",
                got.get(*m).map_or("absent".into(), Value::to_string),
                registered.get(*m).map_or("absent".into(), Value::to_string)
            ));
        }
    }
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        if got.contains_key(private) {
            return Err(format!("cnf.jwk carries the private member '{private}'"));
        }
    }
    Ok(())
}
