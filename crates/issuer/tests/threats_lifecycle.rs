//! Identity-lifecycle attacks against a running issuer over TCP (issue 12
//! defects 10, 11 and 12; spec I-69, I-70, I-71):
//!
//! * a client with only `register:intent` re-activates an agent an
//!   administrator revoked (§5.6.1 REVOKED) by re-registering it with a
//!   one-character change, also racing the revocation;
//! * rotations grow the JWK Set without bound, and rapid re-registrations
//!   push registration-id timestamps ahead of the clock;
//! * a 200 KB `kid` is reflected into `WWW-Authenticate` and the error body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use ajwt_issuer::keys::MAX_PREVIOUS_KEYS;
use ajwt_issuer::service::{ClientCredentials, SCOPE_ADMIN};
use ajwt_test_kit::RunningIssuer;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{kids, TestAgent, GENERATE, REGISTER};
use serde_json::{json, Value};

struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    text: String,
    json: Value,
}

async fn post(url: &str, token: &str, body: &Value) -> Answer {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let www_authenticate = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        www_authenticate,
        text,
        json,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn token_with(issuer: &RunningIssuer, scopes: &[&str]) -> String {
    let creds: ClientCredentials = issuer
        .issuer
        .create_client(scopes.iter().map(|s| (*s).to_owned()).collect(), None)
        .await
        .unwrap();
    ajwt_test_kit::client_token(&issuer.token_endpoint(), &creds)
        .await
        .unwrap()
}

fn register_url(issuer: &RunningIssuer) -> String {
    format!("{}/intent/register/agent", issuer.base_url)
}

fn revoke_url(issuer: &RunningIssuer) -> String {
    format!("{}/intent/admin/revoke-agent", issuer.base_url)
}

async fn register(issuer: &RunningIssuer, token: &str, agent: &TestAgent) -> Answer {
    post(&register_url(issuer), token, &agent.registration_body()).await
}

/// The agent's token request answer (`unknown_agent` once revoked, I-30).
async fn token_request(issuer: &RunningIssuer, token: &str, agent: &TestAgent) -> Answer {
    post(
        &issuer.token_endpoint(),
        token,
        &agent.request(&["repo:read"]),
    )
    .await
}

// ===========================================================================
// Defect 11: revocation undone with less privilege (§5.6.1, I-69)
// ===========================================================================

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i69_register_only_client_cannot_reactivate_a_revoked_agent() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let registrar = token_with(&issuer, &[REGISTER, GENERATE]).await;

    let v1 = TestAgent::with_prompt("revoked-agent", "You are a careful agent.");
    assert_eq!(register(&issuer, &registrar, &v1).await.status, 200);
    assert_eq!(token_request(&issuer, &registrar, &v1).await.status, 200);
    let r = post(
        &revoke_url(&issuer),
        &admin,
        &json!({"agent_id": "revoked-agent"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        token_request(&issuer, &registrar, &v1).await.json["error"],
        "unknown_agent"
    );

    // The attack: a one-character change, registered with register:intent only.
    let v2 = TestAgent::with_prompt("revoked-agent", "You are a careful agent!");
    let r = register(&issuer, &registrar, &v2).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json["error"], "insufficient_scope");
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("Bearer error=\"insufficient_scope\", scope=\"admin:intent\"")
    );
    let r = token_request(&issuer, &registrar, &v2).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (401, Some("unknown_agent")),
        "{}",
        r.text
    );
    assert_eq!(
        issuer
            .issuer
            .store()
            .registrations("revoked-agent")
            .await
            .unwrap()
            .len(),
        1,
        "nothing stored"
    );

    // An administrator (register:intent and admin:intent) re-admits it (I-41).
    let readmit = token_with(&issuer, &[REGISTER, SCOPE_ADMIN]).await;
    let r = register(&issuer, &readmit, &v2).await;
    assert_eq!((r.status, r.json["version"].as_u64()), (200, Some(2)));
    assert_eq!(token_request(&issuer, &registrar, &v2).await.status, 200);
    issuer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i69_revocation_racing_a_reregistration_always_leaves_the_agent_revoked() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let registrar = token_with(&issuer, &[REGISTER, GENERATE]).await;
    let mut registered_first = 0;
    for round in 0..12 {
        let id = format!("raced-agent-{round}");
        let v1 = TestAgent::with_prompt(&id, "Original prompt.");
        assert_eq!(register(&issuer, &registrar, &v1).await.status, 200);
        let v2 = TestAgent::with_prompt(&id, "Original prompt!");
        let revoke_endpoint = revoke_url(&issuer);
        let revoke_body = json!({ "agent_id": id });
        let revoke = post(&revoke_endpoint, &admin, &revoke_body);
        let reregister = register(&issuer, &registrar, &v2);
        let (revoked, reregistered) = tokio::join!(revoke, reregister);
        assert_eq!(revoked.status, 200, "{}", revoked.text);
        assert!(
            [200, 403].contains(&reregistered.status),
            "{}",
            reregistered.text
        );
        if reregistered.status == 200 {
            registered_first += 1;
        }
        // Whatever the order, the agent ends revoked.
        for agent in [&v1, &v2] {
            let r = token_request(&issuer, &registrar, agent).await;
            assert_eq!(
                (r.status, r.json["error"].as_str()),
                (401, Some("unknown_agent")),
                "round {round}: {}",
                r.text
            );
        }
        let latest = issuer
            .issuer
            .store()
            .latest_registration(&id)
            .await
            .unwrap()
            .unwrap();
        assert!(latest.revoked, "round {round}: {latest:?}");
    }
    eprintln!("re-registration won the race in {registered_first} of 12 rounds");
    issuer.stop().await.unwrap();
}

// ===========================================================================
// Defect 12: unbounded key ring, registration ids ahead of the clock (I-70)
// ===========================================================================

async fn jwks(issuer: &RunningIssuer) -> Value {
    let text = reqwest::get(format!("{}/.well-known/jwks.json", issuer.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i70_rotations_keep_the_jwks_bounded_and_the_signing_key_published() {
    const ROTATIONS: usize = 30;
    // Immediate rotation (no JWKS caching, I-90), as before publish-then-sign.
    let issuer = RunningIssuer::start(|c| {
        c.jwks_max_age = 0;
        c.key_publish_delay = 0;
    })
    .await
    .unwrap();
    let rotate = format!("{}/intent/admin/rotate-keys", issuer.base_url);
    let mut current = String::new();
    let mut admin = String::new();
    for i in 0..ROTATIONS {
        // A token outlives at most MAX_PREVIOUS_KEYS rotations of its key.
        if i % MAX_PREVIOUS_KEYS == 0 {
            admin = issuer.admin_token().await.unwrap();
        }
        let r = post(&rotate, &admin, &json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        current = r.json["kid"].as_str().unwrap().to_owned();
    }
    let published = kids(&jwks(&issuer).await);
    eprintln!("JWKS after {ROTATIONS} rotations: {} keys", published.len());
    assert_eq!(published.len(), MAX_PREVIOUS_KEYS + 1, "{published:?}");
    // A token outlives MAX_PREVIOUS_KEYS rotations, not one more.
    let admin = issuer.admin_token().await.unwrap();
    for _ in 0..=MAX_PREVIOUS_KEYS {
        let r = post(&rotate, &admin, &json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        current = r.json["kid"].as_str().unwrap().to_owned();
    }
    let r = post(&rotate, &admin, &json!({})).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let published = kids(&jwks(&issuer).await);
    assert_eq!(published[0], current, "the signing key is published first");

    // Tokens signed now carry the current kid and are accepted.
    let fresh = issuer.admin_token().await.unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(fresh.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], current.as_str());
    let agent = TestAgent::new("after-rotation");
    assert_eq!(register(&issuer, &fresh, &agent).await.status, 200);

    // A restart keeps the bound: the store holds only the ring's private
    // keys, the rest are public records (I-110).
    let stored = issuer.issuer.store().signing_keys().await.unwrap();
    let live = stored
        .iter()
        .filter(|k| k.private_key_pem.is_some())
        .count();
    assert_eq!(live, MAX_PREVIOUS_KEYS + 1);
    let reloaded = ajwt_issuer::key_store::reload(
        &**issuer.issuer.store(),
        issuer.issuer.config().rotation_policy(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .await
    .unwrap();
    assert_eq!(reloaded.kids(), published);
    issuer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i70_rapid_reregistrations_keep_unique_ids_without_running_ahead_of_the_clock() {
    const REGISTRATIONS: usize = 25;
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut max_ahead: i64 = 0;
    for n in 0..REGISTRATIONS {
        let agent = TestAgent::with_prompt("busy-agent", &format!("prompt {n}"));
        let r = register(&issuer, &admin, &agent).await;
        let after = unix_now();
        assert_eq!(r.status, 200, "{}", r.text);
        let id = r.json["registration_id"].as_str().unwrap().to_owned();
        // reg_<agent>_<timestamp>: Unix seconds, or microseconds within
        // the second for later registrations in the same second (I-70).
        let rest = id.strip_prefix("reg_busy-agent_").unwrap();
        assert!(rest.bytes().all(|b| b.is_ascii_digit()), "{id}");
        let timestamp: u64 = rest.parse().unwrap();
        let second = if rest.len() > 12 {
            timestamp / 1_000_000
        } else {
            timestamp
        };
        max_ahead = max_ahead.max(second as i64 - after as i64);
        assert!(
            second <= after,
            "registration {n}: id {id} is ahead of the clock ({after})"
        );
        let version = r.json["version"].as_u64().unwrap();
        assert_eq!(version, n as u64 + 1);
        assert!(ids.insert(id.clone()), "duplicate registration id {id}");
    }
    eprintln!("{REGISTRATIONS} registrations: ids at most {max_ahead} s ahead of the clock");
    issuer.stop().await.unwrap();
}

// ===========================================================================
// Defect 10: reflected header and body size (I-71)
// ===========================================================================

/// A compact JWS whose protected header has a `kid` of `kid_len` bytes
/// (signature garbage: the kid lookup fails first).
fn token_with_kid(alg: &str, kid_len: usize) -> String {
    let header = json!({"alg": alg, "typ": "at+jwt", "kid": "k".repeat(kid_len)});
    let payload = json!({"iss": "x", "sub": "y"});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 64])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i71_a_huge_kid_is_not_reflected_by_the_issuer() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    let alg = jwks(&issuer).await["keys"][0]["alg"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = TestAgent::new("never-registered");
    for kid_len in [10 * 1024, 200 * 1024] {
        let token = token_with_kid(&alg, kid_len);
        for url in [register_url(&issuer), issuer.token_endpoint()] {
            let r = post(&url, &token, &agent.registration_body()).await;
            assert_eq!(r.status, 401, "{url}: {}", &r.text[..r.text.len().min(300)]);
            let header = r.www_authenticate.unwrap_or_default();
            eprintln!(
                "{url} kid {kid_len} B: WWW-Authenticate {} B, body {} B",
                header.len(),
                r.text.len()
            );
            assert!(header.len() < 1024, "{} bytes", header.len());
            assert!(r.text.len() < 1024, "{} bytes", r.text.len());
            if url == register_url(&issuer) {
                assert!(header.starts_with("Bearer error=\"invalid_token\""));
                assert_eq!(r.json["error"], "invalid_token");
                let d = r.json["error_description"].as_str().unwrap();
                assert!(d.len() <= ajwt_protocol::error::MAX_DESCRIPTION_BYTES);
                assert!(d.ends_with("..."), "{d}");
            }
        }
    }
    issuer.stop().await.unwrap();
}
