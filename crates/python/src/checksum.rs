//! Agent checksums (§5.2–§5.3), prompt normalization (§5.3.2) and the
//! sequence hashes of the intent token (§4.4.4), from Python.
//!
//! A specification is a JSON `str`/`bytes` document, read by the same strict
//! reader as `ajwt checksum` (`ajwt-json`), or a Python `dict`, converted
//! here to the reader's `Value` without loss (spec/interpretation.md I-165):
//! the result, or the error kind, is what `ajwt checksum` gives for
//! `json.dumps(spec)`, except that what `json.dumps` would silently change
//! (non-`str` keys) or write as non-JSON (`NaN`, `Infinity`) is refused.

use std::borrow::Cow;
use std::str::FromStr;

use ajwt_checksum::canonical::python_float_repr;
use ajwt_checksum::json::{Number, Value, MAX_DEPTH, MAX_INTEGER_DIGITS};
use ajwt_checksum::{AgentSpec, Profile};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{checksum_error, from_checksum_error};

/// Inputs at least this long are checksummed with the GIL released.
const DETACH_BYTES: usize = 64 * 1024;

/// One step of a path inside the specification.
enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path the way the strict reader does (`$`, `tools[2].name`,
/// `configuration["a b"]`).
fn render_path(segs: &[Seg]) -> String {
    if segs.is_empty() {
        return "$".to_owned();
    }
    let mut out = String::new();
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Key(k) => {
                let k = ajwt_checksum::json::render_key(k);
                if i > 0 && !k.starts_with('[') {
                    out.push('.');
                }
                out.push_str(&k);
            }
            Seg::Index(n) => {
                if i == 0 {
                    out.push('$');
                }
                out.push_str(&format!("[{n}]"));
            }
        }
    }
    out
}

/// Converts Python objects to the strict reader's [`Value`].
struct Converter<'py> {
    py: Python<'py>,
    path: Vec<Seg>,
    /// `int.__repr__` (what `json.dumps` writes an int with), looked up once.
    int_repr: Option<Bound<'py, PyAny>>,
}

impl<'py> Converter<'py> {
    fn error(&self, kind: &str, message: &str) -> PyErr {
        checksum_error(self.py, kind, Some(&render_path(&self.path)), message)
    }

    fn convert(&mut self, obj: &Bound<'py, PyAny>, depth: usize) -> PyResult<Value> {
        if obj.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return Ok(Value::String(self.string(s)?.into_owned()));
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if let Ok(i) = obj.cast::<PyInt>() {
            return self.int(i);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return self.float(f.value());
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            self.enter(depth)?;
            let mut members = Vec::with_capacity(d.len());
            for (k, v) in d.iter() {
                let Ok(ks) = k.cast::<PyString>() else {
                    let t = type_name(&k);
                    return Err(self.error(
                        "invalid_json",
                        &format!("object member names must be str, not {t}"),
                    ));
                };
                let key = self.string(ks)?.into_owned();
                self.path.push(Seg::Key(key));
                let value = self.convert(&v, depth + 1)?;
                let Some(Seg::Key(key)) = self.path.pop() else {
                    return Err(PyValueError::new_err("internal error: path out of step"));
                };
                members.push((key, value));
            }
            return Ok(Value::Object(members));
        }
        if let Ok(l) = obj.cast::<PyList>() {
            self.enter(depth)?;
            return self.items(l.iter(), l.len(), depth);
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            self.enter(depth)?;
            return self.items(t.iter(), t.len(), depth);
        }
        let t = type_name(obj);
        Err(self.error(
            "invalid_json",
            &format!("a Python {t} has no JSON form (expected dict, list, tuple, str, int, float, bool or None)"),
        ))
    }

    fn items(
        &mut self,
        iter: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        depth: usize,
    ) -> PyResult<Value> {
        let mut items = Vec::with_capacity(len);
        for (i, item) in iter.enumerate() {
            self.path.push(Seg::Index(i));
            items.push(self.convert(&item, depth + 1)?);
            self.path.pop();
        }
        Ok(Value::Array(items))
    }

    /// The reader's depth rule: a container at depth `MAX_DEPTH` (the
    /// top-level object is depth 0) is refused.
    fn enter(&self, depth: usize) -> PyResult<()> {
        if depth >= MAX_DEPTH {
            return Err(self.error(
                "nesting_too_deep",
                &format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn string<'a>(&self, s: &'a Bound<'py, PyString>) -> PyResult<Cow<'a, str>> {
        // A lone surrogate: json.dumps writes it as a `\udXXX` escape, which
        // the strict reader refuses as invalid JSON.
        s.to_cow().map_err(|_| {
            self.error(
                "invalid_json",
                "string is not valid Unicode (it holds a lone surrogate)",
            )
        })
    }

    fn int(&mut self, i: &Bound<'py, PyInt>) -> PyResult<Value> {
        let text = if let Ok(n) = i.extract::<i64>() {
            n.to_string()
        } else {
            if self.int_repr.is_none() {
                let repr = self.py.get_type::<PyInt>().getattr("__repr__")?;
                self.int_repr = Some(repr);
            }
            let repr = self
                .int_repr
                .as_ref()
                .ok_or_else(|| PyValueError::new_err("internal error: int.__repr__"))?;
            // ValueError above sys.get_int_max_str_digits() digits (4300 by default).
            match repr.call1((i,)) {
                Ok(r) => r.extract::<String>()?,
                Err(_) => return Err(self.out_of_range()),
            }
        };
        if text.trim_start_matches('-').len() > MAX_INTEGER_DIGITS {
            return Err(self.out_of_range());
        }
        self.number(&text)
    }

    fn float(&self, f: f64) -> PyResult<Value> {
        match python_float_repr(f) {
            Some(text) => self.number(&text),
            // json.dumps writes NaN / Infinity, which are not JSON.
            None => Err(self.error(
                "invalid_json",
                &format!("{f} is not a JSON number (NaN and Infinity have no JSON form)"),
            )),
        }
    }

    fn number(&self, text: &str) -> PyResult<Value> {
        Number::from_literal(text)
            .map(Value::Number)
            .ok_or_else(|| self.error("invalid_json", &format!("invalid number {text:?}")))
    }

    fn out_of_range(&self) -> PyErr {
        self.error(
            "number_out_of_range",
            &format!(
                "number out of range (a fraction or exponent that overflows an IEEE-754 double, or an integer longer than {MAX_INTEGER_DIGITS} digits)"
            ),
        )
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// A specification as given: JSON text, or a Python value already converted.
enum Input<'a> {
    Json(Cow<'a, [u8]>),
    Value(Value),
}

fn read_input<'a>(spec: &'a Bound<'_, PyAny>) -> PyResult<Input<'a>> {
    let py = spec.py();
    if let Ok(b) = spec.cast::<PyBytes>() {
        return Ok(Input::Json(Cow::Borrowed(b.as_bytes())));
    }
    if let Ok(s) = spec.cast::<PyString>() {
        return match s.to_cow() {
            Ok(Cow::Borrowed(t)) => Ok(Input::Json(Cow::Borrowed(t.as_bytes()))),
            Ok(Cow::Owned(t)) => Ok(Input::Json(Cow::Owned(t.into_bytes()))),
            // Lone surrogates: no UTF-8 form, as the CLI would say of such bytes.
            Err(_) => Err(checksum_error(
                py,
                "invalid_json",
                None,
                "invalid JSON: input is not UTF-8 (the str holds a lone surrogate)",
            )),
        };
    }
    let mut conv = Converter {
        py,
        path: Vec::new(),
        int_repr: None,
    };
    Ok(Input::Value(conv.convert(spec, 0)?))
}

fn parse_profile(profile: &str) -> PyResult<Profile> {
    Profile::from_str(profile).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn spec_of(py: Python<'_>, value: Value) -> PyResult<AgentSpec> {
    AgentSpec::from_owned_value(value).map_err(|e| from_checksum_error(py, &e))
}

/// Runs `f` with the GIL released when the input is large.
fn maybe_detach<T: Send>(py: Python<'_>, len: usize, f: impl FnOnce() -> T + Send) -> T {
    if len >= DETACH_BYTES {
        py.detach(f)
    } else {
        f()
    }
}

/// checksum(spec, profile="jcs") -> str
///
/// The agent checksum `sha256:<64 lowercase hex>` of an agent specification
/// (draft-goswami-agentic-jwt-00 §5.3; §5.2.1 format), exactly the line
/// `ajwt checksum --profile PROFILE` prints for the same document.
/// `spec` is a dict, or a JSON str/bytes read strictly (duplicate member
/// names, NaN, trailing data... are refused). `profile` is "jcs" (§5.3.1,
/// RFC 8785, the default) or "python-ref" (§5.3.2's reference code).
/// Raises ChecksumError (with `.kind`, `.path`, `.message`).
#[pyfunction]
#[pyo3(signature = (spec, profile = "jcs"))]
fn checksum(spec: &Bound<'_, PyAny>, profile: &str) -> PyResult<String> {
    let py = spec.py();
    let profile = parse_profile(profile)?;
    let result = match read_input(spec)? {
        Input::Json(bytes) => {
            let bytes: &[u8] = &bytes;
            maybe_detach(py, bytes.len(), || {
                ajwt_checksum::compute_checksum_json(bytes, profile)
            })
        }
        Input::Value(value) => ajwt_checksum::compute_checksum(&spec_of(py, value)?, profile),
    };
    result
        .map(|c| c.to_string())
        .map_err(|e| from_checksum_error(py, &e))
}

/// canonical(spec, profile="jcs") -> bytes
///
/// The exact bytes that are hashed into the checksum (§5.3.1 JCS, or the
/// §5.3.2 reference code's json.dumps(sort_keys=True)): what
/// `ajwt checksum --canonical` prints, without its final newline.
/// Same inputs and errors as checksum().
#[pyfunction]
#[pyo3(signature = (spec, profile = "jcs"))]
fn canonical<'py>(spec: &Bound<'py, PyAny>, profile: &str) -> PyResult<Bound<'py, PyBytes>> {
    let py = spec.py();
    let profile = parse_profile(profile)?;
    let result = match read_input(spec)? {
        Input::Json(bytes) => {
            let bytes: &[u8] = &bytes;
            maybe_detach(py, bytes.len(), || {
                ajwt_checksum::compute_json(bytes, profile)
            })
        }
        Input::Value(value) => ajwt_checksum::compute(&spec_of(py, value)?, profile),
    };
    match result {
        Ok(c) => Ok(PyBytes::new(py, &c.canonical)),
        Err(e) => Err(from_checksum_error(py, &e)),
    }
}

/// normalize_prompt(text) -> str
///
/// The prompt normalization of §5.3.2, bit-exact with CPython:
/// `" ".join(line.strip() for line in text.strip().split("\n"))` (see
/// spec/interpretation.md for the whitespace rules).
#[pyfunction]
fn normalize_prompt(text: &str) -> String {
    ajwt_checksum::normalize_prompt(text)
}

/// sequence_hash(completed_steps, workflow_step=None) -> str
///
/// The intent token's `step_sequence_hash` (§4.4.4): the first 16 lowercase
/// hex digits of SHA-256 over the `|`-joined completed steps, with
/// `workflow_step` appended when it is not None.
#[pyfunction]
#[pyo3(signature = (completed_steps, workflow_step = None))]
fn sequence_hash(completed_steps: Vec<String>, workflow_step: Option<&str>) -> String {
    ajwt_protocol::hashes::step_sequence_hash(&completed_steps, workflow_step)
}

/// delegation_hash(chain, agent_id) -> str
///
/// The intent token's `delegation_chain` (§4.4.4): the first 16 lowercase
/// hex digits of SHA-256 over the `|`-joined delegation chain, the
/// requesting `agent_id` appended unless it is already last
/// (spec/interpretation.md I-16).
#[pyfunction]
fn delegation_hash(chain: Vec<String>, agent_id: &str) -> String {
    ajwt_protocol::hashes::delegation_chain_hash(&chain, agent_id)
}

/// Adds this part's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(checksum, m)?)?;
    m.add_function(wrap_pyfunction!(canonical, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_prompt, m)?)?;
    m.add_function(wrap_pyfunction!(sequence_hash, m)?)?;
    m.add_function(wrap_pyfunction!(delegation_hash, m)?)?;
    Ok(())
}
