//! End to end: the `protected-api` binary trusting a real issuer (draft-goswami-agentic-jwt-00
//! §6.5.3 with agent-level proof-of-possession, §9.2.2 and RFC 9449). The issuer
//! runs in-process over HTTP with a data directory (admin credentials, §6.3.3
//! workflow, agents registered through the admin client); the API discovers
//! its keys through RFC 8414 metadata; requests carry intent tokens from the
//! token endpoint and DPoP proofs made by the agents' own keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ajwt_jose::DpopKey;
use ajwt_test_kit::{ChildGuard, RunningIssuer};
use serde_json::{json, Value};

const AUD: &str = "https://api.github.com";
const WORKFLOW: &str = "auto-patch-workflow-v1";
const PATCHER: &str = "vulnerability-patcher-v1";
const PLANNER: &str = "patch-planner";
const STEP1: &str = "step_1_analyze_manifest";
const STEP2: &str = "step_2_create_patch_plan";
const STEP3: &str = "step_3_approval_gate";
const STEP4: &str = "step_4_apply_patch";

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A response, fully read.
#[derive(Debug)]
struct Resp {
    status: u16,
    www_authenticate: Option<String>,
    cache_control: Option<String>,
    body: String,
    json: Value,
}

async fn read(r: reqwest::Response) -> Resp {
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let www_authenticate = header("www-authenticate");
    let cache_control = header("cache-control");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Resp {
        status,
        www_authenticate,
        cache_control,
        body,
        json,
    }
}

/// An agent: its id, its DPoP key (registered as its public key) and the
/// checksum and registration id the issuer returned.
type Agent = ajwt_test_kit::ExampleAgent;

/// The issuer (in-process, HTTP) and the protected API (child process).
struct Env {
    http: reqwest::Client,
    issuer_url: String,
    api_url: String,
    admin_token: String,
    patcher: Agent,
    planner: Agent,
    api: ChildGuard,
    api_log: PathBuf,
    issuer: RunningIssuer,
    _data: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(|_| {}).await
    }

    /// [`Env::start`] with the issuer's configuration edited.
    async fn start_with(edit: impl FnOnce(&mut ajwt_issuer::IssuerConfig)) -> Env {
        let data = tempfile::tempdir().unwrap();
        let issuer = RunningIssuer::start(edit).await.unwrap();
        let issuer_url = issuer.base_url.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();

        // The admin client's token (client_credentials, HTTP Basic).
        let admin_token = issuer.admin_token().await.expect("client_credentials");

        // The §6.3.3 workflow and two agents with their own keys.
        let workflow =
            ajwt_test_kit::repo_json("examples/workflows/auto-patch-workflow-v1.json").unwrap();
        let r = ajwt_test_kit::register(&issuer_url, &admin_token, "workflow", &workflow)
            .await
            .unwrap_or_else(|e| panic!("workflow registration: {e}"));
        assert_eq!(r, json!({"status": "registered", "workflow_id": WORKFLOW}));
        let patcher = ajwt_test_kit::register_example_agent(&issuer_url, &admin_token, PATCHER)
            .await
            .unwrap();
        let planner = ajwt_test_kit::register_example_agent(&issuer_url, &admin_token, PLANNER)
            .await
            .unwrap();

        // The protected API, trusting the issuer.
        let api_port = ajwt_test_kit::free_port().unwrap();
        let api_url = format!("http://127.0.0.1:{api_port}");
        let api_log = data.path().join("protected-api.log");
        let child = Command::new(env!("CARGO_BIN_EXE_protected-api"))
            .args([
                "--issuer",
                &issuer_url,
                "--addr",
                &format!("127.0.0.1:{api_port}"),
                "--audience",
                AUD,
            ])
            .env_remove("API_PUBLIC_URL")
            .env_remove("API_POP")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&api_log).unwrap())
            .spawn()
            .unwrap();
        let mut env = Env {
            http,
            issuer_url,
            api_url,
            admin_token,
            patcher,
            planner,
            api: ChildGuard(child),
            api_log,
            issuer,
            _data: data,
        };
        env.wait_healthy().await;
        env
    }

    async fn wait_healthy(&mut self) {
        let healthy = self
            .api
            .wait_healthy(&self.api_url, Duration::from_secs(30))
            .await;
        if let Err(e) = healthy {
            panic!(
                "protected-api did not become healthy ({e}):\n{}",
                self.log()
            );
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.api_log).unwrap_or_default()
    }

    fn patches_url(&self) -> String {
        format!("{}/patches", self.api_url)
    }

    /// An intent token from the token endpoint (§4.2), asserting 200.
    async fn intent_token(
        &self,
        agent: &Agent,
        step: &str,
        completed: &[&str],
        scopes: &[&str],
        audience: &str,
    ) -> String {
        let step = ajwt_test_kit::StepRequest {
            workflow: WORKFLOW,
            step,
            completed,
            scopes,
            audience,
        };
        ajwt_test_kit::step_intent_token(&self.issuer_url, &self.admin_token, agent, &step)
            .await
            .unwrap()
    }

    /// The patcher's step-4 token (steps 1–3 done) with `scopes`.
    async fn step4_token(&self, scopes: &[&str]) -> String {
        self.intent_token(&self.patcher, STEP4, &[STEP1, STEP2, STEP3], scopes, AUD)
            .await
    }

    /// A fresh proof of `key` for `htm` on `htu`, bound to `token`.
    fn proof(key: &DpopKey, htm: &str, htu: &str, token: &str) -> String {
        key.proof(htm, htu, Some(token), None, unix_now()).unwrap()
    }

    /// POST /patches with the given `Authorization` and `DPoP` headers.
    async fn post_patch(&self, authorization: Option<&str>, dpop: Option<&str>) -> Resp {
        let mut req = self
            .http
            .post(self.patches_url())
            .header("content-type", "application/json")
            .body(r#"{"package":"lodash","target_version":"4.17.21"}"#);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(p) = dpop {
            req = req.header("dpop", p);
        }
        read(req.send().await.unwrap()).await
    }

    /// `Authorization: DPoP <token>` with `proof`.
    async fn post_dpop(&self, token: &str, proof: &str) -> Resp {
        self.post_patch(Some(&format!("DPoP {token}")), Some(proof))
            .await
    }

    async fn stop(self) {
        self.issuer.stop().await.unwrap();
        // The API process is killed by the guard.
    }
}

/// A 401/403 refusal with `error` in the body and a challenge starting `challenge_prefix`.
#[track_caller]
fn assert_refused(r: &Resp, status: u16, error: &str, challenge_prefix: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.json["error"], error, "{r:?}");
    assert!(r.json["error_description"].is_string(), "{r:?}");
    let challenge = r
        .www_authenticate
        .as_deref()
        .unwrap_or_else(|| panic!("no WWW-Authenticate: {r:?}"));
    assert!(
        challenge.starts_with(challenge_prefix),
        "challenge {challenge:?} does not start with {challenge_prefix:?}"
    );
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "challenge {challenge:?}"
    );
    assert_eq!(r.cache_control.as_deref(), Some("no-store"), "{r:?}");
    assert!(r.json.get("applied_by").is_none(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_applied_with_the_agents_own_proof_and_the_proof_cannot_be_replayed() {
    let env = Env::start().await;
    let token = env.step4_token(&["repo:write"]).await;
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);

    let r = env.post_dpop(&token, &proof).await;
    assert_eq!(r.status, 200, "{r:?}\n{}", env.log());
    assert_eq!(
        r.json,
        json!({
            "status": "patch applied",
            "applied_by": PATCHER,
            "workflow_id": WORKFLOW,
            "workflow_step": STEP4,
            "delegation_chain": r.json["delegation_chain"],
            "registration_id": env.patcher.registration_id,
            "proof_key": env.patcher.key.thumbprint(),
        }),
        "{}",
        r.body
    );
    assert!(r.json["delegation_chain"].is_string(), "{r:?}");

    // The same proof again: a replay (RFC 9449 §11.1).
    let r = env.post_dpop(&token, &proof).await;
    assert_refused(&r, 401, "invalid_dpop_proof", "DPoP ");
    assert!(
        r.json["error_description"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{r:?}"
    );

    // A fresh proof for the same token works again.
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &proof).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["applied_by"], PATCHER);

    // /healthz needs no token.
    let h = env
        .http
        .get(format!("{}/healthz", env.api_url))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status().as_u16(), 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_proof_the_api_answers_401_with_a_dpop_challenge() {
    let env = Env::start().await;
    let token = env.step4_token(&["repo:write"]).await;

    // DPoP scheme, no DPoP header.
    let r = env.post_patch(Some(&format!("DPoP {token}")), None).await;
    assert_refused(&r, 401, "invalid_dpop_proof", "DPoP ");
    // Bearer presentation of a token the API requires to be DPoP-bound.
    let r = env.post_patch(Some(&format!("Bearer {token}")), None).await;
    assert_refused(&r, 401, "invalid_dpop_proof", "DPoP ");
    // Bearer with a valid proof is still refused (RFC 9449 §7.2).
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
    let r = env
        .post_patch(Some(&format!("Bearer {token}")), Some(&proof))
        .await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.www_authenticate
            .as_deref()
            .is_some_and(|c| c.starts_with("DPoP ")),
        "{r:?}"
    );
    // No Authorization at all: 401 with a DPoP challenge listing the algorithms.
    let r = env.post_patch(None, None).await;
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r.www_authenticate.clone().expect("WWW-Authenticate");
    assert!(challenge.starts_with("DPoP"), "{challenge:?}");
    assert!(challenge.contains("algs=\""), "{challenge:?}");
    assert!(challenge.contains("ES256"), "{challenge:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_step_is_invalid_token() {
    let env = Env::start().await;
    // The planner's legitimate step-2 token, presented with its own valid proof.
    let token = env
        .intent_token(&env.planner, STEP2, &[STEP1], &["repo:write"], AUD)
        .await;
    let proof = Env::proof(&env.planner.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &proof).await;
    assert_refused(&r, 401, "invalid_token", "DPoP ");
    let d = r.json["error_description"].as_str().unwrap();
    assert!(d.contains("step"), "{d}");

    // A token of the patcher for another audience.
    let token = env
        .intent_token(
            &env.patcher,
            STEP4,
            &[STEP1, STEP2, STEP3],
            &["repo:write"],
            "https://db.example.com",
        )
        .await;
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &proof).await;
    assert_refused(&r, 401, "invalid_token", "DPoP ");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_repo_write_is_403_insufficient_scope() {
    let env = Env::start().await;
    let token = env.step4_token(&["repo:read"]).await;
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &proof).await;
    assert_refused(&r, 403, "insufficient_scope", "DPoP ");
    let challenge = r.www_authenticate.as_deref().unwrap();
    assert!(challenge.contains("scope=\"repo:write\""), "{challenge:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_token_is_useless_without_the_agents_key() {
    // T2: the patcher's token used by a sibling agent, which signs the proof
    // with its own registered key.
    let env = Env::start().await;
    let token = env.step4_token(&["repo:write"]).await;
    let stolen = Env::proof(&env.planner.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &stolen).await;
    assert_refused(&r, 401, "invalid_dpop_proof", "DPoP ");

    // Proofs of the right key, but for another URL, method or token.
    let other_url = format!("{}/other", env.api_url);
    let proof = Env::proof(&env.patcher.key, "POST", &other_url, &token);
    assert_refused(
        &env.post_dpop(&token, &proof).await,
        401,
        "invalid_dpop_proof",
        "DPoP ",
    );
    let proof = Env::proof(&env.patcher.key, "PUT", &env.patches_url(), &token);
    assert_refused(
        &env.post_dpop(&token, &proof).await,
        401,
        "invalid_dpop_proof",
        "DPoP ",
    );
    let other_token = env.step4_token(&["repo:write"]).await;
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &other_token);
    assert_refused(
        &env.post_dpop(&token, &proof).await,
        401,
        "invalid_dpop_proof",
        "DPoP ",
    );

    // The legitimate holder still succeeds.
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &proof).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["proof_key"], env.patcher.key.thumbprint());
    env.stop().await;
}

/// The library target: the same server started in-process (`serve`) with
/// `--dpop-nonce` (RFC 9449 §8–§9, I-51).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9449_s9_in_process_api_with_dpop_nonces() {
    use clap::Parser as _;
    let env = Env::start().await;
    let args = ajwt_example_protected_api::Args::try_parse_from([
        "protected-api",
        "--issuer",
        &env.issuer_url,
        "--audience",
        AUD,
        "--dpop-nonce",
    ])
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/patches", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        ajwt_example_protected_api::serve(&args, listener, async move {
            let _ = stopped.await;
        })
        .await
    });
    let token = env.step4_token(&["repo:write"]).await;
    let post = |nonce: Option<String>| {
        let proof = env
            .patcher
            .key
            .proof("POST", &url, Some(&token), nonce.as_deref(), unix_now())
            .unwrap();
        env.http
            .post(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    // The server may still be discovering the issuer's keys: wait until healthy.
    let base = url.trim_end_matches("/patches").to_owned();
    ajwt_test_kit::wait_healthy(&base, Duration::from_secs(10))
        .await
        .expect("in-process API unreachable");
    let first = post(None).await.unwrap();
    assert_eq!(first.status().as_u16(), 401);
    let nonce = first
        .headers()
        .get("dpop-nonce")
        .expect("DPoP-Nonce")
        .to_str()
        .unwrap()
        .to_owned();
    let challenge = first.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("DPoP error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let ok = post(Some(nonce.clone())).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["dpop-nonce"].to_str().unwrap(), nonce);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    env.stop().await;
}

/// I-92 (issue 13): `protected-api` checks the issuer's Token Status List by
/// default, so a token revoked at the issuer (RFC 7009) is refused with 401
/// `invalid_token` within the list's `ttl`, measured here against the
/// running API (ttl 2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i92_revoked_token_is_refused_by_the_running_api_within_the_status_list_ttl() {
    const TTL: u64 = 2;
    let env = Env::start_with(|c| c.tokens.status_list_ttl = TTL).await;
    let token = env.step4_token(&["repo:write"]).await;
    let claims = ajwt_test_kit::jwt_payload(&token).unwrap();
    assert!(claims["status"]["status_list"]["uri"]
        .as_str()
        .unwrap()
        .starts_with(&env.issuer_url));
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
    let r = env.post_dpop(&token, &proof).await;
    assert_eq!(r.status, 200, "{r:?}\n{}", env.log());

    // RFC 7009 revocation by the client that requested the token.
    let revoked = env
        .http
        .post(format!("{}/intent/revoke", env.issuer_url))
        .bearer_auth(&env.admin_token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    let revoked_at = std::time::Instant::now();
    let refused = loop {
        let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &token);
        let r = env.post_dpop(&token, &proof).await;
        if r.status != 200 {
            break r;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(TTL + 3),
            "still accepted {:?} after the revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = revoked_at.elapsed();
    eprintln!(
        "revoked token refused by protected-api {elapsed:?} after the revocation (ttl {TTL} s)"
    );
    assert_refused(&refused, 401, "invalid_token", "DPoP ");
    assert!(
        refused.json["error_description"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{refused:?}"
    );
    // Within the ttl (plus a second for whole-second timestamps and the request).
    assert!(elapsed <= Duration::from_secs(TTL + 1), "{elapsed:?}");
    // A fresh token of the same agent is accepted.
    let fresh = env.step4_token(&["repo:write"]).await;
    let proof = Env::proof(&env.patcher.key, "POST", &env.patches_url(), &fresh);
    assert_eq!(env.post_dpop(&fresh, &proof).await.status, 200);
    env.stop().await;
}
