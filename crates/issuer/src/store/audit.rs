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
}
