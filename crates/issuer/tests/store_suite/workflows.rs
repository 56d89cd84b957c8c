//! The workflow registry (§4.7.2) on every backend.

use std::sync::Arc;

use ajwt_issuer::store::{Store, StoreError};
use ajwt_protocol::registration::{Workflow, WorkflowStep};

pub fn workflow(id: &str) -> Workflow {
    Workflow {
        workflow_id: id.to_owned(),
        steps: vec![
            WorkflowStep {
                step_id: "analyze".into(),
                required: true,
                requires_approval: false,
                approval_gate: false,
                agent_id: Some("agent-a".into()),
                scopes: Some(vec!["repo:read".into()]),
            },
            WorkflowStep {
                step_id: "gate".into(),
                required: true,
                requires_approval: false,
                approval_gate: true,
                agent_id: None,
                scopes: None,
            },
        ],
    }
}

/// §4.7.2: a workflow is stored once (steps in order) and never replaced.
pub async fn s4_7_2_workflows_are_immutable(store: Arc<dyn Store>) {
    let w = workflow("wf-1");
    store.insert_workflow(&w).await.unwrap();
    assert_eq!(
        store.insert_workflow(&workflow("wf-1")).await.unwrap_err(),
        StoreError::WorkflowExists("wf-1".into())
    );
    assert_eq!(*store.workflow("wf-1").await.unwrap().unwrap(), w);
    assert!(store.workflow("wf-2").await.unwrap().is_none());
}
