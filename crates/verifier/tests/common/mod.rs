//! Shared harness of the verifier's integration tests: the real issuer
//! (`ajwt_issuer::Issuer` over an in-memory SQLite store) issuing intent
//! tokens to agents whose proof-of-possession keys are `ajwt_jose::DpopKey`s,
//! a `Verifier` fed the issuer's JWKS, request builders, a raw JWS signer
//! (the `jsonwebtoken` crate's primitives) to forge tokens and proofs that
//! our own code would never produce, and refusal assertions that go through
//! the production error path (`axum_layer::error_response`).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::{Clock as IssuerClock, Issuer, SystemClock as IssuerSystemClock};
use ajwt_issuer::store::cache::CachedStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use ajwt_issuer::IssuerConfig;
use ajwt_jose::{Alg, DpopKey, JwkSet};
use ajwt_verifier::KeySource;
use ajwt_verifier::{
    Clock, PopPolicy, RequestParts, Requirements, Scheme, VerifiedIntent, Verifier, VerifierConfig,
    VerifyError,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// The issuer identifier of the test issuer.
pub const ISSUER: &str = "https://idp.example.com";
/// This resource server's audience.
pub const API: &str = "https://api.example.com";
/// The protected resource.
pub const URL: &str = "https://api.example.com/patches";
/// The workflow tokens are issued for.
pub const WF: &str = "wf-verifier-tests";
pub const STEP1: &str = "step_1_analyze_manifest";
pub const STEP2: &str = "step_2_apply_patch";
/// The agent that owns the tokens in most tests.
pub const AGENT: &str = "vulnerability-patcher-v1";
/// Another agent of the same process (threat T2).
pub const SIBLING: &str = "dependency-scanner-v1";

// ---------------------------------------------------------------------------
// Clocks
// ---------------------------------------------------------------------------

/// A settable clock shared by the issuer and (through [`VerifierClock`]) the verifier.
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicI64>);

impl TestClock {
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl IssuerClock for TestClock {
    fn now(&self) -> i64 {
        TestClock::now(self)
    }
}

/// The verifier's view of a [`TestClock`].
pub struct VerifierClock(pub TestClock);

impl Clock for VerifierClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

// ---------------------------------------------------------------------------
// The real issuer
// ---------------------------------------------------------------------------

/// A registered agent and its DPoP key.
pub struct Agent {
    pub id: String,
    pub checksum: String,
    pub registration_id: String,
    pub key: DpopKey,
}

/// The real issuer, in process.
pub struct TestIssuer {
    pub issuer: Arc<Issuer>,
    pub keys: Arc<KeyRing>,
    pub store: Arc<dyn Store>,
    pub clock: TestClock,
    pub config: IssuerConfig,
}

impl TestIssuer {
    /// An ES256 issuer with the workflow [`WF`] registered.
    pub async fn new() -> TestIssuer {
        TestIssuer::with_alg(SigningAlgorithm::Es256).await
    }

    /// An issuer signing with `alg`, with the workflow [`WF`] registered
    /// (both steps assigned to [`AGENT`]).
    pub async fn with_alg(alg: SigningAlgorithm) -> TestIssuer {
        let store: Arc<dyn Store> = Arc::new(CachedStore::new(
            SqliteStore::open_in_memory()
                .await
                .expect("in-memory store"),
        ));
        let keys = Arc::new(KeyRing::generate(alg).expect("issuer key"));
        let clock = TestClock(Arc::new(AtomicI64::new(IssuerSystemClock.now())));
        let config = IssuerConfig {
            issuer: ISSUER.to_owned(),
            ..IssuerConfig::default()
        };
        let h = TestIssuer::over(config, store, keys, clock);
        let workflow = json!({
            "workflow_id": WF,
            "steps": {
                STEP1: {"required": true, "requires_approval": false, "agent_id": AGENT},
                STEP2: {"required": true, "requires_approval": false, "agent_id": AGENT},
            }
        });
        h.issuer
            .register_workflow(&serde_json::to_vec(&workflow).unwrap())
            .await
            .expect("workflow registration");
        h
    }

    fn over(
        config: IssuerConfig,
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        clock: TestClock,
    ) -> TestIssuer {
        let issuer = Arc::new(Issuer::new(
            config.clone(),
            store.clone(),
            keys.clone(),
            Arc::new(clock.clone()),
        ));
        TestIssuer {
            issuer,
            keys,
            store,
            clock,
            config,
        }
    }

    /// Another issuer identity over the SAME signing keys, store and clock
    /// (e.g. a second tenant of a multi-tenant authorization server).
    pub fn other_identity(&self, iss: &str) -> TestIssuer {
        let config = IssuerConfig {
            issuer: iss.to_owned(),
            ..self.config.clone()
        };
        TestIssuer::over(
            config,
            self.store.clone(),
            self.keys.clone(),
            self.clock.clone(),
        )
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The issuer's JWK Set document.
    pub fn jwks_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.issuer.jwks()).unwrap()
    }

    /// The issuer's JWK Set, parsed by ajwt-jose.
    pub fn jwk_set(&self) -> JwkSet {
        parse_jwks(&self.issuer.jwks())
    }

    /// A client access token (RFC 9068, `typ: at+jwt`) of a client with both
    /// administrative scopes.
    pub async fn client_token(&self) -> String {
        let creds = self
            .issuer
            .create_client(
                vec![
                    "register:intent".to_owned(),
                    "generate:intent-token".to_owned(),
                ],
                Some("verifier tests".to_owned()),
            )
            .await
            .expect("client");
        self.issuer
            .client_credentials(
                &[("grant_type".to_owned(), "client_credentials".to_owned())],
                Some((creds.client_id, creds.client_secret)),
                None,
            )
            .await
            .expect("client_credentials")
            .access_token
    }

    /// Registers `id` with a fresh DPoP key of `alg`.
    pub async fn register(&self, id: &str, alg: Alg) -> Agent {
        self.register_key(id, dpop_key(alg)).await
    }

    /// Registers `id` with `key` as its `public_key` (§5.4.2).
    pub async fn register_key(&self, id: &str, key: DpopKey) -> Agent {
        let mut body = agent_spec(id);
        body["public_key"] = public_jwk(&key);
        let r = self
            .issuer
            .register_agent(&serde_json::to_vec(&body).unwrap())
            .await
            .unwrap_or_else(|e| panic!("registration of {id}: {e:?}"));
        Agent {
            id: id.to_owned(),
            checksum: r.checksum.to_string(),
            registration_id: r.registration_id,
            key,
        }
    }

    /// An intent token for `agent` with `scopes` for `audience`, at
    /// `(workflow, step)` when given.
    pub async fn token_for(
        &self,
        agent: &Agent,
        scopes: &[&str],
        audience: &str,
        step: Option<(&str, &str)>,
    ) -> String {
        let mut req = json!({
            "grant_type": "agent_checksum",
            "agent_id": agent.id,
            "computed_checksum": agent.checksum,
            "requested_scopes": scopes,
            "audience": audience,
        });
        if let Some((wf, s)) = step {
            req["workflow_id"] = json!(wf);
            req["workflow_step"] = json!(s);
            req["workflow_enabled"] = json!(true);
            req["delegation_context"] = json!({"chain": [], "completed_steps": []});
        }
        let req = ajwt_protocol::wire::decode_token_request(&serde_json::to_vec(&req).unwrap())
            .expect("token request");
        self.issuer
            .intent_token(req)
            .await
            .unwrap_or_else(|e| panic!("intent token for {}: {e:?}", agent.id))
            .access_token
    }

    /// The usual token: `repo:read repo:write` for [`API`] at [`STEP1`] of [`WF`].
    pub async fn token(&self, agent: &Agent) -> String {
        self.token_for(agent, &["repo:read", "repo:write"], API, Some((WF, STEP1)))
            .await
    }

    /// Signs `claims` with the issuer's real signing key (header
    /// `{alg, kid, typ}`): tokens the issuer's pipeline would never produce.
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.keys
            .sign(typ, claims.as_object().expect("claims object"))
            .expect("sign")
    }

    pub fn kid(&self) -> String {
        self.keys.current_kid().to_owned()
    }
}

/// An agent specification (§5.2.1).
pub fn agent_spec(agent_id: &str) -> Value {
    json!({
        "agent_id": agent_id,
        "prompt": format!("You are {agent_id}, a careful security agent."),
        "tools": [
            {
                "name": "create_patch",
                "description": "Create patch for vulnerable package",
                "parameters": {"type": "object", "properties": {"package": {"type": "string"}}}
            }
        ],
        "configuration": {"model_name": "test-model", "temperature": 0.0, "max_tokens": 4096}
    })
}

/// Parses a JWK Set document with ajwt-jose, insisting that no key is skipped.
pub fn parse_jwks(doc: &Value) -> JwkSet {
    let (set, skipped) = JwkSet::parse(&serde_json::to_vec(doc).unwrap()).expect("JWKS");
    assert!(skipped.is_empty(), "keys skipped in {doc}");
    set
}

// ---------------------------------------------------------------------------
// ajwt-jose (the DPoP side), wrapped in one place
// ---------------------------------------------------------------------------

pub fn dpop_key(alg: Alg) -> DpopKey {
    DpopKey::generate(alg).expect("DPoP key")
}

/// The public JWK of a DPoP key, as JSON.
pub fn public_jwk(key: &DpopKey) -> Value {
    serde_json::to_value(key.public_jwk()).unwrap()
}

/// RFC 7638 thumbprint of a DPoP key.
pub fn jkt(key: &DpopKey) -> String {
    key.thumbprint()
}

/// A DPoP proof (RFC 9449 §4.2) by `key`.
pub fn proof(
    key: &DpopKey,
    htm: &str,
    htu: &str,
    token: Option<&str>,
    nonce: Option<&str>,
    iat: i64,
) -> String {
    key.proof(htm, htu, token, nonce, iat).expect("DPoP proof")
}

/// A proof for `POST` [`URL`] bound to `token`, at `iat`.
pub fn post_proof(key: &DpopKey, token: &str, iat: i64) -> String {
    proof(key, "POST", URL, Some(token), None, iat)
}

// ---------------------------------------------------------------------------
// Verifiers and requests
// ---------------------------------------------------------------------------

/// A verifier trusting `h` (static JWKS from the issuer), with `policy`, at
/// the issuer's clock.
pub fn verifier(h: &TestIssuer, policy: PopPolicy) -> Verifier {
    verifier_with(h, policy, |_| {})
}

/// ... with a configuration tweak.
pub fn verifier_with(
    h: &TestIssuer,
    policy: PopPolicy,
    tweak: impl FnOnce(&mut VerifierConfig),
) -> Verifier {
    let mut config = VerifierConfig::new(ISSUER, API);
    config.pop = policy;
    tweak(&mut config);
    Verifier::new(config, KeySource::from_jwks(h.jwk_set()))
        .with_clock(Arc::new(VerifierClock(h.clock.clone())))
}

/// A verifier trusting exactly `keys`, with `policy`, at the issuer's clock.
pub fn verifier_with_keys(h: &TestIssuer, policy: PopPolicy, keys: JwkSet) -> Verifier {
    let mut config = VerifierConfig::new(ISSUER, API);
    config.pop = policy;
    Verifier::new(config, KeySource::from_jwks(keys))
        .with_clock(Arc::new(VerifierClock(h.clock.clone())))
}

/// The usual setup: an ES256 issuer, [`AGENT`] with an ES256 DPoP key, and
/// its usual token.
pub async fn setup() -> (TestIssuer, Agent, String) {
    let h = TestIssuer::new().await;
    let agent = h.register(AGENT, Alg::Es256).await;
    let token = h.token(&agent).await;
    (h, agent, token)
}

/// `token` presented by `agent` with a valid proof for `POST` [`URL`] now.
pub fn presented(h: &TestIssuer, agent: &Agent, token: &str) -> Req {
    Req::dpop(token, &post_proof(&agent.key, token, h.now()))
}

/// An HTTP request as the verifier sees it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub url: String,
    pub authorization: Vec<String>,
    pub dpop: Vec<String>,
}

impl Req {
    /// `POST URL` with `Authorization: DPoP token` and `DPoP: proof`.
    pub fn dpop(token: &str, proof: &str) -> Req {
        Req {
            method: "POST".into(),
            url: URL.into(),
            authorization: vec![format!("DPoP {token}")],
            dpop: vec![proof.to_owned()],
        }
    }

    /// `POST URL` with `Authorization: Bearer token` and no proof.
    pub fn bearer(token: &str) -> Req {
        Req {
            method: "POST".into(),
            url: URL.into(),
            authorization: vec![format!("Bearer {token}")],
            dpop: vec![],
        }
    }

    /// `POST URL` with `Authorization: DPoP token` and no proof.
    pub fn dpop_without_proof(token: &str) -> Req {
        Req {
            method: "POST".into(),
            url: URL.into(),
            authorization: vec![format!("DPoP {token}")],
            dpop: vec![],
        }
    }

    pub fn with_proof(mut self, proof: &str) -> Req {
        self.dpop.push(proof.to_owned());
        self
    }

    /// Runs `f` over the borrowed [`RequestParts`].
    pub fn with_parts<T>(&self, f: impl FnOnce(&RequestParts<'_>) -> T) -> T {
        let authorization: Vec<&str> = self.authorization.iter().map(String::as_str).collect();
        let dpop: Vec<&str> = self.dpop.iter().map(String::as_str).collect();
        let parts = RequestParts {
            method: &self.method,
            url: &self.url,
            authorization: &authorization,
            dpop: &dpop,
        };
        f(&parts)
    }
}

/// `verifier.verify(req, route)`.
pub async fn verify(
    v: &Verifier,
    req: &Req,
    route: &Requirements,
) -> Result<VerifiedIntent, VerifyError> {
    let authorization: Vec<&str> = req.authorization.iter().map(String::as_str).collect();
    let dpop: Vec<&str> = req.dpop.iter().map(String::as_str).collect();
    let parts = RequestParts {
        method: &req.method,
        url: &req.url,
        authorization: &authorization,
        dpop: &dpop,
    };
    v.verify(&parts, route).await
}

/// The route of most tests: `repo:write` at [`STEP1`] of [`WF`].
pub fn route() -> Requirements {
    Requirements::scopes(["repo:write"]).at_steps(WF, [STEP1])
}

/// Verifies and expects a refusal.
#[track_caller]
pub fn refused(result: Result<VerifiedIntent, VerifyError>) -> VerifyError {
    match result {
        Ok(ok) => panic!("ATTACK ACCEPTED: {ok:?}"),
        Err(e) => e,
    }
}

/// What the HTTP refusal must look like.
pub struct Refusal<'a> {
    pub status: u16,
    /// `error=` of the challenge (`None`: no error code, RFC 6750 §3.1).
    pub code: Option<&'a str>,
    /// The challenge scheme.
    pub scheme: Scheme,
}

/// `401 invalid_token` with a `DPoP` challenge (token presented with DPoP).
pub const DPOP_INVALID_TOKEN: Refusal<'static> = Refusal {
    status: 401,
    code: Some("invalid_token"),
    scheme: Scheme::DPoP,
};
/// `401 invalid_dpop_proof` (always a `DPoP` challenge, RFC 9449 §7.1).
pub const INVALID_DPOP_PROOF: Refusal<'static> = Refusal {
    status: 401,
    code: Some("invalid_dpop_proof"),
    scheme: Scheme::DPoP,
};
/// `401 invalid_token` with a `Bearer` challenge (bearer presentation).
pub const BEARER_INVALID_TOKEN: Refusal<'static> = Refusal {
    status: 401,
    code: Some("invalid_token"),
    scheme: Scheme::Bearer,
};

/// Checks `status()`, `code()`, and the `WWW-Authenticate` challenge that the
/// production error path (`axum_layer::error_response`) builds for `e` on `req`.
#[track_caller]
pub fn assert_refusal(v: &Verifier, req: &Req, e: &VerifyError, expected: &Refusal<'_>) {
    assert_eq!(e.status(), expected.status, "status of {e:?}");
    assert_eq!(e.code(), expected.code, "code of {e:?}");
    let response = req.with_parts(|parts| ajwt_verifier::axum_layer::error_response(v, parts, e));
    assert_eq!(
        response.status().as_u16(),
        expected.status,
        "HTTP status of {e:?}"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("no WWW-Authenticate for {e:?}"))
        .to_str()
        .unwrap()
        .to_owned();
    let scheme = expected.scheme.as_str();
    assert!(
        challenge == scheme || challenge.starts_with(&format!("{scheme} ")),
        "challenge {challenge:?} for {e:?} does not use the {scheme} scheme"
    );
    if let Some(code) = expected.code {
        assert!(
            challenge.contains(&format!("error=\"{code}\"")),
            "challenge {challenge:?} lacks error=\"{code}\""
        );
        assert!(
            challenge.contains("error_description=\""),
            "challenge {challenge:?} lacks error_description"
        );
    } else {
        assert!(
            !challenge.contains("error="),
            "challenge {challenge:?} has an error code"
        );
    }
    let algs = format!("algs=\"{}\"", v.config().algs_param());
    assert_eq!(
        challenge.contains(&algs),
        expected.scheme == Scheme::DPoP,
        "algs parameter in {challenge:?} (RFC 9449 §7.1: DPoP challenges only)"
    );
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
}

// ---------------------------------------------------------------------------
// Token surgery and forgery
// ---------------------------------------------------------------------------

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).unwrap())
}

/// Header and payload of a compact JWS, without verification.
pub fn decode_unverified(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let part =
        |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap() };
    (part(parts[0]), part(parts[1]))
}

/// The claims of a token, without verification.
pub fn claims_of(token: &str) -> Value {
    decode_unverified(token).1
}

/// A valid token with one signature bit flipped.
pub fn tamper_signature(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[5] ^= 0x01;
    format!("{rest}.{}", b64(&bytes))
}

/// A token with its payload edited and the original signature kept.
pub fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload = claims_of(token);
    edit(&mut payload);
    format!("{}.{}.{}", parts[0], b64_json(&payload), parts[2])
}

/// `base64url(SHA-256(token))` computed here with `sha2` (RFC 9449 §4.2 `ath`).
pub fn ath(token: &str) -> String {
    b64(&Sha256::digest(token.as_bytes()))
}

/// A unique `jti`.
pub fn fresh_jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    b64(&Sha256::digest(format!("{n}:{nanos}:{}", std::process::id()).as_bytes())[..16])
}

/// A key pair generated by josekit and usable by `jsonwebtoken` for signing
/// arbitrary headers: our forging tool, independent of ajwt-jose.
pub struct RawKey {
    pub alg: jsonwebtoken::Algorithm,
    pub encoding: jsonwebtoken::EncodingKey,
    /// PKCS#8 PEM of the private key.
    pub pem: String,
    /// Public members only (kty, crv, x, y).
    pub public_jwk: Map<String, Value>,
    /// Public and private members (with `d`).
    pub private_jwk: Map<String, Value>,
}

impl RawKey {
    pub fn es256() -> RawKey {
        use josekit::jwk::KeyPair as _;
        let pair = josekit::jws::ES256.generate_key_pair().unwrap();
        let pem = String::from_utf8(pair.to_pem_private_key()).unwrap();
        RawKey {
            alg: jsonwebtoken::Algorithm::ES256,
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            pem,
            public_jwk: pair.to_jwk_public_key().as_ref().clone(),
            private_jwk: pair.to_jwk_private_key().as_ref().clone(),
        }
    }

    pub fn ed25519() -> RawKey {
        use josekit::jwk::KeyPair as _;
        let pair = josekit::jws::EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let pem = String::from_utf8(pair.to_pem_private_key()).unwrap();
        RawKey {
            alg: jsonwebtoken::Algorithm::EdDSA,
            encoding: jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            pem,
            public_jwk: pair.to_jwk_public_key().as_ref().clone(),
            private_jwk: pair.to_jwk_private_key().as_ref().clone(),
        }
    }

    /// The JWS `alg` name.
    pub fn alg_name(&self) -> &'static str {
        match self.alg {
            jsonwebtoken::Algorithm::ES256 => "ES256",
            jsonwebtoken::Algorithm::EdDSA => "EdDSA",
            other => panic!("{other:?}"),
        }
    }

    /// The public JWK with `kid` and `alg`, for a JWK Set.
    pub fn jwks_entry(&self, kid: &str) -> Value {
        let mut jwk = self.public_jwk.clone();
        jwk.insert("kid".into(), json!(kid));
        jwk.insert("alg".into(), json!(self.alg_name()));
        jwk.insert("use".into(), json!("sig"));
        Value::Object(jwk)
    }

    /// The same key as an ajwt-jose DPoP key.
    pub fn dpop_key(&self) -> DpopKey {
        let alg = match self.alg {
            jsonwebtoken::Algorithm::ES256 => Alg::Es256,
            _ => Alg::EdDsa,
        };
        DpopKey::from_pkcs8_pem(self.pem.as_bytes(), alg).expect("PKCS#8 PEM")
    }

    /// Compact JWS with exactly `header` and `payload`, signed by this key
    /// whatever the header says.
    pub fn sign_raw(&self, header: &Value, payload: &Value) -> String {
        let input = format!("{}.{}", b64_json(header), b64_json(payload));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{input}.{sig}")
    }

    /// A DPoP proof with this key's public JWK in the header and `claims`.
    pub fn proof_with(&self, header_extra: Value, claims: Value) -> String {
        let mut header = json!({"typ": "dpop+jwt", "alg": self.alg_name(), "jwk": self.public_jwk});
        for (k, v) in header_extra.as_object().unwrap() {
            header[k] = v.clone();
        }
        self.sign_raw(&header, &claims)
    }
}

/// The claims of a well-formed proof for `POST` [`URL`] bound to `token`.
pub fn proof_claims(token: &str, iat: i64) -> Value {
    json!({"jti": fresh_jti(), "htm": "POST", "htu": URL, "iat": iat, "ath": ath(token)})
}
