//! The two canonicalization profiles (§5.3.1 and §5.3.2).
//!
//! * [`Profile::Jcs`] (default): the §5.3.1 component object serialized with
//!   RFC 8785 (serde_jcs), every number an IEEE-754 double.
//! * [`Profile::PythonRef`]: the §5.3.2 reference code's component object,
//!   byte-identical to CPython's `json.dumps(components, sort_keys=True)`.

use std::fmt;
use std::str::FromStr;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::ser::{CharEscape, Formatter};
use serde_json::value::RawValue;

use crate::error::{render_key, ChecksumError, ErrorKind};
use crate::json::{Number, Value};
use crate::normalize::normalize_prompt;
use crate::spec::{AgentSpec, ChecksumLevel, Tool};

/// Which canonical form the checksum is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// RFC 8785 over the §5.3.1 components (`agent_id`, `prompt_template`,
    /// `tools[{name, description, parameters[, source_code]}]`, `configuration`).
    #[default]
    Jcs,
    /// CPython `json.dumps(sort_keys=True)` over the §5.3.2 reference code's
    /// components (`id`, `prompt`, `tools[{name, signature, description[, source_code]}]`, `config`).
    PythonRef,
}

impl Profile {
    /// The name used on the command line and in vectors: `jcs` or `python-ref`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Jcs => "jcs",
            Profile::PythonRef => "python-ref",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a profile name is not `jcs` or `python-ref`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checksum profile {0:?} (expected \"jcs\" or \"python-ref\")")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jcs" => Ok(Profile::Jcs),
            "python-ref" => Ok(Profile::PythonRef),
            other => Err(UnknownProfile(other.to_owned())),
        }
    }
}

/// Tools sorted by name with their original index (for error paths).
fn sorted_tools(spec: &AgentSpec) -> Vec<(usize, &Tool)> {
    let mut tools: Vec<(usize, &Tool)> = spec.tools.iter().enumerate().collect();
    // Unicode code point order (§5.3.2 "sort by name"; Python's str order), which
    // for UTF-8 strings is byte order. Names are unique, so the sort is total.
    tools.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    tools
}

fn child(parent: &str, key: &str) -> String {
    let k = render_key(key);
    if k.starts_with('[') {
        format!("{parent}{k}")
    } else {
        format!("{parent}.{k}")
    }
}

// ---------------------------------------------------------------- jcs ----

/// Converts a strict value to a serde_json value whose numbers are all doubles,
/// refusing what a double cannot hold (see `spec/interpretation.md`).
fn to_jcs_value(v: &Value, path: &str) -> Result<serde_json::Value, ChecksumError> {
    Ok(match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => serde_json::Value::Number(jcs_number(n, path)?),
        Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| to_jcs_value(x, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => {
            let mut map = serde_json::Map::new();
            for (k, x) in members {
                map.insert(k.clone(), to_jcs_value(x, &child(path, k))?);
            }
            serde_json::Value::Object(map)
        }
    })
}

fn jcs_number(n: &Number, path: &str) -> Result<serde_json::Number, ChecksumError> {
    let f = n.to_f64();
    if n.is_integer_literal() && !(f.is_finite() && integer_is_exact(n.as_str(), f)) {
        return Err(ChecksumError::new(
            ErrorKind::UnrepresentableNumber,
            Some(path.to_owned()),
            format!(
                "integer {n} cannot be represented exactly as an IEEE-754 double (RFC 8785 §3.2.2.3); send it as a string"
            ),
        ));
    }
    // Overflowing fraction/exponent literals were refused by the parser.
    serde_json::Number::from_f64(f).ok_or_else(|| {
        ChecksumError::new(
            ErrorKind::NumberOutOfRange,
            Some(path.to_owned()),
            format!("number {n} is out of the range of an IEEE-754 double"),
        )
    })
}

/// True when the integer literal `text` equals the double `f` exactly.
fn integer_is_exact(text: &str, f: f64) -> bool {
    let digits = text.trim_start_matches('-');
    // Fast path: |n| < 2^53 always round-trips.
    if digits.len() < 16 {
        return true;
    }
    let Some(big) = num_bigint::BigUint::parse_bytes(digits.as_bytes(), 10) else {
        return false;
    };
    if big.bits() == 0 {
        return true;
    }
    // n is a double iff n = m·2^e with m < 2^53 (and n < 2^1024, already implied
    // by `f` being finite); then f is n itself because rounding is exact.
    let tz = big.trailing_zeros().unwrap_or(0);
    let exact = big.bits() - tz <= 53;
    exact && f.abs() == big_to_f64(&big)
}

fn big_to_f64(b: &num_bigint::BigUint) -> f64 {
    // Exact for the values that pass the mantissa test above.
    b.to_string().parse::<f64>().unwrap_or(f64::NAN)
}

/// RFC 8785 canonical form of any strict JSON value, with this crate's number
/// rules (doubles only; inexact integer literals and overflow refused).
pub fn jcs_canonicalize(v: &Value) -> Result<Vec<u8>, ChecksumError> {
    serialize_jcs(&to_jcs_value(v, "$")?)
}

fn serialize_jcs(v: &serde_json::Value) -> Result<Vec<u8>, ChecksumError> {
    serde_jcs::to_vec(v).map_err(|e| {
        // Unreachable for values built by `to_jcs_value` (finite doubles, string
        // keys); reported rather than panicking.
        ChecksumError::new(
            ErrorKind::NumberOutOfRange,
            None,
            format!("JCS serialization failed: {e}"),
        )
    })
}

fn jcs_canonical(spec: &AgentSpec) -> Result<Vec<u8>, ChecksumError> {
    let tools = sorted_tools(spec)
        .into_iter()
        .map(|(i, t)| {
            let path = format!("tools[{i}]");
            let mut m = serde_json::Map::new();
            m.insert("name".into(), t.name.clone().into());
            m.insert("description".into(), t.description.clone().into());
            m.insert(
                "parameters".into(),
                to_jcs_value(&t.parameters, &format!("{path}.parameters"))?,
            );
            if t.checksum_level == ChecksumLevel::Deep {
                if let Some(src) = &t.source_code {
                    m.insert("source_code".into(), src.clone().into());
                }
            }
            Ok(serde_json::Value::Object(m))
        })
        .collect::<Result<Vec<_>, ChecksumError>>()?;
    let configuration = match &spec.configuration {
        Some(c) => to_jcs_value(c, "configuration")?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    let mut components = serde_json::Map::new();
    components.insert("agent_id".into(), spec.agent_id.clone().into());
    components.insert(
        "prompt_template".into(),
        normalize_prompt(&spec.prompt).into(),
    );
    components.insert("tools".into(), serde_json::Value::Array(tools));
    components.insert("configuration".into(), configuration);
    serialize_jcs(&serde_json::Value::Object(components))
}

// --------------------------------------------------------- python-ref ----

/// `repr(float)` of CPython 3: the shortest digit string that round-trips and,
/// among strings of that length, the one nearest the double, ties to even
/// (David Gay's dtoa mode 0, which CPython uses); exponent form when the
/// decimal exponent is < -4 or >= 16; `.0` on integral values.
///
/// Neither Rust's `{:e}` nor Ryū alone settles ties between two shortest
/// candidates the same way (both print `947648685346405.3` where CPython
/// prints `947648685346405.2`), so Ryū gives the length and Rust's exact,
/// ties-to-even `{:.N$e}` formatting gives the digits.
pub fn python_float_repr(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    if f == 0.0 {
        return Some(if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned());
    }
    let x = f.abs();
    let mut buf = ryu::Buffer::new();
    let shortest = decimal_digits(buf.format_finite(x))?;
    let precision = shortest.0.len().saturating_sub(1);
    let nearest = format!("{x:.precision$e}");
    let (digits, decpt) = if nearest.parse::<f64>() == Ok(x) {
        decimal_digits(&nearest)?
    } else {
        // At a power of two the rounding interval is lopsided and the nearest
        // candidate may not round-trip; the shortest one that does is Ryū's.
        shortest
    };
    let n = digits.len() as i32;
    let exp = decpt - 1; // value = D.IGITS × 10^exp
    let sign = if f < 0.0 { "-" } else { "" };
    let body = if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        format!("{int}.{frac}")
    };
    Some(format!("{sign}{body}"))
}

/// Splits a positive decimal literal (`123.45`, `1.5e-7`, `1e16`) into its
/// significant digits (no leading/trailing zeros) and `decpt`, such that the
/// value is `0.DIGITS × 10^decpt`.
fn decimal_digits(s: &str) -> Option<(String, i32)> {
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let point = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
    let all: String = mantissa.chars().filter(|c| *c != '.').collect();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0').to_owned();
    if digits.is_empty() {
        return None;
    }
    Some((digits, point - leading as i32 + exp))
}

/// How `json.loads` then `json.dumps` print a number literal.
fn python_number_text(n: &Number, path: &str) -> Result<String, ChecksumError> {
    if n.is_integer_literal() {
        // `int(text)` prints back its digits; only "-0" changes (to "0").
        let t = n.as_str();
        return Ok(if t == "-0" {
            "0".to_owned()
        } else {
            t.to_owned()
        });
    }
    python_float_repr(n.to_f64()).ok_or_else(|| {
        ChecksumError::new(
            ErrorKind::NumberOutOfRange,
            Some(path.to_owned()),
            format!(
                "number {n} overflows a double (CPython would print Infinity, which is not JSON)"
            ),
        )
    })
}

/// A value ready for `json.dumps`: numbers pre-rendered, object members sorted
/// by code point (Python's `sort_keys=True`).
enum Py {
    Null,
    Bool(bool),
    Str(String),
    Num(Box<RawValue>),
    Arr(Vec<Py>),
    Obj(Vec<(String, Py)>),
}

fn to_py(v: &Value, path: &str) -> Result<Py, ChecksumError> {
    Ok(match v {
        Value::Null => Py::Null,
        Value::Bool(b) => Py::Bool(*b),
        Value::String(s) => Py::Str(s.clone()),
        Value::Number(n) => Py::Num(raw(python_number_text(n, path)?)?),
        Value::Array(items) => Py::Arr(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| to_py(x, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => obj(members
            .iter()
            .map(|(k, x)| Ok((k.clone(), to_py(x, &child(path, k))?)))
            .collect::<Result<_, ChecksumError>>()?),
    })
}

fn raw(text: String) -> Result<Box<RawValue>, ChecksumError> {
    RawValue::from_string(text).map_err(|e| {
        ChecksumError::new(
            ErrorKind::InvalidJson,
            None,
            format!("internal number rendering: {e}"),
        )
    })
}

fn obj(mut members: Vec<(String, Py)>) -> Py {
    members.sort_by(|a, b| a.0.cmp(&b.0));
    Py::Obj(members)
}

impl Serialize for Py {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Py::Null => s.serialize_unit(),
            Py::Bool(b) => s.serialize_bool(*b),
            Py::Str(x) => s.serialize_str(x),
            Py::Num(r) => r.serialize(s),
            Py::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for x in items {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Py::Obj(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (k, x) in members {
                    map.serialize_entry(k, x)?;
                }
                map.end()
            }
        }
    }
}

/// serde_json formatter reproducing CPython's `json.dumps` defaults:
/// separators `", "` / `": "`, `ensure_ascii=True` with lowercase `\uXXXX`
/// (surrogate pairs above the BMP) and Python's short escapes.
struct PythonFormatter;

impl PythonFormatter {
    fn escape_u16<W: ?Sized + std::io::Write>(w: &mut W, unit: u16) -> std::io::Result<()> {
        write!(w, "\\u{unit:04x}")
    }
}

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json already escaped '"', '\\' and U+0000..U+001F; Python's
        // ensure_ascii also escapes everything outside ' '..='~'.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                Self::escape_u16(w, *unit)?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> std::io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return Self::escape_u16(w, u16::from(byte)),
        };
        w.write_all(s)
    }
}

/// CPython `json.dumps(v, sort_keys=True)` of a strict JSON value.
pub fn python_dumps(v: &Value) -> Result<Vec<u8>, ChecksumError> {
    dumps(&to_py(v, "$")?)
}

fn dumps(v: &Py) -> Result<Vec<u8>, ChecksumError> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    v.serialize(&mut ser).map_err(|e| {
        ChecksumError::new(
            ErrorKind::InvalidJson,
            None,
            format!("serialization failed: {e}"),
        )
    })?;
    Ok(out)
}

fn python_ref_canonical(spec: &AgentSpec) -> Result<Vec<u8>, ChecksumError> {
    let tools = sorted_tools(spec)
        .into_iter()
        .map(|(_, t)| {
            let mut m = vec![
                ("name".to_owned(), Py::Str(t.name.clone())),
                (
                    "signature".to_owned(),
                    t.signature.clone().map_or(Py::Null, Py::Str),
                ),
                ("description".to_owned(), Py::Str(t.description.clone())),
            ];
            if t.checksum_level == ChecksumLevel::Deep {
                if let Some(src) = &t.source_code {
                    m.push(("source_code".to_owned(), Py::Str(src.clone())));
                }
            }
            obj(m)
        })
        .collect();
    // I-61 (supersedes I-5): the reference code as deployed hashes `{}` for an
    // agent without configuration (hypernome/patchet `configuration: Dict = {}`).
    let config = match &spec.configuration {
        Some(c) => to_py(c, "configuration")?,
        None => Py::Obj(Vec::new()),
    };
    let components = obj(vec![
        ("id".to_owned(), Py::Str(spec.agent_id.clone())),
        ("prompt".to_owned(), Py::Str(normalize_prompt(&spec.prompt))),
        ("tools".to_owned(), Py::Arr(tools)),
        ("config".to_owned(), config),
    ]);
    dumps(&components)
}

/// The exact bytes that are hashed for `spec` under `profile`.
pub fn canonical_bytes(spec: &AgentSpec, profile: Profile) -> Result<Vec<u8>, ChecksumError> {
    spec.validate()?;
    match profile {
        Profile::Jcs => jcs_canonical(spec),
        Profile::PythonRef => python_ref_canonical(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_strict_str;

    #[test]
    fn s5_3_2_python_float_repr_forms() {
        let cases = [
            (100.0, "100.0"),
            (1.5, "1.5"),
            (1e-7, "1e-07"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0.0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1, "0.1"),
            (-2.5e-300, "-2.5e-300"),
            (123456.789, "123456.789"),
            // Two shortest candidates (…405.2 and …405.3) are equally near the
            // double 947648685346405.25: CPython prints the even one.
            (-947_648_685_346_405.3, "-947648685346405.2"),
            (1e22, "1e+22"),
            (0.5, "0.5"),
            (123.0, "123.0"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f).as_deref(), Some(want), "{f:e}");
        }
        assert_eq!(python_float_repr(f64::INFINITY), None);
    }

    #[test]
    fn s5_3_2_python_dumps_escapes_and_separators() {
        let v = parse_strict_str(r#"{"b":[1,2.50,"é😀\u007f\n\u0001"],"a":{}, "\u00e9":null}"#)
            .unwrap();
        assert_eq!(
            String::from_utf8(python_dumps(&v).unwrap()).unwrap(),
            r#"{"a": {}, "b": [1, 2.5, "\u00e9\ud83d\ude00\u007f\n\u0001"], "\u00e9": null}"#
        );
    }

    fn canonical_text(spec: &str, profile: Profile) -> String {
        let spec = AgentSpec::from_json(spec.as_bytes()).unwrap();
        String::from_utf8(canonical_bytes(&spec, profile).unwrap()).unwrap()
    }

    #[test]
    fn i61_python_ref_hashes_an_absent_configuration_as_empty_object() {
        // What hypernome/patchet's compute_agent_checksum serializes for an
        // AgentComponents without configuration (`configuration: Dict = {}`).
        for spec in [
            r#"{"agent_id":"a","prompt":"p","tools":[]}"#,
            r#"{"agent_id":"a","prompt":"p","tools":[],"configuration":null}"#,
            r#"{"agent_id":"a","prompt":"p","tools":[],"configuration":{}}"#,
        ] {
            assert_eq!(
                canonical_text(spec, Profile::PythonRef),
                r#"{"config": {}, "id": "a", "prompt": "p", "tools": []}"#,
                "{spec}"
            );
            assert_eq!(
                canonical_text(spec, Profile::Jcs),
                r#"{"agent_id":"a","configuration":{},"prompt_template":"p","tools":[]}"#,
                "{spec}"
            );
        }
    }

    #[test]
    fn i62_is_agent_is_hashed_by_neither_profile() {
        let marked = r#"{"agent_id":"a","prompt":"p","tools":[{"name":"sub","signature":"(s)","is_agent":true}]}"#;
        let plain = r#"{"agent_id":"a","prompt":"p","tools":[{"name":"sub","signature":"(s)"}]}"#;
        for profile in [Profile::Jcs, Profile::PythonRef] {
            assert_eq!(
                canonical_text(marked, profile),
                canonical_text(plain, profile),
                "{profile}"
            );
            assert!(!canonical_text(marked, profile).contains("is_agent"));
        }
    }

    #[test]
    fn s5_3_1_jcs_integer_exactness() {
        assert!(integer_is_exact("9007199254740992", 9007199254740992.0));
        assert!(!integer_is_exact("9007199254740993", 9007199254740992.0));
        assert!(integer_is_exact("1180591620717411303424", 2f64.powi(70)));
        assert!(!integer_is_exact(
            "123456789012345678901234567890",
            1.2345678901234568e29
        ));
        assert!(integer_is_exact("-0", 0.0));
    }

    #[test]
    fn s5_3_profile_names_round_trip() {
        for p in [Profile::Jcs, Profile::PythonRef] {
            assert_eq!(p.as_str().parse::<Profile>(), Ok(p));
        }
        assert!("JCS".parse::<Profile>().is_err());
    }
}
