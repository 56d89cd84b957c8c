//! The issuer's side of the tamper-evident audit trail ([`crate::audit`],
//! §9.1.1, §9.1.4, §9.4.1): [`Issuer::audit`] appends one event with the
//! acting client; the hooks in the grant, registration and operator code
//! call it (I-100..I-103).
//!
//! Failure policy (I-103): a token is not handed out unless its issuance is
//! recorded (`503 temporarily_unavailable` otherwise; the token record and
//! its `TokenIssued` entry are written together, I-160); registrations,
//! revocations and key rotations have already taken effect when they are
//! recorded, so a failed append is logged on target `security` and the
//! action's response stands; refusals are recorded best-effort likewise.

use ajwt_protocol::wire::TokenResponse;
use serde_json::{Map, Value};

use super::*;
use crate::audit::{AuditCheckpoint, AuditEvent, AuditRecord};

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
        outcome: Result<super::grant::Issued, ApiError>,
    ) -> Result<TokenResponse, ApiError> {
        let actor = Some(client.client_id.as_str());
        match outcome {
            // `claims` are exactly the signed payload's members (the payload
            // is their serialization), so hashing them equals hashing the
            // decoded payload.
            Ok(super::grant::Issued {
                response,
                claims,
                intent_hash,
                reservation,
            }) => {
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
                // The token record and this entry: ONE durable write
                // (I-160); the token is withheld if it fails.
                let entry = event.into_entry(actor, self.clock.now().saturating_mul(1000));
                self.store.finish_token(reservation, Some(entry)).await?;
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

impl Issuer {
    /// Signs the audit chain's head with the current issuer key when it
    /// moved since the latest checkpoint (I-104): a JWS of `typ`
    /// [`crate::audit::TYP_AUDIT_CHECKPOINT`] over `{iss, seq, record_hash,
    /// iat}`, stored and logged (event `audit_checkpoint`, with the JWS) so
    /// that a copy kept outside the data directory can later show that
    /// records were removed from the end. `None` when there was nothing new.
    pub async fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, ApiError> {
        let Some(head) = self.store.audit_last(1).await?.pop() else {
            return Ok(None);
        };
        if let Some(last) = self.store.latest_audit_checkpoint().await? {
            if last.seq == head.seq && last.record_hash == head.record_hash {
                return Ok(None);
            }
        }
        let now = self.clock.now();
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::from(self.config.issuer.clone()));
        claims.insert("seq".into(), Value::from(head.seq));
        claims.insert("record_hash".into(), Value::from(head.record_hash.clone()));
        claims.insert("iat".into(), Value::from(now));
        let jws = self
            .key_ring()
            .sign(crate::audit::TYP_AUDIT_CHECKPOINT, &claims)
            .map_err(|e| ApiError::Internal(format!("audit checkpoint: {e}")))?;
        let checkpoint = AuditCheckpoint {
            seq: head.seq,
            record_hash: head.record_hash,
            signed_at_ms: now.saturating_mul(1000),
            jws,
        };
        self.store.append_audit_checkpoint(&checkpoint).await?;
        tracing::info!(
            event = "audit_checkpoint",
            seq = checkpoint.seq,
            record_hash = %checkpoint.record_hash,
            jws = %checkpoint.jws,
            "audit trail head signed (I-104): keep this line to detect truncation later"
        );
        Ok(Some(checkpoint))
    }

    /// Runs [`Issuer::audit_checkpoint`] every `every` until the task is
    /// dropped; failures are logged and retried at the next tick.
    pub async fn run_audit_checkpoints(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.audit_checkpoint().await {
                tracing::warn!(error = %e, "cannot sign the audit trail head (I-104)");
            }
        }
    }
}
