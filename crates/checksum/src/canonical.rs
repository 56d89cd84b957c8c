//! The two canonicalization profiles (§5.3.1 and §5.3.2).
//!
//! * [`Profile::Jcs`] (default): the §5.3.1 component object serialized with
//!   RFC 8785, every number an IEEE-754 double.
//! * [`Profile::PythonRef`]: the §5.3.2 reference code's component object,
//!   byte-identical to CPython's `json.dumps(components, sort_keys=True)`.
//!
//! Both are written in one pass by [`crate::emit`] (issue 15, I-135).

use std::fmt;
use std::str::FromStr;

use crate::emit::{self, HashSink, Sink};
use crate::error::{render_key, ChecksumError, ErrorKind};
use crate::json::{literal_is_integer, literal_to_f64, Value};
use crate::node::{Kind, Node};
use crate::spec::{AgentSpec, Tool};
use crate::AgentChecksum;

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

fn child(parent: &str, key: &str) -> String {
    let k = render_key(key);
    if k.starts_with('[') {
        format!("{parent}{k}")
    } else {
        format!("{parent}.{k}")
    }
}

// ------------------------------------------------------------ errors ----
//
// The one-pass writer (`crate::emit`) only says *that* a number cannot be
// written. The error to report is then found by the walks below, in the order
// the pre-issue-15 implementation met it (document order within a value;
// jcs: tools sorted by name, then configuration; python-ref: configuration),
// so that kinds, paths and messages stay exactly as they were.

/// The first number of `v` (document order) that `profile` cannot write.
fn first_number_error<N: Node>(v: &N, path: &str, profile: Profile) -> Result<(), ChecksumError> {
    match v.kind() {
        Kind::Number(n) => match profile {
            Profile::Jcs => jcs_number(n, path).map(|_| ()),
            Profile::PythonRef => python_number_text(n, path).map(|_| ()),
        },
        Kind::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| first_number_error(x, &format!("{path}[{i}]"), profile)),
        Kind::Object(members) => members
            .iter()
            .try_for_each(|(k, x)| first_number_error(x, &child(path, k.as_ref()), profile)),
        _ => Ok(()),
    }
}

/// Used when the writer failed but no walk finds why (unreachable).
fn writer_failed() -> ChecksumError {
    ChecksumError::new(
        ErrorKind::NumberOutOfRange,
        None,
        "a number could not be serialized".to_owned(),
    )
}

fn spec_number_error<T: AsRef<str>, N: Node>(
    spec: &AgentSpec<T, N>,
    tools: &[(usize, &Tool<T, N>)],
    profile: Profile,
) -> ChecksumError {
    let found = (|| {
        if profile == Profile::Jcs {
            for (i, t) in tools {
                first_number_error(&t.parameters, &format!("tools[{i}].parameters"), profile)?;
            }
        }
        if let Some(c) = &spec.configuration {
            first_number_error(c, "configuration", profile)?;
        }
        Ok(())
    })();
    found.err().unwrap_or_else(writer_failed)
}

// ---------------------------------------------------------------- jcs ----

fn jcs_number(n: &str, path: &str) -> Result<f64, ChecksumError> {
    let f = literal_to_f64(n);
    if literal_is_integer(n) && !(f.is_finite() && integer_is_exact(n, f)) {
        return Err(ChecksumError::new(
            ErrorKind::UnrepresentableNumber,
            Some(path.to_owned()),
            format!(
                "integer {n} cannot be represented exactly as an IEEE-754 double (RFC 8785 §3.2.2.3); send it as a string"
            ),
        ));
    }
    // Overflowing fraction/exponent literals were refused by the parser.
    if f.is_finite() {
        Ok(f)
    } else {
        Err(ChecksumError::new(
            ErrorKind::NumberOutOfRange,
            Some(path.to_owned()),
            format!("number {n} is out of the range of an IEEE-754 double"),
        ))
    }
}

/// True when the integer literal `text` equals the double `f` exactly.
pub(crate) fn integer_is_exact(text: &str, f: f64) -> bool {
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
    value_bytes(v, Profile::Jcs)
}

fn value_bytes(v: &Value, profile: Profile) -> Result<Vec<u8>, ChecksumError> {
    let mut out = Vec::new();
    match emit::write_value(&mut out, v, profile) {
        Ok(()) => Ok(out),
        Err(_) => Err(first_number_error(v, "$", profile)
            .err()
            .unwrap_or_else(writer_failed)),
    }
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
fn python_number_text(n: &str, path: &str) -> Result<String, ChecksumError> {
    if literal_is_integer(n) {
        // `int(text)` prints back its digits; only "-0" changes (to "0").
        let t = n;
        return Ok(if t == "-0" {
            "0".to_owned()
        } else {
            t.to_owned()
        });
    }
    python_float_repr(literal_to_f64(n)).ok_or_else(|| {
        ChecksumError::new(
            ErrorKind::NumberOutOfRange,
            Some(path.to_owned()),
            format!(
                "number {n} overflows a double (CPython would print Infinity, which is not JSON)"
            ),
        )
    })
}

/// CPython `json.dumps(v, sort_keys=True)` of a strict JSON value.
pub fn python_dumps(v: &Value) -> Result<Vec<u8>, ChecksumError> {
    value_bytes(v, Profile::PythonRef)
}

/// The exact bytes that are hashed for `spec` under `profile`.
pub fn canonical_bytes(spec: &AgentSpec, profile: Profile) -> Result<Vec<u8>, ChecksumError> {
    let tools = spec.validated_sorted_tools()?;
    // Roughly the canonical size, so that the buffer grows at most once or twice.
    let estimate = 256
        + spec.prompt.len()
        + spec
            .tools
            .iter()
            .map(|t| {
                96 + t.name.len()
                    + t.description.len()
                    + t.source_code.as_ref().map_or(0, String::len)
            })
            .sum::<usize>();
    let mut out = Vec::with_capacity(estimate);
    write_canonical(&mut out, spec, &tools, profile)?;
    Ok(out)
}

/// The checksum of `spec` under `profile`, hashed while canonicalizing: the
/// canonical bytes are never held in memory (issue 15, I-135).
pub fn canonical_digest(
    spec: &AgentSpec,
    profile: Profile,
) -> Result<AgentChecksum, ChecksumError> {
    digest_of(spec, profile)
}

/// [`canonical_digest`] over either value type (I-140).
pub(crate) fn digest_of<T: AsRef<str>, N: Node>(
    spec: &AgentSpec<T, N>,
    profile: Profile,
) -> Result<AgentChecksum, ChecksumError> {
    let tools = spec.validated_sorted_tools()?;
    let mut sink = HashSink::new();
    write_canonical(&mut sink, spec, &tools, profile)?;
    Ok(sink.finish())
}

fn write_canonical<S: Sink, T: AsRef<str>, N: Node>(
    sink: &mut S,
    spec: &AgentSpec<T, N>,
    tools: &[(usize, &Tool<T, N>)],
    profile: Profile,
) -> Result<(), ChecksumError> {
    emit::write_spec(sink, spec, tools, profile)
        .map_err(|_| spec_number_error(spec, tools, profile))
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
