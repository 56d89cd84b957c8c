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

/// The scopes of `requested` that `held` does not contain, each once, in
/// request order: the one scope-subset rule (RFC 6749 §3.3 / §5.2
/// `invalid_scope` "exceeds the scope granted", RFC 6750 §3.1
/// `insufficient_scope`). Comparison is exact (scope-tokens are case-sensitive).
pub fn scopes_not_held<'a, R: AsRef<str>, H: AsRef<str>>(
    requested: &'a [R],
    held: &[H],
) -> Vec<&'a str> {
    let held: std::collections::HashSet<&str> = held.iter().map(AsRef::as_ref).collect();
    let mut seen = std::collections::HashSet::new();
    requested
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| !held.contains(s) && seen.insert(*s))
        .collect()
}

/// True when every scope of `requested` is in `held` (see [`scopes_not_held`]).
pub fn is_subset<R: AsRef<str>, H: AsRef<str>>(requested: &[R], held: &[H]) -> bool {
    scopes_not_held(requested, held).is_empty()
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

    #[test]
    fn rfc6749_5_2_scopes_not_held_lists_each_extra_once_in_order() {
        let held = ["read", "write"];
        assert_eq!(
            scopes_not_held(&["admin", "read", "Read", "admin", "x"], &held),
            ["admin", "Read", "x"]
        );
        assert!(scopes_not_held::<&str, &str>(&[], &held).is_empty());
        assert!(is_subset(&["write", "read", "read"], &held));
        assert!(!is_subset(&["read"], &[] as &[&str]));
        assert!(is_subset(&[] as &[String], &[] as &[String]));
    }
}
