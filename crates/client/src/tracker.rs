//! Workflow tracking and delegation (§2 "Workflow Tracker", §4.3.4, §6.6).

use ajwt_protocol::wire::DelegationContext;

/// What an agent knows about the workflow it runs in: the workflow id, the
/// steps completed so far (in order), the delegation chain of the agents
/// above it, and the intent token of the agent that delegated to it (sent as
/// `parent_token`, a delegation assertion, spec/interpretation.md I-19).
///
/// A root agent starts with [`WorkflowTracker::new`]; each child gets its
/// context from [`WorkflowTracker::delegate`] (or
/// [`crate::AgentSession::delegate`]).
#[derive(Clone, PartialEq, Eq)]
pub struct WorkflowTracker {
    workflow_id: String,
    chain: Vec<String>,
    completed: Vec<String>,
    parent_token: Option<String>,
}

impl std::fmt::Debug for WorkflowTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowTracker")
            .field("workflow_id", &self.workflow_id)
            .field("chain", &self.chain)
            .field("completed", &self.completed)
            .field(
                "parent_token",
                &self.parent_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl WorkflowTracker {
    /// The context of a root agent: no chain, nothing completed, no parent.
    pub fn new(workflow_id: impl Into<String>) -> WorkflowTracker {
        WorkflowTracker {
            workflow_id: workflow_id.into(),
            chain: Vec::new(),
            completed: Vec::new(),
            parent_token: None,
        }
    }

    /// The workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The agents above this one, the initiating agent first.
    pub fn chain(&self) -> &[String] {
        &self.chain
    }

    /// Steps completed before the current one, in order.
    pub fn completed_steps(&self) -> &[String] {
        &self.completed
    }

    /// The delegating agent's intent token, when delegated.
    pub fn parent_token(&self) -> Option<&str> {
        self.parent_token.as_deref()
    }

    /// Records `step` as completed (idempotent: a step already recorded is
    /// not added twice). An approval gate (§6.6.4) is recorded the same way
    /// once the approval is obtained.
    pub fn complete(&mut self, step: impl Into<String>) {
        let step = step.into();
        if !self.completed.contains(&step) {
            self.completed.push(step);
        }
    }

    /// The child context: this chain plus `parent_agent` (the delegating
    /// agent, i.e. the holder of this tracker), the same completed steps,
    /// and `parent_token` (the delegating agent's intent token, which the
    /// issuer verifies against the chain and steps, §4.3.4, §9.3.2).
    pub fn delegate(&self, parent_agent: &str, parent_token: &str) -> WorkflowTracker {
        let mut chain = self.chain.clone();
        if chain.last().map(String::as_str) != Some(parent_agent) {
            chain.push(parent_agent.to_owned());
        }
        WorkflowTracker {
            workflow_id: self.workflow_id.clone(),
            chain,
            completed: self.completed.clone(),
            parent_token: Some(parent_token.to_owned()),
        }
    }

    /// The `delegation_context` request member (§4.2.1).
    pub fn delegation_context(&self) -> DelegationContext {
        DelegationContext {
            chain: self.chain.clone(),
            completed_steps: self.completed.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_extends_the_chain_and_keeps_the_steps() {
        let mut root = WorkflowTracker::new("wf");
        assert!(root.chain().is_empty());
        assert_eq!(root.parent_token(), None);
        root.complete("s1");
        root.complete("s1");
        assert_eq!(root.completed_steps(), ["s1"]);

        let mut planner = root.delegate("supervisor", "tok-sup");
        assert_eq!(planner.workflow_id(), "wf");
        assert_eq!(planner.chain(), ["supervisor"]);
        assert_eq!(planner.completed_steps(), ["s1"]);
        assert_eq!(planner.parent_token(), Some("tok-sup"));
        planner.complete("s2");
        planner.complete("gate");
        assert_eq!(root.completed_steps(), ["s1"], "the parent is unchanged");

        let patcher = planner.delegate("planner", "tok-plan");
        assert_eq!(patcher.chain(), ["supervisor", "planner"]);
        assert_eq!(patcher.parent_token(), Some("tok-plan"));
        let ctx = patcher.delegation_context();
        assert_eq!(ctx.chain, ["supervisor", "planner"]);
        assert_eq!(ctx.completed_steps, ["s1", "s2", "gate"]);
        assert!(
            !format!("{patcher:?}").contains("tok-plan"),
            "token redacted"
        );
    }
}
