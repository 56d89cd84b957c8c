//! Verification failures, each a distinct variant, with the HTTP status and
//! `WWW-Authenticate` challenge of RFC 6750 §3 and RFC 9449 §7 (built with
//! [`ajwt_protocol::challenge`], the one challenge implementation).

use ajwt_jose::Alg;
use ajwt_protocol::challenge::Challenge;

use crate::verify::PopPolicy;

/// Which authentication scheme a challenge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750 bearer tokens.
    Bearer,
    /// RFC 9449 DPoP-bound tokens.
    DPoP,
}

impl Scheme {
    /// The scheme name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::DPoP => "DPoP",
        }
    }
}

/// Why a request was refused (§6.5.3 steps 1–8, §9.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Step 1: no `Authorization` header (RFC 6750 §3.1: no error code).
    #[error("no access token in the request")]
    MissingToken,
    /// Step 1: an `Authorization` header that is not `Bearer <token>` or `DPoP <token>`, or several.
    #[error("malformed Authorization header: {0}")]
    MalformedAuthorization(String),
    /// Step 1: the token is longer than the configured maximum.
    #[error("token of {len} bytes exceeds the maximum of {max}")]
    TokenTooLarge {
        /// Token length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// Step 3: not a well-formed compact JWS (or a JWE / JSON serialization).
    #[error("malformed token: {0}")]
    MalformedToken(String),
    /// Step 3: `alg` outside the allow-list (`none`, HMAC, ...).
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    /// Step 2: no key with this `kid`, even after a refresh.
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// Step 2: the token has no `kid` and the key set has several keys.
    #[error("token has no kid")]
    MissingKid,
    /// Step 3: the key named by `kid` is not a key for `alg`.
    #[error("key {kid:?} cannot be used with {alg}")]
    KeyAlgorithmMismatch {
        /// Key id.
        kid: String,
        /// Token algorithm.
        alg: String,
    },
    /// Step 3: signature verification failed.
    #[error("invalid signature")]
    BadSignature,
    /// Step 4: `typ` is not that of an intent token (e.g. a client `at+jwt` token).
    #[error("token type {} is not '{expected}'", found.as_deref().map_or("(none)".to_owned(), |t| format!("'{t}'")))]
    WrongType {
        /// Expected `typ`.
        expected: String,
        /// Found `typ`.
        found: Option<String>,
    },
    /// Step 4: `exp` has passed (beyond leeway).
    #[error("token expired")]
    Expired,
    /// Step 4: `iat` in the future (beyond leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Step 4: `nbf` not yet reached (beyond leeway; RFC 7519 §4.1.5).
    #[error("token not valid before {0}")]
    NotYetValid(i64),
    /// Step 4: older than the configured maximum age.
    #[error("token older than the maximum age of {0} s")]
    TooOld(i64),
    /// Step 4: `iss` is not the trusted issuer.
    #[error("issuer {0:?} is not trusted")]
    WrongIssuer(String),
    /// Step 4: `aud` does not contain this resource.
    #[error("audience does not include {0:?}")]
    WrongAudience(String),
    /// Steps 4–5: missing or ill-typed claims (every problem listed).
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// Step 5: the agent checksum or registration is not in the known set.
    #[error("agent {0} is not allowed by policy")]
    UnknownAgent(String),
    /// Step 9: revoked (token, registration or agent).
    #[error("token revoked: {0}")]
    Revoked(String),
    /// Step 6: `intent.workflow_id` is not the route's workflow.
    #[error("workflow {} is not '{expected}'", found.as_deref().map_or("(none)".to_owned(), |t| format!("'{t}'")))]
    WrongWorkflow {
        /// Expected workflow.
        expected: String,
        /// Found workflow.
        found: Option<String>,
    },
    /// Step 6: `intent.workflow_step` is not allowed on this route.
    #[error("workflow step {} is not allowed on this route", .0.as_deref().map_or("(none)".to_owned(), |t| format!("'{t}'")))]
    StepNotAllowed(Option<String>),
    /// Step 6: `intent.delegation_chain` is not an allowed delegation.
    #[error("delegation chain {0} is not allowed on this route")]
    DelegationNotAllowed(String),
    /// Step 7: a required scope is missing (403).
    #[error("scope {0:?} required")]
    InsufficientScope(String),
    /// Step 8: a DPoP proof is required but the request has none (or uses Bearer).
    #[error("proof-of-possession required: {0}")]
    DpopRequired(String),
    /// Step 8: a DPoP-bound (`cnf`) token presented with the `Bearer` scheme
    /// where bearer presentations are otherwise accepted (RFC 9449 §7.2:
    /// "MUST reject a DPoP-bound access token received as a bearer token").
    #[error("a DPoP-bound token cannot be used as a bearer token (RFC 9449 Section 7.2); present it with Authorization: DPoP and a proof")]
    BoundTokenAsBearer,
    /// Step 8: the DPoP proof is invalid (RFC 9449 §4.3).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(String),
    /// Step 8: the proof's `jti` was seen before within the window.
    #[error("DPoP proof replayed")]
    DpopReplay,
    /// Step 8: a server nonce is required (RFC 9449 §8); carries the nonce to send.
    #[error("DPoP nonce required")]
    UseDpopNonce(String),
    /// The issuer's keys could not be fetched (503).
    #[error("issuer keys unavailable: {0}")]
    KeysUnavailable(crate::keys::KeySetError),
    /// The token's status in the issuer's Token Status List is not VALID
    /// (draft-ietf-oauth-status-list §7.1: INVALID = revoked, SUSPENDED, or
    /// another non-zero value): 401 `invalid_token` (RFC 6750 §3.1, I-92).
    #[error("token revoked: status list {uri} index {idx} has status {status:#04x}")]
    TokenStatus {
        /// The status list token's URI (the token's `status.status_list.uri`).
        uri: String,
        /// The token's index.
        idx: u64,
        /// The status value (0x01 INVALID, 0x02 SUSPENDED, ...).
        status: u8,
    },
    /// The token's status list could not be had or checked and the
    /// status-list source fails closed (503 `temporarily_unavailable`, no
    /// challenge: the token may well be good, I-92).
    #[error("token status unavailable: {0}")]
    StatusUnavailable(crate::status_list::StatusCheckError),
}

impl VerifyError {
    /// The RFC 6750 / RFC 9449 error code (`None` for a missing token).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            VerifyError::MissingToken => None,
            VerifyError::MalformedAuthorization(_) => Some("invalid_request"),
            VerifyError::InsufficientScope(_) => Some("insufficient_scope"),
            VerifyError::DpopRequired(_)
            | VerifyError::InvalidDpopProof(_)
            | VerifyError::DpopReplay => Some("invalid_dpop_proof"),
            VerifyError::BoundTokenAsBearer => Some("invalid_token"),
            VerifyError::UseDpopNonce(_) => Some("use_dpop_nonce"),
            VerifyError::KeysUnavailable(_) | VerifyError::StatusUnavailable(_) => {
                Some("temporarily_unavailable")
            }
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::MalformedAuthorization(_) => 400,
            VerifyError::InsufficientScope(_) => 403,
            VerifyError::KeysUnavailable(_) | VerifyError::StatusUnavailable(_) => 503,
            _ => 401,
        }
    }

    /// One-line description, restricted to RFC 6750 §3 `error_description` characters.
    pub fn description(&self) -> String {
        ajwt_protocol::error::rfc6749_description(&self.to_string())
    }

    /// The `WWW-Authenticate` value for `scheme` (RFC 6750 §3, RFC 9449 §7.1);
    /// `algs` lists the accepted DPoP algorithms (space-separated).
    pub fn challenge(&self, scheme: Scheme, algs: &str) -> Option<String> {
        self.challenge_for(scheme, algs.split_ascii_whitespace())
            .map(|c| c.to_string())
    }

    /// The challenge for `scheme` as a [`Challenge`] (`None` for a 503):
    /// `error` and `error_description` (none for a missing token, RFC 6750
    /// §3.1), `scope` for `insufficient_scope`, and `algs` on `DPoP`
    /// challenges (RFC 9449 §7.1).
    pub fn challenge_for<I: IntoIterator<Item = S>, S: AsRef<str>>(
        &self,
        scheme: Scheme,
        algs: I,
    ) -> Option<Challenge> {
        if self.status() == 503 {
            return None;
        }
        let mut c = Challenge::new(scheme.as_str());
        if let Some(code) = self.code() {
            c = c.error(code).error_description(self.description());
        }
        if let VerifyError::InsufficientScope(scope) = self {
            c = c.scope([scope]);
        }
        if scheme == Scheme::DPoP {
            let algs: Vec<String> = algs.into_iter().map(|a| a.as_ref().to_owned()).collect();
            if !algs.is_empty() {
                c = c.algs(algs);
            }
        }
        Some(c)
    }

    /// Every challenge of the refusal, in header order, for a resource
    /// server with `policy` accepting `algs`, when the client used `used`
    /// (I-49): under `required` always one `DPoP` challenge whatever the
    /// client sent (RFC 9449 §7.1); proof errors and a bound token sent as
    /// bearer (RFC 9449 §7.2) get `DPoP`; otherwise the scheme the client
    /// used; a request without credentials where both schemes are accepted
    /// gets both (`DPoP algs=..., Bearer`, RFC 9110 §11.6.1).
    pub fn challenges(
        &self,
        used: Option<Scheme>,
        policy: PopPolicy,
        algs: &[Alg],
    ) -> Vec<Challenge> {
        let names = algs.iter().map(|a| a.as_str());
        let schemes: Vec<Scheme> = match (self, policy, used) {
            (_, PopPolicy::Required, _) => vec![Scheme::DPoP],
            (
                VerifyError::DpopRequired(_)
                | VerifyError::InvalidDpopProof(_)
                | VerifyError::DpopReplay
                | VerifyError::UseDpopNonce(_)
                | VerifyError::BoundTokenAsBearer,
                _,
                _,
            ) => vec![Scheme::DPoP],
            (_, _, Some(s)) => vec![s],
            (_, PopPolicy::Optional, None) => vec![Scheme::DPoP, Scheme::Bearer],
            (_, _, None) => vec![Scheme::Bearer],
        };
        schemes
            .into_iter()
            .filter_map(|s| self.challenge_for(s, names.clone()))
            .collect()
    }

    /// The scheme whose challenge fits this error: `DPoP` for proof errors
    /// and whenever DPoP is required (RFC 9449 §7.1), else the one used.
    pub fn scheme_for(&self, used: Option<Scheme>, dpop_required: bool) -> Scheme {
        let policy = if dpop_required {
            PopPolicy::Required
        } else {
            PopPolicy::Disabled
        };
        self.challenges(used, policy, &[])
            .first()
            .map_or(Scheme::Bearer, |c| {
                if c.is_scheme(Scheme::DPoP.as_str()) {
                    Scheme::DPoP
                } else {
                    Scheme::Bearer
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_3_1_codes_statuses_and_challenges() {
        assert_eq!(VerifyError::MissingToken.code(), None);
        assert_eq!(
            VerifyError::MissingToken.challenge(Scheme::Bearer, ""),
            Some("Bearer".into())
        );
        assert_eq!(VerifyError::Expired.status(), 401);
        assert_eq!(
            VerifyError::Expired.challenge(Scheme::Bearer, "").unwrap(),
            "Bearer error=\"invalid_token\", error_description=\"token expired\""
        );
        let scope = VerifyError::InsufficientScope("repo:write".into());
        assert_eq!(
            (scope.status(), scope.code()),
            (403, Some("insufficient_scope"))
        );
        assert!(scope
            .challenge(Scheme::Bearer, "")
            .unwrap()
            .ends_with("scope=\"repo:write\""));
        let dpop = VerifyError::InvalidDpopProof("htm mismatch".into());
        assert_eq!(dpop.scheme_for(Some(Scheme::Bearer), false), Scheme::DPoP);
        assert_eq!(
            dpop.challenge(Scheme::DPoP, "ES256 EdDSA").unwrap(),
            "DPoP error=\"invalid_dpop_proof\", error_description=\"invalid DPoP proof: htm mismatch\", algs=\"ES256 EdDSA\""
        );
        assert_eq!(
            VerifyError::UseDpopNonce("n".into()).code(),
            Some("use_dpop_nonce")
        );
    }
}
