//! HTTP client of the issuer mode and discovery of the issuer's endpoints:
//! RFC 8414 metadata first, then the configured (or the draft's) paths.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::Error;

/// A fully read HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Headers (names lower-case).
    pub headers: reqwest::header::HeaderMap,
    /// Raw body.
    pub body: Vec<u8>,
    /// The body as JSON, when it is JSON.
    pub json: Option<Value>,
}

impl Resp {
    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// A string member of the JSON body.
    pub fn str_member(&self, name: &str) -> Option<&str> {
        self.json.as_ref()?.get(name)?.as_str()
    }

    /// The `error` member of an RFC 6749 §5.2 body.
    pub fn error_code(&self) -> Option<&str> {
        self.str_member("error")
    }

    /// One-line summary for failure reasons: `400 invalid_request: <description>`
    /// or `200 {"access_token":…}`.
    pub fn summary(&self) -> String {
        if let Some(code) = self.error_code() {
            let desc = self.str_member("error_description").unwrap_or("");
            let mut s = format!("{} {code}", self.status);
            if !desc.is_empty() {
                s.push_str(": ");
                s.push_str(desc);
            }
            if let Some(ms) = self.json.as_ref().and_then(|j| j.get("missing_steps")) {
                s.push_str(&format!(" (missing_steps {ms})"));
            }
            return s;
        }
        let text = String::from_utf8_lossy(&self.body);
        let mut t: String = text.chars().take(160).collect();
        if text.chars().count() > 160 {
            t.push('…');
        }
        format!("{} {t}", self.status)
    }
}

/// The HTTP client: base URL and timeout.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// A client for `base` with a per-request timeout.
    pub fn new(base: &str, timeout: Duration) -> Result<Http, Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// An absolute URL for `path_or_url` (absolute URLs are kept).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.base)
        } else {
            format!("{}/{path_or_url}", self.base)
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Resp, String> {
        let r = rb.send().await.map_err(|e| describe_reqwest(&e))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .await
            .map_err(|e| format!("reading the response body failed: {e}"))?
            .to_vec();
        let json = serde_json::from_slice(&body).ok();
        Ok(Resp {
            status,
            headers,
            body,
            json,
        })
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Result<Resp, String> {
        self.send(self.client.get(url)).await
    }

    /// POST raw bytes with an optional `Authorization` value and content type.
    pub async fn post_raw(
        &self,
        url: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        let mut rb = self.client.post(url).body(body);
        if let Some(a) = authorization {
            rb = rb.header(reqwest::header::AUTHORIZATION, a);
        }
        if let Some(ct) = content_type {
            rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
        }
        self.send(rb).await
    }

    /// POST a JSON body with an optional bearer token.
    pub async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> Result<Resp, String> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        self.post_raw(url, auth.as_deref(), Some("application/json"), bytes)
            .await
    }

    /// POST a form body with an optional `Authorization` value.
    pub async fn post_form(
        &self,
        url: &str,
        authorization: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let body = form_encode(pairs);
        self.post_raw(
            url,
            authorization,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
        )
        .await
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    if e.is_timeout() {
        s.push_str(" (timeout)");
    }
    s
}

/// `application/x-www-form-urlencoded` (WHATWG) of `pairs`.
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `Authorization: Basic` of RFC 6749 §2.3.1 (form-urlencoded id and secret).
pub(crate) fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{}:{}", form_escape(id), form_escape(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The endpoints the plan uses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoints {
    /// `issuer` of the metadata (expected `iss`), when published.
    pub issuer: Option<String>,
    /// Whether RFC 8414 metadata was found.
    pub metadata: Option<Value>,
    /// Why no metadata was used.
    pub metadata_problem: Option<String>,
    /// Where the metadata was found (RFC 8414 §3.1 inserted or appended form).
    pub metadata_url: Option<String>,
    /// Token endpoint (§4.2).
    pub token: String,
    /// Agent registration endpoint (§5.4, §6.2.2).
    pub agent_registration: String,
    /// Workflow registration endpoint (§6.3).
    pub workflow_registration: String,
    /// JWK Set of the issuer's signing keys.
    pub jwks: String,
    /// Admin hook: revoke an agent.
    pub admin_revoke: Option<String>,
    /// Admin hook: rotate signing keys.
    pub admin_rotate: Option<String>,
}

/// Default paths: the draft's (§4.2.2 `/intent/token`, §6.2.2
/// `/register/agent`, §6.3.3 `/intent/register/workflow`) and the
/// conventional JWKS location.
pub(crate) const DEFAULT_TOKEN_PATH: &str = "/intent/token";
/// See [`DEFAULT_TOKEN_PATH`].
pub(crate) const DEFAULT_AGENT_REGISTRATION_PATH: &str = "/register/agent";
/// See [`DEFAULT_TOKEN_PATH`].
pub(crate) const DEFAULT_WORKFLOW_REGISTRATION_PATH: &str = "/intent/register/workflow";
/// See [`DEFAULT_TOKEN_PATH`].
pub(crate) const DEFAULT_JWKS_PATH: &str = "/.well-known/jwks.json";

/// Overrides given on the command line.
#[derive(Debug, Clone, Default)]
pub(crate) struct PathOverrides {
    pub token: Option<String>,
    pub agent_registration: Option<String>,
    pub workflow_registration: Option<String>,
    pub jwks: Option<String>,
}

/// The RFC 8414 well-known suffix.
const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// Where the RFC 8414 metadata of the issuer identifier `issuer` may be, in
/// the order tried: for an issuer with a path component, the §3.1 form (the
/// well-known suffix inserted between the host and the path,
/// `https://h/.well-known/oauth-authorization-server/tenant1`) first and the
/// appended form (`https://h/tenant1/.well-known/oauth-authorization-server`,
/// what some deployments serve) as a fallback; for an issuer without a path,
/// the one URL both forms agree on.
pub(crate) fn metadata_urls(issuer: &str) -> Vec<String> {
    ajwt_protocol::metadata::authorization_server_metadata_urls(issuer).unwrap_or_else(|_| {
        // Not an issuer identifier (RFC 8414 §2): still try the appended form,
        // so the report says what the server answered there.
        vec![format!("{}{WELL_KNOWN}", issuer.trim_end_matches('/'))]
    })
}

/// Reads RFC 8414 metadata (at the URLs of [`metadata_urls`], first answer
/// with a JSON object wins) and fills the endpoints, falling back to the
/// overrides, then the defaults. An unreachable base URL is a setup error.
pub(crate) async fn discover(http: &Http, o: &PathOverrides) -> Result<Endpoints, Error> {
    let mut ep = Endpoints::default();
    let mut meta = None;
    let mut problems = Vec::new();
    for url in metadata_urls(http.base()) {
        let r = http.get(&url).await.map_err(|e| {
            Error::Setup(format!("cannot reach the issuer at {}: {e}", http.base()))
        })?;
        match (&r.json, r.status) {
            (Some(v @ Value::Object(_)), 200) => {
                meta = Some(v.clone());
                ep.metadata_url = Some(url);
                break;
            }
            _ => problems.push(format!("GET {url}: {}", r.summary())),
        }
    }
    if meta.is_none() {
        ep.metadata_problem = Some(problems.join("; "));
    }
    let member = |name: &str| -> Option<String> {
        meta.as_ref()
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let pick = |name: &str, over: &Option<String>, default: &str| -> String {
        member(name)
            .or_else(|| over.as_ref().map(|p| http.url(p)))
            .unwrap_or_else(|| http.url(default))
    };
    ep.issuer = member("issuer");
    ep.token = pick("token_endpoint", &o.token, DEFAULT_TOKEN_PATH);
    ep.agent_registration = pick(
        "agent_registration_endpoint",
        &o.agent_registration,
        DEFAULT_AGENT_REGISTRATION_PATH,
    );
    ep.workflow_registration = pick(
        "workflow_registration_endpoint",
        &o.workflow_registration,
        DEFAULT_WORKFLOW_REGISTRATION_PATH,
    );
    ep.jwks = pick("jwks_uri", &o.jwks, DEFAULT_JWKS_PATH);
    ep.admin_revoke = member("ajwt_admin_revoke_agent_endpoint");
    ep.admin_rotate = member("ajwt_admin_rotate_keys_endpoint");
    ep.metadata = meta;
    Ok(ep)
}

#[cfg(test)]
mod tests {
    use super::metadata_urls;

    #[test]
    fn rfc8414_s3_1_path_issuer_inserted_form_first_then_appended() {
        // RFC 8414 §3.1 example: issuer https://example.com/issuer1.
        assert_eq!(
            metadata_urls("https://example.com/issuer1"),
            [
                "https://example.com/.well-known/oauth-authorization-server/issuer1",
                "https://example.com/issuer1/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            metadata_urls("http://127.0.0.1:8080/a/b/"),
            [
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server/a/b",
                "http://127.0.0.1:8080/a/b/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn rfc8414_s3_issuer_without_path_has_one_metadata_url() {
        for issuer in ["https://example.com", "https://example.com/"] {
            assert_eq!(
                metadata_urls(issuer),
                ["https://example.com/.well-known/oauth-authorization-server"]
            );
        }
    }
}
