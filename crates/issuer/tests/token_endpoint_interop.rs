//! Issue 11 defects real OAuth clients hit at the issuer: unsupported grants
//! refused before client authentication (RFC 6749 §5.2, I-53), RFC 8414 §3.1
//! path issuers (I-54), DPoP proofs at the token endpoint and `token_type`
//! (RFC 9449 §4–§5, I-55), `response_types_supported` that Authlib accepts
//! (RFC 8414 §2, I-56) and the bare-hex checksum migration aid (I-57).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use ajwt_issuer::IssuerConfig;
use ajwt_jose::{Alg, DpopKey};
use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::{json, Value};

/// The RFC 6749 §5.2 description naming both grants the endpoint serves.
const UNSUPPORTED: &str = "Grant type must be 'client_credentials' or 'agent_checksum'";
/// The token endpoint URL of the test issuer (`htu` of every proof).
const TOKEN_URL: &str = "https://idp.example.com/intent/token";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ===========================================================================
// I-53: unsupported grants (RFC 6749 §5.2)
// ===========================================================================

#[tokio::test]
async fn rfc6749_5_2_unsupported_grant_is_refused_before_any_bearer_check() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    for grant in [
        "password",
        "refresh_token",
        "authorization_code",
        "Client_Credentials",
    ] {
        let pairs = [
            ("grant_type", grant),
            ("username", "alice"),
            ("password", "secret"),
            ("refresh_token", "rt"),
        ];
        let auths = [Some(basic(&h.admin)), None, Some(bearer(&admin))];
        for auth in &auths {
            let r = h.post_form("/intent/token", auth.as_deref(), &pairs).await;
            r.expect_error(400, "unsupported_grant_type", UNSUPPORTED);
            assert_eq!(
                r.header("www-authenticate"),
                None,
                "no Bearer challenge for an unsupported grant ({grant}, {auth:?})"
            );
        }
        // A JSON body without any credentials: the same 400, not a 401.
        let body = json!({"grant_type": grant}).to_string();
        let r = h
            .post("/intent/token", None, Some("application/json"), body)
            .await;
        r.expect_error(400, "unsupported_grant_type", UNSUPPORTED);
    }
}

#[tokio::test]
async fn s4_2_3_supported_grants_keep_protection_before_decoding() {
    let h = Harness::new().await;
    // agent_checksum (short name or URN) without a bearer token: 401 first (I-25).
    for grant in [
        "agent_checksum",
        "urn:ietf:params:oauth:grant-type:agent_checksum",
    ] {
        let r = h
            .post_form("/intent/token", None, &[("grant_type", grant)])
            .await;
        r.expect_invalid_token();
        let r = h
            .post(
                "/intent/token",
                None,
                Some("application/json"),
                json!({"grant_type": grant}).to_string(),
            )
            .await;
        r.expect_invalid_token();
    }
    // Unreadable JSON and a missing grant_type reveal nothing without a token.
    for body in ["{not json", "{}", r#"{"grant_type":7}"#] {
        let r = h
            .post("/intent/token", None, Some("application/json"), body)
            .await;
        r.expect_invalid_token();
    }
    // client_credentials in JSON is not the RFC 6749 form: with a token, the
    // decoder's §4.5.2 answer stays (I-15).
    let admin = h.admin_token().await;
    let r = h
        .post_json(
            "/intent/token",
            Some(&admin),
            &json!({"grant_type": "client_credentials"}),
        )
        .await;
    r.expect_error(
        400,
        "unsupported_grant_type",
        "Grant type must be 'agent_checksum'",
    );
}

// ===========================================================================
// I-54: path issuers (RFC 8414 §3.1)
// ===========================================================================

#[tokio::test]
async fn rfc8414_3_1_path_issuer_metadata_at_the_inserted_well_known_path() {
    let issuer = "https://idp.example.com/tenant1";
    let h = Harness::with_config(IssuerConfig {
        issuer: issuer.to_owned(),
        ..test_config()
    })
    .await;
    let r = h
        .get("/.well-known/oauth-authorization-server/tenant1")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_json();
    let m = r.json.clone();
    assert_eq!(
        m["issuer"], issuer,
        "RFC 8414 §3.3: issuer exactly as configured"
    );
    assert_eq!(m["token_endpoint"], format!("{issuer}/intent/token"));
    assert_eq!(m["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));

    // Every URL of the metadata is under the issuer and served here.
    let path = |url: &str| {
        url.strip_prefix("https://idp.example.com")
            .unwrap()
            .to_owned()
    };
    let r = h.get(&path(m["jwks_uri"].as_str().unwrap())).await;
    assert_eq!(r.status, 200, "JWKS under the issuer's path: {r:?}");
    assert_eq!(r.json, h.issuer.jwks());
    for member in [
        "token_endpoint",
        "agent_registration_endpoint",
        "workflow_registration_endpoint",
        "client_registration_endpoint",
        "ajwt_admin_revoke_agent_endpoint",
        "ajwt_admin_rotate_keys_endpoint",
    ] {
        let url = m[member].as_str().unwrap();
        assert!(url.starts_with(&format!("{issuer}/")), "{member} = {url}");
        let r = h
            .post(&path(url), None, Some("application/json"), "{}")
            .await;
        assert_eq!(
            r.status, 401,
            "{member} is served (401 without a token): {r:?}"
        );
    }

    // The whole flow works through the path: client token, then its use.
    let r = h
        .post_form(
            "/tenant1/intent/token",
            Some(&basic(&h.admin)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode_unverified(&token);
    assert_eq!(claims["iss"], issuer);
    let agent = TestAgent::new("tenant-agent");
    let r = h
        .post_json(
            "/tenant1/intent/register/agent",
            Some(&token),
            &agent.registration_body(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // The root locations belong to another issuer: not served.
    for p in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        assert_eq!(h.get(p).await.status, 404, "{p}");
    }
    // RFC 8414 §5 compatibility: the appended form is served too.
    let r = h
        .get("/tenant1/.well-known/oauth-authorization-server")
        .await;
    assert_eq!((r.status, &r.json), (200, &m));
}

#[tokio::test]
async fn rfc8414_3_1_terminating_slash_is_removed_before_inserting() {
    let issuer = "https://idp.example.com/t/2/";
    let h = Harness::with_config(IssuerConfig {
        issuer: issuer.to_owned(),
        ..test_config()
    })
    .await;
    let r = h.get("/.well-known/oauth-authorization-server/t/2").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["issuer"], issuer);
    assert_eq!(
        r.json["jwks_uri"],
        "https://idp.example.com/t/2/.well-known/jwks.json"
    );
    assert_eq!(h.get("/t/2/.well-known/jwks.json").await.status, 200);
}

#[test]
fn rfc8414_2_issuer_with_query_or_fragment_is_refused() {
    for issuer in [
        "https://idp.example.com/a?x=1",
        "https://idp.example.com/a#f",
        "https://idp.example.com/{x}",
    ] {
        let config = IssuerConfig {
            issuer: issuer.to_owned(),
            ..test_config()
        };
        assert!(config.validate().is_err(), "{issuer}");
    }
}

// ===========================================================================
// I-55: DPoP at the token endpoint (RFC 9449 §4–§5)
// ===========================================================================

/// An agent whose registered key is a DPoP key we hold.
fn dpop_agent(id: &str, alg: Alg) -> (TestAgent, DpopKey) {
    let key = DpopKey::generate(alg).unwrap();
    let mut agent = TestAgent::new(id);
    let mut jwk = key.public_jwk();
    jwk.remove("alg");
    agent.key = AgentKeyPair {
        jwk,
        pem: String::new(),
    };
    (agent, key)
}

/// POST /intent/token (JSON) with a bearer client token and `proofs` as
/// `DPoP` headers.
async fn intent_with_proofs(h: &Harness, token: &str, body: &Value, proofs: &[&str]) -> Resp {
    let mut b = Request::post("/intent/token")
        .header("authorization", bearer(token))
        .header("content-type", "application/json");
    for p in proofs {
        b = b.header("dpop", *p);
    }
    h.send(
        b.body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
    .await
}

fn proof(key: &DpopKey, h: &Harness) -> String {
    key.proof("POST", TOKEN_URL, None, None, h.now()).unwrap()
}

#[track_caller]
fn expect_invalid_dpop(r: &Resp) {
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "RFC 9449 §5: {r:?}"
    );
    r.assert_json();
    r.assert_no_store();
}

#[tokio::test]
async fn rfc9449_5_proof_with_the_registered_key_gets_a_dpop_token() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    for (i, alg) in [Alg::EdDsa, Alg::Ed25519, Alg::Es256]
        .into_iter()
        .enumerate()
    {
        let (agent, key) = dpop_agent(&format!("dpop-agent-{i}"), alg);
        h.register(&admin, &agent).await;
        let r = intent_with_proofs(&h, &admin, &agent.request(&["x"]), &[&proof(&key, &h)]).await;
        assert_eq!(r.status, 200, "{alg:?}: {r:?}");
        r.assert_no_store();
        assert_eq!(r.json["token_type"], "DPoP", "RFC 9449 §5 (I-55)");
        let (_, claims) = decode_unverified(r.json["access_token"].as_str().unwrap());
        assert_eq!(
            claims["cnf"]["jwk"]["kid"].as_str().unwrap(),
            thumbprint(&agent.key.jwk),
            "bound to the proof key, which is the registered key"
        );
        // Without a proof the same agent gets the draft's Bearer (§4.4.1).
        let r = h.intent(&admin, &agent.request(&["x"])).await;
        assert_eq!(r.json["token_type"], "Bearer");
    }
}

#[tokio::test]
async fn rfc9449_5_proof_key_other_than_the_registered_key_is_invalid_dpop_proof() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (agent, _registered) = dpop_agent("agent-a", Alg::EdDsa);
    h.register(&admin, &agent).await;
    let other = DpopKey::generate(Alg::EdDsa).unwrap();
    let r = intent_with_proofs(&h, &admin, &agent.request(&["x"]), &[&proof(&other, &h)]).await;
    expect_invalid_dpop(&r);
    assert!(r.description().contains("registered"), "{r:?}");
    // §4.3.1 comes first: an unknown agent is still unknown_agent.
    let ghost = TestAgent::new("never-registered");
    let r = intent_with_proofs(&h, &admin, &ghost.request(&["x"]), &[&proof(&other, &h)]).await;
    assert_eq!(r.json["error"], "unknown_agent", "{r:?}");
}

#[tokio::test]
async fn rfc9449_4_3_bad_proofs_at_the_token_endpoint_are_invalid_dpop_proof() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (agent, key) = dpop_agent("agent-a", Alg::Es256);
    h.register(&admin, &agent).await;
    let req = agent.request(&["x"]);
    let now = h.now();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("malformed", vec!["not-a-jwt".into()]),
        (
            "htm GET",
            vec![key.proof("GET", TOKEN_URL, None, None, now).unwrap()],
        ),
        (
            "htu of another endpoint",
            vec![key
                .proof(
                    "POST",
                    "https://idp.example.com/intent/register/agent",
                    None,
                    None,
                    now,
                )
                .unwrap()],
        ),
        (
            "htu of another issuer",
            vec![key
                .proof("POST", "https://evil.example/intent/token", None, None, now)
                .unwrap()],
        ),
        (
            "iat an hour ago",
            vec![key
                .proof("POST", TOKEN_URL, None, None, now - 3600)
                .unwrap()],
        ),
        (
            "iat in the future",
            vec![key
                .proof("POST", TOKEN_URL, None, None, now + 3600)
                .unwrap()],
        ),
        ("two DPoP headers", vec![proof(&key, &h), proof(&key, &h)]),
    ];
    for (label, proofs) in cases {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let r = intent_with_proofs(&h, &admin, &req, &refs).await;
        assert_eq!(r.json["error"], "invalid_dpop_proof", "{label}: {r:?}");
        expect_invalid_dpop(&r);
    }
    // RFC 9449 §11.1: a proof is accepted once.
    let p = proof(&key, &h);
    assert_eq!(
        intent_with_proofs(&h, &admin, &req, &[&p]).await.status,
        200
    );
    let r = intent_with_proofs(&h, &admin, &req, &[&p]).await;
    expect_invalid_dpop(&r);
    assert!(r.description().contains("replay"), "{r:?}");
}

#[tokio::test]
async fn rfc9449_5_client_credentials_with_a_proof_gets_an_unbound_bearer_token() {
    let h = Harness::new().await;
    let key = DpopKey::generate(Alg::Es256).unwrap();
    let send = |proof: String| {
        let req = Request::post("/intent/token")
            .header("authorization", basic(&h.admin))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("dpop", proof)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap();
        h.send(req)
    };
    let r = send(proof(&key, &h)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["token_type"], "Bearer", "I-55: not DPoP-bound");
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = decode_unverified(&token);
    assert!(claims.get("cnf").is_none(), "no cnf in the client token");
    // It works as a bearer token at the issuer's endpoints.
    let agent = TestAgent::new("agent-b");
    h.register(&token, &agent).await;
    // A bad proof is still refused.
    let r = send(
        key.proof("POST", TOKEN_URL, None, None, h.now() - 3600)
            .unwrap(),
    )
    .await;
    expect_invalid_dpop(&r);
}

#[tokio::test]
async fn rfc9449_5_1_metadata_advertises_dpop_signing_algs() {
    let h = Harness::new().await;
    let r = h.get("/.well-known/oauth-authorization-server").await;
    // The names of RFC 7518 §3.1, RFC 8037 §3.1 and RFC 9864 §2.2 we accept.
    assert_eq!(
        r.json["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "Ed25519", "RS256", "PS256"])
    );
}

// ===========================================================================
// I-56: response_types_supported (RFC 8414 §2) and Authlib
// ===========================================================================

#[tokio::test]
async fn rfc8414_2_response_types_supported_is_a_non_empty_array_authlib_accepts() {
    let h = Harness::new().await;
    let m = h.get("/.well-known/oauth-authorization-server").await.json;
    assert_eq!(m["response_types_supported"], json!(["none"]));
    assert!(m.get("authorization_endpoint").is_none());
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(!grants
        .iter()
        .any(|g| g == "authorization_code" || g == "implicit"));

    // Authlib's own validate(), when Authlib is installed (the interop suite
    // pins it; I-56 records the run by hand).
    let script = "import json,sys\n\
        from authlib.oauth2.rfc8414 import AuthorizationServerMetadata\n\
        AuthorizationServerMetadata(json.load(sys.stdin)).validate()\n\
        print('ok')\n";
    let has_authlib = std::process::Command::new("python3")
        .args(["-c", "import authlib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_authlib {
        eprintln!("Authlib not installed: its validate() was not run");
        return;
    }
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(m.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Authlib validate(): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ===========================================================================
// I-57: bare-hex checksums as a migration aid (refines I-4)
// ===========================================================================

#[tokio::test]
async fn s4_5_6_bare_hex_checksum_is_refused_by_default() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let mut req = agent.request(&["x"]);
    req["computed_checksum"] = json!(agent.checksum.trim_start_matches("sha256:"));
    h.intent(&admin, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid checksum format (must be 'sha256:<hex>')",
    );
}

#[tokio::test]
async fn s5_3_2_accept_bare_checksum_accepts_bare_hex_at_the_token_endpoint_only() {
    let h = Harness::with_config(IssuerConfig {
        accept_bare_checksum: true,
        ..test_config()
    })
    .await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    let reg = h.register(&admin, &agent).await;
    let bare = agent.checksum.trim_start_matches("sha256:").to_owned();
    assert_eq!(bare.len(), 64);
    let mut req = agent.request(&["x"]);
    req["computed_checksum"] = json!(bare);
    let r = h.intent(&admin, &req).await;
    assert_eq!(r.status, 200, "{r:?}");
    let (_, claims) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["agent_proof"]["agent_checksum"], agent.checksum,
        "the token carries the prefixed form"
    );
    assert_eq!(
        claims["agent_proof"]["registration_id"],
        reg["registration_id"]
    );
    // Form-encoded requests too.
    let form = [
        ("grant_type", "agent_checksum"),
        ("agent_id", agent.id.as_str()),
        ("computed_checksum", bare.as_str()),
        ("requested_scopes", "x"),
        ("audience", API_AUD),
    ];
    let r = h
        .post_form("/intent/token", Some(&bearer(&admin)), &form)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Still refused: upper-case hex, wrong length, another prefix.
    for bad in [
        bare.to_uppercase(),
        bare[..63].to_owned(),
        format!("md5:{bare}"),
    ] {
        req["computed_checksum"] = json!(bad);
        h.intent(&admin, &req).await.expect_error(
            400,
            "invalid_request",
            "Invalid checksum format (must be 'sha256:<hex>')",
        );
    }
    // Only at the token endpoint: a claimed bare checksum at registration is refused.
    let other = TestAgent::new("agent-b");
    let mut body = other.registration_body();
    body["checksum"] = json!(other.checksum.trim_start_matches("sha256:"));
    let r = h.register_agent_raw(&admin, &body).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("invalid_request")),
        "{r:?}"
    );
}
