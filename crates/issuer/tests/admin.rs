//! The operator hooks of the issuer (scope `admin:intent`):
//! `POST /intent/admin/revoke-agent` (§5.6.1 REVOKED; a revoked agent is
//! unknown at the token endpoint and refused in delegation chains, I-30) and
//! `POST /intent/admin/rotate-keys` (a new current signing key, the previous
//! ones kept in the JWK Set and on disk). Tokens are verified with the
//! independent `jsonwebtoken` crate against the published JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_issuer::service::{ClientCredentials, ADMIN_CLIENT_FILE, SCOPE_ADMIN};
use ajwt_issuer::{Issuer, IssuerConfig};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use common::*;
use serde_json::{json, Value};

const REVOKE: &str = "/intent/admin/revoke-agent";
const ROTATE: &str = "/intent/admin/rotate-keys";
const ADMIN: &str = "admin:intent";
const UNKNOWN_AGENT: &str = "Agent ID not found in registry. Register first.";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token of a client holding only `admin:intent`.
async fn admin_hook_token(h: &Harness) -> String {
    h.token_with_scopes(&[ADMIN]).await
}

async fn revoke(h: &Harness, token: &str, agent_id: &str) -> Resp {
    h.post_json(REVOKE, Some(token), &json!({"agent_id": agent_id}))
        .await
}

/// `unknown_agent` (§4.5.3) with its challenge (I-32).
#[track_caller]
fn expect_unknown_agent(r: &Resp) {
    r.expect_error(401, "unknown_agent", UNKNOWN_AGENT);
    assert_eq!(
        r.header("www-authenticate"),
        Some("AgentChecksum error=\"unknown_agent\"")
    );
}

fn header_kid(token: &str) -> String {
    let (header, _) = decode_unverified(token);
    header["kid"].as_str().unwrap().to_owned()
}

// ===========================================================================
// Revocation (§5.6.1)
// ===========================================================================

#[test]
fn scope_constant_is_admin_intent() {
    assert_eq!(SCOPE_ADMIN, ADMIN);
}

#[tokio::test]
async fn s5_6_1_revoked_agent_is_unknown_at_token_endpoint() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let agent = TestAgent::new("agent-to-revoke");
    let bystander = TestAgent::new("bystander-agent");
    h.register(&admin, &agent).await;
    h.register(&admin, &bystander).await;
    // Active, and its registration is now in the agent cache (§4.7.3).
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");

    let r = revoke(&h, &ops, &agent.id).await;
    r.expect(
        200,
        json!({"agent_id": "agent-to-revoke", "revoked": true, "registrations": 1}),
    );
    // §5.6.1 "Cannot request new tokens": unknown at the token endpoint (I-30),
    // right away (the cache entry was invalidated).
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    expect_unknown_agent(&r);
    // Also with the form-encoded grant.
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[
                ("grant_type", "agent_checksum"),
                ("agent_id", agent.id.as_str()),
                ("computed_checksum", agent.checksum.as_str()),
                ("requested_scopes", "repo:read"),
                ("audience", API_AUD),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (401, Some("unknown_agent")),
        "{r:?}"
    );
    // Other agents are untouched.
    let r = h.intent(&admin, &bystander.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !h.store
            .latest_registration(&bystander.id)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
}

#[tokio::test]
async fn s5_6_1_revocation_covers_every_registration_and_is_idempotent() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let v1 = TestAgent::new("versioned-agent");
    let v2 = TestAgent::with_prompt("versioned-agent", "An updated prompt (§5.4.4).");
    h.register(&admin, &v1).await;
    h.register(&admin, &v2).await;

    let expected = json!({"agent_id": "versioned-agent", "revoked": true, "registrations": 2});
    revoke(&h, &ops, &v1.id).await.expect(200, expected.clone());
    // Idempotent: the same answer again.
    revoke(&h, &ops, &v1.id).await.expect(200, expected);
    let all = h.store.registrations(&v1.id).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.revoked), "{all:?}");
    // Neither the latest nor an older checksum gets a token.
    expect_unknown_agent(&h.intent(&admin, &v2.request(&["x"])).await);
    expect_unknown_agent(&h.intent(&admin, &v1.request(&["x"])).await);
}

/// Pins current behaviour (see the report / I-41): REVOKED applies to the
/// registrations that exist; an administrator (register:intent and
/// admin:intent, I-69) re-admits the agent only by registering a new specification, and the revoked checksum
/// stays taken (§5.4.2 step 3).
#[tokio::test]
async fn s5_6_2_reregistration_after_revocation_is_a_new_active_registration() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let v1 = TestAgent::new("readmitted-agent");
    h.register(&admin, &v1).await;
    revoke(&h, &ops, &v1.id).await.expect(
        200,
        json!({"agent_id": "readmitted-agent", "revoked": true, "registrations": 1}),
    );
    // I-69: re-admitting a revoked agent needs admin:intent as well.
    let readmit = h.token_with_scopes(&[REGISTER, ADMIN]).await;
    let v2 = TestAgent::with_prompt("readmitted-agent", "A reviewed, fixed prompt.");
    let r = h.register_agent_raw(&admin, &v2.registration_body()).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (403, Some("insufficient_scope")),
        "{r:?}"
    );
    let r = h
        .register_agent_raw(&readmit, &v1.registration_body())
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("duplicate_agent")),
        "{r:?}"
    );
    let body = h.register(&readmit, &v2).await;
    assert_eq!(body["version"], 2);
    // The old specification is checked against the LATEST registration.
    let r = h.intent(&admin, &v1.request(&["x"])).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch", "{r:?}");
    let r = h.intent(&admin, &v2.request(&["x"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Revoking again covers the new registration too.
    revoke(&h, &ops, &v2.id).await.expect(
        200,
        json!({"agent_id": "readmitted-agent", "revoked": true, "registrations": 2}),
    );
    expect_unknown_agent(&h.intent(&admin, &v2.request(&["x"])).await);
}

#[tokio::test]
async fn s5_6_1_revoked_agent_in_delegation_chain_is_refused() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let parent = TestAgent::new("delegating-parent");
    let child = TestAgent::new("delegated-child");
    h.register(&admin, &parent).await;
    h.register(&admin, &child).await;
    let mut request = child.request(&["repo:read"]);
    request["delegation_context"] = json!({"chain": [parent.id], "completed_steps": []});
    let r = h.intent(&admin, &request).await;
    assert_eq!(r.status, 200, "before revocation: {r:?}");
    let (_, claims) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["intent"]["delegation_chain"],
        seq_hash(&[&parent.id, &child.id])
    );

    revoke(&h, &ops, &parent.id).await.expect(
        200,
        json!({"agent_id": "delegating-parent", "revoked": true, "registrations": 1}),
    );
    h.intent(&admin, &request).await.expect_error(
        400,
        "invalid_request",
        "Invalid delegation chain: agent 'delegating-parent' is revoked",
    );
    // The child alone is still fine.
    let r = h.intent(&admin, &child.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn s5_6_1_revoking_an_unknown_agent_is_invalid_request() {
    let h = Harness::new().await;
    let ops = admin_hook_token(&h).await;
    revoke(&h, &ops, "no-such-agent").await.expect_error(
        400,
        "invalid_request",
        "Unknown agent_id",
    );
    // Nothing was created.
    assert!(h
        .store
        .registrations("no-such-agent")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn s5_6_1_malformed_revoke_requests_are_invalid_request() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let auth = bearer(&ops);
    let json_ct = Some("application/json");
    for (body, description) in [
        ("", "Invalid JSON format"),
        ("not json", "Invalid JSON format"),
        ("[\"agent-a\"]", "Invalid JSON format"),
        ("\"agent-a\"", "Invalid JSON format"),
        ("{\"agent_id\": \"agent-a\"", "Invalid JSON format"),
        (
            "{\"agent_id\": \"x\", \"agent_id\": \"agent-a\"}",
            "Invalid JSON format",
        ),
        ("{}", "Missing required parameter: agent_id"),
        (
            "{\"agent\": \"agent-a\"}",
            "Missing required parameter: agent_id",
        ),
        ("{\"agent_id\": 7}", "Invalid parameter: agent_id"),
        ("{\"agent_id\": null}", "Invalid parameter: agent_id"),
        (
            "{\"agent_id\": [\"agent-a\"]}",
            "Invalid parameter: agent_id",
        ),
        ("{\"agent_id\": \"\"}", "Invalid parameter: agent_id"),
    ] {
        let r = h.post(REVOKE, Some(&auth), json_ct, body).await;
        assert_eq!(r.status, 400, "body {body:?}: {r:?}");
        r.expect_error(400, "invalid_request", description);
    }
    // Not JSON at all: 415 like the other JSON endpoints.
    let r = h
        .post(
            REVOKE,
            Some(&auth),
            Some("application/x-www-form-urlencoded"),
            "agent_id=agent-a",
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (415, Some("invalid_request")),
        "{r:?}"
    );
    r.assert_no_store();
    let r = h
        .post(REVOKE, Some(&auth), None, "{\"agent_id\": \"agent-a\"}")
        .await;
    assert_eq!(r.status, 415, "{r:?}");
    // Unknown members are ignored (RFC 6749 §3.1 style).
    let r = h
        .post_json(
            REVOKE,
            Some(&ops),
            &json!({"agent_id": "agent-a", "reason": "compromised"}),
        )
        .await;
    r.expect(
        200,
        json!({"agent_id": "agent-a", "revoked": true, "registrations": 1}),
    );
    // GET is not allowed.
    let r = h.get(REVOKE).await;
    assert_eq!(r.status, 405, "{r:?}");
}

// ===========================================================================
// Authorization of the hooks (RFC 6750)
// ===========================================================================

#[tokio::test]
async fn rfc6750_admin_hooks_without_a_token_are_401() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let kid = h.issuer.key_ring().current_kid().to_owned();
    for path in [REVOKE, ROTATE] {
        let body = json!({"agent_id": "agent-a"});
        let r = h.post_json(path, None, &body).await;
        r.expect_invalid_token();
        r.expect_error(401, "invalid_token", "Missing bearer token (RFC 6750)");
        assert_eq!(
            r.header("www-authenticate"),
            Some(
                "Bearer error=\"invalid_token\", error_description=\"Missing bearer token (RFC 6750)\""
            ),
            "{path}"
        );
        // Not a bearer token, a forged one.
        let r = h
            .post(
                path,
                Some(&basic(&h.admin)),
                Some("application/json"),
                body.to_string(),
            )
            .await;
        r.expect_invalid_token();
        let r = h.post_json(path, Some("x.y.z"), &body).await;
        r.expect_invalid_token();
        let r = h
            .post_json(path, Some(tamper_signature(&admin).as_str()), &body)
            .await;
        r.expect_invalid_token();
    }
    // Nothing happened.
    assert!(
        !h.store
            .latest_registration("agent-a")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert_eq!(h.issuer.key_ring().current_kid(), kid);
}

#[tokio::test]
async fn rfc6750_admin_hooks_without_the_admin_scope_are_403() {
    let h = Harness::new().await;
    // The harness admin holds register:intent and generate:intent-token only.
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let kid = h.issuer.key_ring().current_kid().to_owned();
    // A client allowed admin:intent that asked for another scope only.
    let creds = h
        .issuer
        .create_client(vec![ADMIN.to_owned(), GENERATE.to_owned()], None)
        .await
        .unwrap();
    let narrowed = h.client_token(&creds, Some(GENERATE)).await;
    for token in [admin.as_str(), narrowed.as_str()] {
        for path in [REVOKE, ROTATE] {
            let r = h
                .post_json(path, Some(token), &json!({"agent_id": "agent-a"}))
                .await;
            r.expect_error(
                403,
                "insufficient_scope",
                "The access token does not carry the scope 'admin:intent'",
            );
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer error=\"insufficient_scope\", scope=\"admin:intent\""),
                "{path}"
            );
        }
    }
    // The scope is checked before the body: a bad body is still 403.
    let r = h.post(REVOKE, Some(&bearer(&admin)), None, "junk").await;
    assert_eq!(r.status, 403, "{r:?}");
    // Nothing happened.
    assert!(
        !h.store
            .latest_registration("agent-a")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert_eq!(h.issuer.key_ring().current_kid(), kid);
    // An intent token is not a client token, whatever its scope says.
    let r = h.intent(&admin, &agent.request(&[ADMIN])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let intent_token = r.json["access_token"].as_str().unwrap();
    h.post_json(ROTATE, Some(intent_token), &json!({}))
        .await
        .expect_invalid_token();
}

// ===========================================================================
// Key rotation
// ===========================================================================

#[tokio::test]
async fn rotate_keys_new_kid_signs_and_old_tokens_still_verify() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let old_token = r.json["access_token"].as_str().unwrap().to_owned();
    let old_kid = h.keys.current_kid().to_owned();
    assert_eq!(header_kid(&old_token), old_kid);
    assert_eq!(kids(&h.jwks().await), vec![old_kid.as_str()]);

    // Empty body, no Content-Type.
    let r = h.post(ROTATE, Some(&bearer(&ops)), None, "").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_json();
    r.assert_no_store();
    let new_kid = r.json["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        (&r.json["kid"], &r.json["previous_kid"], &r.json["alg"]),
        (&json!(new_kid), &json!(old_kid), &json!("ES256"))
    );
    // A publish delay of 0 (test_config): the new key signs at once (I-90).
    assert_eq!(r.json["state"], "current");
    assert_eq!(r.json["already_pending"], false);
    assert_eq!(h.issuer.key_ring().current_kid(), new_kid);

    // The JWKS publishes both, the new (signing) key first.
    let jwks = h.jwks().await;
    assert_eq!(kids(&jwks), [new_kid.clone(), old_kid.clone()]);
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["alg"] == "ES256" && k["use"] == "sig" && k.get("d").is_none()));

    // New intent tokens carry the new kid and verify independently.
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(
        r.status, 200,
        "client token from before the rotation: {r:?}"
    );
    let new_token = r.json["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = verify_independently(&new_token, &jwks, ISSUER, &[API_AUD]);
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(claims["sub"], "agent-a");
    // The token from before the rotation still verifies with the JWKS.
    let (header, claims) = verify_independently(&old_token, &jwks, ISSUER, &[API_AUD]);
    assert_eq!(header.kid.as_deref(), Some(old_kid.as_str()));
    assert_eq!(claims["sub"], "agent-a");
    // New client tokens are signed with the new key too.
    let fresh_admin = h.admin_token().await;
    assert_eq!(header_kid(&fresh_admin), new_kid);

    // Again, with `{}` as JSON: the chain goes on, all keys stay.
    let r = h.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_no_store();
    let third_kid = r.json["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        (&r.json["kid"], &r.json["previous_kid"], &r.json["alg"]),
        (&json!(third_kid), &json!(new_kid), &json!("ES256"))
    );
    // A publish delay of 0 (test_config): the new key signs at once (I-90).
    assert_eq!(r.json["state"], "current");
    assert_eq!(r.json["already_pending"], false);
    let jwks = h.jwks().await;
    assert_eq!(kids(&jwks), [third_kid, new_kid, old_kid]);
    verify_independently(&old_token, &jwks, ISSUER, &[API_AUD]);
    verify_independently(&new_token, &jwks, ISSUER, &[API_AUD]);
    // The old intent token is still a valid parent token (§4.3.4, I-30).
    let child = TestAgent::new("agent-b");
    h.register(&admin, &child).await;
    let mut request = child.request(&["repo:read"]);
    request["delegation_context"] = json!({"chain": ["agent-a"], "completed_steps": []});
    request["parent_token"] = json!(old_token);
    let r = h.intent(&admin, &request).await;
    assert_eq!(r.status, 200, "parent token signed before rotation: {r:?}");
}

#[tokio::test]
async fn rotate_keys_bodies() {
    let h = Harness::new().await;
    let ops = admin_hook_token(&h).await;
    let auth = bearer(&ops);
    let before = h.issuer.key_ring().current_kid().to_owned();
    for (body, ct) in [
        ("not json", Some("application/json")),
        ("[]", Some("application/json")),
        ("{\"a\": 1, \"a\": 2}", Some("application/json")),
    ] {
        let r = h.post(ROTATE, Some(&auth), ct, body).await;
        r.expect_error(400, "invalid_request", "Invalid JSON format");
    }
    // A non-empty body must be JSON.
    let r = h.post(ROTATE, Some(&auth), Some("text/plain"), "{}").await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (415, Some("invalid_request")),
        "{r:?}"
    );
    assert_eq!(h.issuer.key_ring().current_kid(), before, "no rotation");
    // Empty JSON body and whitespace are `{}`; members are ignored.
    for (body, ct) in [
        ("", Some("application/json")),
        ("  \n", Some("application/json")),
        ("{\"alg\": \"RS256\"}", Some("application/json")),
    ] {
        let r = h.post(ROTATE, Some(&auth), ct, body).await;
        assert_eq!(r.status, 200, "{body:?}: {r:?}");
        assert_eq!(r.json["alg"], "ES256", "the configured algorithm");
    }
    assert_eq!(h.jwks().await["keys"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn rotate_keys_uses_the_configured_algorithm() {
    let config = IssuerConfig {
        signing_alg: ajwt_issuer::keys::SigningAlgorithm::EdDsa,
        ..test_config()
    };
    // The current key is ES256; the configured algorithm is EdDSA.
    let h = Harness::with_alg(config, ajwt_issuer::keys::SigningAlgorithm::Es256).await;
    let admin = h.admin_token().await;
    let ops = admin_hook_token(&h).await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let old_token = h.intent(&admin, &agent.request(&["x"])).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h.post_json(ROTATE, Some(&ops), &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["alg"], "EdDSA");
    let jwks = h.jwks().await;
    let r = h.intent(&admin, &agent.request(&["x"])).await;
    let new_token = r.json["access_token"].as_str().unwrap();
    let (header, _) = verify_independently(new_token, &jwks, ISSUER, &[API_AUD]);
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let (header, _) = verify_independently(&old_token, &jwks, ISSUER, &[API_AUD]);
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let m = h.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        m.json["intent_token_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
}

// ===========================================================================
// Persistence: Issuer::open on a data directory
// ===========================================================================

async fn client_token(app: &Router, creds: &ClientCredentials) -> Resp {
    send(
        app,
        Request::post("/intent/token")
            .header("authorization", basic(creds))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await
}

async fn post_json(app: &Router, path: &str, token: &str, body: &Value) -> Resp {
    send(
        app,
        Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    )
    .await
}

async fn get_json(app: &Router, path: &str) -> Value {
    send(app, Request::get(path).body(Body::empty()).unwrap())
        .await
        .json
}

#[tokio::test]
async fn rotation_and_revocation_survive_reopening_the_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let config = IssuerConfig {
        data_dir: dir.path().join("ajwt-data"),
        issuer: ISSUER.to_owned(),
        jwks_max_age: 0,
        key_publish_delay: 0,
        ..IssuerConfig::default()
    };
    let key_dir = config.data_dir.join("signing-keys");

    // ---- first start: the bootstrap admin client may use the hooks -------
    let (issuer, created) = Issuer::open(config.clone()).await.unwrap();
    let admin_file = created.expect("admin-client.json");
    assert_eq!(admin_file, config.data_dir.join(ADMIN_CLIENT_FILE));
    let admin: ClientCredentials =
        serde_json::from_slice(&std::fs::read(&admin_file).unwrap()).unwrap();
    let issuer = Arc::new(issuer);
    let app = ajwt_issuer::http::router(issuer.clone());
    let r = client_token(&app, &admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json["scope"],
        "register:intent generate:intent-token admin:intent introspect:intent"
    );
    let admin_token = r.json["access_token"].as_str().unwrap().to_owned();

    let agent = TestAgent::new("persistent-agent");
    let revoked = TestAgent::new("revoked-agent");
    for a in [&agent, &revoked] {
        let r = post_json(
            &app,
            "/intent/register/agent",
            &admin_token,
            &a.registration_body(),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = post_json(&app, "/intent/token", &admin_token, &agent.request(&["x"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let old_token = r.json["access_token"].as_str().unwrap().to_owned();
    let old_kid = header_kid(&old_token);

    let r = post_json(&app, ROTATE, &admin_token, &json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new_kid = r.json["kid"].as_str().unwrap().to_owned();
    assert_eq!(r.json["previous_kid"], old_kid.as_str());
    // Stored like the first key, in the store (I-110): one more record with
    // its private key; no key file on disk.
    let stored = issuer.store().signing_keys().await.unwrap();
    let mut stored_kids: Vec<&str> = stored.iter().map(|k| k.kid.as_str()).collect();
    stored_kids.sort_unstable();
    let mut expected = vec![old_kid.as_str(), new_kid.as_str()];
    expected.sort_unstable();
    assert_eq!(stored_kids, expected);
    assert!(stored.iter().all(|k| k.private_key_pem.is_some()));
    assert!(!key_dir.exists(), "no signing-keys directory");
    let r = post_json(
        &app,
        REVOKE,
        &admin_token,
        &json!({"agent_id": "revoked-agent"}),
    )
    .await;
    r.expect(
        200,
        json!({"agent_id": "revoked-agent", "revoked": true, "registrations": 1}),
    );
    let jwks_before = get_json(&app, "/.well-known/jwks.json").await;
    assert_eq!(kids(&jwks_before), [new_kid.clone(), old_kid.clone()]);

    // ---- restart ------------------------------------------------------------
    issuer.store().close().await;
    drop(app);
    drop(issuer);
    let (issuer, created) = Issuer::open(config.clone()).await.unwrap();
    assert!(created.is_none());
    let issuer = Arc::new(issuer);
    let app = ajwt_issuer::http::router(issuer.clone());

    // The rotated key is still current; both keys are published.
    let jwks = get_json(&app, "/.well-known/jwks.json").await;
    assert_eq!(jwks, jwks_before);
    assert_eq!(issuer.key_ring().current_kid(), new_kid);
    let r = client_token(&app, &admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let admin_token = r.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_kid(&admin_token), new_kid);
    let r = post_json(&app, "/intent/token", &admin_token, &agent.request(&["x"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new_token = r.json["access_token"].as_str().unwrap();
    let (header, _) = verify_independently(new_token, &jwks, ISSUER, &[API_AUD]);
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    let (header, _) = verify_independently(&old_token, &jwks, ISSUER, &[API_AUD]);
    assert_eq!(header.kid.as_deref(), Some(old_kid.as_str()));
    // The revocation too.
    let r = post_json(
        &app,
        "/intent/token",
        &admin_token,
        &revoked.request(&["x"]),
    )
    .await;
    expect_unknown_agent(&r);
    issuer.store().close().await;
}

// ===========================================================================
// Metadata (RFC 8414)
// ===========================================================================

#[tokio::test]
async fn rfc8414_metadata_lists_the_admin_hooks_and_scope() {
    let h = Harness::new().await;
    let r = h.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status, 200);
    let m = &r.json;
    assert_eq!(
        m["ajwt_admin_revoke_agent_endpoint"],
        format!("{ISSUER}/intent/admin/revoke-agent")
    );
    assert_eq!(
        m["ajwt_admin_rotate_keys_endpoint"],
        format!("{ISSUER}/intent/admin/rotate-keys")
    );
    assert_eq!(
        m["scopes_supported"],
        json!([REGISTER, GENERATE, ADMIN, "introspect:intent"])
    );
}
