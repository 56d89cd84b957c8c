//! The CLI contract of `ajwt token verify` and `ajwt token decode` (issue 5):
//! real intent tokens minted by an in-process issuer (§4.4), verified by the
//! `ajwt` binary against the issuer's JWKS (a file or the issuer's URL), with
//! and without DPoP proofs (RFC 9449) made by the agent's own key (§9.2.2).
//! Valid: claims JSON on stdout, exit 0. Invalid: exit 1 and exactly one line
//! `error: <code>: <description>` on stderr. Bad usage: exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::service::Clock;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::{Issuer, IssuerConfig};
use ajwt_jose::{Alg, DpopKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "https://api.github.com";
const WORKFLOW: &str = "auto-patch-workflow-v1";
const PATCHER: &str = "vulnerability-patcher-v1";
const PLANNER: &str = "patch-planner";
const STEP4: &str = "step_4_apply_patch";
const API_URL: &str = "https://api.github.com/repos/acme/app/patches";
/// Intent-token lifetime of the issuer (the default, §9.2.1).
const LIFETIME: i64 = 300;

/// The issuer's clock, fixed at the moment the fixture is built.
struct FixedIssuerClock(i64);

impl Clock for FixedIssuerClock {
    fn now(&self) -> i64 {
        self.0
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The §5.2.1 specification of `agent_id` (the repository's example agent,
/// renamed and re-prompted for agents other than the patcher).
fn agent_spec(agent_id: &str) -> Value {
    let bytes = std::fs::read(repo_file("examples/agents/vulnerability-patcher-v1.json")).unwrap();
    let mut spec: Value = serde_json::from_slice(&bytes).unwrap();
    if agent_id != PATCHER {
        spec["agent_id"] = json!(agent_id);
        spec["prompt"] = json!(format!("You are {agent_id}, a careful security agent."));
    }
    spec
}

/// An issuer with the §6.3.3 workflow, two agents with their own DPoP keys,
/// an intent token of the patcher for step 4, and the issuer's JWKS in a file.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    issuer: Arc<Issuer>,
    /// `iat` of every token minted here.
    iat: i64,
    patcher_key: DpopKey,
    planner_key: DpopKey,
    patcher_checksum: String,
    /// The patcher's step-4 token with scope `repo:write`.
    token: String,
    _dir: tempfile::TempDir,
    jwks_file: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let iat = unix_now();
        let issuer = runtime.block_on(async {
            let store = SqliteStore::open_in_memory().await.unwrap();
            let keys = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
            let config = IssuerConfig {
                issuer: ISS.to_owned(),
                ..IssuerConfig::default()
            };
            Arc::new(Issuer::new(
                config,
                Arc::new(store),
                Arc::new(keys),
                Arc::new(FixedIssuerClock(iat)),
            ))
        });
        let patcher_key = DpopKey::generate(Alg::Es256).unwrap();
        let planner_key = DpopKey::generate(Alg::Es256).unwrap();
        let workflow = std::fs::read(repo_file("examples/workflows/auto-patch-workflow-v1.json"))
            .expect("the §6.3.3 workflow");
        let (patcher_checksum, _planner_checksum) = runtime.block_on(async {
            issuer.register_workflow(&workflow).await.unwrap();
            let mut checksums = Vec::new();
            for (id, key) in [(PATCHER, &patcher_key), (PLANNER, &planner_key)] {
                let mut body = agent_spec(id);
                body["public_key"] = Value::Object(key.public_jwk());
                let r = issuer
                    .register_agent(&serde_json::to_vec(&body).unwrap())
                    .await
                    .unwrap();
                let r = serde_json::to_value(&r).unwrap();
                checksums.push(r["checksum"].as_str().unwrap().to_owned());
            }
            (checksums[0].clone(), checksums[1].clone())
        });
        let dir = tempfile::tempdir().unwrap();
        let jwks_file = dir.path().join("jwks.json");
        std::fs::write(&jwks_file, serde_json::to_vec(&issuer.jwks()).unwrap()).unwrap();
        let mut f = Fixture {
            runtime,
            issuer,
            iat,
            patcher_key,
            planner_key,
            patcher_checksum,
            token: String::new(),
            _dir: dir,
            jwks_file,
        };
        f.token = f.step4_token(&["repo:write"]);
        f
    }

    /// A token of the patcher for step 4 (steps 1–3 done) with `scopes`.
    fn step4_token(&self, scopes: &[&str]) -> String {
        let request = json!({
            "grant_type": "agent_checksum",
            "agent_id": PATCHER,
            "computed_checksum": self.patcher_checksum,
            "workflow_id": WORKFLOW,
            "workflow_step": STEP4,
            "workflow_enabled": true,
            "requested_scopes": scopes,
            "audience": AUD,
            "delegation_context": {
                "chain": [],
                "completed_steps": [
                    "step_1_analyze_manifest",
                    "step_2_create_patch_plan",
                    "step_3_approval_gate"
                ]
            }
        });
        let response = self
            .runtime
            .block_on(
                self.issuer
                    .intent_token(serde_json::from_value(request).unwrap()),
            )
            .unwrap();
        response.access_token
    }

    fn jwks(&self) -> &str {
        self.jwks_file.to_str().unwrap()
    }

    /// A DPoP proof of `key` for `htm htu`, bound to `token`, made at `iat`.
    fn proof(key: &DpopKey, htm: &str, htu: &str, token: &str, iat: i64) -> String {
        key.proof(htm, htu, Some(token), None, iat).unwrap()
    }

    /// The patcher's proof for `POST API_URL` with the fixture's token, now.
    fn patcher_proof(&self) -> String {
        Fixture::proof(&self.patcher_key, "POST", API_URL, &self.token, unix_now())
    }
}

/// `ajwt token verify --jwks JWKS --issuer ISS --audience AUD <extra...>`.
fn verify(jwks: &str, extra: &[&str]) -> Output {
    ajwt(
        &[
            &[
                "token",
                "verify",
                "--jwks",
                jwks,
                "--issuer",
                ISS,
                "--audience",
                AUD,
            ],
            extra,
        ]
        .concat(),
    )
}

fn ajwt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ajwt"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Exit 0, nothing on stderr; returns the claims printed on stdout.
#[track_caller]
fn assert_valid(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
    assert!(out.stderr.is_empty(), "{}", describe(out));
    let stdout = text(&out.stdout);
    assert!(stdout.ends_with('\n'), "{}", describe(out));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"))
}

/// Exit 1, nothing on stdout, exactly one stderr line `error: <code>: <description>`.
/// Returns the description.
#[track_caller]
fn assert_invalid(out: &Output, code: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    assert!(out.stdout.is_empty(), "{}", describe(out));
    let stderr = text(&out.stderr);
    assert!(stderr.ends_with('\n'), "{}", describe(out));
    assert_eq!(stderr.lines().count(), 1, "{}", describe(out));
    let prefix = format!("error: {code}: ");
    let line = stderr.trim_end_matches('\n');
    let description = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("stderr does not start with {prefix:?}: {stderr:?}"));
    assert!(!description.trim().is_empty(), "{}", describe(out));
    description.to_owned()
}

/// Exit 2 (bad usage), nothing on stdout.
#[track_caller]
fn assert_usage_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", describe(out));
    assert!(out.stdout.is_empty(), "{}", describe(out));
    let stderr = text(&out.stderr);
    assert!(!stderr.trim().is_empty(), "{}", describe(out));
    stderr
}

/// Header and payload of a compact JWS, decoded here without any crate of the project.
fn decode_unverified(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let part =
        |p: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap() };
    (part(parts[0]), part(parts[1]))
}

fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (_, mut payload) = decode_unverified(token);
    edit(&mut payload);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    )
}

fn tamper_signature(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[7] ^= 0x01;
    format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn s(n: i64) -> String {
    n.to_string()
}

// ---------------------------------------------------------------------------
// Valid tokens
// ---------------------------------------------------------------------------

#[test]
fn valid_token_with_pop_disabled_prints_the_verified_claims() {
    let f = Fixture::new();
    let out = verify(f.jwks(), &["--pop", "disabled", &f.token]);
    let claims = assert_valid(&out);
    assert_eq!(claims["sub"], PATCHER);
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["scope"], "repo:write");
    assert_eq!(claims["iat"], f.iat);
    assert_eq!(claims["exp"], f.iat + LIFETIME);
    assert_eq!(claims["intent"]["workflow_id"], WORKFLOW);
    assert_eq!(claims["intent"]["workflow_step"], STEP4);
    assert_eq!(claims["intent"]["executed_by"], PATCHER);
    assert_eq!(
        claims["agent_proof"]["agent_checksum"],
        f.patcher_checksum.as_str()
    );
    // Nothing added, nothing lost: the printed claims are the token's payload.
    let (_, payload) = decode_unverified(&f.token);
    assert_eq!(claims, payload);
}

#[test]
fn valid_token_with_the_agents_dpop_proof_passes_the_default_required_policy() {
    let f = Fixture::new();
    let proof = f.patcher_proof();
    let out = verify(
        f.jwks(),
        &[
            "--dpop", &proof, "--method", "POST", "--url", API_URL, &f.token,
        ],
    );
    let claims = assert_valid(&out);
    assert_eq!(claims["sub"], PATCHER);
    assert_eq!(claims["intent"]["workflow_step"], STEP4);
    // Explicit `--pop required` and the required scope: the same result.
    let proof = f.patcher_proof();
    let out = verify(
        f.jwks(),
        &[
            "--pop",
            "required",
            "--scope",
            "repo:write",
            "--dpop",
            &proof,
            "--method",
            "POST",
            "--url",
            API_URL,
            &f.token,
        ],
    );
    assert_valid(&out);
}

#[test]
fn htu_is_compared_without_query_and_fragment() {
    let f = Fixture::new();
    let proof = f.patcher_proof();
    let url = format!("{API_URL}?dry_run=1#frag");
    let out = verify(
        f.jwks(),
        &[
            "--dpop", &proof, "--method", "POST", "--url", &url, &f.token,
        ],
    );
    assert_valid(&out);
}

#[test]
fn pop_optional_refuses_a_bound_token_as_bearer_and_checks_a_proof_when_given() {
    let f = Fixture::new();
    // RFC 9449 §7.2 (I-49): the cnf-bound intent token without a proof is refused.
    let d = assert_invalid(
        &verify(f.jwks(), &["--pop", "optional", &f.token]),
        "invalid_token",
    );
    assert!(d.contains("bearer"), "{d}");
    let good = f.patcher_proof();
    assert_valid(&verify(
        f.jwks(),
        &[
            "--pop", "optional", "--dpop", &good, "--method", "POST", "--url", API_URL, &f.token,
        ],
    ));
    let stolen = Fixture::proof(&f.planner_key, "POST", API_URL, &f.token, unix_now());
    let out = verify(
        f.jwks(),
        &[
            "--pop", "optional", "--dpop", &stolen, "--method", "POST", "--url", API_URL, &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
}

// ---------------------------------------------------------------------------
// invalid_token
// ---------------------------------------------------------------------------

#[test]
fn expired_token_via_now_far_in_the_future_is_invalid_token() {
    let f = Fixture::new();
    let out = verify(
        f.jwks(),
        &[
            "--pop",
            "disabled",
            "--now",
            &s(f.iat + 1_000_000),
            &f.token,
        ],
    );
    let d = assert_invalid(&out, "invalid_token");
    assert!(d.contains("expired"), "{d}");
}

#[test]
fn now_makes_the_check_reproducible() {
    let f = Fixture::new();
    for _ in 0..2 {
        assert_valid(&verify(
            f.jwks(),
            &["--pop", "disabled", "--now", &s(f.iat + 10), &f.token],
        ));
        let d = assert_invalid(
            &verify(
                f.jwks(),
                &["--pop", "disabled", "--now", &s(f.iat + 10_000), &f.token],
            ),
            "invalid_token",
        );
        assert!(d.contains("expired"), "{d}");
    }
    // iat in the future (beyond the default leeway of 30 s).
    let d = assert_invalid(
        &verify(
            f.jwks(),
            &["--pop", "disabled", "--now", &s(f.iat - 100), &f.token],
        ),
        "invalid_token",
    );
    assert!(d.contains("future"), "{d}");
}

#[test]
fn now_applies_to_dpop_proofs_too() {
    let f = Fixture::new();
    let at = f.iat + 10;
    let proof = Fixture::proof(&f.patcher_key, "POST", API_URL, &f.token, at);
    let args = |now: i64| -> Vec<String> {
        [
            "--dpop",
            &proof,
            "--method",
            "POST",
            "--url",
            API_URL,
            "--now",
            &s(now),
            &f.token,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let run = |now: i64| {
        let a = args(now);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        verify(f.jwks(), &refs)
    };
    assert_valid(&run(at));
    // Each run is a fresh process, so the same proof is not a replay there;
    // a proof far older than the window is stale.
    let d = assert_invalid(&run(at + 200), "invalid_dpop_proof");
    assert!(!d.is_empty());
}

#[test]
fn leeway_is_honoured() {
    let f = Fixture::new();
    let exp = f.iat + LIFETIME;
    let run = |now: i64, leeway: Option<i64>| {
        let mut args = vec!["--pop".to_owned(), "disabled".to_owned()];
        args.extend(["--now".to_owned(), s(now)]);
        if let Some(l) = leeway {
            args.extend(["--leeway".to_owned(), s(l)]);
        }
        args.push(f.token.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        verify(f.jwks(), &refs)
    };
    // Without leeway, exp is strict: valid one second before, expired at exp.
    assert_valid(&run(exp - 1, Some(0)));
    assert_invalid(&run(exp, Some(0)), "invalid_token");
    assert_invalid(&run(exp + 5, Some(0)), "invalid_token");
    // A leeway of 10 s covers 5 s past exp, not 15 s.
    assert_valid(&run(exp + 5, Some(10)));
    assert_invalid(&run(exp + 15, Some(10)), "invalid_token");
    // The default leeway is 30 s.
    assert_valid(&run(exp + 20, None));
    assert_invalid(&run(exp + 40, None), "invalid_token");
    // iat in the future: inside vs beyond the leeway.
    assert_valid(&run(f.iat - 20, Some(30)));
    assert_invalid(&run(f.iat - 20, Some(10)), "invalid_token");
}

#[test]
fn wrong_issuer_is_invalid_token() {
    let f = Fixture::new();
    let out = ajwt(&[
        "token",
        "verify",
        "--jwks",
        f.jwks(),
        "--issuer",
        "https://evil.example.com",
        "--audience",
        AUD,
        "--pop",
        "disabled",
        &f.token,
    ]);
    let d = assert_invalid(&out, "invalid_token");
    assert!(d.contains("issuer"), "{d}");
}

#[test]
fn wrong_audience_is_invalid_token() {
    let f = Fixture::new();
    let out = ajwt(&[
        "token",
        "verify",
        "--jwks",
        f.jwks(),
        "--issuer",
        ISS,
        "--audience",
        "https://db.example.com",
        "--pop",
        "disabled",
        &f.token,
    ]);
    let d = assert_invalid(&out, "invalid_token");
    assert!(d.contains("audience"), "{d}");
}

#[test]
fn tampered_tokens_are_invalid_token() {
    let f = Fixture::new();
    let raised = tamper_payload(&f.token, |p| p["scope"] = json!("repo:write repo:admin"));
    let d = assert_invalid(
        &verify(f.jwks(), &["--pop", "disabled", &raised]),
        "invalid_token",
    );
    assert!(d.contains("signature"), "{d}");
    let flipped = tamper_signature(&f.token);
    assert_invalid(
        &verify(f.jwks(), &["--pop", "disabled", &flipped]),
        "invalid_token",
    );
    let truncated = &f.token[..f.token.len() - 10];
    assert_invalid(
        &verify(f.jwks(), &["--pop", "disabled", truncated]),
        "invalid_token",
    );
    assert_invalid(
        &verify(f.jwks(), &["--pop", "disabled", "not-a-token"]),
        "invalid_token",
    );
}

#[test]
fn a_token_signed_by_another_issuer_key_is_invalid_token() {
    let f = Fixture::new();
    let other = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("other.json");
    std::fs::write(&jwks, serde_json::to_vec(&other.jwks()).unwrap()).unwrap();
    let d = assert_invalid(
        &verify(jwks.to_str().unwrap(), &["--pop", "disabled", &f.token]),
        "invalid_token",
    );
    assert!(d.contains("key"), "{d}");
}

// ---------------------------------------------------------------------------
// insufficient_scope
// ---------------------------------------------------------------------------

#[test]
fn a_scope_the_token_lacks_is_insufficient_scope() {
    let f = Fixture::new();
    let out = verify(
        f.jwks(),
        &["--pop", "disabled", "--scope", "repo:admin", &f.token],
    );
    let d = assert_invalid(&out, "insufficient_scope");
    assert!(d.contains("repo:admin"), "{d}");
    // Every --scope is required: one held and one missing still fails.
    let out = verify(
        f.jwks(),
        &[
            "--pop",
            "disabled",
            "--scope",
            "repo:write",
            "--scope",
            "repo:admin",
            &f.token,
        ],
    );
    assert_invalid(&out, "insufficient_scope");
    // A token minted without repo:write.
    let read_only = f.step4_token(&["repo:read"]);
    let out = verify(
        f.jwks(),
        &["--pop", "disabled", "--scope", "repo:write", &read_only],
    );
    assert_invalid(&out, "insufficient_scope");
    assert_valid(&verify(
        f.jwks(),
        &["--pop", "disabled", "--scope", "repo:read", &read_only],
    ));
}

// ---------------------------------------------------------------------------
// invalid_dpop_proof
// ---------------------------------------------------------------------------

#[test]
fn required_policy_without_a_proof_is_invalid_dpop_proof() {
    let f = Fixture::new();
    assert_invalid(&verify(f.jwks(), &[&f.token]), "invalid_dpop_proof");
    assert_invalid(
        &verify(f.jwks(), &["--pop", "required", &f.token]),
        "invalid_dpop_proof",
    );
}

#[test]
fn a_proof_by_a_sibling_agents_key_is_invalid_dpop_proof() {
    // T2: the patcher's token stolen by the planner, which signs with its own
    // registered key.
    let f = Fixture::new();
    let stolen = Fixture::proof(&f.planner_key, "POST", API_URL, &f.token, unix_now());
    let out = verify(
        f.jwks(),
        &[
            "--dpop", &stolen, "--method", "POST", "--url", API_URL, &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
    // And with a fresh, unregistered key.
    let stranger = DpopKey::generate(Alg::EdDsa).unwrap();
    let proof = Fixture::proof(&stranger, "POST", API_URL, &f.token, unix_now());
    let out = verify(
        f.jwks(),
        &[
            "--dpop", &proof, "--method", "POST", "--url", API_URL, &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
}

#[test]
fn a_proof_for_another_url_or_method_or_token_is_invalid_dpop_proof() {
    let f = Fixture::new();
    let proof = f.patcher_proof();
    let out = verify(
        f.jwks(),
        &[
            "--dpop",
            &proof,
            "--method",
            "POST",
            "--url",
            "https://api.github.com/repos/acme/app/merges",
            &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
    let out = verify(
        f.jwks(),
        &[
            "--dpop",
            &proof,
            "--method",
            "POST",
            "--url",
            "https://evil.example.com/repos/acme/app/patches",
            &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
    let out = verify(
        f.jwks(),
        &[
            "--dpop", &proof, "--method", "DELETE", "--url", API_URL, &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
    // A proof of the right key bound to another token (wrong ath).
    let other_token = f.step4_token(&["repo:write"]);
    let proof = Fixture::proof(&f.patcher_key, "POST", API_URL, &other_token, unix_now());
    let out = verify(
        f.jwks(),
        &[
            "--dpop", &proof, "--method", "POST", "--url", API_URL, &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
    // Not a JWS at all.
    let out = verify(
        f.jwks(),
        &[
            "--dpop", "garbage", "--method", "POST", "--url", API_URL, &f.token,
        ],
    );
    assert_invalid(&out, "invalid_dpop_proof");
}

// ---------------------------------------------------------------------------
// Bad usage: exit 2
// ---------------------------------------------------------------------------

#[test]
fn missing_issuer_is_a_usage_error() {
    let f = Fixture::new();
    let out = ajwt(&[
        "token",
        "verify",
        "--jwks",
        f.jwks(),
        "--audience",
        AUD,
        "--pop",
        "disabled",
        &f.token,
    ]);
    let err = assert_usage_error(&out);
    assert!(err.contains("--issuer"), "{err}");
    let out = ajwt(&[
        "token",
        "verify",
        "--jwks",
        f.jwks(),
        "--issuer",
        ISS,
        "--pop",
        "disabled",
        &f.token,
    ]);
    assert_usage_error(&out);
    let out = ajwt(&[
        "token",
        "verify",
        "--issuer",
        ISS,
        "--audience",
        AUD,
        "--pop",
        "disabled",
        &f.token,
    ]);
    assert_usage_error(&out);
    // No TOKEN.
    assert_usage_error(&verify(f.jwks(), &["--pop", "disabled"]));
}

#[test]
fn dpop_without_method_and_url_is_a_usage_error() {
    let f = Fixture::new();
    let proof = f.patcher_proof();
    assert_usage_error(&verify(f.jwks(), &["--dpop", &proof, &f.token]));
    assert_usage_error(&verify(
        f.jwks(),
        &["--dpop", &proof, "--method", "POST", &f.token],
    ));
    assert_usage_error(&verify(
        f.jwks(),
        &["--dpop", &proof, "--url", API_URL, &f.token],
    ));
}

#[test]
fn unknown_pop_value_and_bad_numbers_are_usage_errors() {
    let f = Fixture::new();
    let err = assert_usage_error(&verify(f.jwks(), &["--pop", "sometimes", &f.token]));
    assert!(err.contains("sometimes"), "{err}");
    assert_usage_error(&verify(
        f.jwks(),
        &["--pop", "disabled", "--now", "yesterday", &f.token],
    ));
    assert_usage_error(&verify(
        f.jwks(),
        &["--pop", "disabled", "--leeway", "lots", &f.token],
    ));
    let err = assert_usage_error(&verify(
        f.jwks(),
        &["--pop", "disabled", "--leeway=-5", &f.token],
    ));
    assert!(err.contains("leeway"), "{err}");
}

#[test]
fn unreadable_or_invalid_jwks_file_is_a_usage_error() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist.json");
    let out = verify(missing.to_str().unwrap(), &["--pop", "disabled", &f.token]);
    let err = assert_usage_error(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("does-not-exist.json"), "{err}");
    // A directory is not readable as a file either.
    let out = verify(
        dir.path().to_str().unwrap(),
        &["--pop", "disabled", &f.token],
    );
    assert_usage_error(&out);
    // Not a JWK Set.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"this is not json").unwrap();
    let out = verify(junk.to_str().unwrap(), &["--pop", "disabled", &f.token]);
    let err = assert_usage_error(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---------------------------------------------------------------------------
// --jwks as a URL
// ---------------------------------------------------------------------------

#[test]
fn jwks_from_the_issuers_url() {
    let f = Fixture::new();
    let listener = f
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = f
        .runtime
        .spawn(ajwt_issuer::serve(f.issuer.clone(), listener, async move {
            let _ = stopped.await;
        }));
    let url = format!("http://127.0.0.1:{port}/.well-known/jwks.json");

    let claims = assert_valid(&verify(&url, &["--pop", "disabled", &f.token]));
    assert_eq!(claims["sub"], PATCHER);
    let proof = f.patcher_proof();
    assert_valid(&verify(
        &url,
        &[
            "--dpop", &proof, "--method", "POST", "--url", API_URL, &f.token,
        ],
    ));
    // Invalid tokens are still exit 1 with one line, keys coming from the URL.
    let flipped = tamper_signature(&f.token);
    assert_invalid(
        &verify(&url, &["--pop", "disabled", &flipped]),
        "invalid_token",
    );
    assert_invalid(
        &verify(
            &url,
            &["--pop", "disabled", "--scope", "repo:admin", &f.token],
        ),
        "insufficient_scope",
    );

    stop.send(()).unwrap();
    f.runtime.block_on(server).unwrap().unwrap();
    // The issuer is gone: its keys cannot be obtained (bad usage, exit 2).
    let out = verify(&url, &["--pop", "disabled", &f.token]);
    let err = assert_usage_error(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------

#[test]
fn decode_prints_header_and_claims_marked_unverified() {
    let f = Fixture::new();
    let out = ajwt(&["token", "decode", &f.token]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("UNVERIFIED"), "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let (header, payload) = decode_unverified(&f.token);
    assert_eq!(v["header"], header);
    assert_eq!(v["header"]["alg"], "ES256");
    assert_eq!(v["header"]["typ"], "JWT");
    assert_eq!(v["claims"], payload);
    assert_eq!(v["claims"]["sub"], PATCHER);
    assert!(
        v.as_object()
            .unwrap()
            .iter()
            .any(|(k, val)| k.eq_ignore_ascii_case("warning")
                && val.as_str().is_some_and(|w| w.contains("UNVERIFIED"))),
        "{stdout}"
    );
    // Decoding checks nothing: a tampered or expired token decodes too.
    let raised = tamper_payload(&f.token, |p| p["scope"] = json!("repo:admin"));
    let out = ajwt(&["token", "decode", &raised]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["claims"]["scope"], "repo:admin");
    assert!(text(&out.stdout).contains("UNVERIFIED"));
}

#[test]
fn decode_of_garbage_is_a_usage_error() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
    let not_json = URL_SAFE_NO_PAD.encode(b"not json");
    for garbage in [
        "garbage".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d.e".to_owned(),
        "!!!.###.$$$".to_owned(),
        format!("{not_json}.{header}.c2ln"),
        format!("{header}.{not_json}.c2ln"),
    ] {
        let out = ajwt(&["token", "decode", &garbage]);
        let err = assert_usage_error(&out);
        assert_eq!(err.lines().count(), 1, "{garbage}: {err}");
        assert!(err.starts_with("error: "), "{garbage}: {err}");
    }
    assert_usage_error(&ajwt(&["token", "decode"]));
}

// ---------------------------------------------------------------------------
// The code set of the contract
// ---------------------------------------------------------------------------

#[test]
fn every_refusal_uses_one_of_the_three_contract_codes() {
    // "code is invalid_token, insufficient_scope or invalid_dpop_proof": an
    // empty token or one with a space is an invalid token (or bad usage), never
    // another code such as RFC 6750's invalid_request.
    let f = Fixture::new();
    for token in ["", "a b", &format!("{} x", f.token)] {
        let out = verify(f.jwks(), &["--pop", "disabled", token]);
        match out.status.code() {
            Some(2) => {}
            _ => {
                assert_invalid(&out, "invalid_token");
            }
        }
    }
}
