//! The issuer over real TCP through `ajwt-test-kit`: started on a free port
//! from a fresh data directory, healthy, its bootstrap admin client read from
//! `admin-client.json`, and `client_credentials` (RFC 6749 §4.4) through the
//! token endpoint of a root and of an RFC 8414 §3.1 path issuer (I-54).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_test_kit::RunningIssuer;

fn claims(token: &str) -> serde_json::Value {
    ajwt_test_kit::jwt_payload(token).unwrap()
}

#[tokio::test]
async fn rfc6749_4_4_admin_token_over_tcp_for_root_and_path_issuers() {
    let root = RunningIssuer::start(|_| {}).await.unwrap();
    let token = root.admin_token().await.unwrap();
    let c = claims(&token);
    assert_eq!(c["iss"], root.base_url.as_str());
    assert_eq!(
        c["scope"],
        "register:intent generate:intent-token admin:intent introspect:intent"
    );
    root.stop().await.unwrap();

    let tenant = RunningIssuer::start(|c| c.issuer = format!("{}/tenant1", c.issuer))
        .await
        .unwrap();
    assert!(tenant.token_endpoint().ends_with("/tenant1/intent/token"));
    let token = tenant.admin_token().await.unwrap();
    assert_eq!(
        claims(&token)["iss"],
        format!("{}/tenant1", tenant.base_url)
    );
    tenant.stop().await.unwrap();
}
