//! End to end: the `mcp-server` binary trusting a real issuer
//! (draft-goswami-agentic-jwt-00 §6.5.3, §9.2.2, RFC 9449, RFC 9728). The
//! issuer runs in-process over HTTP with a data directory; the §6.3.3 workflow
//! and the agents (each with its own DPoP key) are registered through the
//! admin client; JSON-RPC requests to `/mcp` carry intent tokens from the
//! token endpoint and DPoP proofs of the agents' keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_test_kit::{ChildGuard, RunningIssuer};
use serde_json::{json, Value};

const WORKFLOW: &str = "auto-patch-workflow-v1";
const ANALYZER: &str = "vulnerability-analyzer";
const PLANNER: &str = "patch-planner";
const PATCHER: &str = "vulnerability-patcher-v1";
const STEP1: &str = "step_1_analyze_manifest";
const STEP2: &str = "step_2_create_patch_plan";
const STEP3: &str = "step_3_approval_gate";
const STEP4: &str = "step_4_apply_patch";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A response, fully read.
#[derive(Debug)]
struct Resp {
    status: u16,
    www_authenticate: Option<String>,
    dpop_nonce: Option<String>,
    body: String,
    json: Value,
}

async fn read(r: reqwest::Response) -> Resp {
    let www_authenticate = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let dpop_nonce = r
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Resp {
        status,
        www_authenticate,
        dpop_nonce,
        body,
        json,
    }
}

type Agent = ajwt_test_kit::ExampleAgent;

struct Env {
    http: reqwest::Client,
    issuer_url: String,
    server_url: String,
    admin_token: String,
    analyzer: Agent,
    planner: Agent,
    patcher: Agent,
    server: ChildGuard,
    server_log: PathBuf,
    issuer: RunningIssuer,
    _data: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(&[]).await
    }

    /// The issuer and the server, started with `extra` command-line arguments.
    async fn start_with(extra: &[&str]) -> Env {
        let data = tempfile::tempdir().unwrap();
        let issuer = RunningIssuer::start(|_| {}).await.unwrap();
        let issuer_url = issuer.base_url.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();

        let admin_token = issuer.admin_token().await.expect("client_credentials");

        let workflow =
            ajwt_test_kit::repo_json("examples/workflows/auto-patch-workflow-v1.json").unwrap();
        ajwt_test_kit::register(&issuer_url, &admin_token, "workflow", &workflow)
            .await
            .unwrap_or_else(|e| panic!("workflow registration: {e}"));
        let analyzer = ajwt_test_kit::register_example_agent(&issuer_url, &admin_token, ANALYZER)
            .await
            .unwrap();
        let planner = ajwt_test_kit::register_example_agent(&issuer_url, &admin_token, PLANNER)
            .await
            .unwrap();
        let patcher = ajwt_test_kit::register_example_agent(&issuer_url, &admin_token, PATCHER)
            .await
            .unwrap();

        let port = ajwt_test_kit::free_port().unwrap();
        let server_url = format!("http://127.0.0.1:{port}");
        let server_log = data.path().join("mcp-server.log");
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-server"))
            .args([
                "--issuer",
                &issuer_url,
                "--addr",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra)
            .env_remove("MCP_PUBLIC_URL")
            .env_remove("MCP_AUDIENCE")
            .env_remove("MCP_POP")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&server_log).unwrap())
            .spawn()
            .unwrap();
        let mut env = Env {
            http,
            issuer_url,
            server_url,
            admin_token,
            analyzer,
            planner,
            patcher,
            server: ChildGuard(child),
            server_log,
            issuer,
            _data: data,
        };
        env.wait_healthy().await;
        env
    }

    async fn wait_healthy(&mut self) {
        let healthy = self
            .server
            .wait_healthy(&self.server_url, Duration::from_secs(30))
            .await;
        if let Err(e) = healthy {
            panic!("mcp-server did not become healthy ({e}):\n{}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.server_log).unwrap_or_default()
    }

    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.server_url)
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource", self.server_url)
    }

    /// An intent token for this server (audience = its URL), asserting 200.
    async fn token(
        &self,
        agent: &Agent,
        step: &str,
        completed: &[&str],
        scopes: &[&str],
    ) -> String {
        let step = ajwt_test_kit::StepRequest {
            workflow: WORKFLOW,
            step,
            completed,
            scopes,
            audience: &self.server_url,
        };
        ajwt_test_kit::step_intent_token(&self.issuer_url, &self.admin_token, agent, &step)
            .await
            .unwrap()
    }

    fn proof(&self, agent: &Agent, token: &str) -> String {
        agent
            .key
            .proof("POST", &self.mcp_url(), Some(token), None, unix_now())
            .unwrap()
    }

    /// POST /mcp with a raw body and optional headers.
    async fn post_raw(&self, body: &str, authorization: Option<&str>, dpop: Option<&str>) -> Resp {
        let mut req = self
            .http
            .post(self.mcp_url())
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_owned());
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(p) = dpop {
            req = req.header("dpop", p);
        }
        read(req.send().await.unwrap()).await
    }

    /// An authenticated request with a fresh proof of `agent`.
    async fn call_raw(&self, agent: &Agent, token: &str, body: &str) -> Resp {
        let proof = self.proof(agent, token);
        self.post_raw(body, Some(&format!("DPoP {token}")), Some(&proof))
            .await
    }

    /// An authenticated JSON-RPC request.
    async fn rpc(&self, agent: &Agent, token: &str, method: &str, params: Value) -> Resp {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        self.call_raw(agent, token, &body.to_string()).await
    }

    async fn call_tool(&self, agent: &Agent, token: &str, name: &str, arguments: Value) -> Resp {
        self.rpc(
            agent,
            token,
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        )
        .await
    }

    async fn stop(self) {
        self.issuer.stop().await.unwrap();
    }
}

/// A JSON-RPC error with `code` and id `id`.
#[track_caller]
fn assert_rpc_error(r: &Resp, status: u16, id: Value, code: i64) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.json["jsonrpc"], "2.0", "{r:?}");
    assert_eq!(r.json["id"], id, "{r:?}");
    assert_eq!(r.json["error"]["code"], code, "{r:?}");
    assert!(r.json["error"]["message"].is_string(), "{r:?}");
    assert!(r.json.get("result").is_none(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_calls_point_at_the_protected_resource_metadata() {
    let env = Env::start().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}})
    .to_string();

    // No token: 401, a DPoP challenge naming the metadata (RFC 9728 §5.1).
    let r = env.post_raw(&initialize, None, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r.www_authenticate.clone().expect("WWW-Authenticate");
    assert!(challenge.starts_with("DPoP "), "{challenge:?}");
    assert!(challenge.contains("algs=\""), "{challenge:?}");
    assert!(
        challenge.ends_with(&format!("resource_metadata=\"{}\"", env.metadata_url())),
        "{challenge:?}"
    );
    assert!(r.json.get("result").is_none(), "{r:?}");

    // A garbage token: 401 invalid_token, still with resource_metadata.
    let r = env
        .post_raw(&initialize, Some("DPoP not.a.token"), None)
        .await;
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r.www_authenticate.clone().unwrap();
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{challenge:?}"
    );
    assert!(challenge.contains("resource_metadata=\""), "{challenge:?}");

    // A valid token without its proof: 401 invalid_dpop_proof.
    let token = env
        .token(&env.analyzer, STEP1, &[], &["vulnerability:read"])
        .await;
    let r = env
        .post_raw(&initialize, Some(&format!("DPoP {token}")), None)
        .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json["error"], "invalid_dpop_proof", "{r:?}");

    // Malformed JSON-RPC is not even parsed before authentication.
    let r = env.post_raw("{not json", None, None).await;
    assert_eq!(r.status, 401, "{r:?}");

    // The metadata document (RFC 9728 §2, §3) needs no token.
    let r = read(env.http.get(env.metadata_url()).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let m = &r.json;
    assert_eq!(m["resource"], env.server_url, "{m}");
    assert_eq!(m["authorization_servers"], json!([env.issuer_url]), "{m}");
    assert_eq!(
        m["scopes_supported"],
        json!(["vulnerability:read", "repo:write"]),
        "{m}"
    );
    assert_eq!(m["bearer_methods_supported"], json!(["header"]), "{m}");
    assert_eq!(m["dpop_bound_access_tokens_required"], true, "{m}");
    let algs = m["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")), "{m}");
    assert!(algs.contains(&json!("EdDSA")), "{m}");
    // RFC 9864's fully-specified name, which oauth4webapi signs with (I-48).
    assert!(algs.contains(&json!("Ed25519")), "{m}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_s9_dpop_nonce_option_requires_and_hands_out_nonces() {
    let env = Env::start_with(&["--dpop-nonce"]).await;
    let token = env
        .token(&env.analyzer, STEP1, &[], &["vulnerability:read"])
        .await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();
    let auth = format!("DPoP {token}");
    // Without a nonce: 401 use_dpop_nonce, DPoP-Nonce, a DPoP challenge with resource_metadata.
    let r = env.call_raw(&env.analyzer, &token, &body).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json["error"], "use_dpop_nonce", "{r:?}");
    let nonce = r.dpop_nonce.clone().expect("DPoP-Nonce");
    let c = ajwt_protocol::challenge::parse(r.www_authenticate.as_deref().unwrap()).unwrap();
    assert!(c[0].is_scheme("DPoP"));
    assert_eq!(c[0].error_code(), Some("use_dpop_nonce"));
    assert_eq!(
        c[0].resource_metadata_url(),
        Some(env.metadata_url().as_str())
    );
    // With it: 200, and the success carries the current nonce (RFC 9449 §9).
    let proof = env
        .analyzer
        .key
        .proof(
            "POST",
            &env.mcp_url(),
            Some(&token),
            Some(&nonce),
            unix_now(),
        )
        .unwrap();
    let r = env.post_raw(&body, Some(&auth), Some(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.dpop_nonce.as_deref(), Some(nonce.as_str()));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_initializes_lists_and_calls_read_tools() {
    let env = Env::start().await;
    let token = env
        .token(&env.analyzer, STEP1, &[], &["vulnerability:read"])
        .await;

    let r = env
        .rpc(
            &env.analyzer,
            &token,
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}\n{}", env.log());
    assert_eq!(r.json["id"], 7);
    let result = &r.json["result"];
    assert_eq!(
        result["serverInfo"]["name"], "ajwt-example-mcp-server",
        "{r:?}"
    );
    assert!(result["capabilities"]["tools"].is_object(), "{r:?}");
    assert!(result["protocolVersion"].is_string(), "{r:?}");

    // notifications/initialized: 202, no body.
    let r = env
        .call_raw(
            &env.analyzer,
            &token,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert!(r.body.is_empty(), "{r:?}");

    let r = env
        .rpc(&env.analyzer, &token, "tools/list", json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let tools = r.json["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["read_manifest", "check_vulnerability", "create_patch"]
    );
    for t in tools {
        assert!(t["description"].is_string(), "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    assert_eq!(
        tools[0]["x-ajwt"],
        json!({"scopes": ["vulnerability:read"], "workflow_id": null, "workflow_steps": null})
    );
    assert_eq!(
        tools[2]["x-ajwt"],
        json!({"scopes": ["repo:write"], "workflow_id": WORKFLOW, "workflow_steps": [STEP4]})
    );

    let r = env
        .call_tool(
            &env.analyzer,
            &token,
            "read_manifest",
            json!({"file_path": "package.json"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let result = &r.json["result"];
    assert_eq!(result["isError"], false, "{r:?}");
    assert_eq!(
        result["structuredContent"]["dependencies"]["lodash"], "4.17.15",
        "{r:?}"
    );
    assert_eq!(result["content"][0]["type"], "text", "{r:?}");

    let r = env
        .call_tool(
            &env.analyzer,
            &token,
            "check_vulnerability",
            json!({"package": "lodash", "version": "4.17.15"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let out = &r.json["result"]["structuredContent"];
    assert_eq!(out["vulnerable"], true, "{r:?}");
    assert_eq!(out["advisories"][0]["fixed_in"], "4.17.21", "{r:?}");

    // The same proof twice: a replay (RFC 9449 §11.1) → 401.
    let body = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}).to_string();
    let proof = env.proof(&env.analyzer, &token);
    let auth = format!("DPoP {token}");
    let r = env.post_raw(&body, Some(&auth), Some(&proof)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = env.post_raw(&body, Some(&auth), Some(&proof)).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.json["error"], "invalid_dpop_proof", "{r:?}");
    let challenge = r.www_authenticate.clone().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge:?}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge:?}");

    // The analyzer's token used with another agent's key: 401.
    let r = env.rpc(&env.planner, &token, "tools/list", json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_patch_needs_repo_write_at_the_apply_step() {
    let env = Env::start().await;
    let args =
        json!({"package": "lodash", "current_version": "4.17.15", "target_version": "4.17.21"});

    // Step 4 without repo:write: 403 insufficient_scope.
    let token = env
        .token(
            &env.patcher,
            STEP4,
            &[STEP1, STEP2, STEP3],
            &["vulnerability:read"],
        )
        .await;
    let r = env
        .call_tool(&env.patcher, &token, "create_patch", args.clone())
        .await;
    assert_rpc_error(&r, 403, json!(7), -32001);
    assert_eq!(
        r.json["error"]["data"]["error"], "insufficient_scope",
        "{r:?}"
    );
    assert_eq!(r.json["error"]["data"]["scope"], "repo:write", "{r:?}");
    let challenge = r.www_authenticate.clone().expect("WWW-Authenticate");
    assert!(
        challenge.starts_with("DPoP error=\"insufficient_scope\""),
        "{challenge:?}"
    );
    assert!(challenge.contains("scope=\"repo:write\""), "{challenge:?}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge:?}");
    // The same token still reads.
    let r = env
        .call_tool(
            &env.patcher,
            &token,
            "read_manifest",
            json!({"file_path": "package.json"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Step 2 with repo:write: 403, the step may not call the tool.
    let token = env
        .token(&env.planner, STEP2, &[STEP1], &["repo:write"])
        .await;
    let r = env
        .call_tool(&env.planner, &token, "create_patch", args.clone())
        .await;
    assert_rpc_error(&r, 403, json!(7), -32002);
    let data = &r.json["error"]["data"];
    assert_eq!(data["error"], "workflow_step_not_allowed", "{r:?}");
    assert_eq!(data["workflow_step"], STEP2, "{r:?}");
    assert_eq!(data["allowed_steps"], json!([STEP4]), "{r:?}");

    // Step 4 with repo:write: the patch, attributed to the patcher's key.
    let token = env
        .token(&env.patcher, STEP4, &[STEP1, STEP2, STEP3], &["repo:write"])
        .await;
    let r = env
        .call_tool(&env.patcher, &token, "create_patch", args.clone())
        .await;
    assert_eq!(r.status, 200, "{r:?}\n{}", env.log());
    let out = &r.json["result"]["structuredContent"];
    assert_eq!(out["status"], "patch created", "{r:?}");
    assert_eq!(out["created_by"], PATCHER, "{r:?}");
    assert_eq!(out["workflow_step"], STEP4, "{r:?}");
    assert_eq!(out["registration_id"], env.patcher.registration_id, "{r:?}");
    assert_eq!(out["proof_key"], env.patcher.key.thumbprint(), "{r:?}");
    assert!(out["patch"]
        .as_str()
        .unwrap()
        .contains("+    \"lodash\": \"4.17.21\""));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_rpc_gets_json_rpc_errors() {
    let env = Env::start().await;
    let token = env
        .token(&env.analyzer, STEP1, &[], &["vulnerability:read"])
        .await;
    let raw = |body: &'static str| env.call_raw(&env.analyzer, &token, body);

    // -32700 parse error, 400.
    assert_rpc_error(&raw("{not json").await, 400, Value::Null, -32700);
    // -32600 invalid request, 400.
    for body in [
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        r#""hello""#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        r#"{"id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
        r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#,
    ] {
        let r = raw(body).await;
        assert_rpc_error(&r, 400, Value::Null, -32600);
    }
    // -32601 method not found, 200, id echoed.
    let r = raw(r#"{"jsonrpc":"2.0","id":"a","method":"resources/list"}"#).await;
    assert_rpc_error(&r, 200, json!("a"), -32601);
    // -32602 invalid params, 200.
    for params in [
        json!({}),
        json!({"name": 3}),
        json!({"name": "no_such_tool", "arguments": {}}),
        json!({"name": "read_manifest", "arguments": "x"}),
        json!({"name": "read_manifest", "arguments": {}}),
        json!({"name": "read_manifest", "arguments": {"file_path": 1}}),
        json!({"name": "read_manifest", "arguments": {"file_path": "a", "extra": "b"}}),
    ] {
        let r = env
            .rpc(&env.analyzer, &token, "tools/call", params.clone())
            .await;
        assert_rpc_error(&r, 200, json!(7), -32602);
    }
    // ping works.
    let r = raw(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json, json!({"jsonrpc": "2.0", "id": null, "result": {}}));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pop_disabled_bearer_tokens_work_and_challenges_use_bearer() {
    let env = Env::start_with(&["--pop", "disabled"]).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();

    // No token: a bare Bearer challenge with resource_metadata.
    let r = env.post_raw(&list, None, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(format!("Bearer resource_metadata=\"{}\"", env.metadata_url()).as_str())
    );

    // A bearer token without repo:write calling create_patch: 403 with the
    // RFC 6750 §3.1 challenge.
    let token = env
        .token(
            &env.patcher,
            STEP4,
            &[STEP1, STEP2, STEP3],
            &["vulnerability:read"],
        )
        .await;
    let bearer = format!("Bearer {token}");
    let r = env.post_raw(&list, Some(&bearer), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "create_patch", "arguments":
            {"package": "lodash", "current_version": "4.17.15", "target_version": "4.17.21"}}})
    .to_string();
    let r = env.post_raw(&call, Some(&bearer), None).await;
    assert_rpc_error(&r, 403, json!(2), -32001);
    let challenge = r.www_authenticate.clone().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge:?}"
    );
    assert!(challenge.contains("scope=\"repo:write\""), "{challenge:?}");

    let r = read(env.http.get(env.metadata_url()).send().await.unwrap()).await;
    assert_eq!(r.json["dpop_bound_access_tokens_required"], false, "{r:?}");
    env.stop().await;
}
