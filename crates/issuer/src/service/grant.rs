//! The `agent_checksum` grant: look-ups, the pure §4.3.1 decision
//! (`ajwt_protocol::grant::decide`), DPoP binding (I-55), signing.

use ajwt_protocol::error::OAuthError;
use serde_json::Value;

use super::*;
use ajwt_protocol::claims::validate_claims;
use ajwt_protocol::delegation::{check_chain_shape, AgentStatus, DelegationPolicy};
use ajwt_protocol::grant::{decide, GrantInputs, GrantPolicy, ParentTokenError, RegisteredAgent};
use ajwt_protocol::wire::{TokenRequest, TokenResponse};

impl Issuer {
    /// Verifies the `DPoP` proof of a token request (RFC 9449 §4.3: `htm`
    /// POST, `htu` the token endpoint, `iat` window) and records its `jti`
    /// (I-55): in this process, or, with shared limits, in the store, so
    /// that a proof replayed at another replica is refused (RFC 9449 §11.1,
    /// I-113; a store error refuses, fail closed).
    pub async fn verify_token_request_proof(
        &self,
        proof: &str,
    ) -> Result<ajwt_jose::VerifiedProof, ApiError> {
        let now = self.clock.now();
        let endpoint = self.config.token_endpoint();
        let Some(store) = self.limits.shared_store() else {
            return Ok(crate::dpop::verify_token_request_proof(
                proof,
                &endpoint,
                now,
                &self.dpop_replay,
            )?);
        };
        let verified = crate::dpop::check_token_request_proof(proof, &endpoint, now)?;
        let expires_ms = crate::dpop::replay_window_end(&verified).saturating_mul(1000);
        match store
            .remember_once(crate::dpop::REPLAY_SCOPE, &verified.jti, expires_ms)
            .await
        {
            Ok(true) => Ok(verified),
            Ok(false) => Err(crate::dpop::replayed().into()),
            Err(e) => {
                tracing::error!(error = %e, "shared DPoP replay check unavailable: refusing (I-113)");
                Err(ApiError::Busy {
                    retry_after_secs: 1,
                })
            }
        }
    }

    /// The `agent_checksum` grant after decoding: §4.3.1 steps 2–5, then
    /// delegation (§4.3.4), scope binding (A3) and token creation (§4.4).
    pub async fn intent_token(&self, req: TokenRequest) -> Result<TokenResponse, ApiError> {
        self.intent_token_with_proof(req, None).await
    }

    /// [`Issuer::intent_token_with_proof`] for an authenticated `client`
    /// under the rate limits (I-73): one request for the client and the
    /// agent, refused while either has too many recent `unknown_agent` /
    /// `agent_checksum_mismatch` refusals, which are counted here.
    pub async fn intent_token_for(
        &self,
        client: &ClientContext,
        req: TokenRequest,
        proof: Option<&ajwt_jose::VerifiedProof>,
    ) -> Result<TokenResponse, ApiError> {
        self.limits
            .check_grant(&client.client_id, &req.agent_id)
            .await?;
        let agent_id = req.agent_id.clone();
        let presented = req.computed_checksum.to_string(); // audit trail (I-101)
        let outcome = self.issue(req, proof, &client.client_id).await;
        if let Err(ApiError::OAuth(OAuthError::UnknownAgent | OAuthError::AgentChecksumMismatch)) =
            &outcome
        {
            self.limits.grant_failed(&client.client_id, &agent_id).await;
        }
        // Metrics (I-114).
        match &outcome {
            Ok(_) => self.metrics.token_issued("agent_checksum"),
            Err(ApiError::OAuth(OAuthError::AgentChecksumMismatch)) => {
                self.metrics.checksum_mismatch()
            }
            Err(_) => {}
        }
        // Audit trail (§9.1.1, §9.4.1, I-101): the issuance or the refusal.
        self.audit_token_request(client, &agent_id, presented, outcome)
            .await
    }

    /// [`Issuer::intent_token`] for a request that carried a verified DPoP
    /// proof: its key must be the agent's registered key (RFC 9449 §5), and
    /// the response's `token_type` is then `DPoP` (I-55).
    pub async fn intent_token_with_proof(
        &self,
        req: TokenRequest,
        proof: Option<&ajwt_jose::VerifiedProof>,
    ) -> Result<TokenResponse, ApiError> {
        let issued = self.issue(req, proof, "").await?;
        // No client, no audit entry: the record alone (I-160).
        self.store.finish_token(issued.reservation, None).await?;
        Ok(issued.response)
    }

    /// The grant for the client `client_id` (`""`: not known, e.g. an
    /// embedding caller), recorded as the token's requester (RFC 7009 §2.1).
    /// Returns the response, the signed claims (the audit trail hashes
    /// them, I-101, without decoding the token again) and the token's
    /// reservation: the token may be handed out only once
    /// [`crate::store::Store::finish_token`] made it durable (I-160).
    async fn issue(
        &self,
        req: TokenRequest,
        proof: Option<&ajwt_jose::VerifiedProof>,
        client_id: &str,
    ) -> Result<Issued, ApiError> {
        // Look up everything the request names (the decision is pure).
        let mut record = self
            .store
            .latest_registration(&req.agent_id)
            .await?
            .filter(|r| !r.revoked);
        // The key moves into the decision's input (the record is read
        // below for its ids and thumbprint only).
        let agent = match &mut record {
            Some(r) => Some(RegisteredAgent {
                registration_id: r.registration_id.clone(),
                checksum: r.checksum,
                allowed_scopes: r.allowed_scopes.take(),
                public_jwk: r
                    .public_jwk
                    .take()
                    .ok_or_else(|| ApiError::Internal("registration without public key".into()))?,
            }),
            None => None,
        };
        // Registry reads beyond the agent only once it is known and its
        // checksum matches (§4.3.1 order; nothing else is revealed before).
        let checksum_ok = agent
            .as_ref()
            .is_some_and(|a| a.checksum == req.computed_checksum);
        let mut workflow = None;
        let mut directory = std::collections::HashMap::new();
        let now = self.clock.now();
        let policy = GrantPolicy {
            delegation: DelegationPolicy {
                max_depth: self.config.max_delegation_depth,
                require_step_agents: false,
            },
            issuer: &self.config.issuer,
            now,
        };
        let mut parent = None;
        let mut chain_links = Vec::new();
        // Depth and duplicates before any lookup of a chain agent (I-66):
        // a chain that fails them is refused by `decide` without a directory.
        let chain_shape_ok = check_chain_shape(
            &req.delegation_context.chain,
            &req.agent_id,
            &policy.delegation,
        )
        .is_ok();
        if checksum_ok {
            if let (true, Some(wf_id)) = (req.workflow_enabled, &req.workflow_id) {
                workflow = self.store.workflow(wf_id).await?;
            }
            for id in req
                .delegation_context
                .chain
                .iter()
                .filter(|a| chain_shape_ok && **a != req.agent_id)
            {
                let found = self.store.latest_registration(id).await?;
                // §9.3.2: the chain's registrations go into the token record.
                chain_links.push(crate::store::ChainLink {
                    agent_id: id.clone(),
                    registration_id: found.as_ref().map(|r| r.registration_id.clone()),
                });
                let status = match found {
                    Some(r) if r.revoked => AgentStatus::Revoked,
                    Some(_) => AgentStatus::Active,
                    None => AgentStatus::Unknown,
                };
                directory.insert(id.clone(), status);
            }
            if let Some(token) = &req.parent_token {
                // `verify` reads the payload strictly (duplicate claims refused).
                parent = Some(
                    self.key_ring()
                        .verify(token, TYP_INTENT_TOKEN)
                        .map_err(|e| ParentTokenError::Signature(e.to_string()))
                        .and_then(|payload| Ok(validate_claims(&Value::Object(payload))?)),
                );
            }
        }
        let inputs = GrantInputs {
            request: &req,
            agent: agent.as_ref(),
            workflow: workflow.as_deref(),
            directory: &directory,
            parent: parent.as_ref().map(|p| p.as_ref().map_err(Clone::clone)),
        };
        let grant = match decide(inputs, &policy) {
            Ok(g) => g,
            Err(OAuthError::AgentChecksumMismatch) => {
                tracing::warn!(
                    target: "security",
                    event = "agent_checksum_mismatch",
                    agent_id = %req.agent_id,
                    registration_id = %record.as_ref().map_or("", |r| r.registration_id.as_str()),
                    presented = %req.computed_checksum,
                    "agent checksum mismatch (§4.5.4): possible modification or impersonation"
                );
                // §5.6.1 UPDATED: the agent runs another configuration.
                if let Some(r) = &record {
                    self.note_checksum_mismatch(&r.agent_id, &r.registration_id)
                        .await;
                }
                return Err(OAuthError::AgentChecksumMismatch.into());
            }
            Err(e) => return Err(e.into()),
        };
        // RFC 9449 §5: a proof binds the token to its key, which must be the
        // registered key the token's cnf names.
        if let Some(proof) = proof {
            let registered = match record.as_ref().and_then(|r| r.jwk_thumbprint.clone()) {
                Some(t) => t,
                None => crate::keys::jwk_thumbprint(&grant.cnf_jwk)
                    .map_err(|e| ApiError::Internal(format!("registered key: {e}")))?,
            };
            crate::dpop::require_registered_key(proof, &registered)?;
        }
        // §4.4: the token, from the typed claims.
        let lifetime = self.config.intent_token_lifetime;
        let mut claims = grant.claims(&self.config.issuer, now, lifetime, random_b64(16));
        // §9.3.2 token record and the status list claim (issue 13).
        let parent_claims = parent.as_ref().and_then(|p| p.as_ref().ok());
        // Dropped on any refusal below: the index is given back.
        let reservation = self
            .record_issued(&mut claims, client_id, chain_links, parent_claims)
            .await?;
        let claims = match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ApiError::Internal("intent claims are not an object".into())),
        };
        // The payload is the claims' RFC 8785 form (I-180): the audit
        // trail's intent hash (§9.4.1, I-101) is then the SHA-256 of the
        // payload as signed, computed once, and anyone holding the token can
        // check it without a canonicalizer.
        let payload = crate::audit::jcs_object_bytes(&claims)
            .map_err(|e| ApiError::Internal(format!("intent claims: {e}")))?;
        let intent_hash = crate::audit::sha256_hex(&payload);
        let token = self
            .key_ring()
            .sign_payload(TYP_INTENT_TOKEN, &payload)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        // A token no resource server would take in one header is refused,
        // not issued (I-66).
        if token.len() > ajwt_protocol::limits::MAX_ISSUED_TOKEN_LEN {
            return Err(OAuthError::InvalidRequest(format!(
                "The intent token would be {} bytes, more than {}: request fewer or shorter scopes or audiences",
                token.len(),
                ajwt_protocol::limits::MAX_ISSUED_TOKEN_LEN
            ))
            .into());
        }
        let scope = grant.scope();
        tracing::info!(agent_id = %grant.agent_id, registration_id = %grant.registration_id, scope = %scope, dpop = proof.is_some(), "intent token issued");
        let response = TokenResponse {
            access_token: token,
            // §4.4.1 `Bearer`; RFC 9449 §5 `DPoP` when the client proved
            // possession at this request (I-55).
            token_type: if proof.is_some() { "DPoP" } else { "Bearer" }.into(),
            expires_in: Some(lifetime),
            scope: Some(scope),
        };
        Ok(Issued {
            response,
            claims,
            intent_hash,
            reservation,
        })
    }
}

/// A signed intent token not yet handed out (I-160).
pub(crate) struct Issued {
    /// The token response.
    pub response: TokenResponse,
    /// The signed claims.
    pub claims: serde_json::Map<String, Value>,
    /// Lowercase hex SHA-256 of the signed payload, which is the claims' JCS
    /// form: the intent hash of the audit trail (§9.4.1, I-101, I-180).
    pub intent_hash: String,
    /// The token's status-index reservation: the token may be handed out
    /// only once [`crate::store::Store::finish_token`] made it durable.
    pub reservation: crate::store::TokenReservation,
}
