//! Rate limits against a running issuer over TCP (§9.1.1, §9.1.4, §9.4.3;
//! issue 12; spec I-73). Before: 5,000 wrong-checksum token requests for one
//! agent ran at 785/s with no throttling at all. Each test performs an attack
//! with small limits and checks that the attacker gets `429` with
//! `Retry-After` and an RFC 6749-shaped error, while a legitimate client
//! keeps working. Loopback has many addresses: the attacker and the
//! legitimate client connect from different ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::IpAddr;

use ajwt_issuer::service::ClientCredentials;
use ajwt_test_kit::{ExampleAgent, RunningIssuer};
use base64::Engine as _;
use serde_json::{json, Value};

struct Resp {
    status: u16,
    retry_after: Option<String>,
    json: Value,
}

fn http_from(addr: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(addr))
        .build()
        .unwrap()
}

async fn read(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    Resp {
        status,
        retry_after,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

async fn client_credentials(
    http: &reqwest::Client,
    issuer: &RunningIssuer,
    creds: &ClientCredentials,
) -> Resp {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.client_id, creds.client_secret));
    read(
        http.post(issuer.token_endpoint())
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn intent(issuer: &RunningIssuer, token: &str, agent: &ExampleAgent, checksum: &str) -> Resp {
    read(
        reqwest::Client::new()
            .post(issuer.token_endpoint())
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(
                json!({
                    "grant_type": "agent_checksum",
                    "agent_id": agent.id,
                    "computed_checksum": checksum,
                    "requested_scopes": ["repo:read"],
                    "audience": "https://api.example.com",
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[track_caller]
fn assert_limited(r: &Resp, limit: &str) {
    assert_eq!(r.status, 429, "{}", r.json);
    assert_eq!(r.json["error"], "temporarily_unavailable", "{}", r.json);
    assert!(
        r.json["error_description"]
            .as_str()
            .unwrap()
            .contains(limit),
        "{}",
        r.json
    );
    let secs: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
}

/// A second client with `generate:intent-token`, created by the admin.
async fn second_client(issuer: &RunningIssuer, admin_token: &str) -> ClientCredentials {
    let r = ajwt_test_kit::register(
        &issuer.base_url,
        admin_token,
        "client",
        &json!({"allowed_scopes": ["generate:intent-token", "register:intent"]}),
    )
    .await
    .unwrap();
    serde_json::from_value(r).unwrap()
}

/// §9.1.1: wrong checksums for one agent are throttled, and the agent and
/// the client stay refused (even with the right checksum) until the bucket
/// refills; another client's agent is served throughout.
#[tokio::test]
async fn s9_1_1_i73_checksum_mismatches_are_throttled_per_agent_and_client() {
    let issuer = RunningIssuer::start(|c| c.rate_limits.grant_failures = 5)
        .await
        .unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let victim = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "rl-victim")
        .await
        .unwrap();
    let bystander = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "rl-bystander")
        .await
        .unwrap();
    let other = second_client(&issuer, &admin).await;
    let other_token = ajwt_test_kit::client_token(&issuer.token_endpoint(), &other)
        .await
        .unwrap();

    let wrong = format!("sha256:{}", "0".repeat(64));
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(intent(&issuer, &admin, &victim, &wrong).await);
    }
    // The failure that goes over the limit is still answered; the key is
    // refused from then on.
    assert!(statuses[..6]
        .iter()
        .all(|r| r.json["error"] == "agent_checksum_mismatch"));
    for r in &statuses[6..] {
        assert_limited(r, "rate_limit_grant_failures");
    }
    // The right checksum does not get through either, from any client.
    assert_limited(
        &intent(&issuer, &admin, &victim, &victim.checksum).await,
        "rate_limit_grant_failures",
    );
    assert_limited(
        &intent(&issuer, &other_token, &victim, &victim.checksum).await,
        "rate_limit_grant_failures",
    );
    // Another client's other agent is served.
    let ok = intent(&issuer, &other_token, &bystander, &bystander.checksum).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    issuer.stop().await.unwrap();
}

/// Failed client authentication is throttled per peer address and per known
/// client id; a legitimate client from another address keeps working.
#[tokio::test]
async fn i73_failed_client_authentication_is_throttled_per_peer_and_client() {
    let issuer = RunningIssuer::start(|c| c.rate_limits.auth_failures = 5)
        .await
        .unwrap();
    let attacker = http_from([127, 0, 0, 2]);
    let legit = http_from([127, 0, 0, 3]);
    let unknown = ClientCredentials {
        client_id: "client_nobody".into(),
        client_secret: "guess".into(),
    };
    let mut out = Vec::new();
    for _ in 0..10 {
        out.push(client_credentials(&attacker, &issuer, &unknown).await);
    }
    assert!(
        out[..6].iter().all(|r| r.status == 401),
        "up to the limit, and the one over it, plain failures"
    );
    for r in &out[6..] {
        assert_limited(r, "rate_limit_auth_failures");
    }
    // The attacking address is refused even with valid credentials...
    assert_limited(
        &client_credentials(&attacker, &issuer, &issuer.admin).await,
        "rate_limit_auth_failures",
    );
    // ...while the admin, from its own address, is served.
    let ok = client_credentials(&legit, &issuer, &issuer.admin).await;
    assert_eq!(ok.status, 200, "{}", ok.json);

    // Guessing a known client's secret from many addresses boxes that client id.
    let guess = ClientCredentials {
        client_id: issuer.admin.client_id.clone(),
        client_secret: "not-the-secret".into(),
    };
    for i in 0..6u8 {
        let r = client_credentials(&http_from([127, 0, 1, i]), &issuer, &guess).await;
        assert!(r.status == 401 || r.status == 429, "{}", r.json);
    }
    assert_limited(
        &client_credentials(&legit, &issuer, &issuer.admin).await,
        "rate_limit_auth_failures",
    );
    issuer.stop().await.unwrap();
}

/// §9.4.3 token endpoint and §9.1.3 registration quotas, per client.
#[tokio::test]
async fn s9_4_3_i73_token_requests_and_registrations_are_limited_per_client() {
    let issuer = RunningIssuer::start(|c| {
        c.rate_limits.client = 10;
        c.rate_limits.registrations = 4;
    })
    .await
    .unwrap();
    let admin = issuer.admin_token().await.unwrap();
    let agent = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "rl-busy")
        .await
        .unwrap();
    let other = second_client(&issuer, &admin).await; // registration 2 of 4
    let other_token = ajwt_test_kit::client_token(&issuer.token_endpoint(), &other)
        .await
        .unwrap();
    // All 15 at once: sequentially, on a loaded machine, they could take
    // longer than the 6 s the bucket needs to refill one request.
    let out = futures_util::future::join_all(
        (0..15).map(|_| intent(&issuer, &admin, &agent, &agent.checksum)),
    )
    .await;
    let served = out.iter().filter(|r| r.status == 200).count();
    assert_eq!(served, 10, "the bucket's 10 requests are served");
    for r in out.iter().filter(|r| r.status != 200) {
        assert_limited(r, "rate_limit_client");
    }
    let ok = intent(&issuer, &other_token, &agent, &agent.checksum).await;
    assert_eq!(ok.status, 200, "another client is served: {}", ok.json);

    // Registrations 3 and 4 pass, the 5th is over the quota; the other client has its own.
    for id in ["rl-a", "rl-b"] {
        ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, id)
            .await
            .unwrap();
    }
    let e = ajwt_test_kit::register_example_agent(&issuer.base_url, &admin, "rl-c")
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("429"), "{e}");
    ajwt_test_kit::register_example_agent(&issuer.base_url, &other_token, "rl-d")
        .await
        .unwrap();
    issuer.stop().await.unwrap();
}
