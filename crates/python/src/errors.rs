//! The exception hierarchy of `agentic_jwt` (issue 16). Every exception the
//! package raises derives from [`AgentJwtError`].

use pyo3::prelude::*;

pyo3::create_exception!(
    agentic_jwt,
    AgentJwtError,
    pyo3::exceptions::PyException,
    "Base class of every agentic_jwt error."
);

/// Adds the exception types to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AgentJwtError", m.py().get_type::<AgentJwtError>())?;
    Ok(())
}
