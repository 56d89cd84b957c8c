//! axum integration: [`IntentLayer`] verifies every request of a route against
//! its [`Requirements`] and hands the verified claims to the handler through
//! the [`Intent`] extractor; refusals are JSON errors with the RFC 6750 /
//! RFC 9449 challenge.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use ajwt_verifier::{IntentLayer, Intent, Requirements, Verifier};
//! # fn app(verifier: Arc<Verifier>) -> axum::Router {
//! async fn apply_patch(Intent(intent): Intent) -> String {
//!     format!("patched by {}", intent.claims.sub)
//! }
//! axum::Router::new().route(
//!     "/patches",
//!     axum::routing::post(apply_patch).route_layer(IntentLayer::new(
//!         verifier,
//!         "https://api.example.com",
//!         Requirements::scopes(["repo:write"]).at_steps("auto-patch-workflow-v1", ["step_4_apply_patch"]),
//!     )),
//! )
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::VerifyError;
use crate::verify::{RequestParts, Requirements, VerifiedIntent, Verifier};

/// A tower layer that verifies intent tokens for one route.
#[derive(Clone)]
pub struct IntentLayer {
    verifier: Arc<Verifier>,
    public_base_url: Arc<str>,
    requirements: Arc<Requirements>,
}

impl IntentLayer {
    /// `public_base_url` is the scheme and authority clients use to reach this
    /// server (`https://api.example.com`); it forms the DPoP `htu` with the
    /// request path (RFC 9449 §4.3 step 9).
    pub fn new(
        verifier: Arc<Verifier>,
        public_base_url: impl AsRef<str>,
        requirements: Requirements,
    ) -> IntentLayer {
        IntentLayer {
            verifier,
            public_base_url: Arc::from(public_base_url.as_ref().trim_end_matches('/')),
            requirements: Arc::new(requirements),
        }
    }
}

impl<S> tower::Layer<S> for IntentLayer {
    type Service = IntentService<S>;
    fn layer(&self, inner: S) -> IntentService<S> {
        IntentService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`IntentLayer`].
#[derive(Clone)]
pub struct IntentService<S> {
    inner: S,
    layer: IntentLayer,
}

impl<S> tower::Service<Request<Body>> for IntentService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            // The body is not Sync: verify on the head only, then reassemble.
            let (mut head, body) = req.into_parts();
            match verify_request(&layer, &head).await {
                Ok(intent) => {
                    head.extensions.insert(intent);
                    let mut response = inner.call(Request::from_parts(head, body)).await?;
                    add_nonce(&layer.verifier, &mut response);
                    Ok(response)
                }
                Err(response) => Ok(response),
            }
        })
    }
}

/// Every `Authorization` and `DPoP` value of a request, as the verifier reads
/// them: all values count (two DPoP headers are refused even if one is not
/// ASCII, RFC 9449 §4.3 step 1), and an unreadable value becomes one that fails
/// parsing instead of disappearing.
#[derive(Debug, Clone)]
pub struct CredentialHeaders<'h> {
    authorization: Vec<&'h str>,
    dpop: Vec<&'h str>,
}

impl<'h> CredentialHeaders<'h> {
    /// Reads the credential headers of `headers`.
    pub fn new(headers: &'h axum::http::HeaderMap) -> CredentialHeaders<'h> {
        let values = |name: header::HeaderName| -> Vec<&'h str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("\u{0}"))
                .collect()
        };
        CredentialHeaders {
            authorization: values(header::AUTHORIZATION),
            dpop: values(header::HeaderName::from_static("dpop")),
        }
    }

    /// The verifier's view of a request to `url` with `method`.
    pub fn parts<'a>(&'a self, method: &'a str, url: &'a str) -> RequestParts<'a> {
        RequestParts {
            method,
            url,
            authorization: &self.authorization,
            dpop: &self.dpop,
        }
    }
}

async fn verify_request(layer: &IntentLayer, req: &Parts) -> Result<VerifiedIntent, Response> {
    let credentials = CredentialHeaders::new(&req.headers);
    // Under Router::nest the URI is stripped of the prefix; the client signed
    // the full path (RFC 9449 §4.3 step 9).
    let path = req
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri.path(), |o| o.0.path());
    let url = format!("{}{}", layer.public_base_url, path);
    let parts = credentials.parts(req.method.as_str(), &url);
    layer
        .verifier
        .verify(&parts, &layer.requirements)
        .await
        .map_err(|e| error_response(&layer.verifier, &parts, &e))
}

/// Adds `DPoP-Nonce` with the verifier's current nonce, when it uses nonces
/// (RFC 9449 §8, §9: a successful response may carry the next nonce, so the
/// client has it before the one it holds stops being accepted; I-51).
pub fn add_nonce(verifier: &Verifier, response: &mut Response) {
    if let Some(nonce) = verifier.current_nonce() {
        if let Ok(v) = HeaderValue::from_str(&nonce) {
            response.headers_mut().insert(DPOP_NONCE, v);
        }
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8).
pub const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The `WWW-Authenticate` value for a refusal of `parts` (I-49), with
/// `resource_metadata` (RFC 9728 §5.1) on every challenge when given.
pub fn challenge_header(
    verifier: &Verifier,
    parts: &RequestParts<'_>,
    e: &VerifyError,
    resource_metadata: Option<&str>,
) -> Option<String> {
    let config = verifier.config();
    let challenges: Vec<_> = e
        .challenges(Verifier::scheme_of(parts), config.pop, &config.algorithms)
        .into_iter()
        .map(|c| match resource_metadata {
            Some(url) => c.resource_metadata(url),
            None => c,
        })
        .collect();
    (!challenges.is_empty()).then(|| ajwt_protocol::challenge::format(&challenges))
}

/// The HTTP response for a refusal: status, JSON body
/// `{"error", "error_description"}`, `WWW-Authenticate`, and `DPoP-Nonce` when one is required.
pub fn error_response(verifier: &Verifier, parts: &RequestParts<'_>, e: &VerifyError) -> Response {
    error_response_with(verifier, parts, e, None)
}

/// [`error_response`] with `resource_metadata` (RFC 9728 §5.1) in the challenges.
pub fn error_response_with(
    verifier: &Verifier,
    parts: &RequestParts<'_>,
    e: &VerifyError,
    resource_metadata: Option<&str>,
) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut body = serde_json::Map::new();
    if let Some(code) = e.code() {
        body.insert("error".into(), code.into());
        body.insert("error_description".into(), e.description().into());
    }
    let mut response = (status, axum::Json(serde_json::Value::Object(body))).into_response();
    if let Some(challenge) = challenge_header(verifier, parts, e, resource_metadata) {
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let VerifyError::UseDpopNonce(nonce) = e {
        if let Ok(v) = HeaderValue::from_str(nonce) {
            response.headers_mut().insert(DPOP_NONCE, v);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Extractor for the claims verified by [`IntentLayer`].
#[derive(Debug, Clone)]
pub struct Intent(pub VerifiedIntent);

impl<S: Send + Sync> FromRequestParts<S> for Intent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedIntent>()
            .cloned()
            .map(Intent)
            .ok_or_else(|| {
                // The route is missing its IntentLayer: a server bug, never a pass.
                tracing::error!("Intent extractor used on a route without IntentLayer");
                (StatusCode::INTERNAL_SERVER_ERROR, "route misconfigured").into_response()
            })
    }
}
