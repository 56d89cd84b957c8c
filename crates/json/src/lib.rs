//! `ajwt-json`: the strict JSON reader of the Agentic JWT implementation
//! (draft-goswami-agentic-jwt-00), used for every JSON document the project
//! accepts from outside: agent specifications (§5.2, §5.3), registration and
//! token requests (§4.2, §6.2), JWS headers and claims (intent tokens §4.4,
//! DPoP proofs), JWKs and key files. It is interpretation I-10 (strict JSON
//! input: duplicate member names refused at any depth, numbers kept as
//! written), in one small crate with no I/O so that both `ajwt-checksum` and
//! `ajwt-jose` read JSON the same way without depending on each other.
//!
//! serde_json's own `Value` silently keeps the last of duplicate object
//! members and (without the workspace-wide `arbitrary_precision` feature)
//! forgets how a number was spelled. Both are parser differentials: two
//! implementations reading the same agent specification would hash different
//! things, and two JOSE libraries reading the same header would act on
//! different `alg` values (RFC 8725 §3.1, RFC 7515 §4). This crate reads JSON
//! with serde_json's lexer but builds its own [`Value`], which
//!
//! * rejects a duplicate member name in any object, at any depth, naming its path;
//! * keeps every number's exact literal text (RFC 8259 §6 grammar, validated by
//!   serde_json), so that each canonicalization profile can apply its own rules
//!   (ECMAScript doubles for JCS, CPython int/float for `python-ref`);
//! * keeps object members in document order;
//! * bounds nesting depth ([`MAX_DEPTH`]).
//!
//! [`parse_object`] is the common case: a document that must be a JSON
//! object, returned as a `serde_json` map.
//!
//! Reading is two linear passes: serde_json's lexer drives a visitor that
//! builds the tree (checking duplicates and depth), then a scan of the
//! already-validated text collects the number literals in document order,
//! which is the order in which the visitor met them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Maximum nesting depth of arrays and objects (serde_json's own default limit).
pub const MAX_DEPTH: usize = 128;

/// A JSON value read by [`parse_strict`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, with its literal text.
    Number(Number),
    /// A string (always valid Unicode: lone surrogate escapes are rejected).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, members in document order, names unique.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The JSON type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// The same value as a `serde_json::Value` (object member order kept only
    /// if serde_json's `preserve_order` is on; numbers as serde_json reads
    /// their literal, so integers beyond 64 bits become doubles).
    pub fn to_serde_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::from_str::<serde_json::Number>(n.as_str())
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_serde_json).collect())
            }
            Value::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_serde_json()))
                    .collect(),
            ),
        }
    }

    /// Looks up an object member by name (`None` for non-objects).
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A JSON number literal exactly as written in the document.
///
/// The text always matches the RFC 8259 number grammar
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    text: String,
}

impl Number {
    /// Builds a number from a literal, checking the RFC 8259 grammar.
    pub fn from_literal(text: &str) -> Option<Number> {
        if is_json_number(text) {
            Some(Number {
                text: text.to_owned(),
            })
        } else {
            None
        }
    }

    /// The literal text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the literal has neither a fraction nor an exponent
    /// (CPython's `json` reads such a literal as `int`, others as `float`).
    pub fn is_integer_literal(&self) -> bool {
        !self.text.contains(['.', 'e', 'E'])
    }

    /// The nearest IEEE-754 double (correctly rounded; may be infinite on overflow).
    pub fn to_f64(&self) -> f64 {
        // The grammar was checked at construction and Rust's float parser accepts
        // every RFC 8259 number; overflow yields ±inf rather than an error.
        self.text.parse::<f64>().unwrap_or(f64::NAN)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Why a document was refused by [`parse_strict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not UTF-8, or not JSON (RFC 8259) at all.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// An object has the same member name twice.
    #[error("{path}: duplicate key {key:?}")]
    DuplicateKey {
        /// Path of the object holding the duplicate.
        path: String,
        /// The repeated member name.
        key: String,
    },
    /// A fraction/exponent literal that overflows an IEEE-754 double (e.g.
    /// `1e400`), or an integer literal longer than [`MAX_INTEGER_DIGITS`].
    #[error("{path}: number out of range")]
    NumberOutOfRange {
        /// Path of the number.
        path: String,
    },
    /// Arrays/objects nested deeper than [`MAX_DEPTH`].
    #[error("{path}: nesting deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// Path where the limit was crossed.
        path: String,
    },
}

/// Reads one JSON document strictly (see the module documentation).
pub fn parse_strict(input: &[u8]) -> Result<Value, JsonError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| JsonError::Syntax(format!("input is not UTF-8 ({e})")))?;
    parse_strict_str(text)
}

/// CPython refuses to convert integer literals longer than this (3.11's
/// default `sys.get_int_max_str_digits()`), so `json.loads` fails on them; so do we.
pub const MAX_INTEGER_DIGITS: usize = 4300;

/// [`parse_strict`] over a `&str`.
pub fn parse_strict_str(text: &str) -> Result<Value, JsonError> {
    // serde_json would read every number as u64/i64/f64: it forgets the
    // spelling and refuses integers beyond a double's range, which CPython
    // reads exactly. So it is shown the text with each number literal masked
    // as `0` padded with spaces (same length: error positions stay true), and
    // the literals are checked and put back afterwards.
    let literals = number_literals(text);
    let masked = mask(text, &literals)?;
    let mut found: Option<JsonError> = None;
    let seed = ValueSeed {
        path: Path::Root,
        depth: 0,
        found: &mut found,
    };
    let mut de = serde_json::Deserializer::from_str(&masked);
    // Depth is bounded by our own MAX_DEPTH check before each recursion, so
    // serde_json's fixed limit (127 levels) is replaced by ours (128).
    de.disable_recursion_limit();
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    let mut value = match (result, found) {
        (_, Some(err)) => return Err(err),
        (Ok(v), None) => v,
        (Err(e), None) => return Err(JsonError::Syntax(e.to_string())),
    };
    let mut iter = literals.iter().map(|(_, lit)| *lit);
    fill_numbers(&mut value, &mut iter, &Path::Root)?;
    if iter.next().is_some() {
        return Err(JsonError::Syntax(
            "internal error: unmatched number literal".into(),
        ));
    }
    Ok(value)
}

/// The maximal runs of `0-9 + - . e E` that start with `-` or a digit outside
/// string literals, with their byte offsets. In valid JSON these are exactly
/// the number tokens, in document order.
fn number_literals(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += 1;
                while let Some(&c) = b.get(i) {
                    i += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while b
                    .get(i)
                    .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                if let Some(lit) = text.get(start..i) {
                    out.push((start, lit));
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn mask<'t>(
    text: &'t str,
    literals: &[(usize, &str)],
) -> Result<std::borrow::Cow<'t, str>, JsonError> {
    if literals.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let mut bytes = text.as_bytes().to_vec();
    for (start, lit) in literals {
        if let Some(span) = bytes.get_mut(*start..start + lit.len()) {
            span.fill(b' ');
            span[0] = b'0';
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes.
    String::from_utf8(bytes)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| JsonError::Syntax(format!("internal error: {e}")))
}

fn fill_numbers<'a>(
    v: &mut Value,
    literals: &mut impl Iterator<Item = &'a str>,
    path: &Path<'_>,
) -> Result<(), JsonError> {
    match v {
        Value::Number(n) => {
            let text = literals.next().ok_or_else(|| {
                JsonError::Syntax("internal error: missing number literal".into())
            })?;
            *n = Number::from_literal(text)
                .ok_or_else(|| JsonError::Syntax(format!("{path}: invalid number {text:?}")))?;
            let too_long =
                n.is_integer_literal() && text.trim_start_matches('-').len() > MAX_INTEGER_DIGITS;
            if too_long || (!n.is_integer_literal() && !n.to_f64().is_finite()) {
                return Err(JsonError::NumberOutOfRange {
                    path: path.to_string(),
                });
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter_mut().enumerate() {
                fill_numbers(x, literals, &Path::Index(path, i))?;
            }
        }
        Value::Object(members) => {
            for (k, x) in members.iter_mut() {
                fill_numbers(x, literals, &Path::Key(path, k))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Why a document was refused by [`parse_object`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The document is not strict JSON (see [`JsonError`]).
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The document is strict JSON but not an object.
    #[error("the document is a JSON {found}, not an object")]
    NotAnObject {
        /// The JSON type found ([`Value::type_name`]).
        found: &'static str,
    },
}

/// Reads a document that must be a JSON object, strictly ([`parse_strict`]),
/// and returns its members as a `serde_json` map (see
/// [`Value::to_serde_json`] for how numbers convert).
pub fn parse_object(
    input: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, ObjectError> {
    match parse_strict(input)? {
        object @ Value::Object(_) => match object.to_serde_json() {
            serde_json::Value::Object(map) => Ok(map),
            _ => Err(ObjectError::NotAnObject { found: "object" }),
        },
        other => Err(ObjectError::NotAnObject {
            found: other.type_name(),
        }),
    }
}

/// [`parse_object`] over a `&str`.
pub fn parse_object_str(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ObjectError> {
    parse_object(text.as_bytes())
}

/// Renders an object member name inside a path: bare when it is an
/// identifier, otherwise as `["json string"]`.
pub fn render_key(k: &str) -> String {
    let mut chars = k.chars();
    let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        k.to_owned()
    } else {
        format!("[{}]", serde_json::Value::String(k.to_owned()))
    }
}

/// A path inside the document, rendered like `tools[2].parameters`.
#[derive(Clone)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Key(Path::Root, k) => write!(f, "{}", render_key(k)),
            Path::Key(p, k) => {
                let k = render_key(k);
                if k.starts_with('[') {
                    write!(f, "{p}{k}")
                } else {
                    write!(f, "{p}.{k}")
                }
            }
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// Deserializes one value at `path`; errors that serde cannot carry with a
/// path are parked in `found` and a placeholder serde error aborts parsing.
struct ValueSeed<'p, 'f> {
    path: Path<'p>,
    depth: usize,
    found: &'f mut Option<JsonError>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// A placeholder; the literal text is filled in by the second pass.
fn placeholder<E>() -> Result<Value, E> {
    Ok(Value::Number(Number {
        text: String::new(),
    }))
}

impl ValueSeed<'_, '_> {
    fn enter<E: de::Error>(&mut self) -> Result<(), E> {
        if self.depth >= MAX_DEPTH {
            *self.found = Some(JsonError::TooDeep {
                path: self.path.to_string(),
            });
            return Err(E::custom("nesting too deep"));
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        placeholder()
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        placeholder()
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        placeholder()
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut members: Vec<(String, Value)> = Vec::new();
        // Small objects (the common case) are checked by a linear scan; a set
        // takes over past 16 members so that huge objects stay linear.
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let dup = members.iter().any(|(k, _)| *k == key);
                    if members.len() >= 16 {
                        let mut set: HashSet<String> =
                            members.iter().map(|(k, _)| k.clone()).collect();
                        set.insert(key.clone());
                        seen = Some(set);
                    }
                    dup
                }
            };
            if duplicate {
                *self.found = Some(JsonError::DuplicateKey {
                    path: self.path.to_string(),
                    key,
                });
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value_seed(ValueSeed {
                path: Path::Key(&self.path, &key),
                depth: self.depth + 1,
                found: self.found,
            })?;
            members.push((key, value));
        }
        Ok(Value::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            let index = items.len();
            let next = seq.next_element_seed(ValueSeed {
                path: Path::Index(&self.path, index),
                depth: self.depth + 1,
                found: self.found,
            })?;
            match next {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Value {
        Value::Number(Number::from_literal(s).unwrap())
    }

    #[test]
    fn s5_3_1_keeps_number_text_and_member_order() {
        let v = parse_strict(br#"{"b": 1.50, "a": [1E2, -0, 123456789012345678901234567890]}"#)
            .unwrap();
        assert_eq!(
            v,
            Value::Object(vec![
                ("b".into(), num("1.50")),
                (
                    "a".into(),
                    Value::Array(vec![
                        num("1E2"),
                        num("-0"),
                        num("123456789012345678901234567890")
                    ])
                ),
            ])
        );
    }

    #[test]
    fn s5_3_1_rejects_duplicate_keys_at_any_depth_with_path() {
        let err =
            parse_strict(br#"{"tools":[{"name":"a"},{"parameters":{"x":1,"x":2}}]}"#).unwrap_err();
        assert_eq!(
            err,
            JsonError::DuplicateKey {
                path: "tools[1].parameters".into(),
                key: "x".into()
            }
        );
        assert_eq!(err.to_string(), r#"tools[1].parameters: duplicate key "x""#);
        // Large objects switch from a linear scan to a set: both must catch it.
        for dup_at in [3, 15, 16, 17, 39] {
            let mut members: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
            members.push(format!("\"k{dup_at}\":0"));
            let doc = format!("{{{}}}", members.join(","));
            assert_eq!(
                parse_strict(doc.as_bytes()).unwrap_err(),
                JsonError::DuplicateKey {
                    path: "$".into(),
                    key: format!("k{dup_at}")
                }
            );
            members.pop();
            assert!(parse_strict(format!("{{{}}}", members.join(",")).as_bytes()).is_ok());
        }
        let top = parse_strict(br#"{"a":1,"a":1}"#).unwrap_err();
        assert_eq!(top.to_string(), r#"$: duplicate key "a""#);
        // Escaped spellings of the same name are the same name.
        let esc = parse_strict(br#"{"a":1,"\u0061":1}"#).unwrap_err();
        assert!(matches!(esc, JsonError::DuplicateKey { .. }));
    }

    #[test]
    fn s5_3_1_rejects_bad_syntax_trailing_data_and_lone_surrogates() {
        for bad in [
            &b"{"[..],
            b"[01]",
            b"[-]",
            b"[1.]",
            b"[1 2]",
            b"{\"a\": tru1}",
            b"[-Infinity]",
            b"{} {}",
            b"[1,]",
            b"01",
            b"\"\\ud800\"",
            b"\xff",
            b"NaN",
            b"",
        ] {
            assert!(
                matches!(parse_strict(bad), Err(JsonError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn s9_4_3_bounds_depth() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            parse_strict(deep.as_bytes()),
            Err(JsonError::TooDeep { .. })
        ));
        // Far deeper than serde_json's own limit: still a clean error, no stack overflow.
        let very = "[".repeat(100_000);
        assert!(parse_strict(very.as_bytes()).is_err());
    }

    #[test]
    fn to_serde_json_keeps_values() {
        let v = parse_strict(br#"{"a":[1,-2,1.5,1e2,"x",null,true],"b":{}}"#).unwrap();
        assert_eq!(
            v.to_serde_json(),
            serde_json::json!({"a": [1, -2, 1.5, 100.0, "x", null, true], "b": {}})
        );
    }

    #[test]
    fn s5_3_1_number_grammar_and_ranges() {
        for ok in ["0", "-0", "1.5", "1e5", "1E+5", "-1.0e-7", "123"] {
            assert!(Number::from_literal(ok).is_some(), "{ok}");
        }
        for bad in ["01", "1.", ".5", "+1", "1e", "-", "1e+", "0x1", "Infinity"] {
            assert!(Number::from_literal(bad).is_none(), "{bad}");
        }
        assert!(Number::from_literal("1e400")
            .unwrap()
            .to_f64()
            .is_infinite());
        assert!(Number::from_literal("100").unwrap().is_integer_literal());
        assert!(!Number::from_literal("100.0").unwrap().is_integer_literal());
    }

    #[test]
    fn i10_parse_object_returns_members_and_types_non_objects() {
        let map = parse_object(br#"{"alg":"ES256","n":[1,2]}"#).unwrap();
        assert_eq!(map["alg"], "ES256");
        assert_eq!(map["n"], serde_json::json!([1, 2]));
        for (doc, found) in [
            ("[1]", "array"),
            ("\"x\"", "string"),
            ("null", "null"),
            ("7", "number"),
        ] {
            assert_eq!(
                parse_object(doc.as_bytes()),
                Err(ObjectError::NotAnObject { found }),
                "{doc}"
            );
        }
        assert!(matches!(
            parse_object_str(r#"{"a":1,"a":2}"#),
            Err(ObjectError::Json(JsonError::DuplicateKey { .. }))
        ));
        assert!(matches!(
            parse_object(b"{"),
            Err(ObjectError::Json(JsonError::Syntax(_)))
        ));
        assert_eq!(
            ObjectError::NotAnObject { found: "array" }.to_string(),
            "the document is a JSON array, not an object"
        );
    }

    #[test]
    fn render_key_bare_identifiers_and_quoted_others() {
        assert_eq!(render_key("tools"), "tools");
        assert_eq!(render_key("a b"), r#"["a b"]"#);
        assert_eq!(render_key("1x"), r#"["1x"]"#);
    }
}
