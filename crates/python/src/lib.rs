//! Python bindings of agentic-jwt (issue 16): the extension module
//! `agentic_jwt._native` of the `agentic-jwt` distribution (one abi3 wheel
//! for CPython >= 3.9, built by maturin from `pyproject.toml`).
//!
//! It exposes what Rust already does, so that a Python agent runtime or
//! resource server never re-implements it: agent checksums (§5.2–§5.3),
//! sequence and delegation hashes (§4.4.4), agent keys and DPoP proofs
//! (RFC 9449, §9.2.2), intent-token verification exactly as `ajwt-verifier`
//! does it (§6.5, §9.2), and the issuer client of `ajwt-client` (§4.2,
//! §5.4). The pure-Python layers (`agentic_jwt.fastapi`, `agentic_jwt.httpx`,
//! `agentic_jwt.client`) sit on top, in `python/agentic_jwt/`.

use pyo3::prelude::*;

mod checksum;
mod client;
mod errors;
mod keys;
mod protocol;
mod pyjson;
pub(crate) mod runtime;
mod verifier;

/// The extension module `agentic_jwt._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    checksum::register(m)?;
    keys::register(m)?;
    protocol::register(m)?;
    verifier::register(m)?;
    client::register(m)?;
    Ok(())
}
