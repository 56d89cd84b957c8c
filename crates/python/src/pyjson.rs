//! JSON values to Python objects (claims, public JWKs), and Python JWK
//! arguments to JSON text.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// A `serde_json` value as the Python object `json.loads` would give
/// (dict, list, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(members) => {
            let dict = PyDict::new(py);
            for (k, v) in members {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A JSON document given as `dict` (written with CPython's `json.dumps`,
/// `allow_nan=False`), `str` or `bytes`, as bytes for the strict reader.
/// `None` when `obj` is none of these or `json.dumps` refuses it.
pub fn document_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if let Ok(b) = obj.cast::<pyo3::types::PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    if let Ok(s) = obj.cast::<pyo3::types::PyString>() {
        return Ok(s.to_cow().ok().map(|t| t.as_bytes().to_vec()));
    }
    if obj.cast::<PyDict>().is_ok() {
        let py = obj.py();
        let json = py.import("json")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("allow_nan", false)?;
        return Ok(json
            .call_method("dumps", (obj,), Some(&kwargs))
            .ok()
            .and_then(|s| s.extract::<String>().ok())
            .map(String::into_bytes));
    }
    Ok(None)
}
