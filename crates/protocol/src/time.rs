//! The JWT time checks (RFC 7519 §4.1.4 `exp`, §4.1.5 `nbf`, §4.1.6 `iat`) with
//! a leeway for clock skew, in one place: the verifier (§6.5.3), the issuer's
//! client-token check (§4.2.3) and the CLI use these. All arithmetic saturates,
//! so no claim value, however large or small, can overflow or panic.
//!
//! Times are NumericDate seconds; `leeway` is in seconds (RFC 7519 §4.1.4
//! "Implementers MAY provide for some small leeway ... to account for clock
//! skew").

/// Why a time check refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// `now` is on or after `exp` (plus leeway) (RFC 7519 §4.1.4).
    #[error("the token expired (exp {exp}, now {now})")]
    Expired {
        /// The `exp` claim.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is later than `now` (plus leeway) (RFC 7519 §4.1.6).
    #[error("the token is issued in the future (iat {iat}, now {now})")]
    IssuedInFuture {
        /// The `iat` claim.
        iat: i64,
        /// The time of the check.
        now: i64,
    },
    /// `now` is before `nbf` (minus leeway) (RFC 7519 §4.1.5).
    #[error("the token is not valid yet (nbf {nbf}, now {now})")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is more than `max_age` (plus leeway) seconds ago.
    #[error("the token is older than {max_age} s (iat {iat}, now {now})")]
    TooOld {
        /// The `iat` claim.
        iat: i64,
        /// The time of the check.
        now: i64,
        /// The largest accepted age in seconds.
        max_age: i64,
    },
}

/// RFC 7519 §4.1.4: the token "MUST NOT be accepted for processing" on or after
/// `exp`; accepted while `now < exp + leeway`.
pub fn check_exp(exp: i64, now: i64, leeway: i64) -> Result<(), TimeError> {
    if now < exp.saturating_add(leeway) {
        Ok(())
    } else {
        Err(TimeError::Expired { exp, now })
    }
}

/// RFC 7519 §4.1.6: `iat` is when the token was issued, so one later than
/// `now + leeway` is refused.
pub fn check_iat_not_in_future(iat: i64, now: i64, leeway: i64) -> Result<(), TimeError> {
    if iat <= now.saturating_add(leeway) {
        Ok(())
    } else {
        Err(TimeError::IssuedInFuture { iat, now })
    }
}

/// RFC 7519 §4.1.5: "the current date/time MUST be after or equal to the
/// not-before date/time"; accepted when `now >= nbf - leeway`.
pub fn check_nbf(nbf: i64, now: i64, leeway: i64) -> Result<(), TimeError> {
    if now >= nbf.saturating_sub(leeway) {
        Ok(())
    } else {
        Err(TimeError::NotYetValid { nbf, now })
    }
}

/// A token at most `max_age` seconds old (plus leeway) by its `iat`
/// (a local policy, e.g. the verifier's `max_age`).
pub fn check_max_age(iat: i64, now: i64, max_age: i64, leeway: i64) -> Result<(), TimeError> {
    if now.saturating_sub(iat) <= max_age.saturating_add(leeway) {
        Ok(())
    } else {
        Err(TimeError::TooOld { iat, now, max_age })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(i64, i64, i64) -> Result<(), TimeError>;

    #[test]
    fn rfc7519_s4_1_4_to_4_1_6_boundaries_with_leeway_and_saturation() {
        // (rule, claim, now, leeway, accepted)
        let rows: [(&str, Check, i64, i64, i64, bool); 13] = [
            // §4.1.4: exp is exclusive; leeway extends it.
            ("exp", check_exp, 100, 99, 0, true),
            ("exp", check_exp, 100, 100, 0, false),
            ("exp", check_exp, 100, 129, 30, true),
            ("exp", check_exp, 100, 130, 30, false),
            // §4.1.6: iat later than now + leeway is refused.
            ("iat", check_iat_not_in_future, 100, 100, 0, true),
            ("iat", check_iat_not_in_future, 101, 100, 0, false),
            ("iat", check_iat_not_in_future, 160, 100, 60, true),
            ("iat", check_iat_not_in_future, 161, 100, 60, false),
            // §4.1.5: nbf is inclusive; leeway advances it.
            ("nbf", check_nbf, 100, 100, 0, true),
            ("nbf", check_nbf, 100, 99, 0, false),
            ("nbf", check_nbf, 100, 70, 30, true),
            ("nbf", check_nbf, 100, 69, 30, false),
            // Extreme values saturate instead of overflowing.
            ("exp", check_exp, i64::MIN, 0, i64::MIN, false),
        ];
        for (rule, check, claim, now, leeway, accepted) in rows {
            let got = check(claim, now, leeway).is_ok();
            assert_eq!(got, accepted, "{rule} {claim}, now {now}, leeway {leeway}");
        }
        assert_eq!(check_exp(i64::MAX, i64::MAX - 1, i64::MAX), Ok(()));
        assert_eq!(
            check_iat_not_in_future(i64::MIN, i64::MAX, i64::MAX),
            Ok(())
        );
        assert!(check_iat_not_in_future(i64::MAX, i64::MIN, 0).is_err());
        assert_eq!(check_nbf(i64::MIN, i64::MIN, i64::MAX), Ok(()));
    }

    #[test]
    fn refusals_are_typed_with_the_claim_and_the_time() {
        let cases = [
            (
                check_exp(100, 100, 0),
                TimeError::Expired { exp: 100, now: 100 },
            ),
            (
                check_iat_not_in_future(101, 100, 0),
                TimeError::IssuedInFuture { iat: 101, now: 100 },
            ),
            (
                check_nbf(100, 99, 0),
                TimeError::NotYetValid { nbf: 100, now: 99 },
            ),
            (
                check_max_age(100, 401, 300, 0),
                TimeError::TooOld {
                    iat: 100,
                    now: 401,
                    max_age: 300,
                },
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, Err(want));
        }
    }

    #[test]
    fn max_age_counts_from_iat_with_leeway() {
        assert_eq!(check_max_age(100, 400, 300, 0), Ok(()));
        assert_eq!(check_max_age(100, 430, 300, 30), Ok(()));
        assert!(check_max_age(i64::MIN, i64::MAX, 300, 30).is_err());
        assert_eq!(check_max_age(i64::MAX, i64::MIN, 0, 0), Ok(()));
    }
}
