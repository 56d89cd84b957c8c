//! OAuth scopes (RFC 6749 §3.3) as used by `requested_scopes` (§4.2.1) and the
//! `scope` claim (§4.4.2).

/// True when `s` is a scope-token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3),
/// i.e. printable ASCII except space, `"` and `\`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Splits a space-delimited `scope` string (RFC 6749 §3.3); `None` when it
/// contains anything but scope-tokens separated by single spaces.
pub fn parse_scope_string(s: &str) -> Option<Vec<String>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(' ')
        .map(|t| is_scope_token(t).then(|| t.to_owned()))
        .collect()
}

/// Joins scopes into a `scope` string, each once, in the given order.
pub fn join_scopes<S: AsRef<str>>(scopes: &[S]) -> String {
    let mut seen = std::collections::HashSet::new();
    scopes
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| seen.insert(*s))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6749_3_3_scope_token_syntax() {
        for ok in [
            "repo:write",
            "vulnerability:read",
            "generate:intent-token",
            "a",
            "~!#[]",
        ] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\tb", "\u{7f}"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
        assert_eq!(
            parse_scope_string("repo:write vulnerability:read"),
            Some(vec![
                "repo:write".to_owned(),
                "vulnerability:read".to_owned()
            ])
        );
        assert_eq!(parse_scope_string("a  b"), None);
        assert_eq!(parse_scope_string(""), Some(vec![]));
        assert_eq!(join_scopes(&["a", "b", "a"]), "a b");
    }
}
