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
//! with its own reader into its own [`Value`], which
//!
//! * rejects a duplicate member name in any object, at any depth, naming its path;
//! * keeps every number's exact literal text (RFC 8259 §6 grammar, validated by
//!   the reader), so that each canonicalization profile can apply its own rules
//!   (ECMAScript doubles for JCS, CPython int/float for `python-ref`);
//! * keeps object members in document order;
//! * bounds nesting depth ([`MAX_DEPTH`]).
//!
//! [`parse_object`] is the common case: a document that must be a JSON
//! object, returned as a `serde_json` map.
//!
//! Reading is one linear pass (issue 15, I-136): a recursive-descent reader
//! builds the tree, checks duplicates and depth as it goes and keeps each
//! number's literal; syntax errors use serde_json's wording and positions.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

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
            Value::Number(n) => number_to_serde_json(n.as_str()),
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
        literal_is_integer(&self.text)
    }

    /// The nearest IEEE-754 double (correctly rounded; may be infinite on overflow).
    pub fn to_f64(&self) -> f64 {
        literal_to_f64(&self.text)
    }
}

/// [`Number::is_integer_literal`] of a literal the reader accepted.
pub fn literal_is_integer(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

/// [`Number::to_f64`] of a literal the reader accepted.
pub fn literal_to_f64(text: &str) -> f64 {
    // The grammar was checked by the reader and Rust's float parser accepts
    // every RFC 8259 number; overflow yields ±inf rather than an error.
    text.parse::<f64>().unwrap_or(f64::NAN)
}

/// A JSON value read by [`parse_strict_borrowed`]: strings without escapes
/// and number literals borrow the document (issue 15, I-140). Same reader,
/// same checks and errors as [`parse_strict`], which is this value made owned.
#[derive(Debug, Clone, PartialEq)]
pub enum BorrowedValue<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number literal exactly as written (RFC 8259 grammar checked).
    Number(&'a str),
    /// A string, borrowed from the document when it has no escape.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<BorrowedValue<'a>>),
    /// An object, members in document order, names unique.
    Object(Vec<(Cow<'a, str>, BorrowedValue<'a>)>),
}

impl BorrowedValue<'_> {
    /// The JSON type name used in error messages ([`Value::type_name`]).
    pub fn type_name(&self) -> &'static str {
        match self {
            BorrowedValue::Null => "null",
            BorrowedValue::Bool(_) => "boolean",
            BorrowedValue::Number(_) => "number",
            BorrowedValue::String(_) => "string",
            BorrowedValue::Array(_) => "array",
            BorrowedValue::Object(_) => "object",
        }
    }

    /// The owned [`Value`] (each borrowed string copied once).
    pub fn into_owned(self) -> Value {
        match self {
            BorrowedValue::Null => Value::Null,
            BorrowedValue::Bool(b) => Value::Bool(b),
            BorrowedValue::Number(text) => Value::Number(Number {
                text: text.to_owned(),
            }),
            BorrowedValue::String(s) => Value::String(s.into_owned()),
            BorrowedValue::Array(items) => {
                Value::Array(items.into_iter().map(BorrowedValue::into_owned).collect())
            }
            BorrowedValue::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ),
        }
    }
}

impl BorrowedValue<'_> {
    /// The same value as [`Value::to_serde_json`] of [`BorrowedValue::into_owned`],
    /// built in one step: each string is copied once, straight into the
    /// `serde_json::Value` (issue 15: the verifier reads every token's
    /// payload and header this way).
    pub fn into_serde_json(self) -> serde_json::Value {
        match self {
            BorrowedValue::Null => serde_json::Value::Null,
            BorrowedValue::Bool(b) => serde_json::Value::Bool(b),
            BorrowedValue::Number(text) => number_to_serde_json(text),
            BorrowedValue::String(s) => serde_json::Value::String(s.into_owned()),
            BorrowedValue::Array(items) => serde_json::Value::Array(
                items
                    .into_iter()
                    .map(BorrowedValue::into_serde_json)
                    .collect(),
            ),
            BorrowedValue::Object(members) => serde_json::Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_serde_json()))
                    .collect(),
            ),
        }
    }
}

impl BorrowedValue<'_> {
    /// Looks up an object member by name (`None` for non-objects); names are
    /// unique, the reader refused duplicates.
    pub fn get(&self, name: &str) -> Option<&Self> {
        match self {
            BorrowedValue::Object(members) => {
                members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// [`BorrowedValue::into_serde_json`] of a copy, for a part of a document
    /// that is kept (e.g. the `cnf.jwk` of a token's claims).
    pub fn to_serde_json(&self) -> serde_json::Value {
        match self {
            BorrowedValue::Null => serde_json::Value::Null,
            BorrowedValue::Bool(b) => serde_json::Value::Bool(*b),
            BorrowedValue::Number(text) => number_to_serde_json(text),
            BorrowedValue::String(s) => serde_json::Value::String(s.as_ref().to_owned()),
            BorrowedValue::Array(items) => {
                serde_json::Value::Array(items.iter().map(BorrowedValue::to_serde_json).collect())
            }
            BorrowedValue::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.as_ref().to_owned(), v.to_serde_json()))
                    .collect(),
            ),
        }
    }
}

/// A number literal the reader accepted as serde_json reads it (the number
/// of [`Value::to_serde_json`]): lets code that checks claims read a literal
/// with serde_json's integer rules without building a `serde_json::Value`
/// tree (issue 15).
pub fn literal_to_serde_number(text: &str) -> Option<serde_json::Number> {
    match number_to_serde_json(text) {
        serde_json::Value::Number(n) => Some(n),
        _ => None,
    }
}

/// A number literal (RFC 8259 grammar already checked) as serde_json reads
/// it: a plain integer that fits 64 bits directly (what serde_json's own
/// reader gives: `u64` when non-negative, else `i64`), anything else
/// (fractions, exponents, `-0`, longer integers) through serde_json itself.
fn number_to_serde_json(text: &str) -> serde_json::Value {
    let b = text.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        if b[0] == b'-' {
            if digits != b"0" {
                if let Ok(i) = text.parse::<i64>() {
                    return serde_json::Value::Number(i.into());
                }
            }
        } else if let Ok(u) = text.parse::<u64>() {
            return serde_json::Value::Number(u.into());
        }
    }
    serde_json::from_str::<serde_json::Number>(text)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
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
    parse_strict_borrowed_str(text).map(BorrowedValue::into_owned)
}

/// [`parse_strict`] without copying the strings that have no escape nor
/// the number literals: the same reader, checks and errors.
pub fn parse_strict_borrowed(input: &[u8]) -> Result<BorrowedValue<'_>, JsonError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| JsonError::Syntax(format!("input is not UTF-8 ({e})")))?;
    parse_strict_borrowed_str(text)
}

/// [`parse_strict`] straight into a `serde_json::Value` (the same value as
/// `parse_strict(input)?.to_serde_json()`, with one copy of each string
/// instead of two): the same reader, checks and errors.
pub fn parse_strict_serde(input: &[u8]) -> Result<serde_json::Value, JsonError> {
    parse_strict_borrowed(input).map(BorrowedValue::into_serde_json)
}

/// [`parse_strict_borrowed`] over a `&str`.
pub fn parse_strict_borrowed_str(text: &str) -> Result<BorrowedValue<'_>, JsonError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        deferred: None,
    };
    p.skip_ws();
    let value = p.value(&Path::Root, 0)?;
    p.skip_ws();
    if p.pos < p.bytes.len() {
        return Err(p.syntax_at("trailing characters", p.pos));
    }
    match p.deferred {
        Some(err) => Err(err),
        None => Ok(value),
    }
}

// ------------------------------------------------------------- reader ----
//
// One pass (issue 15, I-136): a recursive-descent reader over the validated
// UTF-8 text that builds the [`Value`], checks duplicate member names and
// depth as it goes, and keeps every number's literal. Syntax errors carry
// serde_json's wording and `line L column C` (the reader used before).
//
// Errors keep the precedence of the earlier two-pass reader: syntax,
// duplicate-name and depth errors are returned where they are met; number
// problems (a literal outside the RFC 8259 grammar, overflow, more than
// MAX_INTEGER_DIGITS digits) were found by the second pass, so the first one is
// parked in `deferred` and only reported if the rest of the document is fine.

struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    deferred: Option<JsonError>,
}

/// Needs attention inside a string: `"`, `\\` or a control character.
#[inline]
fn string_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Flags (high bit of each byte) the bytes of `x` that are `"`, `\\` or below
/// 0x20. Only the LOWEST flag is exact (a borrow can flag a byte above a
/// flagged one), which is all [`Parser::next_special`] uses.
#[inline]
fn special_mask(x: u64) -> u64 {
    let zero = |y: u64| y.wrapping_sub(LO) & !y & HI;
    let control = x.wrapping_sub(LO * 0x20) & !x & HI;
    control | zero(x ^ (LO * 0x22)) | zero(x ^ (LO * 0x5c))
}

/// True when one of the 32 bytes is `"`, `\\` or below 0x20. Branch-free
/// over a fixed length, so that the compiler turns it into SIMD compares
/// without `unsafe`.
#[inline]
fn block_has_special(block: &[u8; 32]) -> bool {
    let mut any = 0u8;
    for &b in block {
        any |= u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
    }
    any != 0
}

impl<'t> Parser<'t> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// A syntax error about the byte at `at` (or the end of input).
    #[cold]
    fn syntax_at(&self, what: &str, at: usize) -> JsonError {
        // serde_json's position: the last byte read, 1-based within its line.
        let end = (at + 1).min(self.bytes.len());
        let before = self.bytes.get(..end).unwrap_or(self.bytes);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = end - line_start;
        JsonError::Syntax(format!("{what} at line {line} column {column}"))
    }

    #[cold]
    fn eof(&self, what: &str) -> JsonError {
        self.syntax_at(what, self.bytes.len())
    }

    fn defer(&mut self, err: JsonError) {
        if self.deferred.is_none() {
            self.deferred = Some(err);
        }
    }

    fn value(&mut self, path: &Path<'_>, depth: usize) -> Result<BorrowedValue<'t>, JsonError> {
        match self.peek() {
            None => Err(self.eof("EOF while parsing a value")),
            Some(b'{') => self.object(path, depth),
            Some(b'[') => self.array(path, depth),
            Some(b'"') => Ok(BorrowedValue::String(self.string()?)),
            Some(b't') => self.ident(b"true", BorrowedValue::Bool(true)),
            Some(b'f') => self.ident(b"false", BorrowedValue::Bool(false)),
            Some(b'n') => self.ident(b"null", BorrowedValue::Null),
            Some(b'-' | b'0'..=b'9') => Ok(BorrowedValue::Number(self.number(path))),
            Some(_) => Err(self.syntax_at("expected value", self.pos)),
        }
    }

    fn ident(&mut self, word: &[u8], v: BorrowedValue<'t>) -> Result<BorrowedValue<'t>, JsonError> {
        for &want in word {
            match self.peek() {
                None => return Err(self.eof("EOF while parsing a value")),
                Some(b) if b == want => self.pos += 1,
                Some(_) => return Err(self.syntax_at("expected ident", self.pos)),
            }
        }
        Ok(v)
    }

    /// The maximal run of `0-9 + - . e E` (what the earlier reader took for
    /// one literal), checked against the grammar and the ranges (deferred).
    fn number(&mut self, path: &Path<'_>) -> &'t str {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.pos += 1;
        }
        let text = self.text.get(start..self.pos).unwrap_or("");

        if !is_json_number(text) {
            self.defer(JsonError::Syntax(format!(
                "{path}: invalid number {text:?}"
            )));
        } else if literal_is_integer(text) {
            if text.trim_start_matches('-').len() > MAX_INTEGER_DIGITS {
                self.defer(JsonError::NumberOutOfRange {
                    path: path.to_string(),
                });
            }
        } else if !literal_to_f64(text).is_finite() {
            self.defer(JsonError::NumberOutOfRange {
                path: path.to_string(),
            });
        }
        text
    }

    /// A string literal at `self.pos` (the opening quote), decoded.
    /// Inlined into its callers for the common case (no escape: the
    /// document's slice); strings with escapes go to [`Parser::escaped_string`].
    #[inline]
    fn string(&mut self) -> Result<Cow<'t, str>, JsonError> {
        self.pos += 1;
        let start = self.pos;
        let at = self.next_special(start);
        if self.peek_at(at) == Some(b'"') {
            // No escape: the document's own slice.
            self.pos = at + 1;
            return Ok(Cow::Borrowed(self.text.get(start..at).unwrap_or("")));
        }
        self.escaped_string(start, at)
    }

    /// The rest of a string that starts at `start` and whose first `\\` or
    /// control byte (or the end of input) is at `at`, decoded.
    #[inline(never)]
    fn escaped_string(&mut self, start: usize, at: usize) -> Result<Cow<'t, str>, JsonError> {
        // Escapes only shrink the text: its raw length bounds the decoded one,
        // so one allocation holds it (a long prompt full of `\n` escapes
        // would otherwise be copied on every doubling).
        let mut out = String::with_capacity(self.raw_string_len(at) - start);
        let mut run = start;
        let mut at = at;
        loop {
            out.push_str(self.text.get(run..at).unwrap_or(""));
            match self.peek_at(at) {
                None => {
                    self.pos = at;
                    return Err(self.eof("EOF while parsing a string"));
                }
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos = at + 1;
                    self.escape(&mut out)?;
                }
                Some(_) => {
                    return Err(self.syntax_at(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                        at,
                    ))
                }
            }
            run = self.pos;
            at = self.next_special(run);
        }
    }

    /// Index of the closing quote of the string containing `from` (or the
    /// end of the input), skipping escaped characters.
    fn raw_string_len(&self, from: usize) -> usize {
        let mut at = from;
        loop {
            match self.peek_at(at) {
                Some(b'"') | None => return at,
                Some(b'\\') => at = self.next_special(at + 2),
                Some(_) => at = self.next_special(at + 1),
            }
        }
    }

    #[inline]
    fn peek_at(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    /// Index of the first `"`, `\\` or control byte at or after `from` (or
    /// the end). A string always ends with a `"`, so the scan may read past
    /// the string's end into the rest of the document: 32-byte blocks while
    /// they are clean (long strings), then 8-byte words whose lowest flagged
    /// byte is the answer (no byte loop for short names), then the last < 8
    /// bytes of the input one by one.
    #[inline]
    fn next_special(&self, from: usize) -> usize {
        let mut at = from.min(self.bytes.len());
        while let Some(block) = self
            .bytes
            .get(at..at + 32)
            .and_then(|b| <&[u8; 32]>::try_from(b).ok())
        {
            if block_has_special(block) {
                break;
            }
            at += 32;
        }
        while let Some(word) = self
            .bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
        {
            let mask = special_mask(u64::from_le_bytes(word));
            if mask != 0 {
                return at + (mask.trailing_zeros() / 8) as usize;
            }
            at += 8;
        }
        let tail = self.bytes.get(at..).unwrap_or(&[]);
        at + tail
            .iter()
            .position(|&b| string_special(b))
            .unwrap_or(tail.len())
    }

    /// After a backslash: one escape, appended to `out`.
    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let Some(c) = self.peek() else {
            return Err(self.eof("EOF while parsing a string"));
        };
        self.pos += 1;
        let decoded = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                match first {
                    0xD800..=0xDBFF => {
                        for want in [b'\\', b'u'] {
                            match self.peek() {
                                None => return Err(self.eof("EOF while parsing a string")),
                                Some(b) if b == want => self.pos += 1,
                                Some(_) => {
                                    return Err(
                                        self.syntax_at("unexpected end of hex escape", self.pos)
                                    )
                                }
                            }
                        }
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.syntax_at(
                                "lone leading surrogate in hex escape",
                                self.pos.saturating_sub(1),
                            ));
                        }
                        let c = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                        char::from_u32(c).ok_or_else(|| {
                            self.syntax_at("invalid unicode code point", self.pos.saturating_sub(1))
                        })?
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.syntax_at(
                            "lone leading surrogate in hex escape",
                            self.pos.saturating_sub(1),
                        ))
                    }
                    _ => char::from_u32(first).ok_or_else(|| {
                        self.syntax_at("invalid unicode code point", self.pos.saturating_sub(1))
                    })?,
                }
            }
            _ => return Err(self.syntax_at("invalid escape", self.pos - 1)),
        };
        out.push(decoded);
        Ok(())
    }

    /// Four hex digits (serde_json's positions: a short escape is an EOF,
    /// a bad digit is reported after the four bytes).
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            self.pos = self.bytes.len();
            return Err(self.eof("EOF while parsing a string"));
        };
        let mut v = 0u32;
        let mut ok = true;
        for &b in digits {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => {
                    ok = false;
                    0
                }
            };
            v = v * 16 + u32::from(d);
        }
        self.pos += 4;
        if ok {
            Ok(v)
        } else {
            Err(self.syntax_at("invalid escape", self.pos - 1))
        }
    }

    fn enter(&self, path: &Path<'_>, depth: usize) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep {
                path: path.to_string(),
            });
        }
        Ok(())
    }

    fn array(&mut self, path: &Path<'_>, depth: usize) -> Result<BorrowedValue<'t>, JsonError> {
        self.enter(path, depth)?;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof("EOF while parsing a list")),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(BorrowedValue::Array(items));
                }
                Some(b',') if !items.is_empty() => {
                    self.pos += 1;
                    self.skip_ws();
                    match self.peek() {
                        Some(b']') => return Err(self.syntax_at("trailing comma", self.pos)),
                        Some(_) => {}
                        None => return Err(self.eof("EOF while parsing a value")),
                    }
                }
                Some(_) if items.is_empty() => {}
                Some(_) => return Err(self.syntax_at("expected `,` or `]`", self.pos)),
            }
            let item = self.value(&Path::Index(path, items.len()), depth + 1)?;
            items.push(item);
        }
    }

    fn object(&mut self, path: &Path<'_>, depth: usize) -> Result<BorrowedValue<'t>, JsonError> {
        self.enter(path, depth)?;
        self.pos += 1;
        let mut members: Vec<(Cow<'t, str>, BorrowedValue<'t>)> = Vec::new();
        // Small objects (the common case) are checked by a linear scan; a set
        // takes over past 16 members so that huge objects stay linear.
        let mut seen: Option<HashSet<Cow<'t, str>>> = None;
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof("EOF while parsing an object")),
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(BorrowedValue::Object(members));
                }
                Some(b',') if !members.is_empty() => {
                    self.pos += 1;
                    self.skip_ws();
                    match self.peek() {
                        Some(b'"') => {}
                        Some(b'}') => return Err(self.syntax_at("trailing comma", self.pos)),
                        Some(_) => return Err(self.syntax_at("key must be a string", self.pos)),
                        None => return Err(self.eof("EOF while parsing a value")),
                    }
                }
                Some(b'"') if members.is_empty() => {}
                Some(_) if members.is_empty() => {
                    return Err(self.syntax_at("key must be a string", self.pos))
                }
                Some(_) => return Err(self.syntax_at("expected `,` or `}`", self.pos)),
            }
            let key = self.string()?;
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let dup = members.iter().any(|(k, _)| *k == key);
                    if members.len() >= 16 {
                        let mut set: HashSet<Cow<'t, str>> =
                            members.iter().map(|(k, _)| k.clone()).collect();
                        set.insert(key.clone());
                        seen = Some(set);
                    }
                    dup
                }
            };
            if duplicate {
                return Err(JsonError::DuplicateKey {
                    path: path.to_string(),
                    key: key.into_owned(),
                });
            }
            self.skip_ws();
            match self.peek() {
                Some(b':') => self.pos += 1,
                None => return Err(self.eof("EOF while parsing an object")),
                Some(_) => return Err(self.syntax_at("expected `:`", self.pos)),
            }
            self.skip_ws();
            let value = self.value(&Path::Key(path, &key), depth + 1)?;
            members.push((key, value));
        }
    }
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
