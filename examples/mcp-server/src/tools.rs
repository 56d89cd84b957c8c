//! The tool catalogue: each tool declares the scope and the workflow steps it
//! needs ([`Requirements`], the verifier's own route semantics, §6.5.3 steps
//! 6–7), and has a toy implementation.

use ajwt_verifier::{Requirements, VerifiedIntent};
use serde_json::{json, Map, Value};

/// The workflow whose patch step may call `create_patch`.
pub const WORKFLOW: &str = "auto-patch-workflow-v1";
/// The only step allowed to call `create_patch`.
pub const APPLY_STEP: &str = "step_4_apply_patch";

/// One tool: its MCP description and what a caller's token must carry.
pub struct Tool {
    /// Tool name (`tools/call` `name`).
    pub name: &'static str,
    /// Human-readable description.
    pub description: &'static str,
    /// JSON Schema of `arguments`.
    pub input_schema: Value,
    /// Scopes and workflow steps required of the verified token.
    pub requirements: Requirements,
    /// The toy implementation.
    pub run: fn(&Map<String, Value>, &VerifiedIntent) -> Value,
}

impl Tool {
    /// The `tools/list` entry, with the authorization requirements in `x-ajwt`.
    pub fn descriptor(&self) -> Value {
        let r = &self.requirements;
        json!({
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "x-ajwt": {
                "scopes": r.scopes,
                "workflow_id": r.workflow_id,
                "workflow_steps": r.steps,
            },
        })
    }

    /// The argument names `inputSchema` marks required, all strings here.
    fn required_arguments(&self) -> Vec<&str> {
        self.input_schema["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Checks `arguments` against the schema: every required member present
    /// and a string, every member a declared property.
    pub fn check_arguments(&self, arguments: &Map<String, Value>) -> Result<(), ArgumentError> {
        for name in self.required_arguments() {
            match arguments.get(name) {
                Some(Value::String(_)) => {}
                Some(_) => return Err(ArgumentError::NotAString(name.to_owned())),
                None => return Err(ArgumentError::Missing(name.to_owned())),
            }
        }
        let properties = self.input_schema["properties"].as_object();
        if let Some(unknown) = arguments
            .keys()
            .find(|k| !properties.is_some_and(|p| p.contains_key(k.as_str())))
        {
            return Err(ArgumentError::Unknown(unknown.clone()));
        }
        Ok(())
    }
}

/// Why a tool's arguments do not fit its input schema (a JSON-RPC
/// `invalid params` error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// A required argument is absent.
    #[error("missing required argument {0:?}")]
    Missing(String),
    /// A required argument is not a string.
    #[error("argument {0:?} must be a string")]
    NotAString(String),
    /// An argument the schema does not declare.
    #[error("unknown argument {0:?}")]
    Unknown(String),
}

/// Why a verified caller may not use a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A required scope is missing (RFC 6750 §3.1 `insufficient_scope`).
    InsufficientScope(String),
    /// The token's workflow or step is not one the tool allows.
    StepNotAllowed {
        /// The token's workflow.
        workflow_id: Option<String>,
        /// The token's step.
        workflow_step: Option<String>,
    },
}

/// Applies a tool's [`Requirements`] to already verified claims, in the
/// verifier's order: workflow binding, step, then scopes (§6.5.3 steps 6–7).
pub fn authorize(requirements: &Requirements, intent: &VerifiedIntent) -> Result<(), Refusal> {
    let c = &intent.claims;
    let step_refusal = || Refusal::StepNotAllowed {
        workflow_id: c.intent.workflow_id.clone(),
        workflow_step: c.intent.workflow_step.clone(),
    };
    if let Some(expected) = &requirements.workflow_id {
        if c.intent.workflow_id.as_ref() != Some(expected) {
            return Err(step_refusal());
        }
    }
    if let Some(steps) = &requirements.steps {
        if !c
            .intent
            .workflow_step
            .as_ref()
            .is_some_and(|s| steps.contains(s))
        {
            return Err(step_refusal());
        }
    }
    if let Some(chains) = &requirements.delegation_chains {
        if !chains.contains(&c.intent.delegation_chain) {
            return Err(step_refusal());
        }
    }
    let held = c.scopes();
    match requirements
        .scopes
        .iter()
        .find(|s| !held.contains(&s.as_str()))
    {
        Some(missing) => Err(Refusal::InsufficientScope(missing.clone())),
        None => Ok(()),
    }
}

/// All tools.
pub fn catalogue() -> Vec<Tool> {
    vec![
        Tool {
            name: "read_manifest",
            description: "Read package manifest file",
            input_schema: json!({
                "type": "object",
                "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"],
            }),
            requirements: Requirements::scopes(["vulnerability:read"]),
            run: read_manifest,
        },
        Tool {
            name: "check_vulnerability",
            description: "Check package for known vulnerabilities",
            input_schema: json!({
                "type": "object",
                "properties": {"package": {"type": "string"}, "version": {"type": "string"}},
                "required": ["package", "version"],
            }),
            requirements: Requirements::scopes(["vulnerability:read"]),
            run: check_vulnerability,
        },
        Tool {
            name: "create_patch",
            description: "Create patch for vulnerable package",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "package": {"type": "string"},
                    "current_version": {"type": "string"},
                    "target_version": {"type": "string"},
                },
                "required": ["package", "current_version", "target_version"],
            }),
            requirements: Requirements::scopes(["repo:write"]).at_steps(WORKFLOW, [APPLY_STEP]),
            run: create_patch,
        },
    ]
}

/// Every scope some tool needs (RFC 9728 `scopes_supported`).
pub fn scopes_supported(tools: &[Tool]) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in tools.iter().flat_map(|t| &t.requirements.scopes) {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    scopes
}

fn arg<'a>(arguments: &'a Map<String, Value>, name: &str) -> &'a str {
    arguments.get(name).and_then(Value::as_str).unwrap_or("")
}

/// A canned `package.json`.
fn read_manifest(arguments: &Map<String, Value>, _: &VerifiedIntent) -> Value {
    json!({
        "file_path": arg(arguments, "file_path"),
        "dependencies": {"lodash": "4.17.15", "express": "4.18.2"},
    })
}

/// A one-entry advisory database: lodash before 4.17.21 (CVE-2021-23337).
fn check_vulnerability(arguments: &Map<String, Value>, _: &VerifiedIntent) -> Value {
    let package = arg(arguments, "package");
    let version = arg(arguments, "version");
    let vulnerable = package == "lodash" && version_lt(version, "4.17.21");
    if vulnerable {
        json!({
            "package": package, "version": version, "vulnerable": true,
            "advisories": [{"id": "CVE-2021-23337", "severity": "high", "fixed_in": "4.17.21"}],
        })
    } else {
        json!({"package": package, "version": version, "vulnerable": false, "advisories": []})
    }
}

/// A unified diff of the manifest, attributed to the verified agent.
fn create_patch(arguments: &Map<String, Value>, intent: &VerifiedIntent) -> Value {
    let package = arg(arguments, "package");
    let from = arg(arguments, "current_version");
    let to = arg(arguments, "target_version");
    let c = &intent.claims;
    json!({
        "status": "patch created",
        "patch": format!(
            "--- a/package.json\n+++ b/package.json\n-    \"{package}\": \"{from}\"\n+    \"{package}\": \"{to}\"\n"
        ),
        "created_by": c.sub,
        "workflow_id": c.intent.workflow_id,
        "workflow_step": c.intent.workflow_step,
        "registration_id": c.agent_proof.registration_id,
        "proof_key": intent.dpop_jkt,
    })
}

/// Dotted numeric version comparison (non-numeric parts count as 0).
fn version_lt(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_lt("4.17.15", "4.17.21"));
        assert!(version_lt("4.9.0", "4.17.21"));
        assert!(!version_lt("4.17.21", "4.17.21"));
        assert!(!version_lt("5.0.0", "4.17.21"));
    }

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let tools = catalogue();
        let t = &tools[0];
        let args = |v: Value| v.as_object().cloned().unwrap();
        assert!(t.check_arguments(&args(json!({"file_path": "x"}))).is_ok());
        assert_eq!(
            t.check_arguments(&args(json!({}))),
            Err(ArgumentError::Missing("file_path".into()))
        );
        assert_eq!(
            t.check_arguments(&args(json!({"file_path": 1}))),
            Err(ArgumentError::NotAString("file_path".into()))
        );
        assert_eq!(
            t.check_arguments(&args(json!({"file_path": "x", "other": "y"}))),
            Err(ArgumentError::Unknown("other".into()))
        );
    }

    #[test]
    fn descriptors_carry_the_requirements() {
        let tools = catalogue();
        let d = tools[2].descriptor();
        assert_eq!(d["name"], "create_patch");
        assert_eq!(d["x-ajwt"]["scopes"], json!(["repo:write"]));
        assert_eq!(d["x-ajwt"]["workflow_id"], WORKFLOW);
        assert_eq!(d["x-ajwt"]["workflow_steps"], json!([APPLY_STEP]));
        assert_eq!(
            tools[0].descriptor()["x-ajwt"]["workflow_steps"],
            Value::Null
        );
        assert_eq!(
            scopes_supported(&tools),
            vec!["vulnerability:read".to_owned(), "repo:write".to_owned()]
        );
    }
}

#[cfg(test)]
mod authorize_tests {
    use super::*;

    fn intent(step: &str, scope: &str) -> VerifiedIntent {
        let claims = serde_json::from_value(json!({
            "iss": "http://issuer", "aud": "http://mcp", "sub": "vulnerability-patcher-v1",
            "exp": 2, "iat": 1, "jti": "j", "scope": scope,
            "cnf": {"jkt": "abc"},
            "intent": {
                "workflow_id": WORKFLOW, "workflow_step": step,
                "executed_by": "vulnerability-patcher-v1",
                "delegation_chain": "0123456789abcdef", "step_sequence_hash": "0123456789abcdef",
            },
            "agent_proof": {"agent_checksum": format!("sha256:{}", "a".repeat(64)), "registration_id": "r"},
        }))
        .unwrap();
        VerifiedIntent {
            claims,
            dpop_jkt: None,
        }
    }

    #[test]
    fn tool_requirements_follow_the_verifier_semantics() {
        let tools = catalogue();
        let (read, patch) = (&tools[0].requirements, &tools[2].requirements);
        assert_eq!(
            authorize(
                read,
                &intent("step_1_analyze_manifest", "vulnerability:read")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(read, &intent(APPLY_STEP, "repo:write")),
            Err(Refusal::InsufficientScope("vulnerability:read".into()))
        );
        assert_eq!(
            authorize(patch, &intent(APPLY_STEP, "vulnerability:read repo:write")),
            Ok(())
        );
        assert_eq!(
            authorize(patch, &intent(APPLY_STEP, "vulnerability:read")),
            Err(Refusal::InsufficientScope("repo:write".into()))
        );
        assert_eq!(
            authorize(patch, &intent("step_2_create_patch_plan", "repo:write")),
            Err(Refusal::StepNotAllowed {
                workflow_id: Some(WORKFLOW.into()),
                workflow_step: Some("step_2_create_patch_plan".into()),
            })
        );
    }
}
