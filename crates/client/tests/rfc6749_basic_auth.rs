//! RFC 6749 §2.3.1: `client_secret_basic` form-urlencodes the client id and
//! secret before joining them with `:` and base64-encoding them. An
//! operator-chosen secret holding `:`, `+`, `%`, `&`, `=`, a space or
//! non-ASCII characters must authenticate. The oracles: CPython's
//! `urllib.parse.quote_plus` (the same algorithm, another implementation)
//! for the header, and the real issuer's decoder for the round trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ajwt_client::{basic_authorization, ClientConfig, IssuerClient};
use ajwt_issuer::secrets;
use ajwt_issuer::store::ClientRecord;
use ajwt_test_kit::RunningIssuer;

const SECRETS: &[&str] = &[
    "correct horse battery staple",
    "p+ss:w%rd&x=1",
    "ünïcødé/秘密?#",
    "a%2Bb",
];

#[tokio::test]
async fn rfc6749_2_3_1_operator_chosen_secret_with_reserved_characters_authenticates() {
    let running = RunningIssuer::start(|_| {}).await.unwrap();
    for (i, secret) in SECRETS.iter().enumerate() {
        let client_id = format!("client:operator {i}+%");
        running
            .issuer
            .store()
            .insert_client(&ClientRecord {
                client_id: client_id.clone(),
                secret_hash: secrets::hash_secret(secret).unwrap(),
                allowed_scopes: vec!["generate:intent-token".into()],
                created_at_ms: 0,
                description: None,
            })
            .await
            .unwrap();
        let client =
            IssuerClient::new(ClientConfig::new(&running.base_url, &client_id, *secret)).unwrap();
        let token = client.client_token().await;
        assert!(
            token.is_ok(),
            "client {client_id:?} with secret {secret:?} must authenticate: {token:?}"
        );
        // A wrong secret still fails (the test can fail).
        let wrong = IssuerClient::new(ClientConfig::new(
            &running.base_url,
            &client_id,
            format!("{secret}x"),
        ))
        .unwrap();
        assert!(wrong.client_token().await.is_err());
    }
    running.stop().await.unwrap();
}

#[test]
fn rfc6749_2_3_1_header_matches_cpython_quote_plus() {
    let python = "python3";
    if std::process::Command::new(python)
        .arg("--version")
        .output()
        .is_err()
    {
        let required = std::env::var_os("AJWT_REQUIRE_PYTHON").is_some_and(|v| v == "1")
            || std::env::var_os("CI").is_some_and(|v| v == "true");
        assert!(
            !required,
            "python3 is missing but AJWT_REQUIRE_PYTHON=1 / CI=true"
        );
        eprintln!("SKIPPED: python3 not found");
        return;
    }
    for secret in SECRETS {
        let id = "id:with space+plus";
        let script = "import base64,sys,urllib.parse as u\n\
                      i,s=sys.argv[1],sys.argv[2]\n\
                      print('Basic '+base64.b64encode((u.quote_plus(i,safe='*')+':'+u.quote_plus(s,safe='*')).encode()).decode())";
        let out = std::process::Command::new(python)
            .args(["-c", script, id, secret])
            .output()
            .unwrap();
        assert!(out.status.success());
        let expected = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            basic_authorization(id, secret),
            expected.trim(),
            "{secret:?}"
        );
    }
}
