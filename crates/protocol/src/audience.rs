//! Audience matching (RFC 7519 §4.1.3) in one place: the verifier (§6.5.3
//! step 4) and the issuer's client-token check (§4.2.3) use it.

use crate::claims::ClaimsJson;

/// True when the `aud` claim value names `audience`: a string equal to it, or an
/// array of strings one of which equals it (RFC 7519 §4.1.3: "an array of
/// case-sensitive strings ... or a single case-sensitive string"). A missing
/// claim, another JSON type, or an array with a non-string member never matches.
pub fn aud_contains<J: ClaimsJson>(aud: Option<&J>, audience: &str) -> bool {
    let Some(aud) = aud else {
        return false;
    };
    match (aud.as_str(), aud.items()) {
        (Some(a), _) => a == audience,
        (None, Some(all)) => {
            all.iter().all(|a| a.as_str().is_some())
                && all.iter().any(|a| a.as_str() == Some(audience))
        }
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn rfc7519_s4_1_3_string_or_array_of_strings_case_sensitive() {
        let rs = "https://rs.example";
        assert!(aud_contains(Some(&json!(rs)), rs));
        assert!(aud_contains(Some(&json!(["https://a.example", rs])), rs));
        assert!(!aud_contains(Some(&json!("https://RS.example")), rs));
        assert!(!aud_contains(Some(&json!("https://rs.example/")), rs));
        assert!(!aud_contains(Some(&json!([])), rs));
        assert!(!aud_contains(None::<&Value>, rs));
        assert!(!aud_contains(Some(&json!({ "aud": rs })), rs));
        assert!(!aud_contains(Some(&json!(null)), rs));
    }

    #[test]
    fn rfc7519_s4_1_3_array_with_a_non_string_member_is_no_audience() {
        let rs = "https://rs.example";
        assert!(!aud_contains(Some(&json!([rs, 2])), rs));
        assert!(!aud_contains(Some(&json!([rs, null])), rs));
    }
}
