//! `mcp-demo`: the MCP tool server of this package and an agent calling it
//! through the client shim, in one command:
//!
//! ```sh
//! cargo run -p ajwt-example-mcp-server --bin mcp-demo
//! ```
//!
//! It starts an issuer (`ajwt_issuer::serve` over a temporary data
//! directory) and the MCP server ([`ajwt_example_mcp_server::app`]) on
//! loopback ports, registers the workflow `auto-patch-workflow-v1` (step 1
//! assigned to `supervisor-agent`, approval gate at step 3, as in
//! `examples/multi-agent-patching`) and three agents with the shim's
//! registration helper, then the agents speak JSON-RPC to `POST /mcp` with
//! [`AgentSession::send`] (intent token + DPoP proof per request):
//!
//! 1. `initialize`, `tools/list` (each tool with its `x-ajwt` scopes and
//!    steps) and `tools/call read_manifest` by the supervisor at step 1:
//!    allowed;
//! 2. `tools/call create_patch` by the planner at step 2 with `repo:write`:
//!    refused `403` (the tool is only allowed at step 4);
//! 3. after the approval gate, `tools/call create_patch` by
//!    `vulnerability-patcher-v1` at step 4 without `repo:write`: refused
//!    `403 insufficient_scope`;
//! 4. the same with `repo:write`: allowed, the patch is created.
//!
//! Every outcome ends in one `RESULT <name>: ...` line; the exit status is 0
//! only when all of them are as expected.

use std::process::ExitCode;
use std::sync::Arc;

use ajwt_checksum::AgentSpec;
use ajwt_client::{
    AgentIdentity, AgentRegistration, AgentSession, ClientConfig, ClientError, IssuerClient,
    Method, WorkflowRegistration, WorkflowTracker,
};
use ajwt_example_mcp_server::{app, discover_verifier, tools, PROTOCOL_VERSION};
use ajwt_jose::{Alg, DpopKey};
use ajwt_verifier::PopPolicy;
use serde_json::{json, Value};

const WF: &str = tools::WORKFLOW;
const SUPERVISOR: &str = "supervisor-agent";
const PLANNER: &str = "patch-planner";
const PATCHER: &str = "vulnerability-patcher-v1";
const STEP1: &str = "step_1_analyze_manifest";
const STEP2: &str = "step_2_create_patch_plan";
const STEP3: &str = "step_3_approval_gate";
const STEP4: &str = tools::APPLY_STEP;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The in-process servers.
struct Servers {
    issuer: Arc<IssuerClient>,
    issuer_url: String,
    server_url: String,
    _data: tempfile::TempDir,
}

async fn start() -> Result<Servers, BoxError> {
    let data = tempfile::tempdir()?;
    let local = ajwt_issuer::spawn_local(data.path().join("issuer")).await?;
    let issuer_url = local.url;
    let (client_id, client_secret) = (local.admin.client_id, local.admin.client_secret);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server_url = format!("http://{}", listener.local_addr()?);
    // The audience is the server's own URL, as `mcp-server` does by default.
    let verifier = discover_verifier(&issuer_url, &server_url, PopPolicy::Required).await?;
    let router = app(verifier, &server_url);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let issuer = Arc::new(IssuerClient::new(ClientConfig::new(
        &issuer_url,
        &client_id,
        &client_secret,
    ))?);
    Ok(Servers {
        issuer,
        issuer_url,
        server_url,
        _data: data,
    })
}

/// The §6.3.3 workflow with step 1 assigned to the supervisor.
fn workflow() -> Value {
    json!({
        "workflow_id": WF,
        "steps": {
            STEP1: {"required": true, "requires_approval": false, "agent_id": SUPERVISOR},
            STEP2: {"required": true, "requires_approval": false, "agent_id": PLANNER},
            STEP3: {"required": true, "requires_approval": false, "approval_gate": true},
            STEP4: {"required": true, "requires_approval": true, "agent_id": PATCHER},
            "step_5_verify_patch": {"required": true, "requires_approval": false, "agent_id": "patch-verifier"}
        }
    })
}

fn identity(agent_id: &str, role: &str, alg: Alg) -> Result<AgentIdentity, BoxError> {
    let spec = AgentSpec::from_json(
        json!({
            "agent_id": agent_id,
            "prompt": format!("You are {agent_id}. {role}"),
            "tools": [{"name": "read_manifest", "description": "Read package manifest file",
                       "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}],
            "configuration": {"model_name": "demo-model", "temperature": 0.0}
        })
        .to_string()
        .as_bytes(),
    )?;
    Ok(AgentIdentity::new(spec, DpopKey::generate(alg)?))
}

/// An MCP client over the shim: one agent session, JSON-RPC over `POST /mcp`.
struct McpAgent {
    session: AgentSession,
    url: String,
    next_id: std::cell::Cell<u64>,
}

impl McpAgent {
    fn new(s: &Servers, id: &AgentIdentity, tracker: WorkflowTracker) -> Result<Self, BoxError> {
        Ok(McpAgent {
            session: AgentSession::new(id.clone(), s.issuer.clone(), tracker, &s.server_url)?,
            url: format!("{}/mcp", s.server_url),
            next_id: std::cell::Cell::new(1),
        })
    }

    /// One JSON-RPC request with the intent token for `step` and `scopes`:
    /// the `result`, or the shim's error (a 4xx is `ClientError::Rejected`).
    async fn rpc(
        &self,
        method: &str,
        params: Value,
        step: &str,
        scopes: &[&str],
    ) -> Result<Value, ClientError> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        println!("    -> POST {} {body}", self.url);
        let r = self
            .session
            .send(Method::POST, &self.url, Some(&body), Some(step), scopes)
            .await?;
        let reply = r.json()?;
        println!("    <- HTTP {} {reply}", r.status);
        match reply.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(ClientError::Protocol(format!(
                "JSON-RPC error: {}",
                reply.get("error").unwrap_or(&Value::Null)
            ))),
        }
    }

    async fn call(
        &self,
        tool: &str,
        arguments: Value,
        step: &str,
        scopes: &[&str],
    ) -> Result<Value, ClientError> {
        self.rpc(
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
            step,
            scopes,
        )
        .await
    }
}

/// The outcomes, in order: (name, as expected, text).
#[derive(Default)]
struct Results(Vec<(String, bool, String)>);

impl Results {
    fn push(&mut self, name: &str, ok: bool, text: String) {
        self.0.push((name.to_owned(), ok, text));
    }

    /// An outcome that should have succeeded and passed `check`.
    fn allowed(
        &mut self,
        name: &str,
        outcome: Result<Value, ClientError>,
        check: impl Fn(&Value) -> Result<String, String>,
    ) {
        match outcome {
            Ok(result) => match check(&result) {
                Ok(detail) => self.push(name, true, format!("OK{detail}")),
                Err(why) => self.push(name, false, format!("FAILED ({why})")),
            },
            Err(e) => {
                println!("    refused: {e}");
                self.push(name, false, format!("FAILED ({e})"));
            }
        }
    }

    /// An outcome that should have been refused with HTTP `status` and,
    /// when given, the OAuth `error` code.
    fn refused(
        &mut self,
        name: &str,
        outcome: Result<Value, ClientError>,
        status: u16,
        expected_error: Option<&str>,
    ) {
        match outcome {
            Err(ClientError::Rejected {
                origin,
                status: got_status,
                error: code,
                description,
                ..
            }) => {
                println!("    refused by the shim as ClientError::Rejected:");
                println!("      origin            {origin:?}");
                println!("      status            {got_status}");
                println!("      error             {code}");
                println!(
                    "      error_description {}",
                    description.as_deref().unwrap_or("(none)")
                );
                let ok = got_status == status && expected_error.is_none_or(|x| x == code);
                let text = format!("REFUSED {got_status} {code}");
                if ok {
                    self.push(name, true, text);
                } else {
                    self.push(name, false, format!("FAILED (unexpected {text})"));
                }
            }
            Err(e) => {
                println!("    error: {e}");
                self.push(name, false, format!("FAILED ({e})"));
            }
            Ok(result) => {
                println!("    NOT REFUSED: {result}");
                self.push(name, false, "FAILED (not refused)".into());
            }
        }
    }
}

fn patch_arguments() -> Value {
    json!({"package": "lodash", "current_version": "4.17.15", "target_version": "4.17.21"})
}

async fn scenario(s: &Servers, results: &mut Results) -> Result<(), BoxError> {
    println!("== Setup: registering workflow {WF} and three agents");
    match s.issuer.register_workflow(&workflow()).await? {
        WorkflowRegistration::Registered(id) => println!(
            "  workflow {id}: registered (step_1 assigned to {SUPERVISOR}, gate at {STEP3})"
        ),
        WorkflowRegistration::AlreadyExists(id) => println!("  workflow {id}: already registered"),
    }
    let sup = identity(SUPERVISOR, "Coordinate dependency patching.", Alg::Es256)?;
    let planner_id = identity(
        PLANNER,
        "Plan the upgrade of vulnerable packages.",
        Alg::EdDsa,
    )?;
    let patcher_id = identity(PATCHER, "Apply approved patches only.", Alg::EdDsa)?;
    for id in [&sup, &planner_id, &patcher_id] {
        match s.issuer.register_agent(id, None).await? {
            AgentRegistration::Registered(r) => println!(
                "  agent {:<26} registered v{} checksum {} DPoP key {}",
                r.agent_id,
                r.version,
                r.checksum,
                id.key().thumbprint()
            ),
            AgentRegistration::Unchanged { agent_id, .. } => {
                println!("  agent {agent_id:<26} already registered, unchanged")
            }
        }
    }

    println!();
    // Delegation attenuates scopes (a child holds at most its parent's), so
    // the supervisor's and the planner's tokens carry both scopes.
    let both = ["vulnerability:read", "repo:write"];
    let read = ["vulnerability:read"];
    println!("== {SUPERVISOR} at {STEP1} (scopes vulnerability:read repo:write): initialize");
    let supervisor = McpAgent::new(s, &sup, WorkflowTracker::new(WF))?;
    let outcome = supervisor
        .rpc(
            "initialize",
            json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "mcp-demo", "version": env!("CARGO_PKG_VERSION")}}),
            STEP1,
            &both,
        )
        .await;
    results.allowed("initialize", outcome, |r| {
        let name = r.pointer("/serverInfo/name").and_then(Value::as_str);
        if name == Some("ajwt-example-mcp-server") {
            Ok(String::new())
        } else {
            Err(format!("unexpected serverInfo {name:?}"))
        }
    });

    println!();
    println!("== {SUPERVISOR} at {STEP1}: tools/list");
    let outcome = supervisor.rpc("tools/list", json!({}), STEP1, &both).await;
    results.allowed("tools/list", outcome, |r| {
        let tools = r["tools"].as_array().ok_or("no tools array")?;
        for t in tools {
            let x = &t["x-ajwt"];
            let steps = match (&x["workflow_id"], &x["workflow_steps"]) {
                (Value::String(w), Value::Array(s)) => format!(
                    "{w}/{}",
                    s.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                _ => "any".to_owned(),
            };
            println!(
                "    tool {:<20} scopes {:<22} steps {steps}",
                t["name"].as_str().unwrap_or("?"),
                x["scopes"].to_string()
            );
        }
        if tools.len() == 3 {
            Ok(format!(" ({} tools)", tools.len()))
        } else {
            Err(format!("{} tools, expected 3", tools.len()))
        }
    });

    println!();
    println!("== {SUPERVISOR} at {STEP1}: tools/call read_manifest");
    let outcome = supervisor
        .call(
            "read_manifest",
            json!({"file_path": "package.json"}),
            STEP1,
            &both,
        )
        .await;
    results.allowed("call read_manifest", outcome, |r| {
        match r.pointer("/structuredContent/dependencies/lodash") {
            Some(v) if v == "4.17.15" => Ok(String::new()),
            other => Err(format!("unexpected manifest {other:?}")),
        }
    });
    supervisor.session.complete_step(STEP1);
    let planner_ctx = supervisor.session.delegate()?;
    println!(
        "    {SUPERVISOR} completes {STEP1} and delegates to {PLANNER} (chain {:?})",
        planner_ctx.chain()
    );

    println!();
    println!(
        "== {PLANNER} at {STEP2} (scopes vulnerability:read repo:write): tools/call create_patch"
    );
    let planner = McpAgent::new(s, &planner_id, planner_ctx)?;
    let outcome = planner
        .call("create_patch", patch_arguments(), STEP2, &both)
        .await;
    // The server's refusal is a JSON-RPC error (-32002) whose data.error
    // names it; the shim surfaces that name.
    results.refused(
        "call create_patch at step_2",
        outcome,
        403,
        Some("workflow_step_not_allowed"),
    );
    planner.session.complete_step(STEP2);

    println!();
    println!("== Approval gate {STEP3}");
    planner.session.complete_step(STEP3);
    let patcher_ctx = planner.session.delegate()?;
    println!("    a human approved the patch plan; {STEP3} recorded as completed");
    println!(
        "    {PLANNER} delegates to {PATCHER} (chain {:?}, completed steps {:?})",
        patcher_ctx.chain(),
        patcher_ctx.completed_steps()
    );
    let patcher = McpAgent::new(s, &patcher_id, patcher_ctx)?;

    println!();
    println!(
        "== {PATCHER} at {STEP4} (scope vulnerability:read, no repo:write): tools/call create_patch"
    );
    let outcome = patcher
        .call("create_patch", patch_arguments(), STEP4, &read)
        .await;
    results.refused(
        "call create_patch without repo:write",
        outcome,
        403,
        Some("insufficient_scope"),
    );

    println!();
    println!("== {PATCHER} at {STEP4} (scope repo:write): tools/call create_patch");
    let outcome = patcher
        .call("create_patch", patch_arguments(), STEP4, &["repo:write"])
        .await;
    results.allowed("call create_patch at step_4", outcome, |r| {
        let out = &r["structuredContent"];
        if out["status"] == "patch created" && out["created_by"] == PATCHER {
            println!(
                "    patch created by {PATCHER}, bound to its proof key {}",
                out["proof_key"].as_str().unwrap_or("?")
            );
            Ok(format!(" (patch created by {PATCHER})"))
        } else {
            Err(format!("unexpected result {out}"))
        }
    });
    Ok(())
}

/// The RESULT lines the demo must produce, in order.
const EXPECTED: [&str; 6] = [
    "initialize",
    "tools/list",
    "call read_manifest",
    "call create_patch at step_2",
    "call create_patch without repo:write",
    "call create_patch at step_4",
];

#[tokio::main]
async fn main() -> ExitCode {
    let servers = match start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the servers: {e}");
            println!("RESULT summary: FAILED (setup: {e})");
            return ExitCode::from(1);
        }
    };
    println!("Agentic JWT — MCP tool server called through the client shim");
    println!("  issuer     {}", servers.issuer_url);
    println!(
        "  MCP server {}/mcp (audience {}, DPoP required)",
        servers.server_url, servers.server_url
    );
    println!();
    let mut results = Results::default();
    if let Err(e) = scenario(&servers, &mut results).await {
        println!("    error: {e}");
        results.push("scenario", false, format!("FAILED ({e})"));
    }
    println!();
    for (name, _, text) in &results.0 {
        println!("RESULT {name}: {text}");
    }
    let names: Vec<&str> = results.0.iter().map(|(n, _, _)| n.as_str()).collect();
    let passed = results.0.iter().filter(|(_, ok, _)| *ok).count();
    let all_ok = names == EXPECTED && passed == EXPECTED.len();
    if all_ok {
        println!(
            "RESULT summary: OK (4 requests allowed, 2 refused as expected, {passed}/{} outcomes)",
            EXPECTED.len()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "RESULT summary: FAILED ({passed}/{} outcomes as expected)",
            EXPECTED.len()
        );
        ExitCode::from(1)
    }
}
