//! A Model Context Protocol style tool server protected by Agentic JWT
//! (draft-goswami-agentic-jwt-00 §6.5). JSON-RPC 2.0 over `POST /mcp` with
//! `initialize`, `tools/list`, `tools/call` (and `ping`); every request carries
//! an intent token, by default with a DPoP proof made by the agent's own key
//! (§9.2.2, RFC 9449), verified against a running `ajwt serve` whose keys are
//! discovered through RFC 8414 metadata.
//!
//! Authorization is two-tiered: the route needs any valid token; each tool
//! declares the scope and workflow steps it needs (listed in `tools/list`
//! under `x-ajwt`), checked on `tools/call` against the verified claims.
//!
//! HTTP status of the answers:
//! * `401` (no or invalid token or proof): the verifier's OAuth error body and
//!   a `WWW-Authenticate` challenge with `resource_metadata` pointing at
//!   `/.well-known/oauth-protected-resource` (RFC 9728 §5.1);
//! * `403` (tool refused): a JSON-RPC error, code `-32001` for a missing
//!   scope (with `WWW-Authenticate: <scheme> error="insufficient_scope",
//!   scope="..."`), `-32002` for a workflow step the tool does not allow;
//! * `400`: JSON-RPC parse error `-32700` or invalid request `-32600` (the
//!   message is not a JSON-RPC request; batches are not supported);
//! * `200`: results, and JSON-RPC errors on well-formed requests: method not
//!   found `-32601`, invalid params `-32602` (unknown tool, bad arguments);
//! * `202` with no body: a notification (a request without `id`).
//!
//! ```sh
//! cargo run -p ajwt-cli -- serve &                 # the issuer on :8080
//! cargo run -p ajwt-example-mcp-server             # this server on :8091
//! ```
//!
//! The router is [`app`] (with [`discover_verifier`]), used by the
//! `mcp-server` binary and, in-process with an issuer and a shim-based
//! agent, by `cargo run -p ajwt-example-mcp-server --bin mcp-demo`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod tools;

use std::sync::Arc;
use std::time::Duration;

use ajwt_verifier::axum_layer::{add_nonce, challenge_header, error_response_with};
use ajwt_verifier::{
    CredentialHeaders, HttpFetcher, KeySource, PopPolicy, RequestParts, Requirements,
    RotatingNonces, VerifiedIntent, Verifier, VerifierConfig, VerifyError,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::tools::{Refusal, Tool};

/// The MCP protocol revision this server speaks.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// JSON-RPC server error: a scope the tool needs is missing.
pub const INSUFFICIENT_SCOPE: i64 = -32001;
/// JSON-RPC server error: the token's workflow step may not call the tool.
pub const STEP_NOT_ALLOWED: i64 = -32002;
/// RFC 9728 §3 well-known path.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Shared server state.
struct App {
    verifier: Arc<Verifier>,
    /// The absolute URL of `/mcp` as clients address it (DPoP `htu`).
    mcp_url: String,
    /// The absolute URL of the RFC 9728 metadata document.
    metadata_url: String,
    /// The RFC 9728 metadata document.
    metadata: Value,
    tools: Vec<Tool>,
}

impl App {
    fn new(verifier: Arc<Verifier>, public_url: &str) -> App {
        let public_url = public_url.trim_end_matches('/');
        let tools = tools::catalogue();
        let config = verifier.config();
        let metadata = json!({
            "resource": config.audience,
            "authorization_servers": [config.issuer],
            "scopes_supported": tools::scopes_supported(&tools),
            "bearer_methods_supported": ["header"],
            "resource_name": "Agentic JWT example MCP server",
            // Every intent token is cnf-bound and, unless PoP is disabled, is
            // refused as a bearer token (RFC 9449 §7.2, I-49).
            "dpop_bound_access_tokens_required": config.pop != PopPolicy::Disabled,
            "dpop_signing_alg_values_supported":
                config.algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        });
        App {
            mcp_url: format!("{public_url}/mcp"),
            metadata_url: format!("{public_url}{METADATA_PATH}"),
            metadata,
            tools,
            verifier,
        }
    }
}

/// A JSON-RPC error response.
fn rpc_error(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    (
        status,
        Json(json!({"jsonrpc": "2.0", "id": id, "error": error})),
    )
        .into_response()
}

/// A JSON-RPC result.
fn rpc_result(id: &Value, result: Value) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

/// `POST /mcp`: verify the token (route requirements: none beyond a valid
/// token), then dispatch the JSON-RPC request.
async fn mcp(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let credentials = CredentialHeaders::new(&headers);
    let parts = credentials.parts("POST", &app.mcp_url);
    let intent = match app.verifier.verify(&parts, &Requirements::default()).await {
        Ok(intent) => intent,
        Err(e) => {
            return error_response_with(&app.verifier, &parts, &e, Some(&app.metadata_url));
        }
    };
    let mut response = dispatch(&app, &parts, &intent, &body);
    // RFC 9449 §9: successful answers carry the current nonce (I-51).
    add_nonce(&app.verifier, &mut response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The JSON-RPC layer for a verified caller.
fn dispatch(app: &App, parts: &RequestParts<'_>, intent: &VerifiedIntent, body: &[u8]) -> Response {
    let null = Value::Null;
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return rpc_error(StatusCode::BAD_REQUEST, &null, -32700, "Parse error", None);
    };
    let invalid = |why: &str| {
        rpc_error(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            "Invalid Request",
            Some(json!({"reason": why})),
        )
    };
    let Some(request) = message.as_object() else {
        return invalid("not a JSON-RPC request object (batches are not supported)");
    };
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return invalid("method must be a string");
    };
    let id = match request.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return invalid("id must be a string, a number or null"),
    };
    let params = match request.get("params") {
        None => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
        Some(_) => return invalid("params must be an object or an array"),
    };
    let Some(id) = id else {
        // A notification (e.g. notifications/initialized): nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    };
    match method {
        "initialize" => rpc_result(
            id,
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "ajwt-example-mcp-server", "version": env!("CARGO_PKG_VERSION")},
                "instructions": "Every call needs an Agentic JWT intent token; see tools/list x-ajwt for each tool's scopes and workflow steps.",
            }),
        ),
        "ping" => rpc_result(id, json!({})),
        "tools/list" => rpc_result(
            id,
            json!({"tools": app.tools.iter().map(Tool::descriptor).collect::<Vec<_>>()}),
        ),
        "tools/call" => call_tool(app, parts, intent, id, params),
        other => rpc_error(
            StatusCode::OK,
            id,
            -32601,
            "Method not found",
            Some(json!({"method": other})),
        ),
    }
}

/// `tools/call`: `{name, arguments}`, authorized against the tool's requirements.
fn call_tool(
    app: &App,
    parts: &RequestParts<'_>,
    intent: &VerifiedIntent,
    id: &Value,
    params: Option<&Value>,
) -> Response {
    let invalid_params = |why: String| {
        rpc_error(
            StatusCode::OK,
            id,
            -32602,
            "Invalid params",
            Some(json!({"reason": why})),
        )
    };
    let Some(params) = params.and_then(Value::as_object) else {
        return invalid_params("params must be an object {name, arguments}".into());
    };
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return invalid_params("name must be a string".into());
    };
    let empty = Map::new();
    let arguments = match params.get("arguments") {
        None => &empty,
        Some(Value::Object(a)) => a,
        Some(_) => return invalid_params("arguments must be an object".into()),
    };
    let Some(tool) = app.tools.iter().find(|t| t.name == name) else {
        return invalid_params(format!("unknown tool {name:?}"));
    };
    match tools::authorize(&tool.requirements, intent) {
        Ok(()) => {}
        Err(Refusal::InsufficientScope(scope)) => {
            let e = VerifyError::InsufficientScope(scope.clone());
            let mut response = rpc_error(
                StatusCode::FORBIDDEN,
                id,
                INSUFFICIENT_SCOPE,
                &format!("tool {name} requires scope {scope}"),
                Some(json!({"error": "insufficient_scope", "scope": scope, "tool": name})),
            );
            if let Some(challenge) =
                challenge_header(&app.verifier, parts, &e, Some(&app.metadata_url))
            {
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            add_nonce(&app.verifier, &mut response);
            return response;
        }
        Err(Refusal::StepNotAllowed {
            workflow_id,
            workflow_step,
        }) => {
            let r = &tool.requirements;
            return rpc_error(
                StatusCode::FORBIDDEN,
                id,
                STEP_NOT_ALLOWED,
                &format!("tool {name} may not be called from this workflow step"),
                Some(json!({
                    "error": "workflow_step_not_allowed",
                    "tool": name,
                    "workflow_id": workflow_id,
                    "workflow_step": workflow_step,
                    "allowed_workflow_id": r.workflow_id,
                    "allowed_steps": r.steps,
                })),
            );
        }
    }
    if let Err(why) = tool.check_arguments(arguments) {
        return invalid_params(why.to_string());
    }
    tracing::info!(tool = name, agent = %intent.claims.sub, step = ?intent.claims.intent.workflow_step, "tool call");
    let output = (tool.run)(arguments, intent);
    rpc_result(
        id,
        json!({
            "content": [{"type": "text", "text": output.to_string()}],
            "structuredContent": output,
            "isError": false,
        }),
    )
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728 §3).
async fn metadata(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.metadata.clone())
}

async fn healthz() -> &'static str {
    "ok"
}

/// The server's router (`POST /mcp`, the RFC 9728 metadata, `/healthz`),
/// for the `mcp-server` binary and for programs embedding the server
/// in-process (`mcp-demo`). `public_url` is how clients address the server
/// (it forms the DPoP `htu` and the metadata URL).
pub fn app(verifier: Arc<Verifier>, public_url: &str) -> Router {
    let state = Arc::new(App::new(verifier, public_url));
    Router::new()
        .route("/mcp", post(mcp))
        .route(METADATA_PATH, get(metadata))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// A verifier trusting `issuer` (its keys discovered through RFC 8414
/// metadata, refreshed every 30 s at most) for tokens issued to `audience`,
/// with the given proof-of-possession policy.
pub async fn discover_verifier(
    issuer: &str,
    audience: &str,
    pop: PopPolicy,
) -> Result<Arc<Verifier>, String> {
    discover_verifier_with_nonces(issuer, audience, pop, None).await
}

/// [`discover_verifier`], requiring server DPoP nonces (RFC 9449 §8) rotated
/// every `nonce_lifetime` (the previous one accepted as long again) when given.
pub async fn discover_verifier_with_nonces(
    issuer: &str,
    audience: &str,
    pop: PopPolicy,
    nonce_lifetime: Option<Duration>,
) -> Result<Arc<Verifier>, String> {
    discover_verifier_with(
        issuer,
        audience,
        pop,
        nonce_lifetime,
        StatusLists::FailClosed,
    )
    .await
}

/// Whether and how tokens are checked against the issuer's Token Status
/// List (I-92).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLists {
    /// Checked; a list that cannot be had refuses the token (503). The default.
    FailClosed,
    /// Checked; a list that cannot be had lets the token through (logged).
    FailOpen,
    /// Not checked.
    Off,
}

/// [`discover_verifier_with_nonces`] with the status-list mode.
pub async fn discover_verifier_with(
    issuer: &str,
    audience: &str,
    pop: PopPolicy,
    nonce_lifetime: Option<Duration>,
    status_lists: StatusLists,
) -> Result<Arc<Verifier>, String> {
    let mut config = VerifierConfig::new(issuer, audience);
    config.pop = pop;
    let fetcher = Arc::new(HttpFetcher::new().map_err(|e| e.to_string())?);
    let keys = KeySource::discover(issuer, fetcher.clone(), Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    let mut verifier = Verifier::new(config, keys);
    if status_lists != StatusLists::Off {
        let mut status = ajwt_verifier::StatusListConfig::new(issuer);
        status.fail_open = status_lists == StatusLists::FailOpen;
        verifier = verifier.with_status_lists(status, fetcher);
    }
    if let Some(lifetime) = nonce_lifetime {
        let nonces = RotatingNonces::new(lifetime, lifetime).map_err(|e| e.to_string())?;
        verifier = verifier.with_nonces(Arc::new(nonces));
    }
    Ok(Arc::new(verifier))
}
