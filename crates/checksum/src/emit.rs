//! One-pass canonicalization (issue 15, interpretation I-135).
//!
//! Both profiles (§5.3.1 RFC 8785 JCS, §5.3.2 `json.dumps(sort_keys=True)`)
//! are written in ONE walk over the [`AgentSpec`] straight into a [`Sink`]:
//! a [`HashSink`] (SHA-256 behind a small buffer) when only the checksum is
//! wanted, a `Vec<u8>` when the canonical bytes are. No intermediate value,
//! `String` or `Vec` per JSON value:
//!
//! * object members are sorted by reference (indices into the member list, on
//!   one scratch stack shared by the whole walk): RFC 8785 §3.2.3 UTF-16 code
//!   unit order for JCS, code point order (Python `str` order) for python-ref;
//! * strings are escaped by scanning 32 bytes at a time (a fixed-length,
//!   branch-free check the compiler turns into SIMD compares) for the bytes
//!   that need an escape, and writing every run in between as one slice;
//! * the prompt is normalized (§5.3.2) line by line into the escaper: the
//!   draft's five steps give exactly the non-empty `str.strip()`ped pieces of
//!   `prompt.split('\n')` joined by `\n` (see [`normalized_lines`]);
//! * JCS numbers are ECMAScript `Number::toString` of the double (`ryu-js`,
//!   what serde_jcs uses); python-ref numbers are CPython's `int`/`float` repr.
//!
//! Equivalence with the previous implementation is pinned by independent
//! oracles: serde_jcs (proptest over random strict values,
//! `tests/streaming_oracle.rs`), CPython (`tests/cpython.rs`), the RFC 8785
//! corpus (`tests/jcs_corpus.rs`) and the conformance vectors.
//!
//! The walk reports a number it cannot write as a bare [`Unwritable`]; the
//! callers in [`crate::canonical`] then find the error to report, with its
//! path, in the order the earlier implementation met it (so error kinds,
//! paths and messages are unchanged).

use sha2::{Digest, Sha256};

use crate::canonical::{integer_is_exact, python_float_repr, Profile};
use crate::json::{literal_is_integer, literal_to_f64};
use crate::node::{Kind, Node};
use crate::normalize::python_strip;
use crate::spec::{AgentSpec, ChecksumLevel, Tool};
use crate::AgentChecksum;

/// Where canonical bytes go.
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends `"`, `bytes`, `"` (a string that needs no escape).
    #[inline]
    fn put_quoted(&mut self, bytes: &[u8]) {
        self.put(b"\"");
        self.put(bytes);
        self.put(b"\"");
    }
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

const HASH_BUF: usize = 1024;

/// SHA-256 behind a 1 KiB buffer: the many small writes of a canonicalizer
/// (`"`, `:`, `,`, short keys) are copied, and the hasher is fed whole buffers.
pub struct HashSink {
    hasher: Sha256,
    buf: [u8; HASH_BUF],
    len: usize,
}

impl Default for HashSink {
    fn default() -> Self {
        HashSink::new()
    }
}

impl HashSink {
    /// An empty hasher.
    pub fn new() -> HashSink {
        HashSink {
            hasher: Sha256::new(),
            buf: [0; HASH_BUF],
            len: 0,
        }
    }

    /// The digest of everything written.
    pub fn finish(mut self) -> AgentChecksum {
        self.flush();
        AgentChecksum::from_bytes(self.hasher.finalize().into())
    }

    fn flush(&mut self) {
        if let Some(pending) = self.buf.get(..self.len) {
            self.hasher.update(pending);
        }
        self.len = 0;
    }

    #[cold]
    fn put_slow(&mut self, bytes: &[u8]) {
        self.flush();
        if bytes.len() >= HASH_BUF / 2 {
            self.hasher.update(bytes);
        } else if let Some(dst) = self.buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }
}

impl Sink for HashSink {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.put_slow(bytes),
        }
    }

    #[inline]
    fn put_quoted(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len() + 2;
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            self.put(b"\"");
            self.put(bytes);
            self.put(b"\"");
            return;
        };
        if let Some((open, rest)) = dst.split_first_mut() {
            *open = b'"';
            if let Some((close, body)) = rest.split_last_mut() {
                *close = b'"';
                body.copy_from_slice(bytes);
            }
        }
        self.len = end;
    }
}

/// A number the profile cannot write (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unwritable;

/// The §5.3.2 normalized prompt as the pieces `'\n'.join` would join:
/// `[l.strip() for l in prompt.split('\n')]` without the empty ones.
///
/// This is the draft's `normalize_prompt` without its first three steps,
/// which change nothing the last two keep: `strip()` of the whole prompt
/// only removes whitespace of the first and last lines and whitespace-only
/// lines; `replace('\r\n', '\n')` only removes a `\r` that ends a line,
/// which the per-line `strip()` removes anyway; `re.sub(r'\n\s*\n', '\n')`
/// only removes whitespace-only lines. Pinned against CPython by
/// `tests/cpython.rs` and against [`crate::normalize_prompt`] by a proptest.
pub fn normalized_lines(prompt: &str) -> impl Iterator<Item = &str> {
    // `split('\n')` with the memchr crate's vectorized search (I-187); the
    // pieces are the same, the last one included.
    let mut rest = Some(prompt);
    std::iter::from_fn(move || {
        let s = rest?;
        match memchr::memchr(b'\n', s.as_bytes()) {
            Some(i) => {
                // `\n` is ASCII: both cuts are character boundaries.
                rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
    .map(python_strip)
    .filter(|line| !line.is_empty())
}

// ------------------------------------------------------------- strings ----

/// Per byte: needs an escape (JCS, then python-ref's `ensure_ascii`).
const fn escape_table(ascii_only: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == 0x22 || i == 0x5c || (ascii_only && i >= 0x7f);
        i += 1;
    }
    t
}

static ESCAPE_JCS: [bool; 256] = escape_table(false);
static ESCAPE_ASCII: [bool; 256] = escape_table(true);

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

#[inline]
fn has_zero_byte(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// True when one of the 32 bytes needs an escape. Branch-free over a fixed
/// length, so that the compiler turns it into SIMD compares (SSE2 on
/// x86-64) without `unsafe`; inlined into the scan loop (I-187).
#[inline(always)]
fn block_needs_escape(block: &[u8; 32], ascii_only: bool) -> bool {
    let mut any = 0u8;
    if ascii_only {
        // One unsigned range check covers both `b < 0x20` and `b >= 0x7f`.
        for &b in block {
            any |=
                u8::from(b.wrapping_sub(0x20) >= 0x5f) | u8::from(b == b'"') | u8::from(b == b'\\');
        }
    } else {
        for &b in block {
            any |= u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
        }
    }
    any != 0
}

/// Index of the first byte of `block` that needs an escape, when one does:
/// its four words' masks in turn (I-187), no byte-by-byte search.
#[inline(always)]
fn first_in_block(block: &[u8; 32], ascii_only: bool) -> Option<usize> {
    block.chunks_exact(8).enumerate().find_map(|(k, w)| {
        let word = <&[u8; 8]>::try_from(w).ok()?;
        let mask = word_escape_mask(word, ascii_only);
        (mask != 0).then(|| k * 8 + (mask.trailing_zeros() / 8) as usize)
    })
}

/// The high bit of byte `i` set when byte `i` of the word may need an
/// escape; the LOWEST set byte is exact (the borrow trick only errs in
/// bytes above one that does need an escape).
#[inline(always)]
fn word_escape_mask(word: &[u8; 8], ascii_only: bool) -> u64 {
    let x = u64::from_le_bytes(*word);
    let control = x.wrapping_sub(LO * 0x20) & !x & HI;
    let quote = has_zero_byte(x ^ (LO * u64::from(b'"')));
    let backslash = has_zero_byte(x ^ (LO * u64::from(b'\\')));
    let mut m = control | quote | backslash;
    if ascii_only {
        m |= (x & HI) | has_zero_byte(x ^ (LO * 0x7f));
    }
    m
}

/// Index of the first byte at or after `from` that needs an escape. Whole
/// 32-byte blocks first; the rest of a long string as one last block that
/// overlaps the checked ones; a short string 8 bytes (one word) at a time;
/// then byte by byte (lookup table) where a block or word has one. Nothing is
/// copied (a copied, padded tail costs a store-forwarding stall per string).
#[inline]
fn next_escape(bytes: &[u8], from: usize, ascii_only: bool) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let table = if ascii_only {
        &ESCAPE_ASCII
    } else {
        &ESCAPE_JCS
    };
    let n = rest.len();
    let mut at = 0;
    while let Some(block) = rest.get(at..at + 32) {
        if let Ok(block) = <&[u8; 32]>::try_from(block) {
            if block_needs_escape(block, ascii_only) {
                return first_in_block(block, ascii_only).map(|i| from + at + i);
            }
        }
        at += 32;
    }
    if at == n {
        return None;
    }
    if n >= 32 {
        // The rest as the last 32 bytes, which overlap clean checked ones:
        // the first hit is at or after `at`.
        let block = rest
            .get(n - 32..)
            .and_then(|b| <&[u8; 32]>::try_from(b).ok())?;
        if !block_needs_escape(block, ascii_only) {
            return None;
        }
        return first_in_block(block, ascii_only).map(|i| from + n - 32 + i);
    }
    while let Some(word) = rest.get(at..at + 8) {
        if let Ok(word) = <&[u8; 8]>::try_from(word) {
            let mask = word_escape_mask(word, ascii_only);
            if mask != 0 {
                return Some(from + at + (mask.trailing_zeros() / 8) as usize);
            }
        }
        at += 8;
    }
    if at == n {
        return None;
    }
    if n >= 8 {
        // The last word, overlapping clean checked bytes (I-187).
        let word = rest
            .get(n - 8..)
            .and_then(|b| <&[u8; 8]>::try_from(b).ok())?;
        let mask = word_escape_mask(word, ascii_only);
        return (mask != 0).then(|| from + n - 8 + (mask.trailing_zeros() / 8) as usize);
    }
    rest.get(at..)?
        .iter()
        .position(|&b| table[usize::from(b)])
        .map(|p| from + at + p)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_u_escape<S: Sink>(sink: &mut S, unit: u16) {
    let nib = |shift: u16| HEX[usize::from((unit >> shift) & 0xf)];
    sink.put(&[b'\\', b'u', nib(12), nib(8), nib(4), nib(0)]);
}

/// Writes the escaped body of a JSON string (no quotes). `ascii_only` is
/// CPython's `ensure_ascii=True` (python-ref); otherwise RFC 8785 §3.2.2.2.
fn put_str_body<S: Sink>(sink: &mut S, s: &str, ascii_only: bool) {
    if let Some(first) = next_escape(s.as_bytes(), 0, ascii_only) {
        put_str_body_from(sink, s, ascii_only, first);
    } else {
        sink.put(s.as_bytes());
    }
}

/// [`put_str_body`] where the first byte to escape is known to be at `first`.
fn put_str_body_from<S: Sink>(sink: &mut S, s: &str, ascii_only: bool, first: usize) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut next = Some(first);
    while let Some(at) = next {
        if let Some(run) = bytes.get(start..at) {
            sink.put(run);
        }
        let Some(&b) = bytes.get(at) else {
            break;
        };
        start = at + 1;
        match b {
            b'"' => sink.put(b"\\\""),
            b'\\' => sink.put(b"\\\\"),
            b'\n' => sink.put(b"\\n"),
            b'\r' => sink.put(b"\\r"),
            b'\t' => sink.put(b"\\t"),
            0x08 => sink.put(b"\\b"),
            0x0c => sink.put(b"\\f"),
            0..=0x7f => put_u_escape(sink, u16::from(b)),
            _ => {
                // ensure_ascii: a non-ASCII character, as UTF-16 units.
                // `at` is a character boundary (the scan starts on one and
                // stops at the first byte of a character).
                let Some(c) = s.get(at..).and_then(|t| t.chars().next()) else {
                    break;
                };
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    put_u_escape(sink, *unit);
                }
                start = at + c.len_utf8();
            }
        }
        next = next_escape(bytes, start, ascii_only);
    }
    if let Some(rest) = bytes.get(start..) {
        sink.put(rest);
    }
}

// --------------------------------------------------------------- walk ----

/// RFC 8785 §3.2.3: member names compared as arrays of UTF-16 code units.
/// Byte order (= code point order) everywhere except where the first
/// differing characters are a supplementary one and one in U+E000..U+FFFF.
pub(crate) fn cmp_utf16(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let Some(i) = ab.iter().zip(bb).position(|(x, y)| x != y) else {
        return ab.len().cmp(&bb.len());
    };
    // Unless both differing bytes are lead bytes 0xEE or more (characters at
    // or above U+E000 on both sides; continuation bytes are below 0xC0), the
    // first differing byte decides as UTF-16 order would.
    match (ab.get(i), bb.get(i)) {
        (Some(&x), Some(&y)) if x < 0xEE || y < 0xEE => return x.cmp(&y),
        _ => {}
    }
    // Back to the start of the character holding the first difference (the
    // prefix is identical, so it is a boundary in both strings).
    let mut start = i;
    while start > 0 && !a.is_char_boundary(start) {
        start -= 1;
    }
    let (Some(ca), Some(cb)) = (
        a.get(start..).and_then(|t| t.chars().next()),
        b.get(start..).and_then(|t| t.chars().next()),
    ) else {
        return ab.cmp(bb);
    };
    let (mut ua, mut ub) = ([0u16; 2], [0u16; 2]);
    let (ua, ub) = (ca.encode_utf16(&mut ua), cb.encode_utf16(&mut ub));
    (*ua).cmp(&*ub)
}

struct Walk<'s, S: Sink> {
    sink: &'s mut S,
    python: bool,
    /// Sorted member indices of the objects being written, as a stack.
    scratch: Vec<usize>,
}

impl<S: Sink> Walk<'_, S> {
    #[inline]
    fn string(&mut self, s: &str) {
        match next_escape(s.as_bytes(), 0, self.python) {
            None => self.sink.put_quoted(s.as_bytes()),
            Some(first) => {
                self.sink.put(b"\"");
                put_str_body_from(self.sink, s, self.python, first);
                self.sink.put(b"\"");
            }
        }
    }

    fn member_sep(&mut self) {
        self.sink.put(if self.python { b", " } else { b"," });
    }

    fn number(&mut self, text: &str) -> Result<(), Unwritable> {
        let integer = literal_is_integer(text);
        if integer {
            if text == "-0" {
                self.sink.put(b"0");
                return Ok(());
            }
            // python-ref: `int(text)` prints its digits back. JCS: an integer
            // below 2^53 in magnitude is its own ECMAScript Number::toString.
            if self.python || text.trim_start_matches('-').len() < 16 {
                self.sink.put(text.as_bytes());
                return Ok(());
            }
        }
        let f = literal_to_f64(text);
        if !f.is_finite() {
            return Err(Unwritable);
        }
        if self.python {
            let repr = python_float_repr(f).ok_or(Unwritable)?;
            self.sink.put(repr.as_bytes());
        } else {
            if integer && !integer_is_exact(text, f) {
                return Err(Unwritable);
            }
            let mut buf = ryu_js::Buffer::new();
            self.sink.put(buf.format_finite(f).as_bytes());
        }
        Ok(())
    }

    fn value<N: Node>(&mut self, v: &N) -> Result<(), Unwritable> {
        match v.kind() {
            Kind::Null => self.sink.put(b"null"),
            Kind::Bool(true) => self.sink.put(b"true"),
            Kind::Bool(false) => self.sink.put(b"false"),
            Kind::Number(n) => self.number(n)?,
            Kind::String(s) => self.string(s),
            Kind::Array(items) => {
                self.sink.put(b"[");
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        self.member_sep();
                    }
                    self.value(x)?;
                }
                self.sink.put(b"]");
            }
            Kind::Object(members) => self.object(members)?,
        }
        Ok(())
    }

    fn object<N: Node>(&mut self, members: &[(N::Str, N)]) -> Result<(), Unwritable> {
        let base = self.scratch.len();
        self.scratch.extend(0..members.len());
        let name = |i: usize| members.get(i).map_or("", |(k, _)| k.as_ref());
        if let Some(order) = self.scratch.get_mut(base..) {
            if self.python {
                order.sort_unstable_by(|&a, &b| name(a).cmp(name(b)));
            } else {
                order.sort_unstable_by(|&a, &b| cmp_utf16(name(a), name(b)));
            }
        }
        self.sink.put(b"{");
        for pos in 0..members.len() {
            let Some((k, x)) = self.scratch.get(base + pos).and_then(|&i| members.get(i)) else {
                break;
            };
            if pos > 0 {
                self.member_sep();
            }
            self.string(k.as_ref());
            self.sink.put(if self.python { b": " } else { b":" });
            self.value(x)?;
        }
        self.sink.put(b"}");
        self.scratch.truncate(base);
        Ok(())
    }

    /// `"name":` / `"name": ` for a fixed ASCII member name needing no escape.
    fn key(&mut self, first: bool, name: &str) {
        if !first {
            self.member_sep();
        }
        self.sink.put(b"\"");
        self.sink.put(name.as_bytes());
        self.sink.put(if self.python { b"\": " } else { b"\":" });
    }

    fn prompt(&mut self, prompt: &str) {
        self.sink.put(b"\"");
        for (i, line) in normalized_lines(prompt).enumerate() {
            if i > 0 {
                self.sink.put(b"\\n");
            }
            put_str_body(self.sink, line, self.python);
        }
        self.sink.put(b"\"");
    }

    /// §5.3.1: `{"agent_id","configuration","prompt_template","tools"}`, tools
    /// as `{"description","name","parameters"[,"source_code"]}` (keys in
    /// RFC 8785 order, which for these ASCII names is byte order).
    fn jcs_spec<T: AsRef<str>, N: Node>(
        &mut self,
        spec: &AgentSpec<T, N>,
        tools: &[(usize, &Tool<T, N>)],
    ) -> Result<(), Unwritable> {
        self.sink.put(b"{");
        self.key(true, "agent_id");
        self.string(spec.agent_id.as_ref());
        self.key(false, "configuration");
        match &spec.configuration {
            Some(c) => self.value(c)?,
            None => self.sink.put(b"{}"),
        }
        self.key(false, "prompt_template");
        self.prompt(spec.prompt.as_ref());
        self.key(false, "tools");
        self.sink.put(b"[");
        for (i, (_, t)) in tools.iter().enumerate() {
            if i > 0 {
                self.member_sep();
            }
            self.sink.put(b"{");
            self.key(true, "description");
            self.string(t.description.as_ref());
            self.key(false, "name");
            self.string(t.name.as_ref());
            self.key(false, "parameters");
            self.value(&t.parameters)?;
            self.deep_source(t);
            self.sink.put(b"}");
        }
        self.sink.put(b"]}");
        Ok(())
    }

    fn deep_source<T: AsRef<str>, N: Node>(&mut self, t: &Tool<T, N>) {
        if t.checksum_level == ChecksumLevel::Deep {
            if let Some(src) = &t.source_code {
                self.key(false, "source_code");
                self.string(src.as_ref());
            }
        }
    }

    /// §5.3.2 reference code: `{"config","id","prompt","tools"}`, tools as
    /// `{"description","name","signature"[,"source_code"]}`; an absent
    /// configuration is `{}` (I-61).
    fn python_spec<T: AsRef<str>, N: Node>(
        &mut self,
        spec: &AgentSpec<T, N>,
        tools: &[(usize, &Tool<T, N>)],
    ) -> Result<(), Unwritable> {
        self.sink.put(b"{");
        self.key(true, "config");
        match &spec.configuration {
            Some(c) => self.value(c)?,
            None => self.sink.put(b"{}"),
        }
        self.key(false, "id");
        self.string(spec.agent_id.as_ref());
        self.key(false, "prompt");
        self.prompt(spec.prompt.as_ref());
        self.key(false, "tools");
        self.sink.put(b"[");
        for (i, (_, t)) in tools.iter().enumerate() {
            if i > 0 {
                self.member_sep();
            }
            self.sink.put(b"{");
            self.key(true, "description");
            self.string(t.description.as_ref());
            self.key(false, "name");
            self.string(t.name.as_ref());
            self.key(false, "signature");
            match &t.signature {
                Some(s) => self.string(s.as_ref()),
                None => self.sink.put(b"null"),
            }
            self.deep_source(t);
            self.sink.put(b"}");
        }
        self.sink.put(b"]}");
        Ok(())
    }
}

/// Writes the canonical form of a validated `spec` whose tools, sorted by
/// name, are `tools`.
pub(crate) fn write_spec<S: Sink, T: AsRef<str>, N: Node>(
    sink: &mut S,
    spec: &AgentSpec<T, N>,
    tools: &[(usize, &Tool<T, N>)],
    profile: Profile,
) -> Result<(), Unwritable> {
    let mut walk = Walk {
        sink,
        python: profile == Profile::PythonRef,
        scratch: Vec::new(),
    };
    match profile {
        Profile::Jcs => walk.jcs_spec(spec, tools),
        Profile::PythonRef => walk.python_spec(spec, tools),
    }
}

/// Writes any strict value in `profile`'s canonical form.
pub(crate) fn write_value<S: Sink, N: Node>(
    sink: &mut S,
    v: &N,
    profile: Profile,
) -> Result<(), Unwritable> {
    Walk {
        sink,
        python: profile == Profile::PythonRef,
        scratch: Vec::new(),
    }
    .value(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str, ascii_only: bool) -> String {
        let mut out = Vec::new();
        put_str_body(&mut out, s, ascii_only);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn i135_escaper_finds_every_escape_at_every_offset() {
        // Each special byte at each position of a 20-byte run: the 8-byte scan
        // must stop at it whichever chunk it falls in.
        for special in ['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é'] {
            for at in 0..20 {
                let mut s: String = "a".repeat(20);
                s.replace_range(at..=at, &special.to_string());
                let jcs = body(&s, false);
                let py = body(&s, true);
                let want_jcs = serde_json::to_string(&s).unwrap();
                assert_eq!(format!("\"{jcs}\""), want_jcs, "{special:?}@{at}");
                assert!(py.is_ascii(), "{py}");
                assert_eq!(
                    serde_json::from_str::<String>(&format!("\"{py}\"")).unwrap(),
                    s
                );
            }
        }
    }

    /// I-187: the block, word and overlapping-tail scans give the first
    /// byte needing an escape, as a plain byte-by-byte search does, for
    /// every length up to 100 (blocks, the last overlapping block, words,
    /// the last overlapping word, bytes), one or two special bytes at every
    /// offset, and scans starting past the beginning.
    #[test]
    fn i187_next_escape_is_the_first_special_byte() {
        let naive = |b: &[u8], from: usize, ascii_only: bool| {
            b.iter()
                .enumerate()
                .skip(from)
                .find(|(_, &c)| c < 0x20 || c == b'"' || c == b'\\' || (ascii_only && c >= 0x7f))
                .map(|(i, _)| i)
        };
        let specials = [b'"', b'\\', b'\n', 0x01, 0x1f, 0x7f, 0xc3, b' ', b'~'];
        for len in 0..100usize {
            for ascii_only in [false, true] {
                let clean = vec![b'a'; len];
                assert_eq!(next_escape(&clean, 0, ascii_only), None, "{len}");
                for at in 0..len {
                    for &sp in &specials {
                        let mut b = clean.clone();
                        b[at] = sp;
                        for from in [0, 1, 7, 31, 33] {
                            assert_eq!(
                                next_escape(&b, from, ascii_only),
                                naive(&b, from, ascii_only),
                                "len {len} at {at} byte {sp:#x} from {from} ascii {ascii_only}"
                            );
                        }
                        // A second special later: still the first one.
                        if at + 3 < len {
                            b[len - 1] = b'"';
                            assert_eq!(
                                next_escape(&b, 0, ascii_only),
                                naive(&b, 0, ascii_only),
                                "two: len {len} at {at} byte {sp:#x}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn i135_hash_sink_equals_one_shot_sha256() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for split in [1, 7, 63, 64, 1023, 1024, 1025, 2048, 4096, 9000] {
            let mut sink = HashSink::new();
            for piece in data.chunks(split) {
                sink.put(piece);
            }
            assert_eq!(sink.finish(), AgentChecksum::digest(&data), "{split}");
        }
    }

    #[test]
    fn i135_rfc8785_utf16_key_order() {
        use std::cmp::Ordering::*;
        // RFC 8785 §3.2.3's example pair: U+1F600 sorts before U+FB33 in UTF-16.
        assert_eq!(cmp_utf16("\u{1F600}", "\u{FB33}"), Less);
        assert_eq!(cmp_utf16("a\u{1F600}", "a\u{E000}"), Less);
        assert_eq!(cmp_utf16("\u{10000}", "\u{10001}"), Less);
        assert_eq!(cmp_utf16("ab", "a"), Greater);
        assert_eq!(cmp_utf16("é", "e"), Greater);
        assert_eq!(cmp_utf16("x", "x"), Equal);
    }
}
