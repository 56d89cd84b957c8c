//! Token lifecycle (issue 13): token records (§9.3.2), status lists
//! (draft-ietf-oauth-status-list), RFC 7009 revocation, RFC 7662
//! introspection, revocation of one registration, and the agent lifecycle
//! view (§5.6). Handlers in [`crate::http`] only parse and call these.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use ajwt_protocol::claims::{validate_claims, IntentClaims};
use ajwt_protocol::error::OAuthError;
use ajwt_protocol::status_list::{
    StatusClaim, StatusList, StatusListReference, StatusListTokenClaims, STATUS_INVALID,
    STATUS_LIST_JWT_TYP,
};
use serde_json::{Map, Value};

use super::*;
use crate::store::{ChainLink, NewTokenRecord, RegistrationActivity};

/// Most signed status list tokens kept (one per list; the number of lists
/// is itself bounded by the live tokens, this is a second bound).
const MAX_CACHED_STATUS_TOKENS: usize = 1024;

/// Seconds between two prunings of token records (run on issuance).
const PRUNE_INTERVAL: i64 = 60;

/// Most ancestor tokens (parent, grandparent, ...) and chain links a token
/// record keeps: a deeper delegation is refused (§9.3.2 "limit delegation
/// depth", I-82).
const MAX_ANCESTORS: usize = ajwt_protocol::limits::MAX_CHAIN;

/// The path under the issuer of the status list endpoint.
pub(crate) const STATUS_LIST_PATH: &str = "/intent/status-lists";

/// Signed status list tokens by list, with their `iat` and `kid`.
#[derive(Debug, Default)]
pub(crate) struct StatusTokenCache {
    inner: Mutex<HashMap<i64, (String, i64, String)>>,
}

impl StatusTokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (String, i64, String)>> {
        // Entries are whole values: a poisoned map is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every signed list (after any revocation).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

/// A status list token to serve, with the seconds it may still be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusListResponse {
    /// The compact JWS (`typ` `statuslist+jwt`).
    pub jwt: String,
    /// `Cache-Control: max-age`: the token's `ttl` less its age.
    pub max_age: u64,
}

/// Response of `POST /intent/admin/revoke-registration`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevokeRegistrationResponse {
    /// The revoked registration.
    pub registration_id: String,
    /// Its agent.
    pub agent_id: String,
    /// Always `true`.
    pub revoked: bool,
}

/// One registration in the lifecycle view (§5.6).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegistrationView {
    /// The registration id.
    pub registration_id: String,
    /// Its version (§5.4.4).
    pub version: u32,
    /// Registration time, Unix seconds.
    pub registered_at: i64,
    /// Revoked (§5.6.1 REVOKED).
    pub revoked: bool,
    /// When it was revoked, Unix seconds, if recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    /// First token issued under it, Unix seconds (§5.6.1 VERIFIED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_at: Option<i64>,
    /// Latest token issued under it, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_token_at: Option<i64>,
    /// Latest presentation of another checksum, Unix seconds (§5.6.1 UPDATED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_checksum_mismatch_at: Option<i64>,
    /// The registered checksum (always shown: a one-way hash, T12 / A1).
    pub agent_checksum: String,
    /// The registered specification (prompt, tools, configuration): only
    /// for a caller with `admin:intent` (threat T12, I-87).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specification: Option<Value>,
}

/// `GET /intent/agents/{agent_id}` (§5.6).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentLifecycle {
    /// The agent.
    pub agent_id: String,
    /// `REGISTERED`, `VERIFIED`, `UPDATED` or `REVOKED` (§5.6.1, I-86).
    pub state: &'static str,
    /// Version of the latest registration.
    pub latest_version: u32,
    /// Every registration, oldest first.
    pub registrations: Vec<RegistrationView>,
}

/// The §5.6.1 state of an agent from its latest registration (I-86).
pub fn lifecycle_state(revoked: bool, activity: Option<&RegistrationActivity>) -> &'static str {
    if revoked {
        return "REVOKED";
    }
    let token = activity.and_then(|a| a.last_token_at_ms);
    let mismatch = activity.and_then(|a| a.last_mismatch_at_ms);
    match (token, mismatch) {
        (_, Some(m)) if token.is_none_or(|t| m > t) => "UPDATED",
        (Some(_), _) => "VERIFIED",
        _ => "REGISTERED",
    }
}

fn invalid(m: impl Into<String>) -> ApiError {
    OAuthError::InvalidRequest(m.into()).into()
}

/// The value of form parameter `name`; a repeated parameter is
/// `invalid_request` (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1).
pub(crate) fn form_param<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut found = params.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(invalid(format!("Duplicate parameter: {name}")));
    }
    Ok(first)
}

impl Issuer {
    fn now_ms(&self) -> i64 {
        self.clock.now().saturating_mul(1000)
    }

    /// The URI of status list `list_id` (its token's `sub`).
    pub fn status_list_uri(&self, list_id: i64) -> String {
        format!(
            "{}{STATUS_LIST_PATH}/{list_id}",
            self.config.issuer.trim_end_matches('/')
        )
    }

    /// Reserves the record of an intent token about to be signed (§9.3.2,
    /// phase 1 of I-160) and gives it its `status` claim
    /// (draft-ietf-oauth-status-list §6.1); the caller hands the returned
    /// reservation to [`crate::store::Store::finish_token`] once the token
    /// is signed (with its audit entry, one durable write), or drops it to
    /// give the index back. The chain links
    /// are the request's chain agents (with the registration each had) and,
    /// for a delegated token, the parent's agent, registration and links;
    /// the ancestors are the parent's `jti` and its ancestors (I-82). A
    /// revoked parent token is refused here.
    pub(super) async fn record_issued(
        &self,
        claims: &mut IntentClaims,
        client_id: &str,
        chain: Vec<ChainLink>,
        parent: Option<&IntentClaims>,
    ) -> Result<crate::store::TokenReservation, ApiError> {
        let mut links: BTreeSet<ChainLink> = chain
            .into_iter()
            .filter(|l| l.agent_id != claims.sub)
            .collect();
        let mut ancestors: Vec<String> = Vec::new();
        if let Some(parent) = parent {
            ancestors.push(parent.jti.clone());
            links.insert(ChainLink {
                agent_id: parent.sub.clone(),
                registration_id: Some(parent.agent_proof.registration_id.clone()),
            });
            if let Some(record) = self.store.token_record(&parent.jti).await? {
                if record.revoked {
                    return Err(invalid(
                        "Invalid parameter: parent_token has been revoked (§9.3.2)",
                    ));
                }
                links.extend(record.token.chain);
                ancestors.extend(record.token.ancestors);
            }
        }
        ancestors.dedup();
        if ancestors.len() > MAX_ANCESTORS || links.len() > 2 * MAX_ANCESTORS {
            return Err(invalid(format!(
                "Delegation too deep: more than {MAX_ANCESTORS} ancestor tokens (§9.3.2)"
            )));
        }
        let record = NewTokenRecord {
            jti: claims.jti.clone(),
            agent_id: claims.sub.clone(),
            registration_id: claims.agent_proof.registration_id.clone(),
            client_id: client_id.to_owned(),
            iat: claims.iat,
            exp: claims.exp,
            chain: links.into_iter().collect(),
            ancestors,
        };
        let reservation = self
            .store
            .reserve_token(
                record,
                self.config.tokens.status_list_size,
                rand::random::<u64>(),
            )
            .await?;
        let at = reservation.index();
        claims.status = Some(StatusClaim {
            status_list: StatusListReference {
                idx: at.idx,
                uri: self.status_list_uri(at.list_id),
            },
        });
        self.maybe_prune().await;
        Ok(reservation)
    }

    /// Deletes token records past `exp` + leeway, at most once a minute.
    async fn maybe_prune(&self) {
        let now = self.clock.now();
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_INTERVAL
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let leeway = i64::try_from(self.config.tokens.record_leeway).unwrap_or(i64::MAX);
        match self.store.prune_tokens(now.saturating_sub(leeway)).await {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "expired token records pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning token records failed"),
        }
    }

    /// Notes a checksum mismatch of the agent's latest registration (§5.6.1
    /// UPDATED); a failure is logged, the refusal stands.
    pub(super) async fn note_checksum_mismatch(&self, agent_id: &str, registration_id: &str) {
        if let Err(e) = self
            .store
            .record_checksum_mismatch(agent_id, registration_id, self.now_ms())
            .await
        {
            tracing::warn!(error = %e, agent_id, "recording a checksum mismatch failed");
        }
    }

    /// Revokes the tokens of an agent and of every chain containing it
    /// (§5.6.1 "All tokens invalidated", §9.3.2), after
    /// [`Issuer::revoke_agent`] marked its registrations.
    pub(super) async fn revoke_tokens_of_agent(&self, agent_id: &str) -> Result<u64, ApiError> {
        let n = self
            .store
            .revoke_agent_tokens(agent_id, self.now_ms())
            .await?;
        self.status_tokens.clear();
        Ok(n)
    }

    /// The signed status list token of list `list_id` (draft-ietf-oauth-
    /// status-list §5.1): `sub` its URI, `iat`, `exp` = `iat` + 2 × `ttl`,
    /// `ttl`, 1 bit per token, signed by the current key. A signed token is
    /// reused while younger than `ttl` and signed by the current key, and
    /// dropped on any revocation (I-84).
    pub async fn status_list_token(&self, list_id: i64) -> Result<StatusListResponse, ApiError> {
        let now = self.clock.now();
        let ttl = self.config.tokens.status_list_ttl;
        let ttl_i = i64::try_from(ttl).unwrap_or(i64::MAX);
        let ring = self.key_ring();
        if let Some((jwt, iat, kid)) = self.status_tokens.lock().get(&list_id) {
            let age = now - iat;
            if kid == ring.current_kid() && (0..ttl_i).contains(&age) {
                return Ok(StatusListResponse {
                    jwt: jwt.clone(),
                    max_age: ttl.saturating_sub(age.unsigned_abs()),
                });
            }
        }
        let stored = self
            .store
            .status_list(list_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let mut list = StatusList::new(1, stored.size as usize)
            .map_err(|e| ApiError::Internal(format!("status list {list_id}: {e}")))?;
        for idx in stored.revoked {
            list.set(idx, STATUS_INVALID)
                .map_err(|e| ApiError::Internal(format!("status list {list_id}: {e}")))?;
        }
        let claims = StatusListTokenClaims {
            iss: Some(self.config.issuer.clone()),
            sub: self.status_list_uri(list_id),
            iat: now,
            exp: Some(now.saturating_add(ttl_i.saturating_mul(2))),
            ttl: Some(ttl),
            status_list: list.encode(),
        };
        let Ok(Value::Object(map)) = serde_json::to_value(&claims) else {
            return Err(ApiError::Internal("status list claims".into()));
        };
        let jwt = ring
            .sign(STATUS_LIST_JWT_TYP, &map)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut cache = self.status_tokens.lock();
        if cache.len() >= MAX_CACHED_STATUS_TOKENS {
            cache.clear();
        }
        cache.insert(list_id, (jwt.clone(), now, ring.current_kid().to_owned()));
        Ok(StatusListResponse { jwt, max_age: ttl })
    }

    /// An intent token of this issuer, signature checked, claims valid,
    /// `iss` ours; `None` for anything else (not a token of ours).
    fn our_intent_token(&self, token: &str) -> Option<IntentClaims> {
        let payload = self.key_ring().verify(token, TYP_INTENT_TOKEN).ok()?;
        let claims = validate_claims(&Value::Object(payload)).ok()?;
        (claims.iss == self.config.issuer).then_some(claims)
    }

    /// RFC 7009 §2.1 for an authenticated `client`: revokes an intent token
    /// of this issuer and every token derived from it (I-82). An invalid,
    /// unknown, expired or already revoked token is a success (§2.2); a
    /// client access token of ours is `unsupported_token_type` (§2.2.1,
    /// I-81); a token requested by another client is `unauthorized_client`
    /// unless the caller holds `admin:intent` (I-81). `token_type_hint` is
    /// accepted and not needed: the token itself says what it is (§2.1).
    pub async fn revoke_token_request(
        &self,
        client: &ClientContext,
        params: &[(String, String)],
    ) -> Result<(), ApiError> {
        let token = form_param(params, "token")?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::from(OAuthError::missing("token")))?;
        form_param(params, "token_type_hint")?;
        let Some(claims) = self.our_intent_token(token) else {
            if self.key_ring().verify(token, TYP_ACCESS_TOKEN).is_ok() {
                return Err(ApiError::Refused {
                    error: "unsupported_token_type",
                    description: "Client access tokens cannot be revoked; they expire".into(),
                });
            }
            return Ok(());
        };
        let Some(record) = self.store.token_record(&claims.jti).await? else {
            return Ok(());
        };
        let admin = client.scopes.iter().any(|s| s == SCOPE_ADMIN);
        if !admin
            && !bool::from(subtle::ConstantTimeEq::ct_eq(
                record.token.client_id.as_bytes(),
                client.client_id.as_bytes(),
            ))
        {
            return Err(ApiError::Refused {
                error: "unauthorized_client",
                description: "The token was not issued to this client".into(),
            });
        }
        let n = self.store.revoke_token(&claims.jti, self.now_ms()).await?;
        self.status_tokens.clear();
        if n > 0 {
            // Audit trail (I-100): the revoked token by its jti.
            let event = crate::audit::AuditEvent::TokenRevoked {
                jti: claims.jti.clone(),
                agent_id: Some(claims.sub.clone()),
                registration_id: Some(claims.agent_proof.registration_id.clone()),
            };
            self.audit_logged(event, Some(&client.client_id)).await;
        }
        tracing::warn!(
            target: "security",
            event = "token_revoked",
            jti = %claims.jti,
            agent_id = %claims.sub,
            tokens = n,
            client_id = %client.client_id,
            "intent token revoked (RFC 7009) with the tokens derived from it"
        );
        Ok(())
    }

    /// RFC 7662 §2.2 for an authenticated `client` holding
    /// `introspect:intent` (I-80): `{"active": false}` for anything but an
    /// unexpired, unrevoked intent token of this issuer whose agent and
    /// registration are not revoked; otherwise `active: true`, the token's
    /// claims and `client_id` (the client that requested it).
    pub async fn introspect(
        &self,
        client: &ClientContext,
        params: &[(String, String)],
    ) -> Result<Value, ApiError> {
        if !client.scopes.iter().any(|s| s == SCOPE_INTROSPECT) {
            return Err(ApiError::InsufficientScope {
                scope: SCOPE_INTROSPECT.to_owned(),
            });
        }
        let token = form_param(params, "token")?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::from(OAuthError::missing("token")))?;
        form_param(params, "token_type_hint")?;
        let inactive = || Ok(serde_json::json!({"active": false}));
        let Some(claims) = self.our_intent_token(token) else {
            return inactive();
        };
        if ajwt_protocol::time::check_exp(claims.exp, self.clock.now(), 0).is_err() {
            return inactive();
        }
        let Some(record) = self.store.token_record(&claims.jti).await? else {
            return inactive();
        };
        if record.revoked {
            return inactive();
        }
        // The agent or registration may have been revoked by a call that
        // had not yet reached the token records.
        let registrations = self.store.registrations(&claims.sub).await?;
        let agent_revoked = registrations.last().is_none_or(|r| r.revoked);
        let registration_revoked = registrations
            .iter()
            .find(|r| r.registration_id == claims.agent_proof.registration_id)
            .is_none_or(|r| r.revoked);
        if agent_revoked || registration_revoked {
            return inactive();
        }
        let Ok(Value::Object(mut body)) = serde_json::to_value(&claims) else {
            return Err(ApiError::Internal("intent claims are not an object".into()));
        };
        let mut out = Map::new();
        out.insert("active".into(), Value::Bool(true));
        if !record.token.client_id.is_empty() {
            out.insert("client_id".into(), Value::String(record.token.client_id));
        }
        out.append(&mut body);
        Ok(Value::Object(out))
    }

    /// `POST /intent/admin/revoke-registration` (`admin:intent`): body
    /// `{"registration_id"}`. Marks that registration revoked and revokes
    /// its tokens and every token whose delegation chain contains it
    /// (§5.6.1, §9.3.2). Idempotent; an unknown id is `400 invalid_request`.
    pub async fn revoke_registration(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<RevokeRegistrationResponse, ApiError> {
        let value = ajwt_checksum::json::parse_strict(body)
            .map_err(|_| invalid("Invalid JSON format"))?
            .to_serde_json();
        let registration_id = match value.get("registration_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(_) => return Err(invalid("Invalid parameter: registration_id")),
            None if value.is_object() => return Err(OAuthError::missing("registration_id").into()),
            None => return Err(invalid("Invalid JSON format")),
        };
        let revoked = self
            .store
            .revoke_registration(&registration_id, self.now_ms())
            .await?
            .ok_or_else(|| invalid("Unknown registration_id"))?;
        self.status_tokens.clear();
        // Audit trail (I-100).
        let event = crate::audit::AuditEvent::RegistrationRevoked {
            agent_id: revoked.agent_id.clone(),
            registration_id: registration_id.clone(),
        };
        self.audit_logged(event, Some(&by.client_id)).await;
        tracing::warn!(
            target: "security",
            event = "registration_revoked",
            agent_id = %revoked.agent_id,
            registration_id = %registration_id,
            tokens = revoked.tokens,
            client_id = %by.client_id,
            "registration revoked by an administrator (§5.6.1) with its tokens and the chains containing it"
        );
        Ok(RevokeRegistrationResponse {
            registration_id,
            agent_id: revoked.agent_id,
            revoked: true,
        })
    }

    /// `GET /intent/agents/{agent_id}` (§5.6): state, versions, registration
    /// ids and times; the registered specification only when `admin` (the
    /// caller holds `admin:intent`, threat T12), otherwise the checksums
    /// alone. `None` for an unknown agent.
    pub async fn agent_lifecycle(
        &self,
        agent_id: &str,
        admin: bool,
    ) -> Result<Option<AgentLifecycle>, ApiError> {
        let registrations = self.store.registrations(agent_id).await?;
        let Some(latest) = registrations.last() else {
            return Ok(None);
        };
        let activity: HashMap<String, RegistrationActivity> = self
            .store
            .registration_activity(agent_id)
            .await?
            .into_iter()
            .map(|a| (a.registration_id.clone(), a))
            .collect();
        let state = lifecycle_state(latest.revoked, activity.get(&latest.registration_id));
        let latest_version = latest.version;
        let secs = |ms: Option<i64>| ms.map(|m| m.div_euclid(1000));
        let mut views = Vec::with_capacity(registrations.len());
        for r in &registrations {
            let a = activity.get(&r.registration_id);
            let specification = if admin {
                self.store
                    .registration_specification(&r.registration_id)
                    .await?
                    .and_then(|s| serde_json::from_str::<Value>(&s.spec_json).ok())
            } else {
                None
            };
            views.push(RegistrationView {
                registration_id: r.registration_id.clone(),
                version: r.version,
                registered_at: r.registered_at_ms.div_euclid(1000),
                revoked: r.revoked,
                revoked_at: secs(a.and_then(|a| a.revoked_at_ms)),
                first_token_at: secs(a.and_then(|a| a.first_token_at_ms)),
                last_token_at: secs(a.and_then(|a| a.last_token_at_ms)),
                last_checksum_mismatch_at: secs(a.and_then(|a| a.last_mismatch_at_ms)),
                agent_checksum: r.checksum.to_string(),
                specification,
            });
        }
        Ok(Some(AgentLifecycle {
            agent_id: agent_id.to_owned(),
            state,
            latest_version,
            registrations: views,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(token: Option<i64>, mismatch: Option<i64>) -> RegistrationActivity {
        RegistrationActivity {
            last_token_at_ms: token,
            first_token_at_ms: token,
            last_mismatch_at_ms: mismatch,
            ..RegistrationActivity::default()
        }
    }

    /// §5.6.1/§5.6.2 states from the latest registration (I-86).
    #[test]
    fn s5_6_2_i86_state_from_activity() {
        assert_eq!(lifecycle_state(false, None), "REGISTERED");
        assert_eq!(
            lifecycle_state(false, Some(&activity(Some(5), None))),
            "VERIFIED"
        );
        assert_eq!(
            lifecycle_state(false, Some(&activity(None, Some(5)))),
            "UPDATED"
        );
        assert_eq!(
            lifecycle_state(false, Some(&activity(Some(4), Some(5)))),
            "UPDATED"
        );
        assert_eq!(
            lifecycle_state(false, Some(&activity(Some(6), Some(5)))),
            "VERIFIED"
        );
        assert_eq!(
            lifecycle_state(true, Some(&activity(Some(6), None))),
            "REVOKED"
        );
    }
}
