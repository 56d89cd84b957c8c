//! The issuer client (issue 16): `agentic_jwt.IssuerClient` binds
//! `ajwt_client::IssuerClient` (§2 "Client Shim Library"): client
//! credentials (RFC 6749 §4.4, §4.2.3) with the client token cached and
//! refreshed, the `agent_checksum` grant (§4.2.1) with workflow step,
//! completed steps, delegation context and parent token, an optional DPoP
//! proof of the agent's key at the token endpoint (RFC 9449 §5), and the
//! registration helpers (§5.4, §6.3). Refusals raise `IssuerError`.
//!
//! All HTTP runs in Rust on the module's tokio runtime with the GIL released
//! (`Python::detach`), so other Python threads run meanwhile.

use std::sync::Arc;
use std::time::Duration;

use ajwt_checksum::{AgentChecksum, AgentSpec, Profile};
use ajwt_client::retry::is_retryable;
use ajwt_client::{
    AgentIdentity, AgentRegistration, ClientConfig, ClientError, IssuerClient, RetryPolicy,
    WorkflowRegistration,
};
use ajwt_jose::DpopKey;
use ajwt_protocol::wire::{Audience, DelegationContext, TokenRequest, TokenResponse, GRANT_TYPE};
use ajwt_protocol::ErrorResponse;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::AgentJwtError;
use crate::keys::AgentKey;

pyo3::create_exception!(
    agentic_jwt,
    IssuerError,
    AgentJwtError,
    "The issuer refused a request or could not be reached (§4.5, RFC 6749 §5.2).\n\n\
     Attributes: ``status`` (HTTP status, None when no response), ``error`` (the OAuth \
     error code, e.g. ``agent_checksum_mismatch``, ``workflow_step_unauthorized``; \
     ``http_<status>`` for a body without one; ``network_error``, ``discovery_error``, \
     ``protocol_error``, ``configuration_error`` when no refusal was received), \
     ``description``, ``missing_steps`` (list, §4.5.5), ``retry_after`` (seconds from \
     ``Retry-After``, or None), ``existing_agent_id`` (``duplicate_agent``, §5.4.3)."
);

/// Runs `fut` to completion on the module's one tokio runtime
/// (`runtime::runtime`, I-169, shared with the verifier) with the GIL released.
fn block_on<T: Send, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: std::future::Future<Output = T> + Send,
{
    let rt = crate::runtime::runtime()?;
    Ok(py.detach(|| rt.block_on(fut)))
}

/// A refusal or failure, as the fields of `IssuerError`.
#[derive(Debug, Default)]
struct Refusal {
    message: String,
    status: Option<u16>,
    error: Option<String>,
    description: Option<String>,
    missing_steps: Vec<String>,
    retry_after: Option<f64>,
    existing_agent_id: Option<String>,
}

impl Refusal {
    fn local(code: &str, message: String) -> Refusal {
        Refusal {
            error: Some(code.to_owned()),
            description: Some(message.clone()),
            message,
            ..Refusal::default()
        }
    }

    fn from_client_error(e: ClientError) -> Refusal {
        let message = e.to_string();
        match e {
            ClientError::Rejected {
                status,
                error,
                description,
                missing_steps,
                existing_agent_id,
                ..
            } => Refusal {
                message,
                status: Some(status),
                error: Some(error),
                description,
                missing_steps,
                retry_after: None,
                existing_agent_id,
            },
            ClientError::Network(m) => Refusal::local("network_error", m),
            ClientError::Discovery(m) => Refusal::local("discovery_error", m),
            ClientError::Config(m) => Refusal::local("configuration_error", m),
            ClientError::Key(m) => Refusal::local("agent_key_error", m),
            ClientError::Spec(m) => Refusal::local("agent_specification_error", m),
            other => Refusal::local("protocol_error", other.to_string()),
        }
    }

    /// A refusal read from an issuer response (RFC 6749 §5.2 body).
    fn from_response(status: u16, retry_after: Option<f64>, body: &[u8]) -> Refusal {
        let (error, description, missing_steps, existing_agent_id) =
            match serde_json::from_slice::<ErrorResponse>(body) {
                Ok(e) => (
                    e.error,
                    e.error_description,
                    e.missing_steps.unwrap_or_default(),
                    e.existing_agent_id,
                ),
                Err(_) => (format!("http_{status}"), None, Vec::new(), None),
            };
        let message = format!(
            "the issuer refused the request: HTTP {status} {error}{}",
            description
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
        Refusal {
            message,
            status: Some(status),
            error: Some(error),
            description,
            missing_steps,
            retry_after,
            existing_agent_id,
        }
    }

    fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let err = IssuerError::new_err(self.message);
        let value = err.value(py);
        let set = || -> PyResult<()> {
            value.setattr("status", self.status)?;
            value.setattr("error", self.error)?;
            value.setattr("description", self.description)?;
            value.setattr("missing_steps", self.missing_steps)?;
            value.setattr("retry_after", self.retry_after)?;
            value.setattr("existing_agent_id", self.existing_agent_id)?;
            Ok(())
        };
        match set() {
            Ok(()) => err,
            Err(e) => e,
        }
    }
}

/// JSON bytes of a `dict`, or of a JSON `str`/`bytes` given as is
/// (`pyjson::document_bytes`, shared with the checksum and key bindings).
fn json_bytes(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    crate::pyjson::document_bytes(obj)?.ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{what} must be a dict of JSON values, or JSON as str or bytes"
        ))
    })
}

/// A serde value as the Python object `json.loads` would give.
fn json_to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(value)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot encode JSON: {e}")))?;
    crate::pyjson::to_py(py, &value)
}

fn parse_profile(profile: &str) -> PyResult<Profile> {
    profile.parse().map_err(|_| {
        PyValueError::new_err(format!(
            "unknown checksum profile {profile:?} (\"jcs\" or \"python-ref\")"
        ))
    })
}

fn unix_now() -> i64 {
    ajwt_client::cache::unix_now()
}

/// Seconds of a `Retry-After` header (RFC 9110 §10.2.3, delay-seconds form).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // Seconds this large are not a delay anyone waits for; keep them exact.
    Some(secs as f64)
}

/// The client of one issuer.
///
/// ``IssuerClient(issuer, client_id, client_secret)`` (or
/// ``IssuerClient.from_env()`` reading ``AJWT_ISSUER``, ``AJWT_CLIENT_ID``,
/// ``AJWT_CLIENT_SECRET``). The client token (``client_credentials``,
/// RFC 6749 §4.4, §4.2.3) is cached and refreshed 30 s before it expires;
/// network errors, ``5xx`` and ``429`` are retried with backoff (at most
/// ``max_attempts`` attempts, honouring ``Retry-After``), other ``4xx``
/// never. The secret and tokens are never shown by ``repr``.
#[pyclass(name = "IssuerClient", module = "agentic_jwt", frozen)]
pub struct PyIssuerClient {
    inner: Arc<IssuerClient>,
    http: reqwest::Client,
    retry: RetryPolicy,
    issuer: String,
    client_id: String,
}

impl PyIssuerClient {
    fn build(config: ClientConfig, retry: RetryPolicy) -> PyResult<PyIssuerClient> {
        let issuer = config.issuer.clone();
        let client_id = config.client_id.clone();
        let inner = IssuerClient::new(config)
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .with_retry(retry.clone());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("HTTP client: {e}")))?;
        Ok(PyIssuerClient {
            inner: Arc::new(inner),
            http,
            retry,
            issuer,
            client_id,
        })
    }

    fn policy(max_attempts: u32, base_delay: f64, max_delay: f64) -> PyResult<RetryPolicy> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| PyValueError::new_err(format!("{name} must be >= 0 seconds")))
        };
        Ok(RetryPolicy {
            max_attempts: max_attempts.max(1),
            base_delay: secs("base_delay", base_delay)?,
            max_delay: secs("max_delay", max_delay)?,
        })
    }

    /// The token endpoint: the discovered one (RFC 8414), else
    /// `<issuer>/intent/token` (what `ajwt_client` uses without discovery).
    async fn token_endpoint(&self) -> String {
        match self.inner.discover().await {
            Ok(m) => m.token_endpoint,
            Err(_) => format!("{}/intent/token", self.issuer),
        }
    }

    /// The `agent_checksum` grant: POST JSON with the client token and, when
    /// `key` is given, a fresh DPoP proof per attempt (RFC 9449 §5; `htm`
    /// POST, `htu` the token endpoint). A `401` gets one retry with a new
    /// client token (as `ajwt_client` does); network errors, `5xx` and `429`
    /// are retried per the policy; the last refusal carries `Retry-After`.
    async fn grant(
        &self,
        request: &TokenRequest,
        key: Option<&DpopKey>,
    ) -> Result<TokenResponse, Refusal> {
        let body = serde_json::to_vec(request)
            .map_err(|e| Refusal::local("protocol_error", e.to_string()))?;
        let url = self.token_endpoint().await;
        let mut refreshed = false;
        let mut attempt: u32 = 1;
        loop {
            let bearer = self
                .inner
                .client_token()
                .await
                .map_err(Refusal::from_client_error)?;
            let mut builder = self
                .http
                .post(&url)
                .bearer_auth(&bearer)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(key) = key {
                let proof = key
                    .proof("POST", &url, None, None, unix_now())
                    .map_err(|e| Refusal::local("agent_key_error", format!("DPoP proof: {e}")))?;
                builder = builder.header("DPoP", proof);
            }
            let (status, headers, bytes) = match builder.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(b) => (status, headers, b),
                        Err(_) if attempt < self.retry.max_attempts => {
                            tokio::time::sleep(self.retry.delay(attempt, None)).await;
                            attempt += 1;
                            continue;
                        }
                        Err(_) => {
                            return Err(Refusal::local(
                                "network_error",
                                "the token response could not be read".into(),
                            ))
                        }
                    }
                }
                Err(_) if attempt < self.retry.max_attempts => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => {
                    let what = if e.is_timeout() {
                        "timed out"
                    } else if e.is_connect() {
                        "connection failed"
                    } else {
                        "request failed"
                    };
                    return Err(Refusal::local(
                        "network_error",
                        format!("token endpoint: {what}"),
                    ));
                }
            };
            if (200..300).contains(&status) {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    Refusal::local("protocol_error", format!("unexpected issuer response: {e}"))
                });
            }
            let after = retry_after(&headers);
            if status == 401 && !refreshed {
                refreshed = true;
                self.inner.forget_client_token().await;
                continue;
            }
            if is_retryable(status) && attempt < self.retry.max_attempts {
                let wait = self.retry.delay(attempt, after.map(|s| s as u64));
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Err(Refusal::from_response(status, after, &bytes));
        }
    }
}

#[pymethods]
impl PyIssuerClient {
    #[new]
    #[pyo3(signature = (issuer, client_id, client_secret, *, max_attempts=3, base_delay=0.2, max_delay=10.0))]
    fn new(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        max_attempts: u32,
        base_delay: f64,
        max_delay: f64,
    ) -> PyResult<PyIssuerClient> {
        let retry = PyIssuerClient::policy(max_attempts, base_delay, max_delay)?;
        PyIssuerClient::build(ClientConfig::new(issuer, client_id, client_secret), retry)
    }

    /// A client configured from ``AJWT_ISSUER``, ``AJWT_CLIENT_ID`` and
    /// ``AJWT_CLIENT_SECRET`` (each set and non-empty); ``IssuerError``
    /// (``configuration_error``) otherwise.
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<PyIssuerClient> {
        let config =
            ClientConfig::from_env().map_err(|e| Refusal::from_client_error(e).into_pyerr(py))?;
        PyIssuerClient::build(config, RetryPolicy::default())
    }

    /// The issuer base URL (without a trailing slash).
    #[getter]
    fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The OAuth client id.
    #[getter]
    fn client_id(&self) -> &str {
        &self.client_id
    }

    fn __repr__(&self) -> String {
        format!(
            "IssuerClient(issuer={:?}, client_id={:?})",
            self.issuer, self.client_id
        )
    }

    /// The issuer's RFC 8414 metadata (read once, then cached): a dict with
    /// ``issuer``, ``token_endpoint``, ``jwks_uri``, ``metadata_url``. The
    /// document's ``issuer`` must equal the configured one (RFC 8414 §3.3).
    fn discover<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let inner = self.inner.clone();
        let m = block_on(py, async move { inner.discover().await })?
            .map_err(|e| Refusal::from_client_error(e).into_pyerr(py))?;
        let d = PyDict::new(py);
        d.set_item("issuer", m.issuer)?;
        d.set_item("token_endpoint", m.token_endpoint)?;
        d.set_item("jwks_uri", m.jwks_uri)?;
        d.set_item("metadata_url", m.metadata_url)?;
        Ok(d)
    }

    /// A client token (RFC 9068, ``client_credentials``, §4.2.3), from the
    /// cache while it has more than 30 s left.
    fn client_token(&self, py: Python<'_>) -> PyResult<String> {
        let inner = self.inner.clone();
        block_on(py, async move { inner.client_token().await })?
            .map_err(|e| Refusal::from_client_error(e).into_pyerr(py))
    }

    /// Drops the cached client token; the next call obtains a new one.
    fn forget_client_token(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        block_on(py, async move { inner.forget_client_token().await })
    }

    /// The ``agent_checksum`` grant (§4.2.1): an intent token for
    /// ``agent_id`` presenting ``checksum`` (``sha256:<hex>``, recomputed
    /// by the caller from the live specification, §5.5.1).
    ///
    /// ``workflow_id``/``workflow_step`` bind the token to a step (both or
    /// neither; ``workflow_enabled`` is sent when given); ``completed_steps``
    /// and ``chain`` form the ``delegation_context`` (§4.3.4);
    /// ``parent_token`` is the delegating agent's intent token (§6.6,
    /// spec/interpretation.md I-19); ``key`` (an ``AgentKey``) adds a DPoP
    /// proof of possession of the registered key (RFC 9449 §5).
    ///
    /// Returns the token response as a dict (``access_token``,
    /// ``token_type``, ``expires_in``, ``scope``); a refusal raises
    /// ``IssuerError`` (``agent_checksum_mismatch`` §4.5.4,
    /// ``workflow_step_unauthorized`` with ``missing_steps`` §4.5.5, ...).
    #[pyo3(signature = (agent_id, checksum, *, audience, scopes=Vec::new(), workflow_id=None, workflow_step=None, completed_steps=Vec::new(), chain=Vec::new(), parent_token=None, key=None))]
    #[allow(clippy::too_many_arguments)]
    fn intent_token<'py>(
        &self,
        py: Python<'py>,
        agent_id: String,
        checksum: &str,
        audience: Bound<'py, PyAny>,
        scopes: Vec<String>,
        workflow_id: Option<String>,
        workflow_step: Option<String>,
        completed_steps: Vec<String>,
        chain: Vec<String>,
        parent_token: Option<String>,
        key: Option<Bound<'py, AgentKey>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let computed_checksum = AgentChecksum::parse(checksum).map_err(|e| {
            PyValueError::new_err(format!("checksum {checksum:?} is not sha256:<hex>: {e}"))
        })?;
        if workflow_id.is_some() != workflow_step.is_some() {
            return Err(PyValueError::new_err(
                "workflow_id and workflow_step are given together (§4.2.1)",
            ));
        }
        let audience = if let Ok(one) = audience.extract::<String>() {
            Audience::One(one)
        } else {
            let many: Vec<String> = audience
                .extract()
                .map_err(|_| PyTypeError::new_err("audience must be a str or a list of str"))?;
            Audience::Many(many)
        };
        let mut requested_scopes: Vec<String> = Vec::with_capacity(scopes.len());
        for s in scopes {
            if !requested_scopes.contains(&s) {
                requested_scopes.push(s);
            }
        }
        let key: Option<DpopKey> = key.map(|k| k.get().key.clone());
        let request = TokenRequest {
            grant_type: GRANT_TYPE.to_owned(),
            agent_id,
            computed_checksum,
            workflow_enabled: workflow_step.is_some(),
            workflow_id,
            workflow_step,
            requested_scopes,
            audience,
            delegation_context: DelegationContext {
                chain,
                completed_steps,
            },
            parent_token,
        };
        let response = block_on(py, async { self.grant(&request, key.as_ref()).await })?
            .map_err(|r| r.into_pyerr(py))?;
        json_to_py(py, &response)
    }

    /// Registers an agent (§5.4, §6.2.3): ``spec`` (dict or JSON, §5.2.1)
    /// with the public key of ``key`` (an ``AgentKey``), the checksum
    /// computed under ``profile``, and ``allowed_scopes`` when given. Needs
    /// a client allowed ``register:intent``. Idempotent: returns
    /// ``{"status": "registered", "agent_id", "registration_id",
    /// "checksum", "version"}`` or, when the issuer already holds this
    /// agent with this checksum, ``{"status": "unchanged", "agent_id",
    /// "checksum"}``. A changed specification is registered as a new
    /// version (§5.4.4).
    #[pyo3(signature = (spec, key, allowed_scopes=None, profile="jcs"))]
    fn register_agent<'py>(
        &self,
        py: Python<'py>,
        spec: &Bound<'py, PyAny>,
        key: &Bound<'py, AgentKey>,
        allowed_scopes: Option<Vec<String>>,
        profile: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let profile = parse_profile(profile)?;
        let spec = AgentSpec::from_json(&json_bytes(spec, "spec")?)
            .map_err(|e| crate::errors::from_checksum_error(py, &e))?;
        let identity = AgentIdentity::new(spec, key.get().key.clone()).with_profile(profile);
        let inner = self.inner.clone();
        let outcome = block_on(py, async move {
            inner
                .register_agent(&identity, allowed_scopes.as_deref())
                .await
        })?
        .map_err(|e| Refusal::from_client_error(e).into_pyerr(py))?;
        let d = PyDict::new(py);
        match outcome {
            AgentRegistration::Registered(r) => {
                d.set_item("status", "registered")?;
                d.set_item("agent_id", r.agent_id)?;
                d.set_item("registration_id", r.registration_id)?;
                d.set_item("checksum", r.checksum.to_string())?;
                d.set_item("version", r.version)?;
            }
            AgentRegistration::Unchanged { agent_id, checksum } => {
                d.set_item("status", "unchanged")?;
                d.set_item("agent_id", agent_id)?;
                d.set_item("checksum", checksum.to_string())?;
            }
        }
        Ok(d)
    }

    /// Registers a workflow definition (§6.3.3 JSON: ``workflow_id`` and
    /// ``steps``). Needs ``register:intent``. Idempotent: returns
    /// ``{"status": "registered" | "already_exists", "workflow_id"}``;
    /// workflows are immutable (§6.3), an existing one is not compared.
    fn register_workflow<'py>(
        &self,
        py: Python<'py>,
        workflow: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let value: serde_json::Value =
            serde_json::from_slice(&json_bytes(workflow, "workflow")?)
                .map_err(|e| PyValueError::new_err(format!("workflow is not JSON: {e}")))?;
        let inner = self.inner.clone();
        let outcome = block_on(py, async move { inner.register_workflow(&value).await })?
            .map_err(|e| Refusal::from_client_error(e).into_pyerr(py))?;
        let d = PyDict::new(py);
        let (status, id) = match outcome {
            WorkflowRegistration::Registered(id) => ("registered", id),
            WorkflowRegistration::AlreadyExists(id) => ("already_exists", id),
        };
        d.set_item("status", status)?;
        d.set_item("workflow_id", id)?;
        Ok(d)
    }
}

/// Parses a ``WWW-Authenticate`` value (RFC 9110 §11.6.1; RFC 6750 §3,
/// RFC 9449 §7.1) with ``ajwt_protocol::challenge::parse``: a list of
/// dicts ``{"scheme", "params": {name: value}, "token68"}`` in header order
/// (parameter names lower-cased, quoted values unescaped). ``ValueError``
/// when the value is not a challenge list.
#[pyfunction]
fn parse_challenges<'py>(py: Python<'py>, value: &str) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let challenges = ajwt_protocol::challenge::parse(value)
        .map_err(|e| PyValueError::new_err(format!("not a WWW-Authenticate value: {e}")))?;
    challenges
        .iter()
        .map(|c| {
            let d = PyDict::new(py);
            d.set_item("scheme", c.scheme())?;
            let params = PyDict::new(py);
            for (name, v) in c.params() {
                params.set_item(name.to_ascii_lowercase(), v)?;
            }
            d.set_item("params", params)?;
            d.set_item("token68", c.token68())?;
            Ok(d)
        })
        .collect()
}

/// Adds `IssuerClient`, `IssuerError` and `parse_challenges` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIssuerClient>()?;
    m.add_function(wrap_pyfunction!(parse_challenges, m)?)?;
    // `None` defaults of the attributes on the class (as errors.rs does), so
    // an `IssuerError` raised by Python code has them too.
    let issuer_error = m.py().get_type::<IssuerError>();
    for attr in [
        "status",
        "error",
        "description",
        "missing_steps",
        "retry_after",
        "existing_agent_id",
    ] {
        issuer_error.setattr(attr, m.py().None())?;
    }
    m.add("IssuerError", issuer_error)?;
    Ok(())
}
