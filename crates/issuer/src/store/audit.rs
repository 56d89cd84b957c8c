//! Audit trail of registry access (§9.1.4: "Log all registry access for
//! audit trails"). [`AuditedStore`] wraps any [`Store`] and emits one
//! `tracing` event on target `audit` per registry read or write: the
//! operation, the agent, workflow or client id, and the outcome. It never
//! logs checksums, keys, specifications or client secret hashes (§9.1.4:
//! checksums are readable only by the IDP; §9.4.2: logs exclude sensitive
//! data). Operators route or silence the trail with the usual filter, e.g.
//! `AJWT_LOG=info,audit=off`.

use std::sync::Arc;

use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;

use super::{AgentRecord, ClientRecord, NewRegistration, Store, StoreError};
use super::{
    NewTokenRecord, RegistrationActivity, RevokedRegistration, StatusIndex, StoredStatusList,
    TokenRecord,
};

/// A [`Store`] that logs every registry access on target `audit`.
pub struct AuditedStore {
    inner: Arc<dyn Store>,
}

impl AuditedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> AuditedStore {
        AuditedStore { inner }
    }
}

/// The outcome of an access, as logged.
fn outcome<T>(r: &Result<T, StoreError>, ok: impl FnOnce(&T) -> &'static str) -> String {
    match r {
        Ok(v) => ok(v).to_owned(),
        Err(StoreError::Backend(_)) => "backend_error".to_owned(),
        Err(e) => format!("refused: {e}"),
    }
}

fn found<T>(v: &Option<T>) -> &'static str {
    if v.is_some() {
        "found"
    } else {
        "not_found"
    }
}

macro_rules! audit {
    ($op:expr, $key:ident = $value:expr, $outcome:expr) => {
        tracing::info!(target: "audit", op = $op, $key = %$value, outcome = %$outcome, "registry access")
    };
}

#[async_trait]
impl Store for AuditedStore {
    async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError> {
        let agent_id = new.agent_id.clone();
        let r = self.inner.register_agent(new).await;
        match &r {
            Ok(rec) => tracing::info!(
                target: "audit",
                op = "register_agent",
                agent_id = %rec.agent_id,
                outcome = "stored",
                registration_id = %rec.registration_id,
                version = rec.version,
                "registry access"
            ),
            Err(_) => audit!(
                "register_agent",
                agent_id = agent_id,
                outcome(&r, |_| "stored")
            ),
        }
        r
    }

    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let r = self.inner.latest_registration(agent_id).await;
        audit!(
            "latest_registration",
            agent_id = agent_id,
            outcome(&r, found)
        );
        r
    }

    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError> {
        let r = self.inner.revoke_agent(agent_id).await;
        audit!(
            "revoke_agent",
            agent_id = agent_id,
            outcome(&r, |n| if *n == 0 { "not_found" } else { "revoked" })
        );
        r
    }

    async fn registrations(&self, agent_id: &str) -> Result<Vec<AgentRecord>, StoreError> {
        let r = self.inner.registrations(agent_id).await;
        audit!(
            "registrations",
            agent_id = agent_id,
            outcome(&r, |v| if v.is_empty() { "not_found" } else { "found" })
        );
        r
    }

    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        let r = self.inner.insert_workflow(workflow).await;
        audit!(
            "insert_workflow",
            workflow_id = workflow.workflow_id,
            outcome(&r, |_| "stored")
        );
        r
    }

    async fn workflow(
        &self,
        workflow_id: &str,
    ) -> Result<Option<std::sync::Arc<Workflow>>, StoreError> {
        let r = self.inner.workflow(workflow_id).await;
        audit!("workflow", workflow_id = workflow_id, outcome(&r, found));
        r
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let r = self.inner.insert_client(client).await;
        audit!(
            "insert_client",
            client_id = client.client_id,
            outcome(&r, |_| "stored")
        );
        r
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let r = self.inner.client(client_id).await;
        audit!("client", client_id = client_id, outcome(&r, found));
        r
    }

    async fn client_count(&self) -> Result<u64, StoreError> {
        self.inner.client_count().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }

    // ---- token records, status lists, lifecycle (issue 13) ---------------
    // Logged by jti / agent / registration id; never the token itself.

    async fn record_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<StatusIndex, StoreError> {
        let jti = token.jti.clone();
        let r = self.inner.record_token(token, list_size, random).await;
        audit!("record_token", jti = jti, outcome(&r, |_| "stored"));
        r
    }

    async fn reserve_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<crate::store::TokenReservation, StoreError> {
        let jti = token.jti.clone();
        let r = self.inner.reserve_token(token, list_size, random).await;
        audit!("reserve_token", jti = jti, outcome(&r, |_| "reserved"));
        r
    }

    async fn finish_token(
        &self,
        reservation: crate::store::TokenReservation,
        audit: Option<crate::audit::AuditEntry>,
    ) -> Result<Option<crate::audit::AuditRecord>, StoreError> {
        let jti = reservation.jti().to_owned();
        let r = self.inner.finish_token(reservation, audit).await;
        audit!("finish_token", jti = jti, outcome(&r, |_| "stored"));
        r
    }

    async fn token_record(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        let r = self.inner.token_record(jti).await;
        audit!("token_record", jti = jti, outcome(&r, found));
        r
    }

    async fn revoke_token(&self, jti: &str, at_ms: i64) -> Result<u64, StoreError> {
        let r = self.inner.revoke_token(jti, at_ms).await;
        audit!(
            "revoke_token",
            jti = jti,
            outcome(&r, |n| if *n == 0 { "unchanged" } else { "revoked" })
        );
        r
    }

    async fn revoke_agent_tokens(&self, agent_id: &str, at_ms: i64) -> Result<u64, StoreError> {
        let r = self.inner.revoke_agent_tokens(agent_id, at_ms).await;
        audit!(
            "revoke_agent_tokens",
            agent_id = agent_id,
            outcome(&r, |n| if *n == 0 { "unchanged" } else { "revoked" })
        );
        r
    }

    async fn revoke_registration(
        &self,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<Option<RevokedRegistration>, StoreError> {
        let r = self.inner.revoke_registration(registration_id, at_ms).await;
        audit!(
            "revoke_registration",
            registration_id = registration_id,
            outcome(&r, |v| if v.is_some() { "revoked" } else { "not_found" })
        );
        r
    }

    async fn status_list(&self, list_id: i64) -> Result<Option<StoredStatusList>, StoreError> {
        // Read on every status list fetch that misses the signed-token
        // cache; logged at debug level only (no registry data).
        self.inner.status_list(list_id).await
    }

    async fn prune_tokens(&self, before: i64) -> Result<u64, StoreError> {
        let r = self.inner.prune_tokens(before).await;
        if let Ok(n) = &r {
            if *n > 0 {
                tracing::info!(target: "audit", op = "prune_tokens", before, pruned = *n, "registry access");
            }
        }
        r
    }

    async fn record_checksum_mismatch(
        &self,
        agent_id: &str,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let r = self
            .inner
            .record_checksum_mismatch(agent_id, registration_id, at_ms)
            .await;
        audit!(
            "record_checksum_mismatch",
            registration_id = registration_id,
            outcome(&r, |_| "stored")
        );
        r
    }

    async fn registration_activity(
        &self,
        agent_id: &str,
    ) -> Result<Vec<RegistrationActivity>, StoreError> {
        let r = self.inner.registration_activity(agent_id).await;
        audit!(
            "registration_activity",
            agent_id = agent_id,
            outcome(&r, |_| "found")
        );
        r
    }

    async fn registration_specification(
        &self,
        registration_id: &str,
    ) -> Result<Option<super::StoredSpecification>, StoreError> {
        let r = self.inner.registration_specification(registration_id).await;
        audit!(
            "registration_specification",
            registration_id = registration_id,
            outcome(&r, found)
        );
        r
    }

    // The persistent audit trail itself (crate::audit) is written by the
    // issuer (`Issuer::audit`), which knows the acting client; here it is
    // only passed through.
    async fn append_audit(
        &self,
        entry: crate::audit::AuditEntry,
    ) -> Result<crate::audit::AuditRecord, StoreError> {
        self.inner.append_audit(entry).await
    }

    async fn audit_records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
        self.inner.audit_records(after_seq, limit).await
    }

    async fn audit_last(&self, n: u32) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
        self.inner.audit_last(n).await
    }

    async fn append_audit_checkpoint(
        &self,
        checkpoint: &crate::audit::AuditCheckpoint,
    ) -> Result<(), StoreError> {
        self.inner.append_audit_checkpoint(checkpoint).await
    }

    async fn latest_audit_checkpoint(
        &self,
    ) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError> {
        self.inner.latest_audit_checkpoint().await
    }

    // ---- scale-out (issue 14): forwarded ----------------------------------
    async fn insert_first_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        self.inner.insert_first_client(client).await
    }
    async fn signing_keys(&self) -> Result<Vec<super::StoredSigningKey>, StoreError> {
        self.inner.signing_keys().await
    }
    async fn apply_key_change(
        &self,
        change: super::KeyChange,
    ) -> Result<super::KeyChangeOutcome, StoreError> {
        self.inner.apply_key_change(change).await
    }
    async fn sealed_heads(
        &self,
        kind: super::SealedKind,
        max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        self.inner.sealed_heads(kind, max_heads).await
    }
    async fn sealed_values(
        &self,
        kind: super::SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.sealed_values(kind, after, limit).await
    }
    async fn replace_sealed_value(
        &self,
        kind: super::SealedKind,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        self.inner.replace_sealed_value(kind, id, old, new).await
    }
    async fn rate_limit_take(
        &self,
        key: &str,
        burst: u32,
        interval_ms: u64,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        self.inner
            .rate_limit_take(key, burst, interval_ms, now_ms)
            .await
    }
    async fn rate_limit_block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        self.inner.rate_limit_block(key, until_ms).await
    }
    async fn rate_limit_blocked_until(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.rate_limit_blocked_until(keys, now_ms).await
    }
    async fn remember_once(
        &self,
        scope: &str,
        value: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner.remember_once(scope, value, expires_ms).await
    }
    async fn prune_shared_state(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.prune_shared_state(now_ms).await
    }
    async fn stats(&self) -> Result<super::StoreStats, StoreError> {
        self.inner.stats().await
    }
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<super::StoreChange>> {
        self.inner.changes()
    }
}
