//! The module's one tokio runtime (I-169), shared by every binding that runs
//! async Rust code (the verifier, the issuer client): call [`runtime`] and
//! `block_on` inside `Python::detach`, so the GIL is released while it runs.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The module's tokio runtime: multi-thread with one worker, built on first
/// use, rebuilt in a child process after `fork()` (the parent's threads do
/// not exist there; its runtime is leaked, never dropped).
pub fn runtime() -> PyResult<Arc<tokio::runtime::Runtime>> {
    static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let pid = std::process::id();
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return Ok(rt.clone());
        }
    }
    if let Some((_, stale)) = slot.take() {
        std::mem::forget(stale);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("agentic-jwt")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    *slot = Some((pid, rt.clone()));
    Ok(rt)
}
