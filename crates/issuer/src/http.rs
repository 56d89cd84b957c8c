//! The HTTP API (axum): token endpoint for both grants (§4.2, RFC 6749 §4.4),
//! registration endpoints (§6.2, §6.3), the operator hooks
//! (`/intent/admin/revoke-agent`, `/intent/admin/rotate-keys`, scope
//! `admin:intent`), JWKS and RFC 8414 metadata, health, and Prometheus
//! metrics (`/metrics`, I-114).
//!
//! Every error is a JSON body in the RFC 6749 §5.2 shape with its exact status
//! (never a 500 for bad input); token and registration responses carry
//! `Cache-Control: no-store` and `Pragma: no-cache` (§4.4.1, §4.5.1).

use std::marker::PhantomData;
use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;

use ajwt_protocol::wire::TokenEndpointGrant;

use ajwt_protocol::registration::{AgentRegistrationResponse, WorkflowRegistrationResponse};

use crate::service::{AgentLifecycle, RevokeRegistrationResponse, SCOPE_INTROSPECT};
use crate::service::{
    ApiError, ClientContext, Issuer, RevokeAgentResponse, RotateKeysResponse, SCOPE_ADMIN,
    SCOPE_GENERATE, SCOPE_REGISTER,
};

/// The well-known suffix of RFC 8414 §3.
const METADATA_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// The router over a shared issuer. With a root issuer every endpoint is at
/// today's paths; with a path issuer (`https://host/tenant1`) every endpoint
/// is under the issuer's path, the metadata at the RFC 8414 §3.1 location
/// `/.well-known/oauth-authorization-server/tenant1` (and, for clients that
/// append, `/tenant1/.well-known/oauth-authorization-server`), and the root
/// paths are not served (I-54). Health endpoints stay at the root.
pub fn router(issuer: Arc<Issuer>) -> Router {
    let prefix = issuer.config().issuer_path();
    // Token and registration responses are never cached (§4.4.1, §4.5.1).
    let no_store_routes: Router<Arc<Issuer>> = Router::new()
        .route("/intent/token", post(token))
        .route("/intent/register/agent", post(register_agent))
        .route("/register/agent", post(register_agent))
        .route("/intent/register/workflow", post(register_workflow))
        .route("/intent/register/client", post(register_client))
        .route("/intent/admin/revoke-agent", post(admin_revoke_agent))
        .route("/intent/admin/rotate-keys", post(admin_rotate_keys))
        // Issue 13: RFC 7009, RFC 7662, registration revocation, §5.6.
        .route("/intent/revoke", post(revoke))
        .route("/intent/introspect", post(introspect))
        .route(
            "/intent/admin/revoke-registration",
            post(admin_revoke_registration),
        )
        .route("/intent/agents/{agent_id}", get(agent_lifecycle))
        .route_layer(axum::middleware::map_response(no_store_async));
    let api: Router<Arc<Issuer>> = no_store_routes
        .route("/.well-known/jwks.json", get(jwks))
        .route(METADATA_WELL_KNOWN, get(metadata))
        .route("/intent/status-lists/{list_id}", get(status_list))
        .method_not_allowed_fallback(method_not_allowed);
    let app = if prefix.is_empty() {
        api
    } else {
        Router::new()
            .nest(&prefix, api)
            .route(&format!("{METADATA_WELL_KNOWN}{prefix}"), get(metadata))
    };
    let app = if issuer.config().metrics {
        app.route("/metrics", get(metrics_endpoint))
    } else {
        app
    };
    app.route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        // I-114: latency and refusals per route template (applied per
        // route, so the matched template is known; `unmatched` otherwise;
        // outside the panic catcher, so a caught panic's 500 counts too).
        .layer(axum::middleware::from_fn_with_state(
            issuer.clone(),
            track_metrics,
        ))
        // Every request gets a span (method, URI, status, latency).
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(issuer)
}

async fn no_store_async(r: Response) -> Response {
    no_store(r)
}

impl IntoResponse for ApiError {
    /// The RFC 6749 §5.2 / RFC 6750 §3 response of this error.
    fn into_response(self) -> Response {
        error_response(&self)
    }
}

/// A scope an endpoint requires of the client access token.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope token.
    const SCOPE: &'static str;
}

/// `register:intent` (§9.1.3): registration endpoints.
#[derive(Debug)]
pub struct RegisterScope;
impl RequiredScope for RegisterScope {
    const SCOPE: &'static str = SCOPE_REGISTER;
}

/// `admin:intent`: the operator hooks.
#[derive(Debug)]
pub struct AdminScope;
impl RequiredScope for AdminScope {
    const SCOPE: &'static str = SCOPE_ADMIN;
}

/// A client access token of this issuer (`typ` `at+jwt`, this `iss`, the
/// client-token audience of §4.2.3, unexpired) carrying scope `S`; rejected
/// with `401 invalid_token` or `403 insufficient_scope` (RFC 6750 §3.1).
#[derive(Debug)]
pub struct ClientToken<S>(pub ClientContext, PhantomData<S>);

impl<S: RequiredScope> FromRequestParts<Arc<Issuer>> for ClientToken<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        issuer: &Arc<Issuer>,
    ) -> Result<Self, Self::Rejection> {
        issuer
            .authorize(authorization(&parts.headers), S::SCOPE)
            .map(|client| ClientToken(client, PhantomData))
    }
}

/// A JSON request body: `Content-Type: application/json` (415 otherwise;
/// with `EMPTY_OK` an empty body needs none) and at most the configured
/// size (413). Extract it after [`ClientToken`], so the token is checked first.
#[derive(Debug)]
pub struct JsonBody<const EMPTY_OK: bool = false>(pub Bytes);

impl<const EMPTY_OK: bool> FromRequest<Arc<Issuer>> for JsonBody<EMPTY_OK> {
    type Rejection = ApiError;

    async fn from_request(request: Request, issuer: &Arc<Issuer>) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        if !EMPTY_OK {
            require_json(&parts.headers)?;
        }
        let bytes = read_body(issuer, &parts.headers, body).await?;
        if EMPTY_OK && !bytes.is_empty() {
            require_json(&parts.headers)?;
        }
        Ok(JsonBody(bytes))
    }
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    error_response(&ApiError::Internal("panic".into()))
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The client's IP address, when the server recorded it (`ConnectInfo`;
/// absent for in-process requests).
fn peer_ip(parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The JSON error response of `e` (RFC 6749 §5.2 / RFC 6750 §3).
pub fn error_response(e: &ApiError) -> Response {
    match e {
        ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
        ApiError::Unavailable(detail) => tracing::error!(%detail, "store unavailable"),
        _ => {}
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = e.body();
    // For the metrics layer (I-114): the error code and the limit.
    let refusal = crate::metrics::Refusal::of(
        &body.error,
        match e {
            ApiError::RateLimited { limit, .. } => Some(*limit),
            _ => None,
        },
    );
    let mut r = (status, axum::Json(body)).into_response();
    r.extensions_mut().insert(refusal);
    if let Some(challenge) = e.www_authenticate() {
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let Some(seconds) = e.retry_after() {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    no_store(r)
}

async fn not_found() -> Response {
    error_response(&ApiError::NotFound)
}

async fn method_not_allowed() -> Response {
    error_response(&ApiError::MethodNotAllowed)
}

/// The media type of the request, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Largest body the token endpoint reads before the client is
/// authenticated: a `client_credentials` form, or enough of any request to
/// find an unsupported `grant_type` (I-53). Issue 12 defect 3, I-74.
pub const UNAUTHENTICATED_BODY_LIMIT: usize = 8 * 1024;

/// KiB of request bodies that all requests of this process together may be
/// reading at once (64 MiB, I-74); a request that cannot reserve its share
/// within [`BODY_BUDGET_WAIT`] is answered 503 with `Retry-After`.
pub const BODY_MEMORY_BUDGET_KIB: u32 = 64 * 1024;

/// How long a request waits for its share of [`BODY_MEMORY_BUDGET_KIB`].
const BODY_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

fn body_budget() -> &'static Arc<tokio::sync::Semaphore> {
    static BUDGET: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    BUDGET.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(BODY_MEMORY_BUDGET_KIB as usize)))
}

/// The whole body, at most `body_limit` bytes (413) and within
/// `body_read_timeout` (408, I-67). Either error leaves the body unread, so
/// the response announces `Connection: close` (see [`crate::server`]).
async fn read_body(issuer: &Issuer, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    read_body_limited(issuer, headers, body, issuer.config().body_limit).await
}

/// [`read_body`] with `limit`. While it reads, the request holds its share of
/// the process-wide body budget: `Content-Length` (or `limit` when absent)
/// rounded up to KiB (I-74).
async fn read_body_limited(
    issuer: &Issuer,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let reserve = declared.unwrap_or(limit as u64).div_ceil(1024).max(1);
    let reserve = u32::try_from(reserve).unwrap_or(u32::MAX);
    let permit = tokio::time::timeout(
        BODY_BUDGET_WAIT,
        body_budget().clone().acquire_many_owned(reserve),
    )
    .await;
    let Ok(Ok(_permit)) = permit else {
        return Err(ApiError::Busy {
            retry_after_secs: 1,
        });
    };
    let timeout = issuer.config().body_read_timeout;
    match tokio::time::timeout(timeout, to_bytes(body, limit)).await {
        Ok(read) => read.map_err(|_| ApiError::PayloadTooLarge(limit)),
        Err(_) => Err(ApiError::RequestTimeout(timeout)),
    }
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// HTTP Basic credentials (RFC 6749 §2.3.1: form-urlencoded id and secret).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = authorization(headers) else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || ApiError::InvalidClient("Malformed HTTP Basic credentials".into());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Result<String, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&format!("v={s}")).map_err(|_| bad())?;
        pairs.into_iter().next().map(|(_, v)| v).ok_or_else(bad)
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => Ok(()),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, got {}",
            other.unwrap_or("none")
        ))),
    }
}

/// `POST /intent/token`: `client_credentials` (form) or `agent_checksum`
/// (JSON, or form for RFC 6749 clients) behind a client bearer token.
///
/// Order: content type, body size, then a grant type that is neither
/// (`unsupported_grant_type` before any client authentication, RFC 6749
/// §5.2, I-53), then the `DPoP` header count (RFC 9449 §4.3 step 1); for
/// `client_credentials` the proof, then client authentication; for
/// `agent_checksum` the bearer client token (§4.2.3, I-25), the proof, the
/// body (I-15) and §4.3.1 (I-55).
async fn token(
    State(issuer): State<Arc<Issuer>>,
    request: Request,
) -> Result<Json<ajwt_protocol::wire::TokenResponse>, ApiError> {
    let (parts, body) = request.into_parts();
    let peer = peer_ip(&parts);
    let outcome = async {
        let media = media_type(&parts.headers);
        let is_form = media.as_deref() == Some("application/x-www-form-urlencoded");
        let is_json = media.as_deref() == Some("application/json");
        if !is_form && !is_json {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type must be application/json or application/x-www-form-urlencoded, got {}",
                media.as_deref().unwrap_or("none")
            )));
        }
        // I-74: a bearer client token is checked from the headers before the
        // body is read; without a valid one only a small body is read (enough
        // for client_credentials and for finding an unsupported grant, I-53).
        let bearer = authorization(&parts.headers)
            .filter(|h| h.split(' ').next().is_some_and(|s| s.eq_ignore_ascii_case("bearer")))
            .map(|h| issuer.authorize(Some(h), SCOPE_GENERATE));
        let limit = match &bearer {
            Some(Ok(_)) => issuer.config().body_limit,
            _ => UNAUTHENTICATED_BODY_LIMIT,
        };
        let bytes = match read_body_limited(&issuer, &parts.headers, body, limit).await {
            // Too large to read unauthenticated: the bearer's own refusal.
            Err(ApiError::PayloadTooLarge(_)) if matches!(bearer, Some(Err(_))) => {
                return Err(bearer
                    .and_then(Result::err)
                    .unwrap_or(ApiError::PayloadTooLarge(limit)))
            }
            other => other?,
        };
        let grant = match ajwt_protocol::wire::peek_grant_type(&bytes, is_form) {
            Some(g) => Some(ajwt_protocol::wire::token_endpoint_grant(&g)?),
            None => None,
        };
        let proof = crate::dpop::proof_header(&parts.headers)?;
        let form_params = if is_form {
            let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
                ApiError::from(ajwt_protocol::OAuthError::InvalidRequest("Invalid form encoding".into()))
            })?;
            Some(params)
        } else {
            None
        };
        // The first grant_type decides, as before (a repeated one is then
        // `Duplicate parameter`, RFC 6749 §3.2).
        let client_credentials = grant == Some(TokenEndpointGrant::ClientCredentials)
            || form_params.as_ref().is_some_and(|p| {
                p.iter().find(|(k, _)| k == "grant_type").map(|(_, v)| v.as_str())
                    == Some(ajwt_protocol::wire::GRANT_TYPE_CLIENT_CREDENTIALS)
            });
        if let (Some(params), true) = (form_params, client_credentials) {
            let mut seen = std::collections::HashSet::new();
            if let Some((k, _)) = params.iter().find(|(k, _)| !seen.insert(k.clone())) {
                return Err(ajwt_protocol::OAuthError::InvalidRequest(format!(
                    "Duplicate parameter: {k}"
                ))
                .into());
            }
            // I-55: a present proof must be valid; the client token is not
            // bound (token_type Bearer tells the client so, RFC 9449 §5).
            if let Some(p) = proof {
                issuer.verify_token_request_proof(p).await?;
            }
            return issuer
                .client_credentials(&params, basic_credentials(&parts.headers)?, peer)
                .await;
        }
        // §4.2.3: the agent_checksum grant needs a client token with generate:intent-token.
        let client = match bearer {
            Some(checked) => checked?,
            None => issuer.authorize(authorization(&parts.headers), SCOPE_GENERATE)?,
        };
        let verified = match proof {
            Some(p) => Some(issuer.verify_token_request_proof(p).await?),
            None => None,
        };
        let options = ajwt_protocol::wire::DecodeOptions {
            accept_bare_checksum: issuer.config().accept_bare_checksum,
        };
        let request = if is_form {
            ajwt_protocol::wire::decode_token_request_form_with(&bytes, &options)?
        } else {
            ajwt_protocol::wire::decode_token_request_with(&bytes, &options)?
        };
        issuer
            .intent_token_for(&client, request, verified.as_ref())
            .await
    }
    .await;
    outcome.map(Json)
}

/// Runs an operator action on its own task, so that a client hanging up
/// cannot cancel it half-way (e.g. a key file written but not yet current, or
/// a revocation committed but the agent cache not yet invalidated).
async fn run_to_completion<T: Send + 'static>(
    action: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(action)
        .await
        .map_err(|e| ApiError::Internal(format!("operator action task: {e}")))?
}

/// `POST /intent/admin/revoke-agent` (operator hook, `admin:intent`):
/// `{"agent_id"}` → `{"agent_id", "revoked": true, "registrations"}`.
async fn admin_revoke_agent(
    State(issuer): State<Arc<Issuer>>,
    ClientToken(client, _): ClientToken<AdminScope>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<RevokeAgentResponse>, ApiError> {
    run_to_completion(async move { issuer.revoke_agent(&bytes, &client).await })
        .await
        .map(Json)
}

/// `POST /intent/admin/rotate-keys` (operator hook, `admin:intent`): `{}` or
/// empty → `{"kid", "previous_kid", "alg"}`.
async fn admin_rotate_keys(
    State(issuer): State<Arc<Issuer>>,
    ClientToken(client, _): ClientToken<AdminScope>,
    JsonBody(bytes): JsonBody<true>,
) -> Result<Json<RotateKeysResponse>, ApiError> {
    run_to_completion(async move { issuer.rotate_keys(&bytes, &client).await })
        .await
        .map(Json)
}

/// `POST /intent/register/agent` (and `/register/agent`, §6.2.2): §5.4, §6.2.3.
async fn register_agent(
    State(issuer): State<Arc<Issuer>>,
    ClientToken(client, _): ClientToken<RegisterScope>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<AgentRegistrationResponse>, ApiError> {
    issuer
        .rate_limits()
        .check_registration(&client.client_id)
        .await?;
    issuer.register_agent_as(&bytes, &client).await.map(Json)
}

/// `POST /intent/register/workflow`: §6.3.
async fn register_workflow(
    State(issuer): State<Arc<Issuer>>,
    ClientToken(client, _): ClientToken<RegisterScope>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<WorkflowRegistrationResponse>, ApiError> {
    issuer
        .rate_limits()
        .check_registration(&client.client_id)
        .await?;
    issuer.register_workflow_as(&bytes, &client).await.map(Json)
}

/// `POST /intent/register/client` (admin): `{"allowed_scopes": [...], "description"?}`
/// → `{"client_id", "client_secret", "allowed_scopes"}`.
async fn register_client(
    State(issuer): State<Arc<Issuer>>,
    ClientToken(caller, _): ClientToken<RegisterScope>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let outcome = async {
        issuer
            .rate_limits()
            .check_registration(&caller.client_id)
            .await?;
        let invalid = |m: &str| ApiError::from(ajwt_protocol::OAuthError::InvalidRequest(m.into()));
        let value = ajwt_checksum::json::parse_strict(&bytes)
            .map_err(|_| invalid("Invalid JSON format"))?
            .to_serde_json();
        if !value.is_object() {
            return Err(invalid("Invalid JSON format"));
        }
        let scopes: Vec<String> = match value.get("allowed_scopes") {
            Some(serde_json::Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("Invalid parameter: allowed_scopes"))?,
            Some(_) => return Err(invalid("Invalid parameter: allowed_scopes")),
            None => return Err(invalid("Missing required parameter: allowed_scopes")),
        };
        let description = value
            .get("description")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        // A client can only hand out scopes it holds itself (I-41): a
        // `register:intent` client cannot mint an `admin:intent` client.
        // RFC 6749 §5.2: invalid_scope covers a scope that "exceeds the
        // scope granted".
        // I-80: an `admin:intent` client may also hand out
        // `introspect:intent` (admin clients created before the scope
        // existed do not hold it).
        let is_admin = caller.scopes.iter().any(|s| s == SCOPE_ADMIN);
        if let Some(extra) = ajwt_protocol::scope::scopes_not_held(&scopes, &caller.scopes)
            .into_iter()
            .filter(|s| !(is_admin && *s == SCOPE_INTROSPECT))
            .find(|s| ajwt_protocol::scope::is_scope_token(s))
            .map(str::to_owned)
        {
            return Err(ajwt_protocol::OAuthError::InvalidScope {
                description: format!("Scope exceeds the caller's own scopes: '{extra}'"),
                refused: vec![extra],
            }
            .into());
        }
        let creds = issuer
            .create_client_as(scopes.clone(), description, &caller)
            .await?;
        Ok(serde_json::json!({
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "allowed_scopes": scopes,
        }))
    }
    .await;
    outcome.map(Json)
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    let mut r = axum::Json(issuer.jwks()).into_response();
    // I-90: the max-age a new key's publish delay is at least.
    let cache = format!("public, max-age={}", issuer.config().jwks_max_age);
    if let Ok(value) = HeaderValue::from_str(&cache) {
        r.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    r
}

async fn metadata(State(issuer): State<Arc<Issuer>>) -> Response {
    axum::Json(issuer.metadata()).into_response()
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(issuer): State<Arc<Issuer>>) -> Response {
    match issuer.store().ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => error_response(&ApiError::Unavailable(e.to_string())),
    }
}

// ---- issue 13: revocation, introspection, status lists, lifecycle -------

/// Largest body of a revocation or introspection request: a token of
/// [`ajwt_protocol::limits::MAX_ISSUED_TOKEN_LEN`] bytes (base64url and
/// dots need no form escaping) with room for the client credentials and
/// the hint.
pub const TOKEN_FORM_BODY_LIMIT: usize = 2 * ajwt_protocol::limits::MAX_ISSUED_TOKEN_LEN + 4096;

/// Reads an RFC 7009 / RFC 7662 request: `application/x-www-form-urlencoded`
/// (415 otherwise) of at most [`TOKEN_FORM_BODY_LIMIT`] bytes, and
/// authenticates the client as the token endpoint does: a bearer client
/// token carrying one of `bearer_scopes` (tried in order), or the client's
/// secret by `client_secret_basic` / `client_secret_post` (the granted
/// scopes are then the client's allowed scopes).
async fn token_form_client(
    issuer: &Issuer,
    request: Request,
    bearer_scopes: &[&str],
) -> Result<(ClientContext, Vec<(String, String)>), ApiError> {
    let (parts, body) = request.into_parts();
    let peer = peer_ip(&parts);
    match media_type(&parts.headers).as_deref() {
        Some("application/x-www-form-urlencoded") => {}
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type must be application/x-www-form-urlencoded, got {}",
                other.unwrap_or("none")
            )))
        }
    }
    let bytes = read_body_limited(issuer, &parts.headers, body, TOKEN_FORM_BODY_LIMIT).await?;
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
        ApiError::from(ajwt_protocol::OAuthError::InvalidRequest(
            "Invalid form encoding".into(),
        ))
    })?;
    let header = authorization(&parts.headers);
    let is_bearer = header
        .and_then(|h| h.split(' ').next())
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
    if is_bearer {
        let mut last = None;
        for scope in bearer_scopes {
            match issuer.authorize(header, scope) {
                Ok(client) => return Ok((client, params)),
                Err(e @ ApiError::InsufficientScope { .. }) => last = last.or(Some(e)),
                Err(e) => return Err(e),
            }
        }
        return Err(last.unwrap_or(ApiError::InvalidToken("No scope".into())));
    }
    let client = issuer
        .authenticate_client(&params, basic_credentials(&parts.headers)?, peer)
        .await?;
    Ok((
        ClientContext {
            client_id: client.client_id,
            scopes: client.allowed_scopes,
        },
        params,
    ))
}

/// `POST /intent/revoke` (RFC 7009 §2): `200` with an empty body for any
/// token, valid or not, except the §2.2.1 errors (I-81).
async fn revoke(State(issuer): State<Arc<Issuer>>, request: Request) -> Result<Response, ApiError> {
    let (client, params) =
        token_form_client(&issuer, request, &[SCOPE_GENERATE, SCOPE_ADMIN]).await?;
    run_to_completion(async move { issuer.revoke_token_request(&client, &params).await }).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /intent/introspect` (RFC 7662 §2): needs `introspect:intent` (I-80).
async fn introspect(
    State(issuer): State<Arc<Issuer>>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (client, params) = token_form_client(&issuer, request, &[SCOPE_INTROSPECT]).await?;
    issuer.introspect(&client, &params).await.map(Json)
}

/// `POST /intent/admin/revoke-registration` (`admin:intent`):
/// `{"registration_id"}` → `{"registration_id", "agent_id", "revoked": true}`.
async fn admin_revoke_registration(
    State(issuer): State<Arc<Issuer>>,
    ClientToken(client, _): ClientToken<AdminScope>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<RevokeRegistrationResponse>, ApiError> {
    run_to_completion(async move { issuer.revoke_registration(&bytes, &client).await })
        .await
        .map(Json)
}

/// `GET /intent/agents/{agent_id}` (§5.6): a client token with
/// `admin:intent` (specification included, threat T12) or `register:intent`
/// (checksums only, I-87); unknown agent 404.
async fn agent_lifecycle(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    agent_id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<AgentLifecycle>, ApiError> {
    let header = authorization(&headers);
    let admin = match issuer.authorize(header, SCOPE_ADMIN) {
        Ok(_) => true,
        Err(ApiError::InsufficientScope { .. }) => {
            issuer.authorize(header, SCOPE_REGISTER)?;
            false
        }
        Err(e) => return Err(e),
    };
    let axum::extract::Path(agent_id) = agent_id.map_err(|_| ApiError::NotFound)?;
    issuer
        .agent_lifecycle(&agent_id, admin)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// `GET /intent/status-lists/{list_id}`: the status list token
/// (`application/statuslist+jwt`, draft-ietf-oauth-status-list §8.1),
/// publicly cacheable for what remains of its `ttl` (I-84).
async fn status_list(
    State(issuer): State<Arc<Issuer>>,
    list_id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let list_id = list_id
        .ok()
        .and_then(|axum::extract::Path(id)| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or(ApiError::NotFound)?;
    let served = issuer.status_list_token(list_id).await?;
    let mut r = served.jwt.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(ajwt_protocol::status_list::STATUS_LIST_JWT_MEDIA_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", served.max_age)) {
        h.insert(header::CACHE_CONTROL, v);
    }
    Ok(r)
}

// ---- issue 14: metrics (I-114) --------------------------------------------

/// Records the latency of every request under its route template (never
/// the raw path: bounded label values), and the refusal an error response
/// carries ([`crate::metrics::Refusal`]).
async fn track_metrics(
    State(issuer): State<Arc<Issuer>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    // `{param}` written `:param`: braces inside label values trip some
    // Prometheus text parsers.
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || "unmatched".to_owned(),
            |p| p.as_str().replace('{', ":").replace('}', ""),
        );
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let refusal = response
        .extensions()
        .get::<crate::metrics::Refusal>()
        .copied();
    issuer.metrics().request(
        &endpoint,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
        refusal,
    );
    response
}

/// `GET /metrics`: the Prometheus text exposition (I-114), when the
/// `metrics` setting is on. Cheap: in-memory counters, and store gauges
/// refreshed at most every [`crate::metrics::STATS_MIN_AGE`].
async fn metrics_endpoint(State(issuer): State<Arc<Issuer>>) -> Response {
    let mut r = issuer.render_metrics().await.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    no_store(r)
}
