//! The exception hierarchy of `agentic_jwt` (issue 16). Every exception the
//! package raises on bad input derives from [`AgentJwtError`]:
//!
//! * [`ChecksumError`]: an agent specification that cannot be checksummed
//!   (§5.2–§5.3), with `.kind` (the stable error-kind name `ajwt checksum`
//!   and `conformance/vectors/checksum.json` use), `.path` and `.message`;
//! * [`AgentKeyError`]: a key that cannot be generated, read or used;
//! * [`VerificationError`]: a refused intent token or DPoP proof (§6.5,
//!   §9.2; RFC 6750 §3, RFC 9449 §7.1), with the HTTP answer to give.
//!
//! The attributes are set on each instance; the classes carry `None`
//! defaults so that an instance a caller builds by hand still has them.

use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(
    agentic_jwt,
    AgentJwtError,
    pyo3::exceptions::PyException,
    "Base class of every agentic_jwt error."
);

pyo3::create_exception!(
    agentic_jwt,
    ChecksumError,
    AgentJwtError,
    "An agent specification that cannot be checksummed (draft-goswami-agentic-jwt-00 \
§5.2-§5.3). `.kind` is the stable error-kind name `ajwt checksum` reports (the \
`errorKinds` of conformance/vectors/checksum.json, e.g. \"duplicate_key\"), `.path` \
where in the document (e.g. \"tools[2].name\", or None), `.message` the message \
without the path; str(e) is the line `ajwt checksum` prints after `error: `."
);

pyo3::create_exception!(
    agentic_jwt,
    AgentKeyError,
    AgentJwtError,
    "An agent key that cannot be generated, read (PEM, JWK) or used to sign a DPoP \
proof (RFC 9449 §4.2, draft-goswami-agentic-jwt-00 §9.2.2)."
);

pyo3::create_exception!(
    agentic_jwt,
    VerificationError,
    AgentJwtError,
    "An intent token or DPoP proof refused by the verifier (draft-goswami-agentic-jwt-00 \
§6.5, §9.2). `.status` is the HTTP status to answer (401 or 403), `.error` the OAuth \
error code (RFC 6750 §3.1 / RFC 9449 §7.1; None when no credentials were sent), \
`.description` the error description, `.www_authenticate` the full WWW-Authenticate \
challenge (None for a 503), `.headers` every response header to send (WWW-Authenticate, \
Cache-Control: no-store, and DPoP-Nonce when the verifier wants the client to use a \
nonce), `.body` the JSON body ({\"error\", \"error_description\"}, empty without a code) \
as ajwt-verifier's axum layer answers."
);

pyo3::create_exception!(
    agentic_jwt,
    ProtocolError,
    AgentJwtError,
    "A token request or workflow step the issuer would refuse (draft-goswami-agentic-jwt-00 \
§4.2.1, §4.3.3, §4.5): `.error` the OAuth error code (e.g. \"invalid_request\", \
\"workflow_step_unauthorized\"), `.status` the HTTP status the issuer answers (400, 403), \
`.description`, and for a refused step `.reason` (e.g. \"missing_prerequisites\") and \
`.missing_steps`."
);

/// Adds the exception types to the module (with `None` defaults of their
/// attributes on the classes).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AgentJwtError", py.get_type::<AgentJwtError>())?;
    let checksum = py.get_type::<ChecksumError>();
    for attr in ["kind", "path", "message"] {
        checksum.setattr(attr, py.None())?;
    }
    m.add("ChecksumError", checksum)?;
    m.add("AgentKeyError", py.get_type::<AgentKeyError>())?;
    let verification = py.get_type::<VerificationError>();
    for attr in [
        "status",
        "error",
        "description",
        "www_authenticate",
        "headers",
        "body",
    ] {
        verification.setattr(attr, py.None())?;
    }
    m.add("VerificationError", verification)?;
    let protocol = py.get_type::<ProtocolError>();
    for attr in ["error", "status", "description", "reason", "missing_steps"] {
        protocol.setattr(attr, py.None())?;
    }
    m.add("ProtocolError", protocol)?;
    Ok(())
}

/// A [`ChecksumError`] with its attributes; `str(e)` is `path: message`
/// (as `ajwt checksum` prints it, control characters escaped), or the
/// message alone without a path.
pub fn checksum_error(py: Python<'_>, kind: &str, path: Option<&str>, message: &str) -> PyErr {
    let display = match path {
        Some(p) => format!(
            "{}: {}",
            ajwt_checksum::error::one_line(p),
            ajwt_checksum::error::one_line(message)
        ),
        None => ajwt_checksum::error::one_line(message),
    };
    let err = PyErr::new::<ChecksumError, _>(display);
    let set = || -> PyResult<()> {
        let v = err.value(py);
        v.setattr("kind", kind)?;
        v.setattr("path", path)?;
        v.setattr("message", message)?;
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(e) => e,
    }
}

/// [`checksum_error`] of the Rust crate's error.
pub fn from_checksum_error(py: Python<'_>, e: &ajwt_checksum::ChecksumError) -> PyErr {
    checksum_error(py, e.kind().as_str(), e.path(), e.message())
}

/// An [`AgentKeyError`] with a message.
pub fn agent_key_error(message: impl Into<String>) -> PyErr {
    PyErr::new::<AgentKeyError, _>(message.into())
}

/// The HTTP answer of a refused request, as the axum layer of
/// `ajwt-verifier` would send it.
pub struct Refusal {
    /// 401 or 403 (400 for a malformed Authorization header, 503 when the
    /// issuer's keys or status list cannot be had).
    pub status: u16,
    /// The OAuth error code (None when no credentials were sent).
    pub error: Option<String>,
    /// The error description (None without an error code, as in the
    /// response body).
    pub description: Option<String>,
    /// The verifier's message (always present).
    pub message: String,
    /// The `WWW-Authenticate` value (None for a 503).
    pub www_authenticate: Option<String>,
    /// Every response header (name, value) to send.
    pub headers: Vec<(String, String)>,
}

/// A [`VerificationError`] carrying `refusal`; `str(e)` is
/// `"<status> <error>: <message>"`.
pub fn verification_error(py: Python<'_>, refusal: Refusal) -> PyErr {
    let display = match &refusal.error {
        Some(e) => format!("{} {e}: {}", refusal.status, refusal.message),
        None => format!("{}: {}", refusal.status, refusal.message),
    };
    let err = PyErr::new::<VerificationError, _>(display);
    let set = || -> PyResult<()> {
        let v = err.value(py);
        v.setattr("status", refusal.status)?;
        v.setattr("error", refusal.error.as_deref())?;
        v.setattr("description", refusal.description.as_deref())?;
        v.setattr("www_authenticate", refusal.www_authenticate.as_deref())?;
        let body = PyDict::new(py);
        if let Some(code) = &refusal.error {
            body.set_item("error", code)?;
            body.set_item(
                "error_description",
                refusal.description.as_deref().unwrap_or(""),
            )?;
        }
        v.setattr("body", body)?;
        let headers = PyDict::new(py);
        for (name, value) in &refusal.headers {
            headers.set_item(name, value)?;
        }
        v.setattr("headers", headers)?;
        Ok(())
    };
    match set() {
        Ok(()) => err,
        Err(e) => e,
    }
}
