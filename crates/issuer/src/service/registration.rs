//! Agent (§5.4, §6.2) and workflow (§6.3) registration.

use ajwt_protocol::error::OAuthError;

use super::*;
use ajwt_checksum::compute;
use ajwt_protocol::registration::{
    decode_agent_registration, decode_workflow_registration, AgentRegistrationResponse,
    WorkflowRegistrationResponse,
};

use crate::keys::parse_agent_public_key;
use crate::store::NewRegistration;

impl Issuer {
    /// Agent registration (§5.4.2, §5.4.4, §6.2.3): recompute the checksum,
    /// check the claimed one, parse the public key (§9.4.1), refuse duplicate
    /// checksums (`duplicate_agent`), store a new version. A revoked agent
    /// (§5.6.1) is refused (`403 insufficient_scope`, I-69): only
    /// [`Issuer::register_agent_as`] with an `admin:intent` caller may
    /// re-register it.
    pub async fn register_agent(&self, body: &[u8]) -> Result<AgentRegistrationResponse, ApiError> {
        let result = self.register_agent_checked(body, false).await;
        self.audit_agent_registration(&result, None).await; // audit trail (I-100)
        result
    }

    /// [`Issuer::register_agent`] on behalf of the authenticated client `by`
    /// (`POST /intent/register/agent`): when `by` holds `admin:intent`, a
    /// revoked agent may be re-registered (a new, active version, I-41);
    /// otherwise that is `403 insufficient_scope` naming `admin:intent`
    /// (I-69). The revoked check and the insert are one store transaction.
    pub async fn register_agent_as(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<AgentRegistrationResponse, ApiError> {
        let admin = by.scopes.iter().any(|s| s == SCOPE_ADMIN);
        let result = self.register_agent_checked(body, admin).await;
        self.audit_agent_registration(&result, Some(&by.client_id)) // audit trail (I-100)
            .await;
        if let Err(ApiError::InsufficientScope { .. }) = &result {
            tracing::warn!(
                target: "security",
                event = "revoked_agent_reregistration_refused",
                client_id = %by.client_id,
                "re-registration of a revoked agent refused: it needs admin:intent (§5.6.1, I-69)"
            );
        }
        result
    }

    async fn register_agent_checked(
        &self,
        body: &[u8],
        may_reactivate_revoked: bool,
    ) -> Result<AgentRegistrationResponse, ApiError> {
        let req = decode_agent_registration(body)?;
        let computed = compute(&req.spec, req.checksum_profile)
            .map_err(|e| OAuthError::InvalidRequest(format!("Invalid agent specification: {e}")))?;
        if let Some(claimed) = req.checksum {
            if claimed != computed.checksum {
                return Err(OAuthError::InvalidRequest(format!(
                    "Claimed checksum does not match the specification: the server computed {} with profile '{}' (§6.2.3 step 4)",
                    computed.checksum, req.checksum_profile
                ))
                .into());
            }
        }
        let key_input = req
            .public_key
            .ok_or_else(|| OAuthError::missing("public_key"))?;
        let key = parse_agent_public_key(&key_input).map_err(|e| {
            OAuthError::InvalidRequest(format!("Invalid parameter: public_key: {e}"))
        })?;
        let spec_json = String::from_utf8_lossy(&computed.canonical).into_owned();
        let record = self
            .store
            .register_agent(NewRegistration {
                agent_id: req.spec.agent_id.clone(),
                checksum: computed.checksum,
                checksum_profile: req.checksum_profile,
                public_jwk: Some(key.jwk),
                jwk_thumbprint: Some(key.thumbprint),
                allowed_scopes: req.allowed_scopes,
                app_id: req.app_id,
                spec_json,
                registered_at_ms: self.clock.now() * 1000,
                may_reactivate_revoked,
            })
            .await?;
        tracing::info!(
            agent_id = %record.agent_id,
            registration_id = %record.registration_id,
            version = record.version,
            "agent registered"
        );
        Ok(AgentRegistrationResponse {
            agent_id: record.agent_id,
            registration_id: record.registration_id,
            checksum: record.checksum,
            version: record.version,
        })
    }

    /// Workflow registration (§6.3): validated by the protocol crate; an
    /// existing id is refused (workflows are immutable).
    pub async fn register_workflow(
        &self,
        body: &[u8],
    ) -> Result<WorkflowRegistrationResponse, ApiError> {
        let workflow = decode_workflow_registration(body)?;
        self.store.insert_workflow(&workflow).await?;
        tracing::info!(workflow_id = %workflow.workflow_id, steps = workflow.steps.len(), "workflow registered");
        Ok(WorkflowRegistrationResponse {
            status: "registered".into(),
            workflow_id: workflow.workflow_id,
        })
    }

    // --- Audit trail (§9.1.4, I-100) ---

    /// [`Issuer::register_workflow`] on behalf of the authenticated client
    /// `by` (`POST /intent/register/workflow`), recorded in the audit trail.
    pub async fn register_workflow_as(
        &self,
        body: &[u8],
        by: &ClientContext,
    ) -> Result<WorkflowRegistrationResponse, ApiError> {
        let response = self.register_workflow(body).await?;
        let event = crate::audit::AuditEvent::WorkflowRegistered {
            workflow_id: response.workflow_id.clone(),
        };
        self.audit_logged(event, Some(&by.client_id)).await;
        Ok(response)
    }

    /// Records a stored agent registration (nothing for a refused one).
    async fn audit_agent_registration(
        &self,
        result: &Result<AgentRegistrationResponse, ApiError>,
        actor: Option<&str>,
    ) {
        if let Ok(r) = result {
            let event = crate::audit::AuditEvent::AgentRegistered {
                agent_id: r.agent_id.clone(),
                registration_id: r.registration_id.clone(),
                version: r.version,
                checksum: r.checksum.to_string(),
            };
            self.audit_logged(event, actor).await;
        }
    }
}
