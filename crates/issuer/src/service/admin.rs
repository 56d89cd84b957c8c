//! The operator hooks (`admin:intent`): agent revocation (§5.6.1 REVOKED)
//! and signing-key rotation.

use std::sync::Arc;

use ajwt_protocol::error::OAuthError;
use serde_json::{Map, Value};

use super::*;
use std::sync::PoisonError;

/// Response of `POST /intent/admin/revoke-agent`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevokeAgentResponse {
    /// The revoked agent.
    pub agent_id: String,
    /// Always `true`.
    pub revoked: bool,
    /// How many registrations the agent has, all now revoked.
    pub registrations: u64,
}

/// Response of `POST /intent/admin/rotate-keys`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotateKeysResponse {
    /// `kid` of the new signing key.
    pub kid: String,
    /// `kid` of the key that signed until now (still in the JWK Set).
    pub previous_kid: String,
    /// Algorithm of the new key.
    pub alg: String,
}

/// Reads an operator-hook body: a JSON object (strict parser: duplicate
/// members refused); `empty_ok` also accepts an empty body as `{}`.
fn admin_object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, ApiError> {
    let invalid = || ApiError::from(OAuthError::InvalidRequest("Invalid JSON format".into()));
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match ajwt_checksum::json::parse_strict(body)
        .map_err(|_| invalid())?
        .to_serde_json()
    {
        Value::Object(map) => Ok(map),
        _ => Err(invalid()),
    }
}

impl Issuer {
    /// `POST /intent/admin/revoke-agent` (operator hook, §5.6.1 REVOKED):
    /// body `{"agent_id": "<id>"}` (other members ignored). Marks every
    /// registration of the agent revoked; from then on the agent is unknown
    /// at the token endpoint and refused in delegation chains (I-30).
    /// Idempotent. An unknown agent is `400 invalid_request`.
    pub async fn revoke_agent(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<RevokeAgentResponse, ApiError> {
        let request = admin_object(body, false)?;
        let agent_id = match request.get("agent_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => {
                return Err(OAuthError::InvalidRequest("Invalid parameter: agent_id".into()).into())
            }
            None => return Err(OAuthError::missing("agent_id").into()),
        };
        let registrations = self.store.revoke_agent(&agent_id).await?;
        if registrations == 0 {
            return Err(OAuthError::InvalidRequest("Unknown agent_id".into()).into());
        }
        // Audit trail (§9.1.4, I-100).
        let event = crate::audit::AuditEvent::AgentRevoked {
            agent_id: agent_id.clone(),
            registrations,
        };
        self.audit_logged(event, Some(&by.client_id)).await;
        tracing::warn!(
            target: "security",
            event = "agent_revoked",
            agent_id = %agent_id,
            registrations,
            client_id = %by.client_id,
            "agent revoked by an administrator (§5.6.1): its token requests are refused from now on"
        );
        Ok(RevokeAgentResponse {
            agent_id,
            revoked: true,
            registrations,
        })
    }

    /// `POST /intent/admin/rotate-keys` (operator hook): body `{}` or empty
    /// (members ignored). Generates a signing key of the configured
    /// algorithm, stores it like the other keys (so it stays current after a
    /// restart) and makes it the current key; the previous keys stay in the
    /// JWK Set, so tokens signed before still verify, up to
    /// [`crate::keys::MAX_PREVIOUS_KEYS`] of them: the oldest beyond that is
    /// retired (I-70).
    pub async fn rotate_keys(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<RotateKeysResponse, ApiError> {
        admin_object(body, true)?;
        let _serial = self.rotation.lock().await;
        let current = self.key_ring();
        let previous_kid = current.current_kid().to_owned();
        let alg = self.config.signing_alg;
        let rotated = tokio::task::spawn_blocking(move || current.rotated(alg))
            .await
            .map_err(|e| ApiError::Internal(format!("key rotation task: {e}")))?
            .map_err(|e| ApiError::Internal(format!("key rotation: {e}")))?;
        let kid = rotated.current_kid().to_owned();
        let alg = rotated.current_alg();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rotated);
        // Audit trail (I-100).
        let event = crate::audit::AuditEvent::KeyRotated {
            kid: kid.clone(),
            previous_kid: previous_kid.clone(),
            alg: alg.as_str().to_owned(),
        };
        self.audit_logged(event, Some(&by.client_id)).await;
        tracing::warn!(
            target: "security",
            event = "signing_key_rotated",
            kid = %kid,
            previous_kid = %previous_kid,
            alg = %alg,
            client_id = %by.client_id,
            "signing key rotated by an administrator; the previous key still verifies"
        );
        Ok(RotateKeysResponse {
            kid,
            previous_kid,
            alg: alg.as_str().to_owned(),
        })
    }
}
