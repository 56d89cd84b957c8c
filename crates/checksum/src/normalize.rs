//! Prompt normalization, a bit-exact port of the draft's `normalize_prompt`
//! (§5.3.2) as CPython 3 executes it.
//!
//! CPython's notion of whitespace (`str.isspace()`, used by `str.strip()` and by
//! `\s` in `re` patterns over `str`) is *not* Rust's `char::is_whitespace`: it
//! includes U+001C..U+001F (the information separators) and excludes U+200B.
//! [`is_python_space`] is that exact set; `split('\n')` splits on U+000A only,
//! so a lone `\r` inside a line survives.

/// `str.isspace()` of CPython 3.11 (Unicode 14): bidirectional class WS, B or S,
/// or general category Zs. Pinned by a test that asks `python3` itself.
pub fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// CPython's `str.strip()` with no argument.
///
/// ASCII ends are trimmed byte by byte (I-187: most prompt lines start and
/// end in ASCII); where a non-ASCII character is met at either end, the
/// whole string takes the general, per-character path.
pub fn python_strip(s: &str) -> &str {
    let bytes = s.as_bytes();
    let ascii_space = |b: u8| matches!(b, b'\t'..=b'\r' | 0x1c..=0x20);
    let start = bytes
        .iter()
        .position(|&b| !ascii_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !ascii_space(b))
        .map_or(start, |i| i + 1);
    let ascii_ends = |i: Option<&u8>| i.is_none_or(|b| b.is_ascii());
    if !ascii_ends(bytes.get(start)) || !ascii_ends(end.checked_sub(1).and_then(|i| bytes.get(i))) {
        return s.trim_matches(is_python_space);
    }
    // Both cuts sit next to ASCII bytes: character boundaries.
    s.get(start..end.max(start)).unwrap_or("")
}

/// CPython's `re.sub(r'\n\s*\n', '\n', s)`: leftmost, non-overlapping matches;
/// `\s*` is greedy, so a match runs from a `\n` to the *last* `\n` of the
/// whitespace run that follows it.
fn collapse_blank_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\n') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        // Longest run of Python whitespace right after this '\n'.
        let run_len = after
            .char_indices()
            .find(|&(_, c)| !is_python_space(c))
            .map_or(after.len(), |(i, _)| i);
        match after[..run_len].rfind('\n') {
            Some(last_nl) => {
                out.push('\n');
                rest = &after[last_nl + 1..];
            }
            None => {
                // No match starting at this '\n': keep it, scan on from the next char.
                out.push('\n');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The draft's `normalize_prompt` (§5.3.2), step by step:
///
/// ```python
/// if not prompt: return ""
/// normalized = prompt.strip()
/// normalized = normalized.replace('\r\n', '\n')
/// normalized = re.sub(r'\n\s*\n', '\n', normalized)
/// lines = [line.strip() for line in normalized.split('\n')]
/// lines = [line for line in lines if line]
/// return '\n'.join(lines)
/// ```
pub fn normalize_prompt(prompt: &str) -> String {
    if prompt.is_empty() {
        return String::new();
    }
    let normalized = python_strip(prompt).replace("\r\n", "\n");
    let normalized = collapse_blank_runs(&normalized);
    let lines: Vec<&str> = normalized
        .split('\n')
        .map(python_strip)
        .filter(|line| !line.is_empty())
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// I-187: the ASCII fast path of `python_strip` trims exactly what
        /// the per-character `trim_matches(is_python_space)` trims (itself
        /// pinned against CPython by tests/cpython.rs), for strings built
        /// from ASCII and non-ASCII whitespace and other characters.
        #[test]
        fn i187_python_strip_fast_path_matches_char_trim(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(vec![
                        " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1F}",
                        "\u{85}", "\u{A0}", "\u{2000}", "\u{3000}", "\u{200B}", "a", "é", "\u{1F600}", "x y",
                    ])
                    .prop_map(String::from),
                    any::<String>(),
                ],
                0..8,
            )
        ) {
            let s: String = parts.concat();
            prop_assert_eq!(python_strip(&s), s.trim_matches(is_python_space));
        }
    }

    #[test]
    fn s5_3_2_normalize_prompt_draft_steps() {
        assert_eq!(normalize_prompt(""), "");
        assert_eq!(normalize_prompt("  \t\n "), "");
        assert_eq!(normalize_prompt("a\r\nb"), "a\nb");
        assert_eq!(normalize_prompt("a\n\n\n  b  \n"), "a\nb");
        assert_eq!(normalize_prompt("  x  y  "), "x  y");
    }

    #[test]
    fn s5_3_2_python_whitespace_is_not_rust_whitespace() {
        // U+001C..U+001F: Python whitespace, not Rust's.
        assert!(!'\u{1C}'.is_whitespace());
        assert_eq!(normalize_prompt("\u{1C}a\u{1F}"), "a");
        // U+200B ZERO WIDTH SPACE is whitespace for neither: survives.
        assert_eq!(normalize_prompt("\u{200B}a"), "\u{200B}a");
        // A lone CR inside a line survives; at the ends it is stripped.
        assert_eq!(normalize_prompt("a\rb\r"), "a\rb");
        // U+2028 is whitespace but not a line break for split('\n').
        assert_eq!(normalize_prompt("a\u{2028}b"), "a\u{2028}b");
        assert_eq!(normalize_prompt("a\n\u{2028}\nb"), "a\nb");
    }

    #[test]
    fn s5_3_2_collapse_matches_re_sub_semantics() {
        assert_eq!(collapse_blank_runs("a\n \n \nb"), "a\nb");
        assert_eq!(collapse_blank_runs("a\n b"), "a\n b");
        assert_eq!(collapse_blank_runs("a\n\n"), "a\n");
        assert_eq!(collapse_blank_runs("\n \nx\n"), "\nx\n");
        assert_eq!(collapse_blank_runs("a\n\u{85}\n\u{85}b"), "a\n\u{85}b");
    }
}
