//! Intent-token claims (§4.4.2): typed serde structs for the payload the
//! issuer signs (example in §4.4.3), and [`validate_claims`], which checks a
//! decoded payload and reports every missing, ill-typed or malformed claim by
//! its dotted path in one pass. Signatures, expiry against the clock and
//! audience matching are the verifier's job, not this module's.

use ajwt_checksum::json::{literal_to_serde_number, BorrowedValue};
use ajwt_checksum::{is_valid_agent_id, AgentChecksum};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::scope::parse_scope_string;

/// The `aud` claim (RFC 7519 §4.1.3, §4.4.2 "Value from request.audience"):
/// a single string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience, serialized as a string.
    One(String),
    /// Several audiences, serialized as an array.
    Many(Vec<String>),
}

impl Audience {
    /// True when `audience` is (one of) the intended recipient(s).
    pub fn contains(&self, audience: &str) -> bool {
        self.as_slice().iter().any(|a| a == audience)
    }

    /// The audiences as a slice (one element for [`Audience::One`]).
    pub fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(all) => all,
        }
    }
}

/// The claims of an intent token (§4.4.2, example §4.4.3). Unknown claims are
/// ignored when deserializing and not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentClaims {
    /// Authorization server identifier.
    pub iss: String,
    /// Intended recipient(s), from `request.audience` (§4.2.1).
    pub aud: Audience,
    /// The agent (`request.agent_id`).
    pub sub: String,
    /// Expiration time, NumericDate (SHOULD be `iat + 300`).
    pub exp: i64,
    /// Issuance time, NumericDate.
    pub iat: i64,
    /// Unique token identifier (replay prevention).
    pub jti: String,
    /// Space-delimited OAuth 2.0 scopes (RFC 6749 §3.3).
    pub scope: String,
    /// Proof-of-possession confirmation (RFC 7800).
    pub cnf: Confirmation,
    /// The intent-specific claims.
    pub intent: Intent,
    /// The agent proof claims.
    pub agent_proof: AgentProof,
    /// Where the token's revocation status is published
    /// (draft-ietf-oauth-status-list §6.1; an extension of §4.4.2, I-83).
    /// Optional: tokens of issuers without status lists have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::status_list::StatusClaim>,
}

impl IntentClaims {
    /// The scope tokens of [`IntentClaims::scope`].
    pub fn scopes(&self) -> Vec<&str> {
        self.scope.split(' ').filter(|s| !s.is_empty()).collect()
    }
}

/// The `cnf` claim (§4.4.2, RFC 7800 §3.1). The draft requires `jwk`; as an
/// extension a JWK SHA-256 thumbprint `jkt` (RFC 9449 §6.1) is accepted
/// instead. A valid claim holds exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The agent's public key as a JWK (RFC 7517).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Map<String, Value>>,
    /// base64url SHA-256 JWK thumbprint (RFC 7638, RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl Confirmation {
    /// A confirmation carrying the agent's public JWK (the draft's form).
    pub fn from_jwk(jwk: Map<String, Value>) -> Confirmation {
        Confirmation {
            jwk: Some(jwk),
            jkt: None,
        }
    }
}

/// The `intent` claim object (§4.4.2 "Intent-Specific Claims").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Workflow identifier (REQUIRED when `workflow_enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// Current step identifier (REQUIRED when `workflow_enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_step: Option<String>,
    /// The agent executing this step; equals `sub`.
    pub executed_by: String,
    /// Hash of the full delegation chain (§4.4.4), 16 lowercase hex digits.
    pub delegation_chain: String,
    /// Hash of the completed steps plus the current one (§4.4.4), 16 lowercase hex digits.
    pub step_sequence_hash: String,
}

/// The `agent_proof` claim object (§4.4.2 "Agent Proof Claims").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProof {
    /// The verified agent checksum (`sha256:<hex>`, §4.2.1, I-4).
    pub agent_checksum: AgentChecksum,
    /// The agent registration the token was issued under (§5.4.2 step 4).
    pub registration_id: String,
}

/// What is wrong with one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimProblemKind {
    /// A required claim is absent.
    Missing,
    /// The claim has the wrong JSON type.
    WrongType {
        /// The type expected, e.g. `"string"`.
        expected: &'static str,
    },
    /// The claim has the right type but a bad value.
    Invalid {
        /// Why the value is refused.
        reason: String,
    },
}

/// One problem found by [`validate_claims`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimProblem {
    /// Dotted path of the claim, e.g. `intent.delegation_chain`; empty for
    /// the payload itself.
    pub claim: String,
    /// What is wrong.
    pub kind: ClaimProblemKind,
}

impl std::fmt::Display for ClaimProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let claim = if self.claim.is_empty() {
            "payload"
        } else {
            &self.claim
        };
        match &self.kind {
            ClaimProblemKind::Missing => write!(f, "{claim}: missing"),
            ClaimProblemKind::WrongType { expected } => write!(f, "{claim}: expected {expected}"),
            ClaimProblemKind::Invalid { reason } => write!(f, "{claim}: {reason}"),
        }
    }
}

/// Every problem of an intent-token payload (§4.4.2), in claim order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid intent token claims: {}", join_problems(.problems))]
pub struct ClaimsError {
    /// The problems found (never empty).
    pub problems: Vec<ClaimProblem>,
}

impl ClaimsError {
    /// The problem reported for `claim`, if any.
    pub fn problem(&self, claim: &str) -> Option<&ClaimProblemKind> {
        self.problems
            .iter()
            .find(|p| p.claim == claim)
            .map(|p| &p.kind)
    }
}

fn join_problems(problems: &[ClaimProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

const INTEGER: &str = "integer (NumericDate)";
const STRING: &str = "string";
const OBJECT: &str = "object";
const AUDIENCE: &str = "string or array of strings";
const ID_SYNTAX: &str = "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$";

/// Read access to a decoded JSON value, so that [`validate_claims`] applies
/// one set of rules to serde_json's values and to the strict reader's
/// borrowed values (the verifier's path: no `serde_json` tree per token,
/// issue 15). Numbers are read with serde_json's rules in both cases
/// ([`ajwt_checksum::json::literal_to_serde_number`]).
pub trait ClaimsJson: Sized {
    /// The member `name` of an object (`None` when absent or not an object).
    fn member(&self, name: &str) -> Option<&Self>;
    /// True for `null`.
    fn is_null(&self) -> bool;
    /// The string, if this is one.
    fn as_str(&self) -> Option<&str>;
    /// The number as serde_json reads it, if this is one.
    fn number(&self) -> Option<serde_json::Number>;
    /// The items, if this is an array.
    fn items(&self) -> Option<&[Self]>;
    /// True for an object.
    fn is_object(&self) -> bool;
    /// A serde_json copy (for the parts of the claims that are kept as JSON).
    fn to_serde(&self) -> Value;
}

impl ClaimsJson for Value {
    fn member(&self, name: &str) -> Option<&Self> {
        self.get(name)
    }
    fn is_null(&self) -> bool {
        Value::is_null(self)
    }
    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }
    fn number(&self) -> Option<serde_json::Number> {
        match self {
            Value::Number(n) => Some(n.clone()),
            _ => None,
        }
    }
    fn items(&self) -> Option<&[Self]> {
        self.as_array().map(Vec::as_slice)
    }
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }
    fn to_serde(&self) -> Value {
        self.clone()
    }
}

impl ClaimsJson for BorrowedValue<'_> {
    fn member(&self, name: &str) -> Option<&Self> {
        self.get(name)
    }
    fn is_null(&self) -> bool {
        matches!(self, BorrowedValue::Null)
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            BorrowedValue::String(s) => Some(s),
            _ => None,
        }
    }
    fn number(&self) -> Option<serde_json::Number> {
        match self {
            BorrowedValue::Number(text) => literal_to_serde_number(text),
            _ => None,
        }
    }
    fn items(&self) -> Option<&[Self]> {
        match self {
            BorrowedValue::Array(items) => Some(items),
            _ => None,
        }
    }
    fn is_object(&self) -> bool {
        matches!(self, BorrowedValue::Object(_))
    }
    fn to_serde(&self) -> Value {
        self.to_serde_json()
    }
}

/// The last segment of a dotted path: the member name.
fn member<'v, J: ClaimsJson>(obj: &'v J, path: &str) -> Option<&'v J> {
    obj.member(path.rsplit('.').next().unwrap_or(path))
}

/// An optional member: `None` when absent or `null`.
fn optional_member<'v, J: ClaimsJson>(obj: &'v J, path: &str) -> Option<&'v J> {
    member(obj, path).filter(|v| !v.is_null())
}

fn is_hash16(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Collects problems; each extractor returns `None` exactly when it recorded one.
#[derive(Default)]
struct Checker {
    problems: Vec<ClaimProblem>,
}

impl Checker {
    fn push(&mut self, claim: &str, kind: ClaimProblemKind) {
        self.problems.push(ClaimProblem {
            claim: claim.to_owned(),
            kind,
        });
    }

    fn missing(&mut self, claim: &str) {
        self.push(claim, ClaimProblemKind::Missing);
    }

    fn wrong(&mut self, claim: &str, expected: &'static str) {
        self.push(claim, ClaimProblemKind::WrongType { expected });
    }

    fn invalid(&mut self, claim: &str, reason: impl Into<String>) {
        self.push(
            claim,
            ClaimProblemKind::Invalid {
                reason: reason.into(),
            },
        );
    }

    fn string<'v, J: ClaimsJson>(&mut self, obj: &'v J, path: &str) -> Option<&'v str> {
        match member(obj, path) {
            None => {
                self.missing(path);
                None
            }
            Some(v) => match v.as_str() {
                Some(s) => Some(s),
                None => {
                    self.wrong(path, STRING);
                    None
                }
            },
        }
    }

    fn non_empty_string<'v, J: ClaimsJson>(&mut self, obj: &'v J, path: &str) -> Option<&'v str> {
        let s = self.string(obj, path)?;
        if s.is_empty() {
            self.invalid(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// `Some(None)`: absent; `None`: a problem was recorded.
    fn optional_id<'v, J: ClaimsJson>(
        &mut self,
        obj: &'v J,
        path: &str,
    ) -> Option<Option<&'v str>> {
        match optional_member(obj, path).map(|v| v.as_str()) {
            None => Some(None),
            Some(Some(s)) if is_valid_agent_id(s) => Some(Some(s)),
            Some(Some(_)) => {
                self.invalid(path, ID_SYNTAX);
                None
            }
            Some(None) => {
                self.wrong(path, STRING);
                None
            }
        }
    }

    fn integer<J: ClaimsJson>(&mut self, obj: &J, path: &str) -> Option<i64> {
        match member(obj, path).map(ClaimsJson::number) {
            None => self.missing(path),
            Some(Some(n)) => match n.as_i64() {
                Some(i) if i >= 0 => return Some(i),
                Some(_) => self.invalid(path, "must not be negative"),
                None if n.is_u64() => self.invalid(path, "out of range"),
                None => self.wrong(path, INTEGER),
            },
            Some(None) => self.wrong(path, INTEGER),
        }
        None
    }

    fn object<'v, J: ClaimsJson>(&mut self, obj: &'v J, path: &str) -> Option<&'v J> {
        match member(obj, path) {
            None => {
                self.missing(path);
                None
            }
            Some(m) if m.is_object() => Some(m),
            Some(_) => {
                self.wrong(path, OBJECT);
                None
            }
        }
    }

    fn hash16<'v, J: ClaimsJson>(&mut self, obj: &'v J, path: &str) -> Option<&'v str> {
        let s = self.string(obj, path)?;
        if !is_hash16(s) {
            self.invalid(
                path,
                format!("must be 16 lowercase hex digits (§4.4.4), found '{s}'"),
            );
            return None;
        }
        Some(s)
    }

    fn audience<J: ClaimsJson>(&mut self, root: &J) -> Option<Audience> {
        let aud = root.member("aud");
        match (
            aud,
            aud.and_then(ClaimsJson::as_str),
            aud.and_then(ClaimsJson::items),
        ) {
            (None, _, _) => self.missing("aud"),
            (_, Some(""), _) => self.invalid("aud", "must not be empty"),
            (_, Some(s), _) => return Some(Audience::One(s.to_owned())),
            (_, _, Some(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                match strings {
                    None => self.wrong("aud", AUDIENCE),
                    Some(v) if v.is_empty() => self.invalid("aud", "must not be an empty array"),
                    Some(v) if v.iter().any(String::is_empty) => {
                        self.invalid("aud", "must not contain an empty string")
                    }
                    Some(v) => return Some(Audience::Many(v)),
                }
            }
            (Some(_), None, None) => self.wrong("aud", AUDIENCE),
        }
        None
    }

    fn confirmation<J: ClaimsJson>(&mut self, cnf: &J) -> Option<Confirmation> {
        let jwk = match optional_member(cnf, "cnf.jwk") {
            None => Some(None),
            Some(jwk) if jwk.is_object() => self.jwk(jwk).map(Some),
            Some(_) => {
                self.wrong("cnf.jwk", OBJECT);
                None
            }
        };
        let jkt = match optional_member(cnf, "cnf.jkt").map(|v| v.as_str()) {
            None => Some(None),
            Some(Some(t))
                if t.len() == 43
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Some(Some(t.to_owned()))
            }
            Some(Some(_)) => {
                self.invalid(
                    "cnf.jkt",
                    "must be a base64url SHA-256 JWK thumbprint (43 characters, RFC 9449 §6.1)",
                );
                None
            }
            Some(_) => {
                self.wrong("cnf.jkt", STRING);
                None
            }
        };
        match (jwk?, jkt?) {
            (None, None) => {
                self.missing("cnf.jwk");
                None
            }
            (Some(_), Some(_)) => {
                self.invalid(
                    "cnf",
                    "must hold a single proof-of-possession key: jwk or jkt, not both (RFC 7800 §3.1)",
                );
                None
            }
            (jwk, jkt) => Some(Confirmation { jwk, jkt }),
        }
    }

    /// A public JWK: `kty` present, no private or symmetric key material.
    fn jwk<J: ClaimsJson>(&mut self, jwk: &J) -> Option<Map<String, Value>> {
        let before = self.problems.len();
        self.non_empty_string(jwk, "cnf.jwk.kty");
        let Value::Object(jwk) = jwk.to_serde() else {
            self.wrong("cnf.jwk", OBJECT);
            return None;
        };
        if let Some(secret) = ajwt_jose::private_jwk_member(&jwk) {
            self.invalid(
                "cnf.jwk",
                format!("must be a public key, found private or symmetric key member '{secret}'"),
            );
        }
        (self.problems.len() == before).then_some(jwk)
    }

    fn intent<J: ClaimsJson>(&mut self, intent: &J, sub: Option<&str>) -> Option<Intent> {
        let workflow_id = self.optional_id(intent, "intent.workflow_id");
        let workflow_step = self.optional_id(intent, "intent.workflow_step");
        // Both or neither (§4.4.2: both REQUIRED when workflow_enabled).
        match (workflow_id, workflow_step) {
            (Some(Some(_)), Some(None)) => self.missing("intent.workflow_step"),
            (Some(None), Some(Some(_))) => self.missing("intent.workflow_id"),
            _ => {}
        }
        let executed_by = self.string(intent, "intent.executed_by");
        if let (Some(by), Some(sub)) = (executed_by, sub) {
            if by != sub {
                self.invalid(
                    "intent.executed_by",
                    format!("must equal sub ('{sub}'), found '{by}'"),
                );
            }
        }
        let delegation_chain = self.hash16(intent, "intent.delegation_chain");
        let step_sequence_hash = self.hash16(intent, "intent.step_sequence_hash");
        let (Some(workflow_id), Some(workflow_step), Some(executed_by), Some(dc), Some(ssh)) = (
            workflow_id,
            workflow_step,
            executed_by,
            delegation_chain,
            step_sequence_hash,
        ) else {
            return None;
        };
        Some(Intent {
            workflow_id: workflow_id.map(str::to_owned),
            workflow_step: workflow_step.map(str::to_owned),
            executed_by: executed_by.to_owned(),
            delegation_chain: dc.to_owned(),
            step_sequence_hash: ssh.to_owned(),
        })
    }

    fn agent_proof<J: ClaimsJson>(&mut self, proof: &J) -> Option<AgentProof> {
        let checksum = self
            .string(proof, "agent_proof.agent_checksum")
            .and_then(|s| match AgentChecksum::parse(s) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.invalid(
                        "agent_proof.agent_checksum",
                        format!("must be \"sha256:\" followed by 64 lowercase hex digits: {e}"),
                    );
                    None
                }
            });
        let registration_id = self.non_empty_string(proof, "agent_proof.registration_id");
        Some(AgentProof {
            agent_checksum: checksum?,
            registration_id: registration_id?.to_owned(),
        })
    }
}

/// Validates a decoded intent-token payload against §4.4.2 and returns the
/// typed claims, or every problem found, each named by its dotted path.
///
/// Required: `iss`, `sub` (an agent id, I-7) and `jti` (non-empty strings),
/// `aud` (a non-empty string or a non-empty array of non-empty strings),
/// `exp` and `iat` (non-negative integers, `exp > iat`), `scope` (scope-tokens
/// separated by single spaces, RFC 6749 §3.3), `cnf` (with a public `jwk`
/// having `kty`, or a `jkt` thumbprint, not both), `intent` (`executed_by`
/// equal to `sub`; `delegation_chain` and `step_sequence_hash` of 16
/// lowercase hex digits; optional `workflow_id` and `workflow_step`, both or
/// neither, with agent-id syntax) and `agent_proof` (`agent_checksum` in the
/// `sha256:<64 lowercase hex>` form, non-empty `registration_id`). Unknown
/// claims are allowed; `null` counts as absent only for optional members. No
/// time-based check is made here.
///
/// `payload` is a `serde_json::Value` or, on the verifier's path, the strict
/// reader's [`BorrowedValue`] (same rules, [`ClaimsJson`]).
pub fn validate_claims<J: ClaimsJson>(payload: &J) -> Result<IntentClaims, ClaimsError> {
    validate_claims_inner(payload)
}

/// Reads a JWT payload (the decoded JSON bytes) strictly — a claim given
/// twice is refused, since two JSON parsers could otherwise disagree on its
/// value (spec/interpretation.md I-10) — then [`validate_claims`]. This is the
/// entry point for verifiers.
pub fn decode_claims(payload: &[u8]) -> Result<IntentClaims, ClaimsError> {
    // Read into the borrowed value: no serde_json tree (issue 15).
    let strict = ajwt_checksum::json::parse_strict_borrowed(payload).map_err(|e| {
        let (claim, reason) = match e {
            ajwt_checksum::json::JsonError::DuplicateKey { path, key } => {
                let claim = if path == "$" {
                    key
                } else {
                    format!("{path}.{key}")
                };
                (claim, "given more than once".to_owned())
            }
            other => (String::new(), format!("not a JSON object: {other}")),
        };
        ClaimsError {
            problems: vec![ClaimProblem {
                claim,
                kind: ClaimProblemKind::Invalid { reason },
            }],
        }
    })?;
    validate_claims_inner(&strict)
}

fn validate_claims_inner<J: ClaimsJson>(payload: &J) -> Result<IntentClaims, ClaimsError> {
    let root = payload;
    if !root.is_object() {
        return Err(ClaimsError {
            problems: vec![ClaimProblem {
                claim: String::new(),
                kind: ClaimProblemKind::WrongType { expected: OBJECT },
            }],
        });
    }
    let mut c = Checker::default();
    let iss = c.non_empty_string(root, "iss");
    let aud = c.audience(root);
    let sub = c.non_empty_string(root, "sub");
    if let Some(s) = sub {
        if !is_valid_agent_id(s) {
            c.invalid("sub", format!("must be an agent id: {ID_SYNTAX}"));
        }
    }
    let exp = c.integer(root, "exp");
    let iat = c.integer(root, "iat");
    if let (Some(exp), Some(iat)) = (exp, iat) {
        if exp <= iat {
            c.invalid(
                "exp",
                format!("must be later than iat ({iat}), found {exp}"),
            );
        }
    }
    let jti = c.non_empty_string(root, "jti");
    let scope = c.string(root, "scope");
    if let Some(s) = scope {
        if parse_scope_string(s).is_none() {
            c.invalid(
                "scope",
                "must be scope-tokens separated by single spaces (RFC 6749 §3.3)",
            );
        }
    }
    let cnf = c.object(root, "cnf").and_then(|m| c.confirmation(m));
    let intent = c.object(root, "intent").and_then(|m| c.intent(m, sub));
    let agent_proof = c.object(root, "agent_proof").and_then(|m| c.agent_proof(m));
    let status = match optional_member(root, "status") {
        None => None,
        Some(v) => match crate::status_list::StatusClaim::deserialize(&v.to_serde()) {
            Ok(status) if !status.status_list.uri.is_empty() => Some(status),
            _ => {
                c.invalid(
                    "status",
                    "must be {\"status_list\": {\"idx\": <non-negative integer>, \"uri\": <non-empty string>}} (draft-ietf-oauth-status-list §6)",
                );
                None
            }
        },
    };

    let problems = c.problems;
    match (
        iss,
        aud,
        sub,
        exp,
        iat,
        jti,
        scope,
        cnf,
        intent,
        agent_proof,
    ) {
        (
            Some(iss),
            Some(aud),
            Some(sub),
            Some(exp),
            Some(iat),
            Some(jti),
            Some(scope),
            Some(cnf),
            Some(intent),
            Some(agent_proof),
        ) if problems.is_empty() => Ok(IntentClaims {
            iss: iss.to_owned(),
            aud,
            sub: sub.to_owned(),
            exp,
            iat,
            jti: jti.to_owned(),
            scope: scope.to_owned(),
            cnf,
            intent,
            agent_proof,
            status,
        }),
        _ => Err(ClaimsError { problems }),
    }
}

#[cfg(test)]
mod strict_tests {
    use super::*;

    #[test]
    fn s4_4_2_decode_claims_refuses_duplicate_claims() {
        let e = decode_claims(br#"{"sub":"a","sub":"b"}"#).unwrap_err();
        assert_eq!(
            e.problems,
            vec![ClaimProblem {
                claim: "sub".into(),
                kind: ClaimProblemKind::Invalid {
                    reason: "given more than once".into()
                }
            }]
        );
        let e = decode_claims(br#"{"intent":{"executed_by":"a","executed_by":"b"}}"#).unwrap_err();
        assert_eq!(e.problems[0].claim, "intent.executed_by");
        assert!(decode_claims(b"[1").is_err());
        // Without duplicates it is validate_claims: every missing claim reported.
        let e = decode_claims(b"{}").unwrap_err();
        assert!(e.problem("iss").is_some() && e.problem("agent_proof").is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The real `jcs` checksum of the §5.2.2 example agent (I-13).
    const CHECKSUM: &str =
        "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d";

    /// The §4.4.3 example payload, verbatim.
    fn draft_4_4_3() -> Value {
        json!({
          "iss": "https://idp.example.com",
          "aud": "https://api.github.com",
          "sub": "vulnerability-patcher-v1",
          "exp": 1735690800,
          "iat": 1735690500,
          "jti": "token_a3f7e89c",
          "scope": "repo:write vulnerability:read",
          "cnf": {
            "jwk": {
              "kty": "RSA",
              "use": "sig",
              "alg": "RS256",
              "n": "xGOr-H7A-PWi...",
              "e": "AQAB"
            }
          },
          "intent": {
            "workflow_id": "auto-patch-workflow-v1",
            "workflow_step": "step_3_patch_application",
            "executed_by": "vulnerability-patcher-v1",
            "delegation_chain": "f3e8d9c7b2a41a3c",
            "step_sequence_hash": "a7c9e2f4b8d61c3f"
          },
          "agent_proof": {
            "agent_checksum": "sha256:a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1...",
            "registration_id": "reg_vulnerability-patcher-v1_1735680000"
          }
        })
    }

    /// The §4.4.3 payload with a well-formed checksum.
    fn valid() -> Value {
        let mut v = draft_4_4_3();
        v["agent_proof"]["agent_checksum"] = json!(CHECKSUM);
        v
    }

    /// The optional `status` claim (draft-ietf-oauth-status-list §6.1,
    /// I-83): read when well-formed, absent is fine, malformed is named.
    #[test]
    fn i83_status_claim_is_optional_and_checked() {
        let mut v = valid();
        assert!(v.get("status").is_none(), "absent when None");
        assert_eq!(validate_claims(&v).unwrap().status, None);
        v["status"] = serde_json::json!({"status_list": {"idx": 7, "uri": "https://i/s/1"}});
        let c = validate_claims(&v).unwrap();
        assert_eq!(c.status.as_ref().unwrap().status_list.idx, 7);
        assert_eq!(serde_json::to_value(&c).unwrap()["status"], v["status"]);
        for bad in [
            serde_json::json!({"status_list": {"idx": -1, "uri": "u"}}),
            serde_json::json!({"status_list": {"idx": 1, "uri": ""}}),
            serde_json::json!({"status_list": {"uri": "u"}}),
            serde_json::json!("x"),
        ] {
            v["status"] = bad;
            let e = validate_claims(&v).unwrap_err();
            assert!(e.problem("status").is_some(), "{e:?}");
        }
    }

    fn problems(v: &Value) -> Vec<(String, ClaimProblemKind)> {
        validate_claims(v)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| (p.claim, p.kind))
            .collect()
    }

    fn missing(claim: &str) -> (String, ClaimProblemKind) {
        (claim.to_owned(), ClaimProblemKind::Missing)
    }

    fn wrong(claim: &str, expected: &'static str) -> (String, ClaimProblemKind) {
        (claim.to_owned(), ClaimProblemKind::WrongType { expected })
    }

    fn invalid(claim: &str, reason: &str) -> (String, ClaimProblemKind) {
        (
            claim.to_owned(),
            ClaimProblemKind::Invalid {
                reason: reason.to_owned(),
            },
        )
    }

    #[test]
    fn s4_4_3_example_round_trips_with_a_valid_checksum() {
        let payload = valid();
        let claims = validate_claims(&payload).unwrap();
        assert_eq!(claims.sub, "vulnerability-patcher-v1");
        assert_eq!(claims.aud, Audience::One("https://api.github.com".into()));
        assert_eq!(claims.exp - claims.iat, 300);
        assert_eq!(claims.scopes(), ["repo:write", "vulnerability:read"]);
        assert_eq!(claims.cnf.jwk.as_ref().unwrap()["kty"], "RSA");
        assert_eq!(
            claims.intent.workflow_step.as_deref(),
            Some("step_3_patch_application")
        );
        assert_eq!(claims.agent_proof.agent_checksum.to_string(), CHECKSUM);
        // serde agrees with the validator, and serialization gives the payload back.
        let de: IntentClaims = serde_json::from_value(payload.clone()).unwrap();
        assert_eq!(de, claims);
        assert_eq!(serde_json::to_value(&claims).unwrap(), payload);
    }

    #[test]
    fn s4_4_3_draft_literal_example_is_rejected_only_for_its_checksum() {
        let e = validate_claims(&draft_4_4_3()).unwrap_err();
        assert_eq!(
            problems(&draft_4_4_3()),
            [invalid(
                "agent_proof.agent_checksum",
                "must be \"sha256:\" followed by 64 lowercase hex digits: checksum must have 64 hex digits, found 35 characters"
            )]
        );
        assert!(e.to_string().starts_with(
            "invalid intent token claims: agent_proof.agent_checksum: must be \"sha256:\""
        ));
        // serde refuses it too.
        assert!(serde_json::from_value::<IntentClaims>(draft_4_4_3()).is_err());
    }

    #[test]
    fn s4_4_2_every_missing_claim_is_reported_in_one_pass() {
        assert_eq!(
            problems(&json!({"nbf": 1})),
            [
                missing("iss"),
                missing("aud"),
                missing("sub"),
                missing("exp"),
                missing("iat"),
                missing("jti"),
                missing("scope"),
                missing("cnf"),
                missing("intent"),
                missing("agent_proof"),
            ]
        );
        assert_eq!(
            problems(&json!({
                "iss": "i", "aud": "a", "sub": "s", "exp": 2, "iat": 1, "jti": "j", "scope": "x",
                "cnf": {}, "intent": {}, "agent_proof": {}
            })),
            [
                missing("cnf.jwk"),
                missing("intent.executed_by"),
                missing("intent.delegation_chain"),
                missing("intent.step_sequence_hash"),
                missing("agent_proof.agent_checksum"),
                missing("agent_proof.registration_id"),
            ]
        );
    }

    #[test]
    fn s4_4_2_every_ill_typed_claim_is_reported_in_one_pass() {
        let e = validate_claims(&json!({
            "iss": 1, "aud": ["a", 2], "sub": null, "exp": "1735690800", "iat": 1.5, "jti": [],
            "scope": {}, "cnf": {"jwk": "k", "jkt": 7},
            "intent": {"workflow_id": 1, "workflow_step": true, "executed_by": 3,
                       "delegation_chain": 4, "step_sequence_hash": null},
            "agent_proof": {"agent_checksum": 5, "registration_id": 6}
        }))
        .unwrap_err();
        let got: Vec<_> = e
            .problems
            .iter()
            .map(|p| (p.claim.as_str(), &p.kind))
            .collect();
        let t = |expected| ClaimProblemKind::WrongType { expected };
        assert_eq!(
            got,
            [
                ("iss", &t("string")),
                ("aud", &t("string or array of strings")),
                ("sub", &t("string")),
                ("exp", &t("integer (NumericDate)")),
                ("iat", &t("integer (NumericDate)")),
                ("jti", &t("string")),
                ("scope", &t("string")),
                ("cnf.jwk", &t("object")),
                ("cnf.jkt", &t("string")),
                ("intent.workflow_id", &t("string")),
                ("intent.workflow_step", &t("string")),
                ("intent.executed_by", &t("string")),
                ("intent.delegation_chain", &t("string")),
                ("intent.step_sequence_hash", &t("string")),
                ("agent_proof.agent_checksum", &t("string")),
                ("agent_proof.registration_id", &t("string")),
            ]
        );
        let shown = e.to_string();
        assert!(shown.starts_with("invalid intent token claims: iss: expected string; aud: expected string or array of strings; "), "{shown}");
        assert!(
            shown.ends_with("agent_proof.registration_id: expected string"),
            "{shown}"
        );
        assert_eq!(problems(&json!("not an object")), [wrong("", "object")]);
        assert_eq!(
            validate_claims(&json!([])).unwrap_err().to_string(),
            "invalid intent token claims: payload: expected object"
        );
        for (name, v) in [
            ("cnf", json!(1)),
            ("intent", json!([])),
            ("agent_proof", json!("x")),
        ] {
            let mut p = valid();
            p[name] = v;
            assert_eq!(problems(&p), [wrong(name, "object")]);
        }
    }

    #[test]
    fn s4_4_2_invalid_values_name_the_claim() {
        let cases: Vec<(&str, Value, (String, ClaimProblemKind))> = vec![
            ("iss", json!(""), invalid("iss", "must not be empty")),
            ("aud", json!(""), invalid("aud", "must not be empty")),
            (
                "aud",
                json!([]),
                invalid("aud", "must not be an empty array"),
            ),
            (
                "aud",
                json!(["a", ""]),
                invalid("aud", "must not contain an empty string"),
            ),
            (
                "aud",
                json!(null),
                wrong("aud", "string or array of strings"),
            ),
            (
                "sub",
                json!("a|b"),
                invalid(
                    "sub",
                    "must be an agent id: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                ),
            ),
            ("iat", json!(-1), invalid("iat", "must not be negative")),
            ("exp", json!(u64::MAX), invalid("exp", "out of range")),
            (
                "exp",
                json!(1735690500),
                invalid(
                    "exp",
                    "must be later than iat (1735690500), found 1735690500",
                ),
            ),
            ("exp", json!(1e10), wrong("exp", "integer (NumericDate)")),
            ("jti", json!(""), invalid("jti", "must not be empty")),
            (
                "scope",
                json!("repo:write  vulnerability:read"),
                invalid(
                    "scope",
                    "must be scope-tokens separated by single spaces (RFC 6749 §3.3)",
                ),
            ),
            (
                "scope",
                json!("a\"b"),
                invalid(
                    "scope",
                    "must be scope-tokens separated by single spaces (RFC 6749 §3.3)",
                ),
            ),
        ];
        for (name, v, want) in cases {
            let mut p = valid();
            p[name] = v.clone();
            if name == "sub" {
                // Keep executed_by == sub so that only sub itself is reported.
                p["intent"]["executed_by"] = v.clone();
            }
            assert_eq!(problems(&p), [want], "{name} = {v}");
        }
    }

    #[test]
    fn s4_4_2_intent_rules() {
        let mut p = valid();
        p["intent"]["executed_by"] = json!("patch-planner");
        assert_eq!(
            problems(&p),
            [invalid(
                "intent.executed_by",
                "must equal sub ('vulnerability-patcher-v1'), found 'patch-planner'"
            )]
        );
        for bad in [
            "F3E8D9C7B2A41A3C",
            "f3e8d9c7b2a41a3",
            "f3e8d9c7b2a41a3c0",
            "g3e8d9c7b2a41a3c",
            "",
        ] {
            let mut p = valid();
            p["intent"]["delegation_chain"] = json!(bad);
            p["intent"]["step_sequence_hash"] = json!(bad);
            let reason = format!("must be 16 lowercase hex digits (§4.4.4), found '{bad}'");
            assert_eq!(
                problems(&p),
                [
                    invalid("intent.delegation_chain", &reason),
                    invalid("intent.step_sequence_hash", &reason)
                ]
            );
        }
        // workflow_id and workflow_step: both or neither.
        let mut p = valid();
        p["intent"].as_object_mut().unwrap().remove("workflow_step");
        assert_eq!(problems(&p), [missing("intent.workflow_step")]);
        let mut p = valid();
        p["intent"]["workflow_id"] = Value::Null;
        assert_eq!(problems(&p), [missing("intent.workflow_id")]);
        let mut p = valid();
        p["intent"]["workflow_step"] = json!("step 3");
        assert_eq!(
            problems(&p),
            [invalid(
                "intent.workflow_step",
                "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
            )]
        );
        let mut p = valid();
        let intent = p["intent"].as_object_mut().unwrap();
        intent.remove("workflow_id");
        intent.remove("workflow_step");
        let claims = validate_claims(&p).unwrap();
        assert_eq!(claims.intent.workflow_id, None);
        // Absent optional members are not serialized.
        assert_eq!(serde_json::to_value(&claims).unwrap(), p);
    }

    #[test]
    fn s4_4_2_agent_proof_rules() {
        let mut p = valid();
        p["agent_proof"]["agent_checksum"] =
            json!(CHECKSUM.to_uppercase().replace("SHA256", "sha256"));
        p["agent_proof"]["registration_id"] = json!("");
        assert_eq!(
            problems(&p),
            [
                invalid(
                    "agent_proof.agent_checksum",
                    "must be \"sha256:\" followed by 64 lowercase hex digits: checksum hex digits must be lowercase"
                ),
                invalid("agent_proof.registration_id", "must not be empty"),
            ]
        );
        let mut p = valid();
        p["agent_proof"]["agent_checksum"] = json!(&CHECKSUM[7..]);
        assert!(matches!(
            validate_claims(&p).unwrap_err().problem("agent_proof.agent_checksum"),
            Some(ClaimProblemKind::Invalid { reason }) if reason.ends_with("checksum must start with \"sha256:\"")
        ));
    }

    #[test]
    fn rfc7800_rfc9449_confirmation_rules() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let mut p = valid();
        p["cnf"] = json!({ "jkt": jkt });
        let claims = validate_claims(&p).unwrap();
        assert_eq!(claims.cnf.jkt.as_deref(), Some(jkt));
        assert_eq!(claims.cnf.jwk, None);
        assert_eq!(serde_json::to_value(&claims).unwrap(), p);

        let cases = [
            (json!({"jkt": "short"}), invalid("cnf.jkt", "must be a base64url SHA-256 JWK thumbprint (43 characters, RFC 9449 §6.1)")),
            (
                json!({"jkt": jkt, "jwk": {"kty": "OKP"}}),
                invalid("cnf", "must hold a single proof-of-possession key: jwk or jkt, not both (RFC 7800 §3.1)"),
            ),
            (json!({"jwk": {"crv": "Ed25519"}}), missing("cnf.jwk.kty")),
            (json!({"jwk": null, "jkt": null}), missing("cnf.jwk")),
            (
                json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "x", "d": "secret"}}),
                invalid("cnf.jwk", "must be a public key, found private or symmetric key member 'd'"),
            ),
            (
                json!({"jwk": {"kty": "oct", "k": "secret"}}),
                invalid("cnf.jwk", "must be a public key, found private or symmetric key member 'k'"),
            ),
        ];
        for (cnf, want) in cases {
            let mut p = valid();
            p["cnf"] = cnf.clone();
            assert_eq!(problems(&p), [want], "{cnf}");
        }
    }

    #[test]
    fn s4_4_2_unknown_claims_are_allowed_and_aud_may_be_an_array() {
        let mut p = valid();
        p["aud"] = json!(["https://api.github.com", "https://rs.example"]);
        p["nbf"] = json!(1735690500);
        p["intent"]["approved_by"] = json!("user");
        let claims = validate_claims(&p).unwrap();
        assert!(claims.aud.contains("https://rs.example"));
        assert!(claims.aud.contains("https://api.github.com"));
        assert!(!claims.aud.contains("https://api.github"));
        assert_eq!(claims.aud.as_slice().len(), 2);
        assert!(Audience::One("x".into()).contains("x"));
        assert_eq!(
            serde_json::to_value(&claims.aud).unwrap(),
            json!(["https://api.github.com", "https://rs.example"])
        );
        assert_eq!(
            serde_json::from_value::<Audience>(json!("x")).unwrap(),
            Audience::One("x".into())
        );
    }
}
