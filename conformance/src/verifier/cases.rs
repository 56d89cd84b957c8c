//! The verifier test catalogue and the tests themselves: the good intent
//! token (every §4.4.2 claim, the shape our issuer emits) presented with a
//! good DPoP proof (RFC 9449 §4.2), then each defect of the verifier's
//! negative matrix (crates/verifier/tests/token_attacks.rs and
//! dpop_attacks.rs), one at a time.

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::http::{Presentation, Response, Sent, Target};
use super::jose::{self, ath, b64_json, random_id, Key, SigAlg};
use super::{PopPolicy, VerifierArgs};
use crate::report::{Check, Run, TestInfo};
use crate::Error;

/// The agent the tokens are issued to (`sub`, `intent.executed_by`).
const AGENT_ID: &str = "vulnerability-patcher-v1";
/// A scope no resource requires, for the insufficient-scope test.
const OTHER_SCOPE: &str = "conformance:read-only";

// ---------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------

const VALID: &str = "VER-6.5.3-valid-token-accepted";
const MISSING_TOKEN: &str = "VER-6.5.3-missing-token";
const ALG_NONE: &str = "VER-6.5.3-alg-none";
const ALG_HS256: &str = "VER-6.5.3-alg-hs256-public-key-secret";
const UNKNOWN_KID: &str = "VER-6.5.3-unknown-kid";
const FOREIGN_KEY: &str = "VER-6.5.3-foreign-key-trusted-kid";
const TAMPERED_PAYLOAD: &str = "VER-6.5.3-tampered-payload";
const TAMPERED_SIGNATURE: &str = "VER-6.5.3-tampered-signature";
const EXPIRED: &str = "VER-6.5.3-expired";
const IAT_FUTURE: &str = "VER-6.5.3-iat-in-future";
const WRONG_ISS: &str = "VER-6.5.3-wrong-issuer";
const WRONG_AUD: &str = "VER-6.5.3-wrong-audience";
const CLIENT_TOKEN: &str = "VER-6.5.3-client-access-token";
const OVERSIZED: &str = "VER-6.5.3-oversized-token";
const SCOPE: &str = "VER-6.5.3-insufficient-scope";
const WRONG_WORKFLOW: &str = "VER-6.5.3-wrong-workflow";
const WRONG_STEP: &str = "VER-6.5.3-wrong-workflow-step";
const NO_WORKFLOW: &str = "VER-6.5.3-no-workflow";
const BAD_CHECKSUM: &str = "VER-9.1.1-malformed-agent-checksum";

const DPOP_MISSING: &str = "VER-9.2.2-dpop-missing-proof";
const DPOP_BEARER: &str = "VER-9.2.2-dpop-bearer-scheme";
const DPOP_STOLEN: &str = "VER-9.2.2-dpop-stolen-token-other-key";
const DPOP_VICTIM_JWK: &str = "VER-9.2.2-dpop-victim-jwk-other-signer";
const DPOP_REPLAY: &str = "VER-9.2.2-dpop-replayed-proof";
const DPOP_HTM: &str = "VER-9.2.2-dpop-wrong-htm";
const DPOP_HTU: &str = "VER-9.2.2-dpop-wrong-htu";
const DPOP_STALE: &str = "VER-9.2.2-dpop-stale-iat";
const DPOP_FUTURE: &str = "VER-9.2.2-dpop-future-iat";
const DPOP_ATH: &str = "VER-9.2.2-dpop-wrong-ath";
const DPOP_NO_ATH: &str = "VER-9.2.2-dpop-missing-ath";
const DPOP_PRIVATE: &str = "VER-9.2.2-dpop-private-key-in-jwk";
const DPOP_TWO: &str = "VER-9.2.2-dpop-two-proofs";
const DPOP_NONE: &str = "VER-9.2.2-dpop-alg-none";
const DPOP_TYP: &str = "VER-9.2.2-dpop-wrong-typ";
const DPOP_NO_JTI: &str = "VER-9.2.2-dpop-missing-jti";
const DPOP_EDDSA: &str = "VER-9.2.2-dpop-ed25519-key-alg-eddsa";
const DPOP_ED25519: &str = "VER-9.2.2-dpop-ed25519-key-alg-ed25519";

/// The §4.4.2 claims every token must carry, each removed by one test:
/// (test id, claim path, requirement ids).
const MISSING_CLAIMS: &[(&str, &[&str], &[&str])] = &[
    ("VER-4.4.2-missing-iss", &["iss"], &["R-4.4.2-1"]),
    ("VER-4.4.2-missing-aud", &["aud"], &["R-4.4.2-2"]),
    ("VER-4.4.2-missing-sub", &["sub"], &["R-4.4.2-3"]),
    ("VER-4.4.2-missing-exp", &["exp"], &["R-4.4.2-4"]),
    ("VER-4.4.2-missing-iat", &["iat"], &["R-4.4.2-6"]),
    ("VER-4.4.2-missing-jti", &["jti"], &["R-4.4.2-7"]),
    ("VER-4.4.2-missing-scope", &["scope"], &["R-4.4.2-8"]),
    ("VER-4.4.2-missing-cnf", &["cnf"], &["R-4.4.2-9"]),
    (
        "VER-4.4.2-missing-workflow-id",
        &["intent", "workflow_id"],
        &["R-4.4.2-10"],
    ),
    (
        "VER-4.4.2-missing-workflow-step",
        &["intent", "workflow_step"],
        &["R-4.4.2-11"],
    ),
    (
        "VER-4.4.2-missing-executed-by",
        &["intent", "executed_by"],
        &["R-4.4.2-12"],
    ),
    (
        "VER-4.4.2-missing-delegation-chain",
        &["intent", "delegation_chain"],
        &["R-4.4.2-13"],
    ),
    (
        "VER-4.4.2-missing-step-sequence-hash",
        &["intent", "step_sequence_hash"],
        &["R-4.4.2-14"],
    ),
    (
        "VER-4.4.2-missing-intent",
        &["intent"],
        &[
            "R-4.4.2-10",
            "R-4.4.2-11",
            "R-4.4.2-12",
            "R-4.4.2-13",
            "R-4.4.2-14",
        ],
    ),
    (
        "VER-4.4.2-missing-agent-checksum",
        &["agent_proof", "agent_checksum"],
        &["R-4.4.2-15"],
    ),
    (
        "VER-4.4.2-missing-registration-id",
        &["agent_proof", "registration_id"],
        &["R-4.4.2-16"],
    ),
    (
        "VER-4.4.2-missing-agent-proof",
        &["agent_proof"],
        &["R-4.4.2-15", "R-4.4.2-16"],
    ),
];

const ALL_CLAIMS: &[&str] = &[
    "R-4.4.2-1",
    "R-4.4.2-2",
    "R-4.4.2-3",
    "R-4.4.2-4",
    "R-4.4.2-6",
    "R-4.4.2-7",
    "R-4.4.2-8",
    "R-4.4.2-9",
    "R-4.4.2-10",
    "R-4.4.2-11",
    "R-4.4.2-12",
    "R-4.4.2-13",
    "R-4.4.2-14",
    "R-4.4.2-15",
    "R-4.4.2-16",
];
const POP: &[&str] = &["R-9.2.2-1", "R-9.2.2-2", "R-9.2.2-3"];
const POP_CHECK: &[&str] = &["R-9.2.2-1", "R-9.2.2-3"];

/// Every test of the verifier mode, in run order.
pub fn catalogue() -> Vec<TestInfo> {
    let t = TestInfo::new;
    let mut v = vec![
        t(VALID, "6.5.3", "MUST", ALL_CLAIMS,
          "a token with every §4.4.2 claim, signed by the trusted issuer, with a valid DPoP proof, is accepted (step 9)"),
        t(MISSING_TOKEN, "6.5.3", "MUST", &[],
          "a request without Authorization gets 401 with a challenge (step 1; RFC 6750 §3.1, RFC 9449 §7.1)"),
        t(ALG_NONE, "6.5.3", "MUST", &[],
          "an unsecured token (alg none) is refused with 401 invalid_token (step 3; RFC 8725 §3.1)"),
        t(ALG_HS256, "6.5.3", "MUST", &[],
          "an HS256 token keyed with the issuer's public JWK is refused (step 3; algorithm confusion, RFC 8725 §2.1)"),
        t(UNKNOWN_KID, "6.5.3", "MUST", &[],
          "a token signed by a key that is not in the issuer's JWKS, under its own kid, is refused (steps 2-3)"),
        t(FOREIGN_KEY, "6.5.3", "MUST", &[],
          "a token signed by a foreign key but naming the trusted kid is refused (step 3)"),
        t(TAMPERED_PAYLOAD, "6.5.3", "MUST", &[],
          "a token whose payload was altered after signing (scope widened) is refused (step 3)"),
        t(TAMPERED_SIGNATURE, "6.5.3", "MUST", &[],
          "a token with one bit of its signature flipped is refused (step 3)"),
        t(EXPIRED, "6.5.3", "MUST", &["R-4.4.2-4"],
          "a token whose exp passed an hour ago is refused (step 4)"),
        t(IAT_FUTURE, "6.5.3", "MUST", &["R-4.4.2-6"],
          "a token issued an hour in the future is refused (step 4)"),
        t(WRONG_ISS, "6.5.3", "MUST", &["R-4.4.2-1"],
          "a token of another issuer, signed with the trusted key, is refused (step 4)"),
        t(WRONG_AUD, "6.5.3", "MUST", &["R-4.4.2-2"],
          "a token for another audience is refused (step 4)"),
        t(CLIENT_TOKEN, "6.5.3", "MUST", &["R-4.4.2-9", "R-4.4.2-15"],
          "a client access token (typ at+jwt, no intent, agent_proof or cnf) of the same issuer is refused (steps 4-5; I-34)"),
        t(BAD_CHECKSUM, "9.1.1", "MUST", &["R-9.1.1-4"],
          "a token whose agent_proof.agent_checksum is not sha256:<64 hex> is refused"),
        t(SCOPE, "6.5.3", "MUST", &["R-4.4.2-8"],
          "a token without the required scope is refused with 403 insufficient_scope and scope= (step 7; RFC 6750 §3.1)"),
        t(WRONG_WORKFLOW, "6.5.3", "MUST", &["R-4.4.2-10"],
          "a token bound to another workflow is refused (step 6)"),
        t(WRONG_STEP, "6.5.3", "MUST", &["R-4.4.2-11"],
          "a token for a step not authorized on this API is refused (step 6)"),
        t(NO_WORKFLOW, "6.5.3", "MUST", &["R-4.4.2-10", "R-4.4.2-11"],
          "a token without workflow binding is refused on a workflow-bound API (step 6)"),
        t(OVERSIZED, "6.5.3", "SHOULD", &[],
          "a validly signed 64 KiB token is refused without being processed (step 1; size cap, I-33)"),
    ];
    for (id, path, reqs) in MISSING_CLAIMS {
        let title = format!(
            "a token without the REQUIRED claim {} is refused with 401 invalid_token (§6.5.3 steps 4-6)",
            path.join(".")
        );
        v.push(TestInfo::new(id, "4.4.2", "REQUIRED", reqs, &title));
    }
    v.extend([
        t(DPOP_MISSING, "9.2.2", "SHOULD", POP,
          "Authorization: DPoP without a DPoP proof is refused with a DPoP challenge"),
        t(DPOP_BEARER, "9.2.2", "SHOULD", POP,
          "a cnf-bound token presented as Bearer is refused, under a required or an optional PoP policy (RFC 9449 §7.1, §7.2)"),
        t(DPOP_STOLEN, "9.2.2", "SHOULD", POP_CHECK,
          "a stolen token with a proof signed by the thief's own key is refused (cnf key mismatch; threat T2)"),
        t(DPOP_VICTIM_JWK, "9.2.2", "SHOULD", POP_CHECK,
          "a proof naming the victim's public jwk but signed by another key is refused"),
        t(DPOP_REPLAY, "9.2.2", "SHOULD", POP_CHECK,
          "a proof accepted once is refused when replayed (same jti; RFC 9449 §11.1)"),
        t(DPOP_HTM, "9.2.2", "SHOULD", POP_CHECK,
          "a proof for another HTTP method is refused (RFC 9449 §4.3 step 8)"),
        t(DPOP_HTU, "9.2.2", "SHOULD", POP_CHECK,
          "a proof for another URL is refused (RFC 9449 §4.3 step 9)"),
        t(DPOP_STALE, "9.2.2", "SHOULD", POP_CHECK,
          "a proof issued an hour ago is refused (RFC 9449 §4.3 step 11)"),
        t(DPOP_FUTURE, "9.2.2", "SHOULD", POP_CHECK,
          "a proof issued an hour in the future is refused (RFC 9449 §4.3 step 11)"),
        t(DPOP_ATH, "9.2.2", "SHOULD", POP_CHECK,
          "a proof bound to another access token (ath) is refused (RFC 9449 §4.3 step 12)"),
        t(DPOP_NO_ATH, "9.2.2", "SHOULD", POP_CHECK,
          "a proof without ath is refused when presented with a token (RFC 9449 §4.3 step 12)"),
        t(DPOP_PRIVATE, "9.2.2", "SHOULD", POP_CHECK,
          "a proof whose jwk carries the private key (d) is refused (RFC 9449 §4.3 step 7)"),
        t(DPOP_TWO, "9.2.2", "SHOULD", POP_CHECK,
          "a request with two DPoP headers is refused (RFC 9449 §4.3 step 1)"),
        t(DPOP_NONE, "9.2.2", "SHOULD", POP_CHECK,
          "an unsigned proof (alg none) is refused (RFC 9449 §4.3 step 5)"),
        t(DPOP_TYP, "9.2.2", "SHOULD", POP_CHECK,
          "a proof with typ JWT instead of dpop+jwt is refused (RFC 9449 §4.3 step 4)"),
        t(DPOP_NO_JTI, "9.2.2", "SHOULD", POP_CHECK,
          "a proof without jti is refused (RFC 9449 §4.3 step 3)"),
        // Algorithm interop (RFC 8037 / RFC 9864), no draft requirement of its own.
        t(DPOP_EDDSA, "9.2.2", "SHOULD", &[],
          "an agent with an Ed25519 key (§9.4.1) proves possession with alg EdDSA (RFC 8037): accepted"),
        t(DPOP_ED25519, "9.2.2", "SHOULD", &[],
          "an agent with an Ed25519 key proves possession with alg Ed25519 (RFC 9864, what oauth4webapi sends): accepted"),
    ]);
    v
}

// ---------------------------------------------------------------------------
// Keys, tokens and proofs
// ---------------------------------------------------------------------------

/// The keys of a run.
#[derive(Debug)]
pub struct Keys {
    /// The test issuer's signing key (the only key of its JWKS).
    issuer: Key,
    /// A key of the same algorithm that the JWKS does not contain.
    rogue: Key,
    /// The agent's proof-of-possession key (`cnf.jwk`).
    agent: Key,
    /// Another agent's key (the thief of threat T2).
    thief: Key,
    /// An agent key of the other §9.4.1 type, Ed25519, for the proofs made
    /// under `EdDSA` and under its RFC 9864 name `Ed25519`.
    agent_okp: Key,
}

impl Keys {
    /// Fresh keys; the issuer signs with `alg`, the agents use ES256 (and
    /// one Ed25519 agent key).
    pub fn generate(alg: SigAlg) -> Result<Keys, Error> {
        let tag = &random_id()[..8];
        Ok(Keys {
            issuer: Key::generate(alg, &format!("conformance-issuer-{tag}"))?,
            rogue: Key::generate(alg, &format!("conformance-rogue-{tag}"))?,
            agent: Key::generate(SigAlg::Es256, "agent")?,
            thief: Key::generate(SigAlg::Es256, "thief")?,
            agent_okp: Key::generate(SigAlg::Ed25519, "agent-okp")?,
        })
    }

    /// The JWK Set the test issuer publishes.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.issuer.jwks_entry()]})
    }

    /// The `kid` of the issuer key.
    pub fn issuer_kid(&self) -> &str {
        self.issuer.kid()
    }
}

/// What the tests need: the options, the issuer identifier and the keys.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The mode's options.
    pub args: &'a VerifierArgs,
    /// The test issuer's identifier.
    pub issuer: String,
    /// The keys.
    pub keys: Keys,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The first 16 hex digits of SHA-256 over the `|`-joined items (§4.4.4).
fn hash16(items: &[&str]) -> String {
    let digest = hex::encode(Sha256::digest(items.join("|").as_bytes()));
    digest[..16].to_owned()
}

/// An edit of a proof's header and claims.
type ProofEdit<'k> = Box<dyn Fn(&mut Value, &mut Value) + 'k>;

/// An edit of a token's claims.
type ClaimsEdit = Box<dyn Fn(&mut Value)>;

/// How a proof deviates from a good one: edits of its header and claims
/// after they are filled in, the signing key, and whether it is unsigned.
struct ProofSpec<'k> {
    signer: &'k Key,
    unsigned: bool,
    edit: ProofEdit<'k>,
}

impl Ctx<'_> {
    /// The claims of a good intent token at `now` (§4.4.2, the shape of
    /// crates/issuer/src/service.rs: `aud` a string, `scope` space-delimited,
    /// `cnf.jwk`, `intent` with the workflow binding, `agent_proof`).
    fn claims(&self, now: i64) -> Value {
        let a = self.args;
        json!({
            "iss": self.issuer,
            "aud": a.audience,
            "sub": AGENT_ID,
            "exp": now + 300,
            "iat": now,
            "jti": random_id(),
            "scope": a.scope.split_whitespace().collect::<Vec<_>>().join(" "),
            "cnf": {"jwk": self.keys.agent.public_jwk()},
            "intent": {
                "workflow_id": a.workflow_id,
                "workflow_step": a.workflow_step,
                "executed_by": AGENT_ID,
                "delegation_chain": hash16(&[AGENT_ID]),
                "step_sequence_hash": hash16(&[a.workflow_step.as_str()]),
            },
            "agent_proof": {
                "agent_checksum": format!("sha256:{}", hex::encode(Sha256::digest(b"conformance agent"))),
                "registration_id": format!("reg_{AGENT_ID}_conformance"),
            },
        })
    }

    fn header(&self, key: &Key, typ: &str) -> Value {
        json!({"alg": key.alg().name(), "kid": key.kid(), "typ": typ})
    }

    /// A good token.
    fn good_token(&self) -> Result<String, Error> {
        self.token_with(|_| {})
    }

    /// A token signed by the issuer key with edited claims.
    fn token_with(&self, edit: impl FnOnce(&mut Value)) -> Result<String, Error> {
        let mut c = self.claims(now());
        edit(&mut c);
        self.keys
            .issuer
            .sign(&self.header(&self.keys.issuer, "JWT"), &c)
    }

    /// A DPoP proof (RFC 9449 §4.2) for the target request, bound to `token`.
    fn proof(
        &self,
        target: &TargetInfo,
        spec: &ProofSpec<'_>,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<String, Error> {
        let key = spec.signer;
        let mut header =
            json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk()});
        let mut claims = json!({
            "jti": random_id(),
            "htm": target.method,
            "htu": target.url,
            "iat": now(),
            "ath": ath(token),
        });
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        (spec.edit)(&mut header, &mut claims);
        if spec.unsigned {
            Ok(format!("{}.{}.", b64_json(&header), b64_json(&claims)))
        } else {
            key.sign(&header, &claims)
        }
    }

    fn good_spec(&self) -> ProofSpec<'_> {
        ProofSpec {
            signer: &self.keys.agent,
            unsigned: false,
            edit: Box::new(|_, _| {}),
        }
    }

    /// `token` presented as the policy wants: `DPoP` with a good proof of
    /// the agent, or `Bearer` when PoP is disabled.
    fn present(
        &self,
        target: &TargetInfo,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Presentation, Error> {
        if self.args.pop == PopPolicy::Disabled {
            return Ok(Presentation {
                authorization: Some(format!("Bearer {token}")),
                dpop: Vec::new(),
            });
        }
        Ok(Presentation {
            authorization: Some(format!("DPoP {token}")),
            dpop: vec![self.proof(target, &self.good_spec(), token, nonce)?],
        })
    }

    /// `token` with the DPoP scheme and the proof of `spec`.
    fn present_proof(
        &self,
        target: &TargetInfo,
        token: &str,
        spec: &ProofSpec<'_>,
        nonce: Option<&str>,
    ) -> Result<Presentation, Error> {
        Ok(Presentation {
            authorization: Some(format!("DPoP {token}")),
            dpop: vec![self.proof(target, spec, token, nonce)?],
        })
    }

    /// The challenge scheme token errors are expected under.
    fn token_scheme(&self) -> &'static str {
        if self.args.pop == PopPolicy::Disabled {
            "Bearer"
        } else {
            "DPoP"
        }
    }
}

/// The method and URL proofs are made for.
struct TargetInfo {
    method: String,
    url: String,
}

// ---------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------

/// One acceptable refusal.
#[derive(Debug, Clone)]
struct Refusal {
    status: u16,
    /// The challenge scheme required (`None`: no challenge required).
    scheme: Option<&'static str>,
    /// Acceptable `error` values of that challenge (empty: any, or none).
    errors: &'static [&'static str],
    /// Scopes of which one must be in the challenge's `scope`.
    scope: Option<Vec<String>>,
}

impl Refusal {
    fn new(status: u16, scheme: &'static str, errors: &'static [&'static str]) -> Refusal {
        Refusal {
            status,
            scheme: Some(scheme),
            errors,
            scope: None,
        }
    }

    fn bare(status: u16) -> Refusal {
        Refusal {
            status,
            scheme: None,
            errors: &[],
            scope: None,
        }
    }

    fn matches(&self, r: &Response) -> bool {
        if r.status != self.status {
            return false;
        }
        let Some(scheme) = self.scheme else {
            return true;
        };
        r.challenges.iter().any(|c| {
            c.scheme.eq_ignore_ascii_case(scheme)
                && (self.errors.is_empty()
                    || c.params
                        .get("error")
                        .is_some_and(|e| self.errors.contains(&e.as_str())))
                && self.scope.as_ref().is_none_or(|want| {
                    c.params.get("scope").is_some_and(|got| {
                        got.split_whitespace().any(|s| want.iter().any(|w| w == s))
                    })
                })
        })
    }

    fn describe(&self) -> String {
        let mut s = self.status.to_string();
        if let Some(scheme) = self.scheme {
            s.push_str(&format!(" with a {scheme} challenge"));
            match self.errors {
                [] => {}
                [one] => s.push_str(&format!(" error=\"{one}\"")),
                many => s.push_str(&format!(" error in {many:?}")),
            }
            if let Some(scope) = &self.scope {
                s.push_str(&format!(" scope=\"{}\"", scope.join(" ")));
            }
        }
        s
    }
}

/// What a test expects.
#[derive(Debug, Clone)]
enum Expect {
    /// A 2xx response.
    Accepted,
    /// One of these refusals; `transport_ok`: a closed connection counts as one.
    Refused {
        alternatives: Vec<Refusal>,
        transport_ok: bool,
    },
}

impl Expect {
    fn one(r: Refusal) -> Expect {
        Expect::Refused {
            alternatives: vec![r],
            transport_ok: false,
        }
    }

    fn any(alternatives: Vec<Refusal>) -> Expect {
        Expect::Refused {
            alternatives,
            transport_ok: false,
        }
    }

    fn judge(&self, sent: &Sent) -> Check {
        match (self, sent) {
            (Expect::Accepted, Sent::Response(r, _)) => {
                Check::expect((200..300).contains(&r.status), || {
                    format!("expected acceptance (2xx), {}", r.summary())
                })
            }
            (Expect::Accepted, Sent::Transport(e)) => Check::Fail(format!(
                "expected acceptance (2xx), the request failed: {e}"
            )),
            (
                Expect::Refused {
                    alternatives,
                    transport_ok,
                },
                sent,
            ) => {
                let describe = || {
                    alternatives
                        .iter()
                        .map(Refusal::describe)
                        .collect::<Vec<_>>()
                        .join(", or ")
                };
                match sent {
                    Sent::Response(r, _) => {
                        Check::expect(alternatives.iter().any(|a| a.matches(r)), || {
                            format!("expected {}, {}", describe(), r.summary())
                        })
                    }
                    Sent::Transport(_) if *transport_ok => Check::Pass,
                    Sent::Transport(e) => {
                        Check::Fail(format!("expected {}, the request failed: {e}", describe()))
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// Sends what `build` makes and judges the answer against `expect`.
async fn check<F>(target: &mut Target, expect: &Expect, build: F) -> Result<Check, Error>
where
    F: Fn(Option<&str>) -> Result<Presentation, Error>,
{
    let sent = target.send(build).await?;
    Ok(expect.judge(&sent))
}

/// Runs every selected test.
pub async fn run_all(run: &mut Run, ctx: &Ctx<'_>, target: &mut Target) -> Result<(), Error> {
    let info = TargetInfo {
        method: target.method.as_str().to_owned(),
        url: target.url.clone(),
    };
    let scheme = ctx.token_scheme();
    let invalid_token = Expect::one(Refusal::new(401, scheme, &["invalid_token"]));

    // The valid presentation first: if it is refused, no refusal below
    // would mean anything.
    run.start_timer();
    let token = ctx.good_token()?;
    let valid = check(target, &Expect::Accepted, |n| ctx.present(&info, &token, n)).await?;
    let valid_ok = valid == Check::Pass;
    if run.wants(VALID) {
        run.record(VALID, valid);
    }
    if !valid_ok {
        let ids: Vec<String> = run
            .catalogue()
            .iter()
            .map(|t| t.id.clone())
            .filter(|id| id != VALID)
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        run.skip_all(
            &ids,
            "the valid token was not accepted, so a refusal would prove nothing",
        );
        return Ok(());
    }

    // §6.5.3 step 1: no credentials at all.
    if run.wants(MISSING_TOKEN) {
        run.start_timer();
        let expect = if ctx.args.pop == PopPolicy::Required {
            Expect::one(Refusal::new(401, "DPoP", &[]))
        } else {
            Expect::any(vec![
                Refusal::new(401, "Bearer", &[]),
                Refusal::new(401, "DPoP", &[]),
            ])
        };
        let c = check(target, &expect, |_| Ok(Presentation::default())).await?;
        run.record(MISSING_TOKEN, c);
    }

    // Token defects, each presented with a valid proof of the agent.
    let k = &ctx.keys;
    let now = now();
    let mut token_cases: Vec<(&str, Result<String, Error>)> = Vec::new();
    let claims = ctx.claims(now);
    token_cases.push((ALG_NONE, {
        let h = json!({"alg": "none", "kid": k.issuer.kid(), "typ": "JWT"});
        Ok(format!("{}.{}.", b64_json(&h), b64_json(&claims)))
    }));
    token_cases.push((ALG_HS256, {
        let h = json!({"alg": "HS256", "kid": k.issuer.kid(), "typ": "JWT"});
        let secret = k.issuer.jwks_entry().to_string();
        jose::sign_hs256(&h, &claims, secret.as_bytes())
    }));
    token_cases.push((
        UNKNOWN_KID,
        k.rogue.sign(&ctx.header(&k.rogue, "JWT"), &claims),
    ));
    token_cases.push((FOREIGN_KEY, {
        let h = json!({"alg": k.rogue.alg().name(), "kid": k.issuer.kid(), "typ": "JWT"});
        k.rogue.sign(&h, &claims)
    }));
    token_cases.push((TAMPERED_PAYLOAD, {
        let good = ctx.good_token()?;
        jose::tamper_payload(&good, |c| {
            c["scope"] = json!(format!("{} repo:admin", ctx.args.scope));
            c["exp"] = json!(now + 86_400);
        })
        .ok_or_else(|| Error::Setup("cannot tamper with our own token".into()))
    }));
    token_cases.push((TAMPERED_SIGNATURE, {
        let good = ctx.good_token()?;
        jose::tamper_signature(&good)
            .ok_or_else(|| Error::Setup("cannot tamper with our own token".into()))
    }));
    token_cases.push((
        EXPIRED,
        ctx.token_with(|c| {
            c["iat"] = json!(now - 3900);
            c["exp"] = json!(now - 3600);
        }),
    ));
    token_cases.push((
        IAT_FUTURE,
        ctx.token_with(|c| {
            c["iat"] = json!(now + 3600);
            c["exp"] = json!(now + 3900);
        }),
    ));
    token_cases.push((
        WRONG_ISS,
        ctx.token_with(|c| c["iss"] = json!("https://untrusted-issuer.example.com")),
    ));
    token_cases.push((
        WRONG_AUD,
        ctx.token_with(|c| c["aud"] = json!("https://other-api.example.com")),
    ));
    token_cases.push((CLIENT_TOKEN, {
        // An RFC 9068 client access token (what our issuer gives clients).
        let c = json!({
            "iss": ctx.issuer, "sub": "conformance-client", "aud": ctx.args.audience,
            "client_id": "conformance-client", "iat": now, "exp": now + 300,
            "jti": random_id(), "scope": ctx.args.scope,
        });
        k.issuer.sign(&ctx.header(&k.issuer, "at+jwt"), &c)
    }));
    token_cases.push((
        BAD_CHECKSUM,
        ctx.token_with(|c| c["agent_proof"]["agent_checksum"] = json!("md5:0123456789abcdef")),
    ));
    for (id, path, _) in MISSING_CLAIMS {
        token_cases.push((id, ctx.token_with(|c| remove_path(c, path))));
    }
    for (id, token) in token_cases {
        if !run.wants(id) {
            continue;
        }
        run.start_timer();
        let token = token?;
        let c = check(target, &invalid_token, |n| ctx.present(&info, &token, n)).await?;
        run.record(id, c);
    }

    // §6.5.3 steps 6-7: route requirements.
    if run.wants(SCOPE) {
        run.start_timer();
        let token = ctx.token_with(|c| c["scope"] = json!(OTHER_SCOPE))?;
        let mut r = Refusal::new(403, scheme, &["insufficient_scope"]);
        r.scope = Some(
            ctx.args
                .scope
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        );
        let c = check(target, &Expect::one(r), |n| ctx.present(&info, &token, n)).await?;
        run.record(SCOPE, c);
    }
    // The draft gives no status for a workflow mismatch: our verifier says
    // 401 invalid_token (I-33); 403 insufficient_scope is accepted too.
    let workflow_refusal = Expect::any(vec![
        Refusal::new(401, scheme, &["invalid_token"]),
        Refusal::new(403, scheme, &["insufficient_scope"]),
    ]);
    let workflow_cases: [(&str, ClaimsEdit); 3] = [
        (
            WRONG_WORKFLOW,
            Box::new(|c| c["intent"]["workflow_id"] = json!("conformance-other-workflow")),
        ),
        (
            WRONG_STEP,
            Box::new(|c| c["intent"]["workflow_step"] = json!("conformance_other_step")),
        ),
        (
            NO_WORKFLOW,
            Box::new(|c| {
                if let Some(i) = c["intent"].as_object_mut() {
                    i.remove("workflow_id");
                    i.remove("workflow_step");
                }
            }),
        ),
    ];
    for (id, edit) in workflow_cases {
        if run.wants(id) {
            run.start_timer();
            let token = ctx.token_with(|c| edit(c))?;
            let c = check(target, &workflow_refusal, |n| ctx.present(&info, &token, n)).await?;
            run.record(id, c);
        }
    }
    if run.wants(OVERSIZED) {
        run.start_timer();
        let token = ctx.token_with(|c| c["padding"] = json!("x".repeat(64 * 1024)))?;
        let expect = Expect::Refused {
            alternatives: vec![
                Refusal::new(401, scheme, &["invalid_token"]),
                Refusal::bare(400),
                Refusal::bare(413),
                Refusal::bare(431),
            ],
            transport_ok: true,
        };
        let c = check(target, &expect, |n| ctx.present(&info, &token, n)).await?;
        run.record(OVERSIZED, c);
    }

    run_pop(run, ctx, target, &info).await
}

/// The §9.2.2 proof-of-possession tests.
async fn run_pop(
    run: &mut Run,
    ctx: &Ctx<'_>,
    target: &mut Target,
    info: &TargetInfo,
) -> Result<(), Error> {
    let pop_ids = [
        DPOP_MISSING,
        DPOP_BEARER,
        DPOP_STOLEN,
        DPOP_VICTIM_JWK,
        DPOP_REPLAY,
        DPOP_HTM,
        DPOP_HTU,
        DPOP_STALE,
        DPOP_FUTURE,
        DPOP_ATH,
        DPOP_NO_ATH,
        DPOP_PRIVATE,
        DPOP_TWO,
        DPOP_NONE,
        DPOP_TYP,
        DPOP_NO_JTI,
        DPOP_EDDSA,
        DPOP_ED25519,
    ];
    match ctx.args.pop {
        PopPolicy::Disabled => {
            run.skip_all(
                &pop_ids,
                "--pop disabled: the resource server does not check proof-of-possession",
            );
            return Ok(());
        }
        // RFC 9449 §7.2: even where bearer tokens are accepted, a cnf-bound
        // token presented as Bearer MUST be rejected (I-49), so DPOP_BEARER
        // runs under `optional` too.
        PopPolicy::Optional | PopPolicy::Required => {}
    }
    let k = &ctx.keys;
    let bad_proof = Expect::one(Refusal::new(401, "DPoP", &["invalid_dpop_proof"]));
    let missing = Expect::one(Refusal::new(
        401,
        "DPoP",
        &["invalid_dpop_proof", "invalid_token"],
    ));

    if run.wants(DPOP_MISSING) {
        run.start_timer();
        let token = ctx.good_token()?;
        let c = check(target, &missing, |_| {
            Ok(Presentation {
                authorization: Some(format!("DPoP {token}")),
                dpop: Vec::new(),
            })
        })
        .await?;
        run.record(DPOP_MISSING, c);
    }
    if run.wants(DPOP_BEARER) {
        run.start_timer();
        let token = ctx.good_token()?;
        let c = check(target, &missing, |_| {
            Ok(Presentation {
                authorization: Some(format!("Bearer {token}")),
                dpop: Vec::new(),
            })
        })
        .await?;
        run.record(DPOP_BEARER, c);
    }
    if run.wants(DPOP_REPLAY) {
        run.start_timer();
        let token = ctx.good_token()?;
        let c = match target
            .send(|n| ctx.present_proof(info, &token, &ctx.good_spec(), n))
            .await?
        {
            Sent::Response(r, p) if (200..300).contains(&r.status) => {
                match target.send_raw(&p).await {
                    Ok(r) => bad_proof.judge(&Sent::Response(r, p)),
                    Err(e) => Check::Fail(format!("the replay request failed: {e}")),
                }
            }
            Sent::Response(r, _) => Check::Fail(format!(
                "the first use of a fresh proof was not accepted: {}",
                r.summary()
            )),
            Sent::Transport(e) => Check::Fail(format!("the first request failed: {e}")),
        };
        run.record(DPOP_REPLAY, c);
    }
    if run.wants(DPOP_TWO) {
        run.start_timer();
        let token = ctx.good_token()?;
        let expect = Expect::any(vec![
            Refusal::new(401, "DPoP", &["invalid_dpop_proof"]),
            Refusal::bare(400),
        ]);
        let c = check(target, &expect, |n| {
            let spec = ctx.good_spec();
            Ok(Presentation {
                authorization: Some(format!("DPoP {token}")),
                dpop: vec![
                    ctx.proof(info, &spec, &token, n)?,
                    ctx.proof(info, &spec, &token, n)?,
                ],
            })
        })
        .await?;
        run.record(DPOP_TWO, c);
    }

    // Ed25519 agent keys (§9.4.1), proofs under both names of the algorithm.
    for (id, alg) in [(DPOP_EDDSA, "EdDSA"), (DPOP_ED25519, "Ed25519")] {
        if !run.wants(id) {
            continue;
        }
        run.start_timer();
        let okp = &k.agent_okp;
        let token = ctx.token_with(|c| c["cnf"] = json!({"jwk": okp.public_jwk()}))?;
        let proof = spec(okp, Box::new(move |h, _| h["alg"] = json!(alg)));
        let c = check(target, &Expect::Accepted, |n| {
            ctx.present_proof(info, &token, &proof, n)
        })
        .await?;
        run.record(id, c);
    }

    let other_method = if info.method.eq_ignore_ascii_case("GET") {
        "POST"
    } else {
        "GET"
    };
    let other_url = format!("{}/conformance-other", info.url.trim_end_matches('/'));
    let other_token = ctx.good_token()?;
    let other_ath = ath(&other_token);
    let mut proof_cases: Vec<(&str, ProofSpec<'_>)> = vec![
        (DPOP_STOLEN, spec(&k.thief, Box::new(|_, _| {}))),
        (
            DPOP_VICTIM_JWK,
            spec(
                &k.thief,
                Box::new(|h, _| h["jwk"] = Value::Object(k.agent.public_jwk())),
            ),
        ),
        (
            DPOP_HTM,
            spec(
                &k.agent,
                Box::new(move |_, c| c["htm"] = json!(other_method)),
            ),
        ),
        (
            DPOP_HTU,
            spec(&k.agent, Box::new(|_, c| c["htu"] = json!(other_url))),
        ),
        (
            DPOP_STALE,
            spec(&k.agent, Box::new(|_, c| c["iat"] = json!(now() - 3600))),
        ),
        (
            DPOP_FUTURE,
            spec(&k.agent, Box::new(|_, c| c["iat"] = json!(now() + 3600))),
        ),
        (
            DPOP_ATH,
            spec(&k.agent, Box::new(|_, c| c["ath"] = json!(other_ath))),
        ),
        (
            DPOP_NO_ATH,
            spec(&k.agent, Box::new(|_, c| remove_path(c, &["ath"]))),
        ),
        (
            DPOP_PRIVATE,
            spec(
                &k.agent,
                Box::new(|h, _| h["jwk"] = Value::Object(k.agent.private_jwk())),
            ),
        ),
        (
            DPOP_TYP,
            spec(&k.agent, Box::new(|h, _| h["typ"] = json!("JWT"))),
        ),
        (
            DPOP_NO_JTI,
            spec(&k.agent, Box::new(|_, c| remove_path(c, &["jti"]))),
        ),
    ];
    proof_cases.push((
        DPOP_NONE,
        ProofSpec {
            signer: &k.agent,
            unsigned: true,
            edit: Box::new(|h, _| h["alg"] = json!("none")),
        },
    ));
    for (id, spec) in proof_cases {
        if !run.wants(id) {
            continue;
        }
        run.start_timer();
        let token = ctx.good_token()?;
        let c = check(target, &bad_proof, |n| {
            ctx.present_proof(info, &token, &spec, n)
        })
        .await?;
        run.record(id, c);
    }
    Ok(())
}

/// A signed proof by `signer` with `edit` applied.
fn spec<'k>(signer: &'k Key, edit: ProofEdit<'k>) -> ProofSpec<'k> {
    ProofSpec {
        signer,
        unsigned: false,
        edit,
    }
}

/// Removes the member at `path` (a no-op when absent).
fn remove_path(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        match cur.get_mut(*p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(obj) = cur.as_object_mut() {
        obj.remove(*last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::http::parse_challenges;

    #[test]
    fn catalogue_ids_are_unique_well_formed_and_cite_real_requirements() {
        let cat = catalogue();
        let mut seen = std::collections::BTreeSet::new();
        let text = include_str!("../../../spec/requirements.json");
        let reqs: Value = serde_json::from_str(text).unwrap();
        let known: std::collections::BTreeSet<&str> = reqs["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for t in &cat {
            assert!(seen.insert(t.id.clone()), "duplicate {}", t.id);
            assert!(
                t.id.starts_with(&format!("VER-{}-", t.section)),
                "{} vs §{}",
                t.id,
                t.section
            );
            for r in &t.requirements {
                assert!(
                    known.contains(r.as_str()),
                    "{}: unknown requirement {r}",
                    t.id
                );
            }
        }
        assert!(cat.len() >= 45, "{}", cat.len());
    }

    fn resp(status: u16, challenge: &str) -> Response {
        Response {
            status,
            challenges: parse_challenges(challenge),
            www_authenticate: vec![challenge.to_owned()],
            dpop_nonce: None,
            body: String::new(),
        }
    }

    #[test]
    fn refusals_need_the_status_scheme_error_and_scope() {
        let r = Refusal::new(401, "DPoP", &["invalid_token"]);
        assert!(r.matches(&resp(401, r#"DPoP error="invalid_token", algs="ES256""#)));
        assert!(!r.matches(&resp(401, r#"Bearer error="invalid_token""#)));
        assert!(!r.matches(&resp(403, r#"DPoP error="invalid_token""#)));
        assert!(!r.matches(&resp(401, r#"DPoP error="invalid_dpop_proof""#)));
        assert!(!r.matches(&resp(401, "")));
        let mut s = Refusal::new(403, "DPoP", &["insufficient_scope"]);
        s.scope = Some(vec!["repo:write".into()]);
        assert!(s.matches(&resp(
            403,
            r#"DPoP error="insufficient_scope", scope="repo:write""#
        )));
        assert!(!s.matches(&resp(403, r#"DPoP error="insufficient_scope""#)));
        assert!(Refusal::bare(431).matches(&resp(431, "")));
        let e = Expect::one(r);
        let sent = Sent::Response(resp(200, ""), Presentation::default());
        assert!(matches!(e.judge(&sent), Check::Fail(m) if m.contains("expected 401")));
        assert_eq!(
            Expect::Accepted.judge(&sent),
            Check::Pass,
            "2xx is acceptance"
        );
    }

    #[test]
    fn remove_path_removes_nested_members() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "d": 3});
        remove_path(&mut v, &["a", "b"]);
        remove_path(&mut v, &["d"]);
        remove_path(&mut v, &["x", "y"]);
        assert_eq!(v, json!({"a": {"c": 2}}));
    }

    #[test]
    fn hash16_is_the_4_4_4_truncation() {
        let h = hash16(&["supervisor", "planner", "patcher"]);
        assert_eq!(h.len(), 16);
        assert_eq!(
            h,
            &hex::encode(Sha256::digest(b"supervisor|planner|patcher"))[..16]
        );
    }
}
