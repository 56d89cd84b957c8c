//! Intent-token verification for Python resource servers (§6.5.3 steps
//! 1–8, §9.2.2 agent-level proof of possession with DPoP, RFC 9449 §4.3):
//! `Verifier` runs `ajwt_verifier::Verifier::verify` itself, on a tokio
//! runtime owned by this module, with the GIL released; refusals become
//! `VerificationError` carrying exactly the status, OAuth error code,
//! description, `WWW-Authenticate` challenge and headers that the axum layer
//! of `ajwt-verifier` sends (`error_response_with`), see I-168.

use std::sync::Arc;
use std::time::Duration;

use ajwt_jose::{Alg, JwkSet};
use ajwt_verifier::axum_layer::challenge_header;
use ajwt_verifier::{
    FetchError, HttpFetcher, KeySetError, KeySource, PopPolicy, RequestParts, Requirements,
    RotatingNonces, StatusListConfig, VerifiedIntent, VerifierConfig, VerifyError,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde_json::Value;

use crate::errors::{verification_error, Refusal};
use crate::pyjson;
use crate::runtime::runtime;

/// How often an unknown `kid` may trigger a JWKS refetch (as the examples).
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);

/// Whether tokens are checked against the issuer's Token Status List (I-92).
#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusMode {
    FailClosed,
    FailOpen,
    Off,
}

/// Everything needed to build the Rust verifier (at the first `verify`,
/// when the issuer's keys are discovered).
struct Settings {
    config: VerifierConfig,
    jwks: Option<JwkSet>,
    status: StatusMode,
    status_origins: Vec<String>,
    replay_cache_size: usize,
}

/// Verifies intent tokens for one resource server exactly as
/// `ajwt-verifier` does (draft-goswami-agentic-jwt-00 §6.5.3 steps 1–8,
/// §9.2.2; RFC 9449 §4.3 DPoP proofs; RFC 6750 §3 / RFC 9449 §7.1
/// challenges).
///
/// Verifier(issuer, audience, pop="required", jwks=None, *, algorithms=None,
/// leeway=30, max_age=None, dpop_window=60, max_token_len=16384,
/// known_checksums=None, status_lists="fail-closed", status_list_origins=None,
/// nonces=False, nonce_lifetime=300, replay_cache_size=100000)
///
/// * `issuer`: the trusted issuer (`iss`, exact). Its keys are found by RFC
///   8414 discovery from it at the first verify() (retried until it works;
///   meanwhile requests get 503), unless `jwks` (a JWK Set as dict, str or
///   bytes) is given. The JWKS is cached and refetched on an unknown `kid`
///   (at most every 30 s) and when its Cache-Control max-age passes.
/// * `audience`: this resource server's identifier, required in `aud`.
/// * `pop`: "required" (a DPoP proof bound to `cnf`, the default, §9.2.2),
///   "optional" or "disabled".
/// * `status_lists`: "fail-closed" (default), "fail-open" or "off": the
///   token's `status` checked in the issuer's Token Status List.
/// * `nonces`: require server DPoP nonces (RFC 9449 §8), rotated every
///   `nonce_lifetime` seconds; send current_nonce() as `DPoP-Nonce`.
/// * DPoP proof `jti`s are remembered for the proof window (replay cache of
///   `replay_cache_size` entries; when full, new proofs are refused).
#[pyclass(module = "agentic_jwt", name = "Verifier", frozen)]
pub struct Verifier {
    settings: Arc<Settings>,
    nonces: Option<Arc<RotatingNonces>>,
    inner: Arc<tokio::sync::OnceCell<Arc<ajwt_verifier::Verifier>>>,
}

fn parse_status(mode: &str) -> PyResult<StatusMode> {
    match mode {
        "fail-closed" => Ok(StatusMode::FailClosed),
        "fail-open" => Ok(StatusMode::FailOpen),
        "off" => Ok(StatusMode::Off),
        other => Err(PyValueError::new_err(format!(
            "status_lists must be \"fail-closed\", \"fail-open\" or \"off\", not {other:?}"
        ))),
    }
}

/// `None`, one header value, or a sequence of values (several headers).
fn header_values(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Vec<String>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        // A value that is not valid Unicode fails parsing, it does not vanish
        // (as the axum layer reads an unreadable header).
        return Ok(vec![s
            .to_cow()
            .map_or_else(|_| "\u{0}".to_owned(), |c| c.into_owned())]);
    }
    if let Ok(list) = obj.extract::<Vec<String>>() {
        return Ok(list);
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "{name} must be None, a str or a list of str"
    )))
}

fn str_list(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<Vec<String>>> {
    let Some(obj) = obj else { return Ok(None) };
    if obj.is_none() {
        return Ok(None);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Some(vec![s.to_cow()?.into_owned()]));
    }
    obj.extract::<Vec<String>>().map(Some).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!("{name} must be a str or a list of str"))
    })
}

/// Builds the Rust verifier (discovering the issuer's keys unless a JWK Set
/// was given). A discovery failure is the 503 of unavailable keys.
async fn build(
    settings: &Settings,
    nonces: Option<Arc<RotatingNonces>>,
) -> Result<Arc<ajwt_verifier::Verifier>, VerifyError> {
    let unavailable =
        |why: String| VerifyError::KeysUnavailable(KeySetError::Fetch(FetchError::Transport(why)));
    let fetcher = Arc::new(HttpFetcher::new().map_err(|e| unavailable(e.to_string()))?);
    let keys = match &settings.jwks {
        Some(set) => KeySource::from_jwks(set.clone()),
        None => KeySource::discover(&settings.config.issuer, fetcher.clone(), JWKS_MIN_REFRESH)
            .await
            .map_err(|e| unavailable(e.to_string()))?,
    };
    let mut verifier = ajwt_verifier::Verifier::new(settings.config.clone(), keys)
        .with_replay_cache(Arc::new(ajwt_verifier::InMemoryReplayCache::new(
            settings.replay_cache_size,
        )));
    if settings.status != StatusMode::Off {
        let mut status = StatusListConfig::new(settings.config.issuer.clone());
        status.fail_open = settings.status == StatusMode::FailOpen;
        status.allowed_origins = settings.status_origins.clone();
        status.algorithms = settings.config.algorithms.clone();
        status.leeway = settings.config.leeway;
        verifier = verifier.with_status_lists(status, fetcher);
    }
    if let Some(n) = nonces {
        verifier = verifier.with_nonces(n);
    }
    Ok(Arc::new(verifier))
}

/// The refusal as the axum layer answers it (`error_response_with`):
/// status, `{"error", "error_description"}` body when there is a code,
/// `WWW-Authenticate`, `DPoP-Nonce` for `use_dpop_nonce`, `Cache-Control:
/// no-store`.
fn refusal(
    verifier: Option<&ajwt_verifier::Verifier>,
    parts: &RequestParts<'_>,
    e: &VerifyError,
) -> Refusal {
    let code = e.code();
    let description = code.map(|_| e.description());
    let www_authenticate = verifier.and_then(|v| challenge_header(v, parts, e, None));
    let mut headers = Vec::new();
    if let Some(challenge) = &www_authenticate {
        headers.push(("WWW-Authenticate".to_owned(), challenge.clone()));
    }
    if let VerifyError::UseDpopNonce(nonce) = e {
        headers.push(("DPoP-Nonce".to_owned(), nonce.clone()));
    }
    headers.push(("Cache-Control".to_owned(), "no-store".to_owned()));
    Refusal {
        status: e.status(),
        error: code.map(str::to_owned),
        description,
        message: e.to_string(),
        www_authenticate,
        headers,
    }
}

/// The payload of a token the verifier accepted, decoded again to hand every
/// claim to Python as it is (unknown claims included).
fn payload_of(authorization: &str) -> Option<Value> {
    let token = authorization.split_once(' ')?.1.trim();
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    Some(
        ajwt_checksum::json::parse_strict(&bytes)
            .ok()?
            .to_serde_json(),
    )
}

#[pymethods]
impl Verifier {
    #[new]
    #[pyo3(signature = (
        issuer, audience, pop = "required", jwks = None, *, algorithms = None, leeway = 30,
        max_age = None, dpop_window = 60, max_token_len = 16384, known_checksums = None,
        status_lists = "fail-closed", status_list_origins = None, nonces = false,
        nonce_lifetime = 300.0, replay_cache_size = 100_000
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        issuer: &str,
        audience: &str,
        pop: &str,
        jwks: Option<&Bound<'_, PyAny>>,
        algorithms: Option<Vec<String>>,
        leeway: i64,
        max_age: Option<i64>,
        dpop_window: i64,
        max_token_len: usize,
        known_checksums: Option<Vec<String>>,
        status_lists: &str,
        status_list_origins: Option<Vec<String>>,
        nonces: bool,
        nonce_lifetime: f64,
        replay_cache_size: usize,
    ) -> PyResult<Verifier> {
        let mut config = VerifierConfig::new(issuer, audience);
        config.pop = pop
            .parse::<PopPolicy>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if let Some(names) = algorithms {
            let mut algs = Vec::new();
            for name in names {
                algs.push(
                    name.parse::<Alg>()
                        .map_err(|e| PyValueError::new_err(e.to_string()))?,
                );
            }
            if algs.is_empty() {
                return Err(PyValueError::new_err("algorithms must not be empty"));
            }
            config.algorithms = algs;
        }
        // Bounded so that no time arithmetic can overflow (a year is plenty).
        const YEAR: i64 = 365 * 24 * 3600;
        if !(0..=YEAR).contains(&leeway)
            || !(1..=YEAR).contains(&dpop_window)
            || max_age.is_some_and(|m| !(1..=YEAR).contains(&m))
        {
            return Err(PyValueError::new_err(
                "leeway must be 0..=31536000, dpop_window and max_age 1..=31536000 (seconds)",
            ));
        }
        config.leeway = leeway;
        config.max_age = max_age;
        config.dpop_window = dpop_window;
        config.max_token_len = max_token_len;
        if let Some(list) = known_checksums {
            let mut set = std::collections::HashSet::new();
            for c in list {
                set.insert(c.parse().map_err(|e: ajwt_checksum::ChecksumFormatError| {
                    PyValueError::new_err(e.to_string())
                })?);
            }
            config.known_checksums = Some(set);
        }
        let jwks = match jwks {
            None => None,
            Some(obj) if obj.is_none() => None,
            Some(obj) => {
                let bytes = pyjson::document_bytes(obj)?.ok_or_else(|| {
                    PyValueError::new_err("jwks must be a JWK Set as dict, str or bytes")
                })?;
                let (set, _ignored) = JwkSet::parse(&bytes)
                    .map_err(|e| PyValueError::new_err(format!("jwks: {e}")))?;
                Some(set)
            }
        };
        let nonces = if nonces {
            let lifetime = Duration::try_from_secs_f64(nonce_lifetime)
                .ok()
                .filter(|d| !d.is_zero() && d.as_secs() <= 365 * 24 * 3600)
                .ok_or_else(|| {
                    PyValueError::new_err("nonce_lifetime must be > 0 and at most a year (seconds)")
                })?;
            Some(Arc::new(
                RotatingNonces::new(lifetime, lifetime)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?,
            ))
        } else {
            None
        };
        if replay_cache_size == 0 {
            return Err(PyValueError::new_err("replay_cache_size must be > 0"));
        }
        Ok(Verifier {
            settings: Arc::new(Settings {
                config,
                jwks,
                status: parse_status(status_lists)?,
                status_origins: status_list_origins.unwrap_or_default(),
                replay_cache_size,
            }),
            nonces,
            inner: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// verify(authorization, dpop, method, url, scopes=None, workflow_step=None,
    /// workflow_id=None, delegation_chains=None) -> IntentClaims
    ///
    /// §6.5.3 steps 1–8 for one request: `authorization` and `dpop` are the
    /// raw `Authorization` and `DPoP` header values (None when absent, a
    /// list when the header was sent several times), `method` the HTTP
    /// method, `url` the full URL the client addressed (scheme, host, path:
    /// the DPoP `htu`, RFC 9449 §4.3 step 9). The route requires every scope
    /// of `scopes` (step 7) and, when `workflow_step` is given (one step or
    /// a list), that `intent.workflow_step` be one of them (step 6; with
    /// `workflow_id`, that `intent.workflow_id` be it). The GIL is released
    /// while the verifier runs (it may fetch the issuer's keys or status
    /// list). Raises VerificationError with the HTTP answer to give.
    #[pyo3(signature = (authorization, dpop, method, url, scopes = None, workflow_step = None, workflow_id = None, delegation_chains = None))]
    #[allow(clippy::too_many_arguments)]
    fn verify(
        &self,
        py: Python<'_>,
        authorization: Option<&Bound<'_, PyAny>>,
        dpop: Option<&Bound<'_, PyAny>>,
        method: &str,
        url: &str,
        scopes: Option<&Bound<'_, PyAny>>,
        workflow_step: Option<&Bound<'_, PyAny>>,
        workflow_id: Option<String>,
        delegation_chains: Option<Vec<String>>,
    ) -> PyResult<IntentClaims> {
        let authorization = header_values(authorization, "authorization")?;
        let dpop = header_values(dpop, "dpop")?;
        let requirements = Requirements {
            scopes: str_list(scopes, "scopes")?.unwrap_or_default(),
            workflow_id,
            steps: str_list(workflow_step, "workflow_step")?,
            delegation_chains,
        };
        let rt = runtime()?;
        let settings = self.settings.clone();
        let nonces = self.nonces.clone();
        let inner = self.inner.clone();
        let method = method.to_owned();
        let url = url.to_owned();
        let result: Result<(VerifiedIntent, Option<Value>), Box<Refusal>> = py.detach(move || {
            rt.block_on(async move {
                let auth: Vec<&str> = authorization.iter().map(String::as_str).collect();
                let proofs: Vec<&str> = dpop.iter().map(String::as_str).collect();
                let parts = RequestParts {
                    method: &method,
                    url: &url,
                    authorization: &auth,
                    dpop: &proofs,
                };
                let verifier = match inner.get_or_try_init(|| build(&settings, nonces)).await {
                    Ok(v) => v.clone(),
                    Err(e) => return Err(Box::new(refusal(None, &parts, &e))),
                };
                match verifier.verify(&parts, &requirements).await {
                    Ok(intent) => Ok((intent, auth.first().and_then(|a| payload_of(a)))),
                    Err(e) => Err(Box::new(refusal(Some(&verifier), &parts, &e))),
                }
            })
        });
        match result {
            Ok((intent, raw)) => Ok(IntentClaims {
                intent,
                raw: raw.unwrap_or(Value::Null),
            }),
            Err(r) => Err(verification_error(py, *r)),
        }
    }

    /// current_nonce() -> str | None
    ///
    /// The server DPoP nonce to send in a `DPoP-Nonce` response header (RFC
    /// 9449 §8, §9: on successful responses too, so the client has the next
    /// one), or None when this verifier does not use nonces.
    fn current_nonce(&self) -> Option<String> {
        use ajwt_verifier::NonceSource as _;
        self.nonces.as_ref().map(|n| n.current())
    }

    /// The trusted issuer.
    #[getter]
    fn issuer(&self) -> &str {
        &self.settings.config.issuer
    }

    /// This resource server's audience.
    #[getter]
    fn audience(&self) -> &str {
        &self.settings.config.audience
    }

    fn __repr__(&self) -> String {
        format!(
            "Verifier(issuer={:?}, audience={:?})",
            self.settings.config.issuer, self.settings.config.audience
        )
    }
}

/// The verified claims of an intent token (§4.4.2, example §4.4.3), read-only.
/// `claims` is every claim of the token as decoded (a new dict each time).
#[pyclass(module = "agentic_jwt", name = "IntentClaims", frozen)]
pub struct IntentClaims {
    intent: VerifiedIntent,
    raw: Value,
}

#[pymethods]
impl IntentClaims {
    /// `iss`: the issuer.
    #[getter]
    fn iss(&self) -> &str {
        &self.intent.claims.iss
    }
    /// `sub`: the agent (§4.4.2).
    #[getter]
    fn sub(&self) -> &str {
        &self.intent.claims.sub
    }
    /// `aud` as a list (a single string becomes one element).
    #[getter]
    fn aud(&self) -> Vec<String> {
        self.intent.claims.aud.as_slice().to_vec()
    }
    /// `exp`, NumericDate.
    #[getter]
    fn exp(&self) -> i64 {
        self.intent.claims.exp
    }
    /// `iat`, NumericDate.
    #[getter]
    fn iat(&self) -> i64 {
        self.intent.claims.iat
    }
    /// `nbf`, NumericDate, when present.
    #[getter]
    fn nbf(&self) -> Option<i64> {
        self.raw.get("nbf").and_then(Value::as_i64)
    }
    /// `jti`: the token's unique identifier.
    #[getter]
    fn jti(&self) -> &str {
        &self.intent.claims.jti
    }
    /// `scope`: space-delimited scopes (RFC 6749 §3.3).
    #[getter]
    fn scope(&self) -> &str {
        &self.intent.claims.scope
    }
    /// The scope tokens of `scope`.
    #[getter]
    fn scopes(&self) -> Vec<String> {
        self.intent
            .claims
            .scopes()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
    /// `intent.executed_by`: the agent executing this step (equals `sub`).
    #[getter]
    fn agent_id(&self) -> &str {
        &self.intent.claims.intent.executed_by
    }
    /// `intent.executed_by`.
    #[getter]
    fn executed_by(&self) -> &str {
        &self.intent.claims.intent.executed_by
    }
    /// `agent_proof.agent_checksum` (`sha256:<hex>`, §4.2.1).
    #[getter]
    fn agent_checksum(&self) -> String {
        self.intent.claims.agent_proof.agent_checksum.to_string()
    }
    /// `agent_proof.registration_id` (§5.4.2).
    #[getter]
    fn registration_id(&self) -> &str {
        &self.intent.claims.agent_proof.registration_id
    }
    /// `intent.workflow_id`.
    #[getter]
    fn workflow_id(&self) -> Option<&str> {
        self.intent.claims.intent.workflow_id.as_deref()
    }
    /// `intent.workflow_step`.
    #[getter]
    fn workflow_step(&self) -> Option<&str> {
        self.intent.claims.intent.workflow_step.as_deref()
    }
    /// `intent.delegation_chain` (§4.4.4).
    #[getter]
    fn delegation_chain(&self) -> &str {
        &self.intent.claims.intent.delegation_chain
    }
    /// `intent.step_sequence_hash` (§4.4.4).
    #[getter]
    fn step_sequence_hash(&self) -> &str {
        &self.intent.claims.intent.step_sequence_hash
    }
    /// The RFC 7638 thumbprint the token is bound to: `cnf.jkt`, or the
    /// thumbprint of `cnf.jwk`.
    #[getter]
    fn cnf_jkt(&self) -> Option<String> {
        let cnf = &self.intent.claims.cnf;
        cnf.jkt.clone().or_else(|| {
            cnf.jwk
                .as_ref()
                .and_then(|j| ajwt_jose::jwk_thumbprint(j).ok())
        })
    }
    /// The thumbprint of the key that signed the request's DPoP proof
    /// (None when no proof was checked).
    #[getter]
    fn dpop_jkt(&self) -> Option<&str> {
        self.intent.dpop_jkt.as_deref()
    }
    /// Every claim of the token as decoded (dict).
    #[getter]
    fn claims<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pyjson::to_py(py, &self.raw)
    }

    fn __repr__(&self) -> String {
        format!(
            "IntentClaims(sub={:?}, scope={:?}, workflow_step={:?}, jti={:?})",
            self.intent.claims.sub,
            self.intent.claims.scope,
            self.intent.claims.intent.workflow_step,
            self.intent.claims.jti
        )
    }
}

/// Adds this part's classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Verifier>()?;
    m.add_class::<IntentClaims>()?;
    Ok(())
}
