//! The operator hooks (`admin:intent`): agent revocation (§5.6.1 REVOKED)
//! and signing-key rotation.

use std::sync::Arc;

use ajwt_protocol::error::OAuthError;
use serde_json::{Map, Value};

use super::*;
use crate::keys::KeyRing;
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

/// Response of `POST /intent/admin/rotate-keys` (publish-then-sign, I-90).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RotateKeysResponse {
    /// `kid` of the new signing key (published in the JWK Set from now on).
    pub kid: String,
    /// `kid` of the key signing when the rotation was asked for (still in
    /// the JWK Set).
    pub previous_kid: String,
    /// Algorithm of the new key.
    pub alg: String,
    /// `next` (published, signs from `activates_at`) or `current` (signs
    /// now: a publish delay of 0).
    pub state: crate::keys::KeyState,
    /// When the new key starts signing (Unix seconds).
    pub activates_at: u64,
    /// When the previous key leaves the JWK Set (Unix seconds; absent when
    /// it is kept until the ring's bound retires it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_retires_at: Option<u64>,
    /// `true` when a rotation was already pending: no key was added and the
    /// pending key is returned (I-90).
    pub already_pending: bool,
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
        // §5.6.1 "All tokens invalidated", §9.3.2: `revoke_agent` revoked
        // its tokens and every token whose delegation chain contains it in
        // the same transaction (I-82); this counts any issued since and
        // drops the cached status list tokens.
        let tokens = self.revoke_tokens_of_agent(&agent_id).await?;
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
            tokens,
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
    /// (members ignored). Publish-then-sign (I-90): generates a signing key
    /// of the configured algorithm, stores it like the other keys and
    /// publishes it in the JWK Set at once; it starts signing
    /// `key_publish_delay` (at least the JWKS `max-age`) later, and the key it
    /// replaces stays published until every token it signed has expired
    /// (longest token lifetime + `key_retire_leeway`). While a key is pending
    /// the call adds none and returns it. At most
    /// [`crate::keys::MAX_PREVIOUS_KEYS`] older keys stay (I-70).
    pub async fn rotate_keys(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<RotateKeysResponse, ApiError> {
        admin_object(body, true)?;
        let response = self.rotate_keys_now(0, Some(&by.client_id)).await?;
        tracing::warn!(
            target: "security",
            event = "signing_key_rotated",
            kid = %response.kid,
            previous_kid = %response.previous_kid,
            alg = %response.alg,
            activates_at = response.activates_at,
            already_pending = response.already_pending,
            client_id = %by.client_id,
            "signing key rotated by an administrator: the new key is published now and signs from activates_at; the previous key still verifies"
        );
        Ok(response)
    }

    /// One rotation as of the issuer's clock (the admin hook, automatic
    /// rotation): serialized, blocking work on the blocking pool.
    async fn rotate_keys_now(
        &self,
        extra_delay: u64,
        by: Option<&str>,
    ) -> Result<RotateKeysResponse, ApiError> {
        let _serial = self.rotation.lock().await;
        let current = self.key_ring();
        let alg = self.config.signing_alg;
        let now = self.now_secs();
        // I-110: the new key goes into the store (one key even when
        // replicas rotate at once), and the ring is reloaded from it.
        // The planned ring (with the new key) is served before the store
        // commits, so the key is published for the whole delay; on failure
        // the ring before the rotation is restored.
        let publish = |planned: &KeyRing| {
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(planned.clone());
        };
        let rotated =
            crate::key_store::rotate(&*self.store, &current, alg, now, extra_delay, &publish).await;
        let (rotated, rotation) = match rotated {
            Ok(r) => r,
            Err(e) => {
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = current;
                return Err(key_api_error(e));
            }
        };
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rotated);
        if !rotation.already_pending {
            // Audit trail (I-100): a new key published; `by` None = scheduled.
            let event = crate::audit::AuditEvent::KeyRotated {
                kid: rotation.key.kid.clone(),
                previous_kid: rotation.previous_kid.clone(),
                alg: rotation.key.alg.as_str().to_owned(),
            };
            self.audit_logged(event, by).await;
        }
        Ok(RotateKeysResponse {
            kid: rotation.key.kid,
            previous_kid: rotation.previous_kid,
            alg: rotation.key.alg.as_str().to_owned(),
            state: rotation.key.state,
            activates_at: rotation.key.activates_at,
            previous_retires_at: rotation.previous_retires_at,
            already_pending: rotation.already_pending,
        })
    }

    /// Periodic key maintenance (I-90, I-110), run every
    /// [`KEY_MAINTENANCE_INTERVAL`] by `ajwt serve`: reloads the keys from
    /// the store (keys added by another replica or `ajwt keys rotate` get
    /// published before they sign; keys due are retired: private key
    /// deleted, public record kept) and, with
    /// `key_rotation_interval` set, schedules the next key so that it
    /// starts signing one interval after the current key did.
    pub async fn maintain_keys(&self) -> Result<(), ApiError> {
        {
            let _serial = self.rotation.lock().await;
            let ring = self.key_ring();
            let now = self.now_secs();
            let before = ring.describe();
            // I-110: keys rotated or retired by another replica (or `ajwt
            // keys rotate`) are read from the store; an in-memory ring is
            // only re-taken at `now`.
            let reloaded = if ring.is_stored() {
                crate::key_store::reload_after(&*self.store, Some(&ring), ring.policy(), now)
                    .await
                    .map_err(key_api_error)?
            } else {
                ring.at(now)
            };
            let after = reloaded.describe();
            if after != before {
                let kids = reloaded.kids();
                tracing::warn!(
                    target: "security",
                    event = "signing_keys_changed",
                    current = %reloaded.current_kid(),
                    published = ?kids,
                    "signing keys changed (rotation, activation or retirement, I-90)"
                );
            }
            *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(reloaded);
        }
        let interval = self.config.key_rotation_interval;
        if interval == 0 {
            return Ok(());
        }
        let ring = self.key_ring();
        // A stored ring's new key waits one maintenance interval more
        // (I-120): start that much earlier to keep the interval.
        let extra = crate::key_store::replica_delay(&*self.store, &ring);
        let due = ring
            .current_activated_at()
            .saturating_add(interval)
            .saturating_sub(self.config.key_publish_delay)
            .saturating_sub(extra);
        if ring.has_pending() || self.now_secs() < due {
            return Ok(());
        }
        let r = self.rotate_keys_now(0, None).await?;
        tracing::warn!(
            target: "security",
            event = "signing_key_rotated",
            kid = %r.kid,
            previous_kid = %r.previous_kid,
            alg = %r.alg,
            activates_at = r.activates_at,
            "signing key rotated on schedule (key_rotation_interval): the new key is published now and signs from activates_at"
        );
        Ok(())
    }
}

/// How often `ajwt serve` runs [`Issuer::maintain_keys`] (seconds); every
/// rotation adds it to the publish delay, since another replica (or a
/// server, for `ajwt keys rotate`) may publish a key stored by another
/// process that much later (I-90, I-110).
pub const KEY_MAINTENANCE_INTERVAL: u64 = 5;

/// A key failure at an operator hook: the store's own errors keep their
/// mapping (503 when the database is unreachable), others are internal.
fn key_api_error(e: crate::keys::KeyError) -> ApiError {
    match e {
        crate::keys::KeyError::Store(e) => e.into(),
        other => ApiError::Internal(format!("signing keys: {other}")),
    }
}
