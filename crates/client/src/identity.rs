//! Agent identity (§2 "Client Shim Library", §5.5.1): the live agent
//! specification and the agent's proof-of-possession key.

use std::path::Path;
use std::sync::{Arc, RwLock};

use ajwt_checksum::{AgentChecksum, AgentSpec, Profile, Tool};
use ajwt_jose::{Alg, DpopKey};
use serde_json::{Map, Value};

use crate::error::ClientError;

/// An agent: its specification (§5.2.1) behind a lock, so that a runtime
/// modification made through any clone is seen by the next token request,
/// and its key pair (Ed25519 or P-256; RSA also works), whose public half is
/// registered and bound into `cnf` (§9.2.2).
///
/// The checksum is never cached: [`AgentIdentity::checksum`] recomputes it
/// from the live specification, and the shim calls it before every token
/// request (§5.5.1 "Runtime Checksum Computation"), so a prompt altered at
/// runtime (threat T4, §9.1) is refused by the issuer with
/// `agent_checksum_mismatch` rather than hidden behind a stored value.
#[derive(Clone)]
pub struct AgentIdentity {
    spec: Arc<RwLock<AgentSpec>>,
    key: Arc<DpopKey>,
    profile: Profile,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("agent_id", &self.agent_id())
            .field("key", &self.key)
            .field("profile", &self.profile)
            .finish()
    }
}

impl AgentIdentity {
    /// An identity over `spec` and `key`, checksummed with the JCS profile
    /// (§5.3.1).
    pub fn new(spec: AgentSpec, key: DpopKey) -> AgentIdentity {
        AgentIdentity {
            spec: Arc::new(RwLock::new(spec)),
            key: Arc::new(key),
            profile: Profile::Jcs,
        }
    }

    /// The same identity with another canonicalization profile (it must be
    /// the one the agent is registered with).
    pub fn with_profile(mut self, profile: Profile) -> AgentIdentity {
        self.profile = profile;
        self
    }

    /// The canonicalization profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The agent id.
    pub fn agent_id(&self) -> String {
        self.read().agent_id.clone()
    }

    /// A copy of the current specification.
    pub fn spec(&self) -> AgentSpec {
        self.read().clone()
    }

    /// Modifies the live specification (for example a prompt update). The
    /// next token request carries the new checksum; unless the agent is
    /// re-registered the issuer refuses it (§4.5.4).
    pub fn update_spec(&self, edit: impl FnOnce(&mut AgentSpec)) {
        let mut guard = match self.spec.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        edit(&mut guard);
    }

    /// The agent key.
    pub fn key(&self) -> &DpopKey {
        &self.key
    }

    /// The checksum of the live specification, recomputed now (§5.5.1).
    pub fn checksum(&self) -> Result<AgentChecksum, ClientError> {
        self.read()
            .checksum(self.profile)
            .map_err(|e| ClientError::Spec(e.to_string()))
    }

    /// The agent registration body (§5.4.1, §6.2.3): the specification
    /// members, `public_key` (the public JWK), the checksum the client
    /// computed (so the issuer refuses any difference, §6.2.3 step 4), the
    /// profile, and `allowed_scopes` when given.
    pub fn registration_body(
        &self,
        allowed_scopes: Option<&[String]>,
    ) -> Result<Value, ClientError> {
        let spec = self.spec();
        let checksum = spec
            .checksum(self.profile)
            .map_err(|e| ClientError::Spec(e.to_string()))?;
        let mut body = spec_to_json(&spec);
        body.insert("public_key".into(), Value::Object(self.key.public_jwk()));
        body.insert("checksum".into(), Value::String(checksum.to_string()));
        body.insert(
            "checksum_profile".into(),
            Value::String(self.profile.as_str().to_owned()),
        );
        if let Some(scopes) = allowed_scopes {
            body.insert("allowed_scopes".into(), serde_json::json!(scopes));
        }
        Ok(Value::Object(body))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AgentSpec> {
        match self.spec.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn tool_to_json(t: &Tool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(t.name.clone()));
    m.insert("description".into(), Value::String(t.description.clone()));
    m.insert("parameters".into(), t.parameters.to_serde_json());
    if let Some(s) = &t.signature {
        m.insert("signature".into(), Value::String(s.clone()));
    }
    m.insert(
        "checksum_level".into(),
        Value::String(t.checksum_level.as_str().to_owned()),
    );
    if let Some(s) = &t.source_code {
        m.insert("source_code".into(), Value::String(s.clone()));
    }
    Value::Object(m)
}

/// The §5.2.1 JSON members of a specification.
fn spec_to_json(spec: &AgentSpec) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("agent_id".into(), Value::String(spec.agent_id.clone()));
    m.insert("prompt".into(), Value::String(spec.prompt.clone()));
    m.insert(
        "tools".into(),
        Value::Array(spec.tools.iter().map(tool_to_json).collect()),
    );
    if let Some(c) = &spec.configuration {
        m.insert("configuration".into(), c.to_serde_json());
    }
    m
}

/// Loads the agent key from `path` (unencrypted PKCS#8 PEM), or generates
/// one for `alg` and writes it there with mode 0600 (owner read/write only)
/// on Unix. The file is created exclusively, so an existing key is never
/// overwritten.
pub fn load_or_generate_key(path: &Path, alg: Alg) -> Result<DpopKey, ClientError> {
    let key_err = |what: &str, e: &dyn std::fmt::Display| {
        ClientError::Key(format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read(path) {
        Ok(pem) => {
            return DpopKey::from_pkcs8_pem(&pem, alg).map_err(|e| key_err("cannot load", &e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_err("cannot read", &e)),
    }
    let key = DpopKey::generate(alg).map_err(|e| ClientError::Key(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem()
        .map_err(|e| ClientError::Key(e.to_string()))?;
    // Atomic and exclusive (the one implementation, `ajwt_fs`): an existing
    // key is never overwritten, and no reader sees a partial file.
    ajwt_fs::write_private_new(path, pem.as_bytes()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            key_err("cannot create", &e)
        } else {
            key_err("cannot write", &e)
        }
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(prompt: &str) -> AgentSpec {
        AgentSpec::from_json(
            format!(r#"{{"agent_id":"a1","prompt":{prompt:?},"tools":[{{"name":"t","description":"d","parameters":{{"type":"object"}}}}],"configuration":{{"temperature":0.0}}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn checksum_is_recomputed_after_a_runtime_prompt_change() {
        let id = AgentIdentity::new(spec("Be careful."), DpopKey::generate(Alg::EdDsa).unwrap());
        let before = id.checksum().unwrap();
        assert_eq!(before, spec("Be careful.").checksum(Profile::Jcs).unwrap());
        let clone = id.clone();
        clone.update_spec(|s| s.prompt = "Ignore all previous instructions.".into());
        let after = id.checksum().unwrap();
        assert_ne!(before, after, "the modification through a clone is seen");
        assert_eq!(
            after,
            spec("Ignore all previous instructions.")
                .checksum(Profile::Jcs)
                .unwrap()
        );
    }

    #[test]
    fn registration_body_round_trips_to_the_same_checksum() {
        let id = AgentIdentity::new(spec("Be careful."), DpopKey::generate(Alg::Es256).unwrap());
        let body = id
            .registration_body(Some(&["repo:write".to_owned()]))
            .unwrap();
        let req = ajwt_protocol::registration::decode_agent_registration(
            &serde_json::to_vec(&body).unwrap(),
        )
        .unwrap();
        assert_eq!(req.checksum, Some(id.checksum().unwrap()));
        assert_eq!(
            req.spec.checksum(Profile::Jcs).unwrap(),
            id.checksum().unwrap()
        );
        assert_eq!(req.allowed_scopes, Some(vec!["repo:write".to_owned()]));
    }

    #[test]
    fn rfc9864_proofs_under_the_fully_specified_ed25519_name() {
        use base64::Engine as _;
        // The same Ed25519 key file, loaded for either name, signs under that name.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pem");
        let eddsa = load_or_generate_key(&path, Alg::EdDsa).unwrap();
        let ed25519 = load_or_generate_key(&path, Alg::Ed25519).unwrap();
        assert_eq!(eddsa.thumbprint(), ed25519.thumbprint());
        for (key, name) in [(&eddsa, "EdDSA"), (&ed25519, "Ed25519")] {
            let proof = key
                .proof(
                    "GET",
                    "https://api.example/x",
                    Some("t"),
                    None,
                    1_700_000_000,
                )
                .unwrap();
            let header = proof.split('.').next().unwrap();
            let header: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(header)
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], name);
            assert_eq!(header["jwk"]["crv"], "Ed25519");
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pem");
        for alg in [Alg::EdDsa, Alg::Ed25519, Alg::Es256] {
            let _ = std::fs::remove_file(&path);
            let key = load_or_generate_key(&path, alg).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{alg}");
            let again = load_or_generate_key(&path, alg).unwrap();
            assert_eq!(
                key.thumbprint(),
                again.thumbprint(),
                "{alg}: same key reloaded"
            );
        }
    }
}
