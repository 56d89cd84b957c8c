//! The verification pipeline of §6.5.3, in order, with agent-level
//! proof-of-possession (§9.2.2, RFC 9449).

use std::collections::HashSet;
use std::sync::Arc;

use ajwt_checksum::AgentChecksum;
use ajwt_jose::{typ_matches, verify_dpop_proof, Alg, CompactJws, DpopCheck, JoseError};
use ajwt_protocol::audience::aud_contains;
use ajwt_protocol::claims::{validate_claims, ClaimsJson, IntentClaims};
use ajwt_protocol::scope::scopes_not_held;
use ajwt_protocol::time;
use async_trait::async_trait;
use serde_json::Value;

use crate::error::{Scheme, VerifyError};
use crate::keys::KeySource;

/// Proof-of-possession policy (§9.2.2: resource servers SHOULD require it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PopPolicy {
    /// A valid DPoP proof bound to the token's `cnf` key is required (default).
    #[default]
    Required,
    /// Both schemes are accepted, but a `cnf`-bound token (every intent
    /// token) is refused as a bearer token (RFC 9449 §7.2, I-49); only a
    /// token without `cnf` could pass without a proof. A proof, when
    /// present, must be valid.
    Optional,
    /// No proof is checked.
    Disabled,
}

/// A PoP policy name that is not `required`, `optional` or `disabled`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown PoP policy {0:?} (required, optional, disabled)")]
pub struct UnknownPopPolicy(pub String);

impl From<UnknownPopPolicy> for String {
    fn from(e: UnknownPopPolicy) -> String {
        e.to_string()
    }
}

impl std::str::FromStr for PopPolicy {
    type Err = UnknownPopPolicy;
    fn from_str(s: &str) -> Result<Self, UnknownPopPolicy> {
        match s {
            "required" => Ok(PopPolicy::Required),
            "optional" => Ok(PopPolicy::Optional),
            "disabled" => Ok(PopPolicy::Disabled),
            other => Err(UnknownPopPolicy(other.to_owned())),
        }
    }
}

/// Verifier settings.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The trusted issuer (`iss`, exact).
    pub issuer: String,
    /// This resource server's identifier (must be in `aud`).
    pub audience: String,
    /// Allowed token and proof algorithms (default: every algorithm of
    /// ajwt-jose's table, [`Alg::ALL`]: ES256, EdDSA, Ed25519, RS256, PS256).
    pub algorithms: Vec<Alg>,
    /// Clock leeway for `exp`/`iat`, seconds (default 30).
    pub leeway: i64,
    /// Optional maximum token age (`now - iat`), seconds.
    pub max_age: Option<i64>,
    /// Expected `typ` of intent tokens (default `JWT`, I-28).
    pub token_type: String,
    /// Proof-of-possession policy.
    pub pop: PopPolicy,
    /// How old a DPoP proof may be (`now - iat`), seconds (default 60).
    pub dpop_window: i64,
    /// Largest token or proof accepted, bytes (default 16 KiB).
    pub max_token_len: usize,
    /// Optional policy: only these agent checksums are accepted (§6.5.3 step 5).
    pub known_checksums: Option<HashSet<AgentChecksum>>,
    /// Optional policy: only these registration ids are accepted.
    pub known_registrations: Option<HashSet<String>>,
}

impl VerifierConfig {
    /// Defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierConfig {
        VerifierConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: Alg::ALL.to_vec(),
            leeway: 30,
            max_age: None,
            token_type: "JWT".into(),
            pop: PopPolicy::Required,
            dpop_window: 60,
            max_token_len: 16 * 1024,
            known_checksums: None,
            known_registrations: None,
        }
    }

    /// The `algs` parameter of DPoP challenges.
    pub fn algs_param(&self) -> String {
        self.algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What one route requires (§6.5.3 steps 6–7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Scopes that must all be in the token.
    pub scopes: Vec<String>,
    /// The workflow the token must be bound to.
    pub workflow_id: Option<String>,
    /// The workflow steps allowed to call this route.
    pub steps: Option<Vec<String>>,
    /// Allowed `intent.delegation_chain` hashes.
    pub delegation_chains: Option<Vec<String>>,
}

impl Requirements {
    /// A route that needs `scopes`.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Requirements {
        Requirements {
            scopes: scopes.into_iter().map(Into::into).collect(),
            ..Requirements::default()
        }
    }

    /// ... bound to `workflow_id` at one of `steps`.
    pub fn at_steps<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        workflow_id: impl Into<String>,
        steps: I,
    ) -> Requirements {
        self.workflow_id = Some(workflow_id.into());
        self.steps = Some(steps.into_iter().map(Into::into).collect());
        self
    }

    /// ... with one of these delegation-chain hashes.
    pub fn delegation_chains<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        chains: I,
    ) -> Requirements {
        self.delegation_chains = Some(chains.into_iter().map(Into::into).collect());
        self
    }
}

/// Remembers DPoP proof `jti`s within the proof window (RFC 9449 §11.1).
/// Implement it over a shared store when several replicas verify.
#[async_trait]
pub trait ReplayCache: Send + Sync + 'static {
    /// Records `jti` (seen at `now`, forgettable after `expires_at`); false
    /// when it was already recorded.
    async fn check_and_insert(&self, jti: &str, now: i64, expires_at: i64) -> bool;
}

/// A bounded in-memory [`ReplayCache`]: entries expire with the window; when
/// full, new proofs are refused rather than old entries dropped (dropping
/// would re-open replays).
pub struct InMemoryReplayCache(ajwt_jose::JtiCache);

impl InMemoryReplayCache {
    /// A cache of at most `capacity` live entries.
    pub fn new(capacity: usize) -> InMemoryReplayCache {
        InMemoryReplayCache(ajwt_jose::JtiCache::new(capacity))
    }
}

#[async_trait]
impl ReplayCache for InMemoryReplayCache {
    async fn check_and_insert(&self, jti: &str, now: i64, expires_at: i64) -> bool {
        self.0.check_and_insert(jti, now, expires_at)
    }
}

/// Revocation hook (§5.6.1 REVOKED, §9.3.2): the operations issue plugs the
/// issuer's revocation list in here.
#[async_trait]
pub trait RevocationSource: Send + Sync + 'static {
    /// `Some(reason)` when the token, its registration or its agent is revoked.
    async fn revoked(&self, claims: &IntentClaims) -> Option<String>;

    /// The check the verifier runs: `Err` refuses the token with that error.
    /// The default refuses with [`VerifyError::Revoked`] when
    /// [`RevocationSource::revoked`] gives a reason; sources with typed
    /// errors ([`crate::StatusListSource`]) override it.
    async fn check(&self, claims: &IntentClaims) -> Result<(), VerifyError> {
        match self.revoked(claims).await {
            Some(reason) => Err(VerifyError::Revoked(reason)),
            None => Ok(()),
        }
    }
}

/// Server-provided DPoP nonces (RFC 9449 §8); [`crate::RotatingNonces`]
/// is the implementation the examples use.
pub trait NonceSource: Send + Sync + 'static {
    /// The nonce to hand out now (in `use_dpop_nonce` refusals and on
    /// successful responses).
    fn current(&self) -> String;
    /// Whether a nonce presented in a proof is acceptable (compare in
    /// constant time).
    fn is_valid(&self, nonce: &str) -> bool;
}

/// The result of a successful verification, handed to request handlers.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIntent {
    /// All claims, typed.
    pub claims: IntentClaims,
    /// The RFC 7638 thumbprint of the proof key, when a DPoP proof was verified.
    pub dpop_jkt: Option<String>,
}

/// What the verifier needs from the HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The absolute request URL as the client addressed it.
    pub url: &'a str,
    /// All `Authorization` header values.
    pub authorization: &'a [&'a str],
    /// All `DPoP` header values.
    pub dpop: &'a [&'a str],
}

/// The one project clock (`ajwt_protocol::clock`), re-exported at its old path.
pub use ajwt_protocol::clock::{Clock, FixedClock, SystemClock};

/// Verifies intent tokens for one resource server.
pub struct Verifier {
    config: VerifierConfig,
    keys: Arc<KeySource>,
    replay: Arc<dyn ReplayCache>,
    revocation: Option<Arc<dyn RevocationSource>>,
    nonces: Option<Arc<dyn NonceSource>>,
    clock: Arc<dyn Clock>,
}

impl Verifier {
    /// A verifier with an in-memory replay cache (100 000 entries) and the system clock.
    pub fn new(config: VerifierConfig, keys: KeySource) -> Verifier {
        Verifier {
            config,
            keys: Arc::new(keys),
            replay: Arc::new(InMemoryReplayCache::new(100_000)),
            revocation: None,
            nonces: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses another replay cache (e.g. shared between replicas).
    pub fn with_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Verifier {
        self.replay = cache;
        self
    }

    /// Adds a revocation source.
    pub fn with_revocation(mut self, source: Arc<dyn RevocationSource>) -> Verifier {
        self.revocation = Some(source);
        self
    }

    /// Checks each token's `status` against the issuer's Token Status List
    /// (I-92): a [`crate::StatusListSource`] over this verifier's keys and
    /// `fetcher` becomes the revocation source.
    pub fn with_status_lists(
        self,
        config: crate::StatusListConfig,
        fetcher: Arc<dyn crate::Fetcher>,
    ) -> Verifier {
        let source = crate::StatusListSource::new(config, self.keys.clone(), fetcher)
            .with_clock(self.clock.clone());
        self.with_revocation(Arc::new(source))
    }

    /// Requires server nonces in DPoP proofs.
    pub fn with_nonces(mut self, nonces: Arc<dyn NonceSource>) -> Verifier {
        self.nonces = Some(nonces);
        self
    }

    /// Uses another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Verifier {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The issuer's key source (shared, e.g. with a [`crate::StatusListSource`]
    /// that verifies status list tokens with the same keys).
    pub fn key_source(&self) -> Arc<KeySource> {
        self.keys.clone()
    }

    /// The nonce to advertise in `DPoP-Nonce`, when nonces are used.
    pub fn current_nonce(&self) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current())
    }

    /// The scheme the request used, if recognizable (for challenges).
    pub fn scheme_of(parts: &RequestParts<'_>) -> Option<Scheme> {
        let h = parts.authorization.first()?;
        let (scheme, _) = h.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("dpop") {
            Some(Scheme::DPoP)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Scheme::Bearer)
        } else {
            None
        }
    }

    /// §6.5.3 steps 1–8 (and the revocation hook) for one request and route.
    pub async fn verify(
        &self,
        parts: &RequestParts<'_>,
        route: &Requirements,
    ) -> Result<VerifiedIntent, VerifyError> {
        let cfg = &self.config;
        // Step 1: extract the token.
        let (scheme, token) = match parts.authorization {
            [] => return Err(VerifyError::MissingToken),
            [one] => {
                let (scheme, token) = one.split_once(' ').ok_or_else(|| {
                    VerifyError::MalformedAuthorization("expected '<scheme> <token>'".into())
                })?;
                let token = token.trim();
                let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                    Scheme::Bearer
                } else if scheme.eq_ignore_ascii_case("dpop") {
                    Scheme::DPoP
                } else {
                    return Err(VerifyError::MalformedAuthorization(format!(
                        "unsupported scheme '{scheme}' (Bearer or DPoP)"
                    )));
                };
                if token.is_empty() || token.contains(' ') {
                    return Err(VerifyError::MalformedAuthorization(
                        "empty or split token".into(),
                    ));
                }
                (scheme, token)
            }
            _ => {
                return Err(VerifyError::MalformedAuthorization(
                    "more than one Authorization header".into(),
                ))
            }
        };
        if token.len() > cfg.max_token_len {
            return Err(VerifyError::TokenTooLarge {
                len: token.len(),
                max: cfg.max_token_len,
            });
        }
        let jws = CompactJws::parse(token, cfg.max_token_len).map_err(|e| match e {
            JoseError::MissingAlgorithm => VerifyError::AlgorithmNotAllowed("(missing)".into()),
            JoseError::UnsupportedAlgorithm(alg) | JoseError::AlgorithmNotAllowed(alg) => {
                VerifyError::AlgorithmNotAllowed(alg)
            }
            JoseError::TooLarge { len, max } => VerifyError::TokenTooLarge { len, max },
            other => VerifyError::MalformedToken(other.to_string()),
        })?;
        if !cfg.algorithms.contains(&jws.alg) {
            return Err(VerifyError::AlgorithmNotAllowed(jws.alg.as_str().into()));
        }
        // Step 2: the key.
        let key = self
            .keys
            .key(jws.kid.as_deref())
            .await
            .map_err(VerifyError::KeysUnavailable)?
            .ok_or_else(|| match &jws.kid {
                Some(k) => VerifyError::UnknownKid(k.clone()),
                None => VerifyError::MissingKid,
            })?;
        // Step 3: signature with the allow-list, key/alg binding.
        if !key.supports(jws.alg) {
            return Err(VerifyError::KeyAlgorithmMismatch {
                kid: key.kid().unwrap_or("").to_owned(),
                alg: jws.alg.as_str().into(),
            });
        }
        jws.verify_with(&key, &cfg.algorithms)
            .map_err(|_| VerifyError::BadSignature)?;
        // Step 4: type and time/issuer/audience claims.
        if !typ_matches(jws.typ.as_deref(), &cfg.token_type) {
            return Err(VerifyError::WrongType {
                expected: cfg.token_type.clone(),
                found: jws.typ.clone(),
            });
        }
        // The strict reader's borrowed value, read through the same claim
        // rules as serde_json's (ClaimsJson): no serde_json tree per token.
        let raw = ajwt_checksum::json::parse_strict_borrowed(&jws.payload)
            .map_err(|e| VerifyError::InvalidClaims(e.to_string()))?;
        let now = self.clock.now();
        let int = |k: &str| raw.get(k).and_then(ClaimsJson::number)?.as_i64();
        // RFC 7519 §4.1.4/§4.1.6 via the one rule set (ajwt_protocol::time).
        let exp = int("exp")
            .ok_or_else(|| VerifyError::InvalidClaims("exp: missing or not an integer".into()))?;
        time::check_exp(exp, now, cfg.leeway).map_err(|_| VerifyError::Expired)?;
        let iat = int("iat")
            .ok_or_else(|| VerifyError::InvalidClaims("iat: missing or not an integer".into()))?;
        time::check_iat_not_in_future(iat, now, cfg.leeway)
            .map_err(|_| VerifyError::IssuedInFuture)?;
        // RFC 7519 §4.1.5: a token MUST NOT be accepted before its nbf.
        match raw.get("nbf") {
            None => {}
            Some(v) => {
                let nbf = v
                    .number()
                    .and_then(|n| n.as_i64())
                    .ok_or_else(|| VerifyError::InvalidClaims("nbf: not an integer".into()))?;
                time::check_nbf(nbf, now, cfg.leeway).map_err(|_| VerifyError::NotYetValid(nbf))?;
            }
        }
        if let Some(max) = cfg.max_age {
            time::check_max_age(iat, now, max, cfg.leeway).map_err(|_| VerifyError::TooOld(max))?;
        }
        match raw.get("iss").and_then(ClaimsJson::as_str) {
            Some(iss) if iss == cfg.issuer => {}
            other => return Err(VerifyError::WrongIssuer(other.unwrap_or("").to_owned())),
        }
        if !aud_contains(raw.get("aud"), &cfg.audience) {
            return Err(VerifyError::WrongAudience(cfg.audience.clone()));
        }
        // Steps 4–5: every claim of §4.4.2 typed and checked (intent, agent_proof, cnf ...).
        // (`raw` came from the strict reader, so duplicate claims are already refused.)
        let claims =
            validate_claims(&raw).map_err(|e| VerifyError::InvalidClaims(e.to_string()))?;
        // Step 5: optional agent policy.
        if let Some(known) = &cfg.known_checksums {
            if !known.contains(&claims.agent_proof.agent_checksum) {
                return Err(VerifyError::UnknownAgent(
                    claims.agent_proof.agent_checksum.to_string(),
                ));
            }
        }
        if let Some(known) = &cfg.known_registrations {
            if !known.contains(&claims.agent_proof.registration_id) {
                return Err(VerifyError::UnknownAgent(
                    claims.agent_proof.registration_id.clone(),
                ));
            }
        }
        // Revocation hook (step 9 of the list; checked before any use).
        if let Some(source) = &self.revocation {
            source.check(&claims).await?;
        }
        // Step 6: workflow binding.
        if let Some(expected) = &route.workflow_id {
            if claims.intent.workflow_id.as_ref() != Some(expected) {
                return Err(VerifyError::WrongWorkflow {
                    expected: expected.clone(),
                    found: claims.intent.workflow_id.clone(),
                });
            }
        }
        if let Some(steps) = &route.steps {
            let ok = claims
                .intent
                .workflow_step
                .as_ref()
                .is_some_and(|s| steps.contains(s));
            if !ok {
                return Err(VerifyError::StepNotAllowed(
                    claims.intent.workflow_step.clone(),
                ));
            }
        }
        if let Some(chains) = &route.delegation_chains {
            if !chains.contains(&claims.intent.delegation_chain) {
                return Err(VerifyError::DelegationNotAllowed(
                    claims.intent.delegation_chain.clone(),
                ));
            }
        }
        // Step 7: scopes.
        let held = claims.scopes();
        if let Some(missing) = scopes_not_held(&route.scopes, &held).first() {
            return Err(VerifyError::InsufficientScope((*missing).to_owned()));
        }
        // Step 8: proof-of-possession.
        let dpop_jkt = self.check_pop(parts, scheme, token, &claims, now).await?;
        Ok(VerifiedIntent { claims, dpop_jkt })
    }

    async fn check_pop(
        &self,
        parts: &RequestParts<'_>,
        scheme: Scheme,
        token: &str,
        claims: &IntentClaims,
        now: i64,
    ) -> Result<Option<String>, VerifyError> {
        let cfg = &self.config;
        if cfg.pop == PopPolicy::Disabled {
            return Ok(None);
        }
        let proof = match parts.dpop {
            [] => None,
            [one] => Some(*one),
            _ => {
                return Err(VerifyError::InvalidDpopProof(
                    "more than one DPoP header (RFC 9449 §4.3 step 1)".into(),
                ))
            }
        };
        let proof = match (cfg.pop, scheme, proof) {
            (_, Scheme::DPoP, Some(p)) => p,
            (_, Scheme::DPoP, None) => {
                return Err(VerifyError::DpopRequired(
                    "DPoP scheme without a DPoP header".into(),
                ))
            }
            (PopPolicy::Required, Scheme::Bearer, _) => {
                return Err(VerifyError::DpopRequired(
                    "this resource requires a DPoP-bound presentation (Authorization: DPoP)".into(),
                ))
            }
            (_, Scheme::Bearer, Some(_)) => {
                return Err(VerifyError::InvalidDpopProof(
                    "a DPoP proof with the Bearer scheme (RFC 9449 §7.2)".into(),
                ))
            }
            // RFC 9449 §7.2: a DPoP-bound token is never accepted as a bearer
            // token; only a token without `cnf` could be (I-49).
            (_, Scheme::Bearer, None) if claims.cnf.jwk.is_some() || claims.cnf.jkt.is_some() => {
                return Err(VerifyError::BoundTokenAsBearer)
            }
            (_, Scheme::Bearer, None) => return Ok(None),
        };
        let expected_jkt = match (&claims.cnf.jkt, &claims.cnf.jwk) {
            (Some(jkt), _) => jkt.clone(),
            (None, Some(jwk)) => ajwt_jose::jwk_thumbprint(jwk)
                .map_err(|e| VerifyError::InvalidClaims(format!("cnf.jwk: {e}")))?,
            (None, None) => return Err(VerifyError::InvalidClaims("cnf: no key".into())),
        };
        let check = DpopCheck {
            method: parts.method,
            url: parts.url,
            access_token: Some(token),
            expected_jkt: Some(&expected_jkt),
            now,
            max_age: cfg.dpop_window,
            leeway: cfg.leeway.min(cfg.dpop_window),
            nonce: None,
            allowed: &cfg.algorithms,
            max_len: cfg.max_token_len,
        };
        let verified = verify_dpop_proof(proof, &check)
            .map_err(|e| VerifyError::InvalidDpopProof(e.to_string()))?;
        if let Some(nonces) = &self.nonces {
            // The proof is otherwise valid: now ask for (or check) the server nonce.
            let presented = proof_nonce(proof);
            if !presented.as_deref().is_some_and(|n| nonces.is_valid(n)) {
                return Err(VerifyError::UseDpopNonce(nonces.current()));
            }
        }
        let expires = verified
            .iat
            .saturating_add(cfg.dpop_window)
            .saturating_add(cfg.leeway);
        if !self
            .replay
            .check_and_insert(&verified.jti, now, expires)
            .await
        {
            return Err(VerifyError::DpopReplay);
        }
        Ok(Some(verified.jkt))
    }
}

/// The `nonce` claim of a proof whose signature was already verified.
fn proof_nonce(proof: &str) -> Option<String> {
    let jws = CompactJws::parse(proof, usize::MAX).ok()?;
    let v = ajwt_checksum::json::parse_strict_serde(&jws.payload).ok()?;
    v.get("nonce").and_then(Value::as_str).map(str::to_owned)
}
