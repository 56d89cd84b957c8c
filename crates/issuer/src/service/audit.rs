//! The issuer's side of the tamper-evident audit trail ([`crate::audit`],
//! §9.1.1, §9.1.4, §9.4.1): [`Issuer::audit`] appends one event with the
//! acting client; the hooks in the grant, registration and operator code
//! call it (I-100..I-103).
//!
//! Failure policy (I-103): a token is not handed out unless its issuance is
//! recorded (`503 temporarily_unavailable` otherwise); registrations,
//! revocations and key rotations have already taken effect when they are
//! recorded, so a failed append is logged on target `security` and the
//! action's response stands; refusals are recorded best-effort likewise.

use ajwt_protocol::wire::TokenResponse;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::*;
use crate::audit::{AuditEvent, AuditRecord};

impl Issuer {
    /// Appends `event`, caused by client `actor` (`None`: the issuer
    /// itself), to the audit chain. A store failure is `503`
    /// ([`ApiError::Unavailable`]). The API for every event, including
    /// those of other modules (e.g. [`AuditEvent::TokenRevoked`]).
    pub async fn audit(
        &self,
        event: AuditEvent,
        actor: Option<&str>,
    ) -> Result<AuditRecord, ApiError> {
        let entry = event.into_entry(actor, self.clock.now().saturating_mul(1000));
        Ok(self.store.append_audit(entry).await?)
    }

    /// [`Issuer::audit`] for an action that already took effect: a failure
    /// is logged (target `security`), not returned.
    pub async fn audit_logged(&self, event: AuditEvent, actor: Option<&str>) {
        let kind = event.kind();
        if let Err(e) = self.audit(event, actor).await {
            tracing::error!(
                target: "security",
                event = "audit_append_failed",
                kind,
                error = %e,
                "cannot append to the audit trail (I-103)"
            );
        }
    }

    /// Records the outcome of an `agent_checksum` token request of `client`
    /// naming `agent_id` with `presented` as its checksum (I-101, I-102): an
    /// issued token with its `jti` and intent hash (the token is withheld,
    /// `503`, if that cannot be recorded), a refusal with its error code.
    /// Rate-limit and overload refusals are not recorded (I-102).
    pub(crate) async fn audit_token_request(
        &self,
        client: &ClientContext,
        agent_id: &str,
        presented: String,
        outcome: Result<TokenResponse, ApiError>,
    ) -> Result<TokenResponse, ApiError> {
        let actor = Some(client.client_id.as_str());
        match outcome {
            Ok(response) => {
                let claims = token_claims(&response.access_token)?;
                let intent_hash = crate::audit::intent_hash(&claims)
                    .map_err(|e| ApiError::Internal(format!("intent hash: {e}")))?;
                let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
                let event = AuditEvent::TokenIssued {
                    agent_id: text(claims.get("sub")),
                    registration_id: text(
                        claims
                            .get("agent_proof")
                            .and_then(|p| p.get("registration_id")),
                    ),
                    jti: text(claims.get("jti")),
                    intent_hash,
                    exp: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
                    scope: text(claims.get("scope")),
                };
                self.audit(event, actor).await?;
                Ok(response)
            }
            Err(e @ (ApiError::RateLimited { .. } | ApiError::Busy { .. })) => Err(e),
            Err(e) => {
                let event = AuditEvent::TokenRefused {
                    agent_id: agent_id.to_owned(),
                    error_code: e.body().error,
                    presented_checksum: Some(presented),
                };
                self.audit_logged(event, actor).await;
                Err(e)
            }
        }
    }
}

/// The claims of a token this issuer just signed (its JWS payload).
fn token_claims(token: &str) -> Result<Map<String, Value>, ApiError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| ApiError::Internal("issued token is not a JWS".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| ApiError::Internal(format!("issued token payload: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(format!("issued token payload: {e}")))
}
