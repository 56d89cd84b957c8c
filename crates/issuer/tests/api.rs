//! In-process HTTP tests of every endpoint and error path of the issuer:
//! client credentials (RFC 6749 §4.4, RFC 9068), token-endpoint and
//! registration protection (§4.2.3, §9.1.3), agent registration (§5.4, §6.2),
//! workflow registration (§6.3.3, §4.7.2), the `agent_checksum` grant with the
//! errors and precedence of §4.3.1/§4.5, the intent token (§4.4), and
//! malformed HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::keys::{KeyRing, SigningAlgorithm};
use ajwt_issuer::store::NewRegistration;
use ajwt_issuer::IssuerConfig;
use axum::body::Body;
use axum::http::Request;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Map, Value};

const MISSING_BEARER: &str = "Missing bearer token (RFC 6750)";
const NOT_BEARER: &str = "Authorization must be 'Bearer <token>'";
const MALFORMED_TOKEN: &str =
    "Token rejected: malformed token: not a compact JWS with a valid header";
const BAD_SIGNATURE: &str = "Token rejected: signature verification failed";
/// RFC 6749 §5.2 `unsupported_grant_type` for a grant never served (I-53).
const BOTH_GRANTS: &str = "Grant type must be 'client_credentials' or 'agent_checksum'";
const STEP_DENIED: &str = "Agent not authorized for workflow step.";
const PREREQS: &str =
    "Agent not authorized for workflow step. Required prerequisite steps not completed.";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object().expect("object")
}

// ===========================================================================
// client_credentials (RFC 6749 §4.4, RFC 9068)
// ===========================================================================

#[tokio::test]
async fn rfc6749_4_4_basic_auth_without_scope_grants_all_client_scopes_as_rfc9068_jwt() {
    let h = Harness::new().await;
    let r = h.client_credentials(&h.admin.clone(), None).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_json();
    r.assert_no_store();
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        r.json,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "register:intent generate:intent-token",
        })
    );

    // Verified by an independent JOSE implementation fed our JWKS.
    let jwks = h.jwks().await;
    let (header, claims) = verify_independently(&token, &jwks, ISSUER, &[CLIENT_AUD]);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    assert_eq!(header.kid.as_deref(), Some(h.keys.current_kid()));
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(jti).unwrap().len(), 16);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(iat, h.now());
    assert_eq!(
        claims,
        json!({
            "iss": ISSUER,
            "sub": h.admin.client_id,
            "aud": CLIENT_AUD,
            "client_id": h.admin.client_id,
            "iat": iat,
            "exp": iat + 3600,
            "jti": jti,
            "scope": "register:intent generate:intent-token",
        }),
        "RFC 9068 §2.2 claims"
    );
}

#[tokio::test]
async fn rfc6749_2_3_1_client_secret_post_and_scope_subset() {
    let h = Harness::new().await;
    let r = h
        .post_form(
            "/intent/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &h.admin.client_id),
                ("client_secret", &h.admin.client_secret),
                ("scope", GENERATE),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_no_store();
    assert_eq!(r.json["scope"], GENERATE);
    let token = r.json["access_token"].as_str().unwrap();
    let (_, claims) = verify_independently(token, &h.jwks().await, ISSUER, &[CLIENT_AUD]);
    assert_eq!(claims["scope"], GENERATE);
    assert_eq!(claims["client_id"], h.admin.client_id.as_str());

    // An empty scope parameter is treated as omitted (RFC 6749 §3.1): all scopes.
    let r = h.client_credentials(&h.admin.clone(), Some("")).await;
    assert_eq!(r.json["scope"], "register:intent generate:intent-token");
}

#[tokio::test]
async fn rfc6749_4_4_client_token_lifetime_follows_configuration() {
    let h = Harness::with_config(IssuerConfig {
        client_token_lifetime: 120,
        ..test_config()
    })
    .await;
    let r = h.client_credentials(&h.admin.clone(), None).await;
    assert_eq!(r.json["expires_in"], 120);
    let (_, claims) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
}

#[tokio::test]
async fn rfc6749_2_3_both_authentication_methods_is_invalid_request() {
    let h = Harness::new().await;
    let r = h
        .post_form(
            "/intent/token",
            Some(&basic(&h.admin)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &h.admin.client_id),
                ("client_secret", &h.admin.client_secret),
            ],
        )
        .await;
    // The exact text is checked by rfc6749_5_2_error_descriptions_do_not_mangle_section_signs.
    r.expect_error_prefix(
        400,
        "invalid_request",
        "Use only one client authentication method (RFC 6749 ",
    );
}

#[tokio::test]
async fn rfc6749_5_2_failed_client_authentication_is_invalid_client_with_challenge() {
    let h = Harness::new().await;
    let wrong_secret = ajwt_issuer::service::ClientCredentials {
        client_id: h.admin.client_id.clone(),
        client_secret: "not-the-secret".into(),
    };
    let unknown = ajwt_issuer::service::ClientCredentials {
        client_id: "client_doesnotexist".into(),
        client_secret: h.admin.client_secret.clone(),
    };
    let check = |r: &Resp, description: &str| {
        r.expect_error(401, "invalid_client", description);
        let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.starts_with("Basic"), "challenge {challenge:?}");
    };
    for creds in [&wrong_secret, &unknown] {
        let r = h.client_credentials(creds, None).await;
        check(&r, "Client authentication failed");
        let r = h
            .post_form(
                "/intent/token",
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &creds.client_id),
                    ("client_secret", &creds.client_secret),
                ],
            )
            .await;
        check(&r, "Client authentication failed");
    }
    let r = h
        .post_form(
            "/intent/token",
            None,
            &[("grant_type", "client_credentials")],
        )
        .await;
    check(&r, "Client authentication required");
    let r = h
        .post_form(
            "/intent/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &h.admin.client_id),
            ],
        )
        .await;
    check(
        &r,
        "client_secret_post needs both client_id and client_secret",
    );
    let r = h
        .post_form(
            "/intent/token",
            Some("Basic !!!not-base64"),
            &[("grant_type", "client_credentials")],
        )
        .await;
    check(&r, "Malformed HTTP Basic credentials");
}

#[tokio::test]
async fn rfc6749_5_2_scope_not_allowed_is_invalid_scope() {
    let h = Harness::new().await;
    let shim = h
        .issuer
        .create_client(vec![GENERATE.to_owned()], None)
        .await
        .unwrap();
    let r = h.client_credentials(&shim, Some(REGISTER)).await;
    r.expect_error(
        400,
        "invalid_scope",
        "Scopes not allowed for this client: register:intent",
    );
    let r = h
        .client_credentials(
            &shim,
            Some("generate:intent-token repo:write register:intent"),
        )
        .await;
    r.expect_error(
        400,
        "invalid_scope",
        "Scopes not allowed for this client: repo:write register:intent",
    );
    let r = h.client_credentials(&shim, Some("a  b")).await;
    r.expect_error(400, "invalid_scope", "Malformed scope: 'a  b'");
    // The shim client gets exactly its own scope.
    let r = h.client_credentials(&shim, None).await;
    assert_eq!(r.json["scope"], GENERATE);
}

#[tokio::test]
async fn rfc6749_3_2_duplicate_form_parameter_is_invalid_request() {
    let h = Harness::new().await;
    let r = h
        .post_form(
            "/intent/token",
            Some(&basic(&h.admin)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", GENERATE),
                ("scope", REGISTER),
            ],
        )
        .await;
    r.expect_error(400, "invalid_request", "Duplicate parameter: scope");
}

#[tokio::test]
async fn client_registration_endpoint_creates_usable_clients() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let r = h
        .post_json(
            "/intent/register/client",
            Some(&admin),
            &json!({"allowed_scopes": [GENERATE], "description": "shim"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_no_store();
    assert_eq!(r.json["allowed_scopes"], json!([GENERATE]));
    let creds = ajwt_issuer::service::ClientCredentials {
        client_id: r.json["client_id"].as_str().unwrap().to_owned(),
        client_secret: r.json["client_secret"].as_str().unwrap().to_owned(),
    };
    let r = h.client_credentials(&creds, None).await;
    assert_eq!(r.json["scope"], GENERATE);
    let r = h
        .post_json("/intent/register/client", Some(&admin), &json!({}))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: allowed_scopes",
    );
}

#[tokio::test]
async fn s9_1_3_client_registration_cannot_exceed_the_callers_scopes() {
    // I-41: a client holding only register:intent cannot mint a client with
    // admin:intent (or any scope it does not hold itself).
    let h = Harness::new().await;
    let register_only = h.token_with_scopes(&[REGISTER]).await;
    for scopes in [json!(["admin:intent"]), json!([REGISTER, GENERATE])] {
        let r = h
            .post_json(
                "/intent/register/client",
                Some(&register_only),
                &json!({ "allowed_scopes": scopes }),
            )
            .await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.json["error"], "invalid_scope", "{r:?}");
        r.assert_no_store();
    }
    let r = h
        .post_json(
            "/intent/register/client",
            Some(&register_only),
            &json!({"allowed_scopes": [REGISTER]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

// ===========================================================================
// Bearer protection of the token endpoint (§4.2.3) and registration (§9.1.3)
// ===========================================================================

/// Every way a bearer token can be unacceptable, as `(label, Authorization
/// header or None, expected description or None when only the code matters)`.
async fn bad_bearers(h: &Harness) -> BadBearers {
    let good = h.admin_token().await;
    let mut cases: BadBearers = vec![
        ("missing".into(), None, Some(MISSING_BEARER.into())),
        (
            "basic scheme".into(),
            Some(basic(&h.admin)),
            Some(NOT_BEARER.into()),
        ),
        (
            "empty bearer".into(),
            Some("Bearer ".into()),
            Some(NOT_BEARER.into()),
        ),
        (
            "not a JWS".into(),
            Some(bearer("not-a-token")),
            Some(MALFORMED_TOKEN.into()),
        ),
        (
            "three garbage parts".into(),
            Some(bearer("abc.def.ghi")),
            Some(MALFORMED_TOKEN.into()),
        ),
        (
            "tampered signature".into(),
            Some(bearer(&tamper_signature(&good))),
            Some(BAD_SIGNATURE.into()),
        ),
        (
            "tampered payload".into(),
            Some(bearer(&tamper_payload(&good, |c| {
                c["scope"] = json!("register:intent generate:intent-token admin:all")
            }))),
            Some(BAD_SIGNATURE.into()),
        ),
    ];

    // Signed by a key this issuer does not have.
    let foreign_keys = KeyRing::generate(SigningAlgorithm::Es256).unwrap();
    let (_, claims) = decode_unverified(&good);
    let foreign = foreign_keys
        .sign("at+jwt", claims.as_object().unwrap())
        .unwrap();
    cases.push((
        "foreign key".into(),
        Some(bearer(&foreign)),
        Some(format!(
            "Token rejected: unknown key id '{}'",
            foreign_keys.current_kid()
        )),
    ));
    // alg "none" (RFC 8725 §3.1).
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(
                &json!({"alg": "none", "typ": "at+jwt", "kid": h.keys.current_kid()})
            )
            .unwrap()
        ),
        good.split('.').nth(1).unwrap()
    );
    cases.push((
        "alg none".into(),
        Some(bearer(&none)),
        Some("Token rejected: algorithm 'none' is not accepted for this token".into()),
    ));

    // Minted by an issuer with another client audience (same keys and store).
    let other_aud = h.sibling(IssuerConfig {
        client_audience: "other.localhost".into(),
        ..h.config.clone()
    });
    cases.push((
        "wrong audience".into(),
        Some(bearer(&other_aud.admin_token().await)),
        None, // exact text: rfc6749_5_2_error_descriptions_do_not_mangle_section_signs
    ));
    // Minted by another issuer identifier (same keys and store).
    let other_iss = h.sibling(IssuerConfig {
        issuer: "https://other.example.com".into(),
        ..h.config.clone()
    });
    cases.push((
        "wrong issuer".into(),
        Some(bearer(&other_iss.admin_token().await)),
        Some("Token issued by another issuer".into()),
    ));
    cases
}

type BadBearers = Vec<(String, Option<String>, Option<String>)>;

async fn assert_bad_bearers_refused(h: &Harness, cases: &BadBearers, path: &str, body: &Value) {
    for (label, authorization, description) in cases.clone() {
        let r = h
            .post(
                path,
                authorization.as_deref(),
                Some("application/json"),
                serde_json::to_vec(body).unwrap(),
            )
            .await;
        assert_eq!(r.status, 401, "{path} {label}: {r:?}");
        r.expect_invalid_token();
        if let Some(d) = description {
            assert_eq!(r.description(), d, "{path} {label}");
        }
    }
}

#[tokio::test]
async fn s4_2_3_token_endpoint_refuses_bad_bearer_tokens() {
    let h = Harness::new().await;
    let agent = TestAgent::new("agent-a");
    h.register(&h.admin_token().await, &agent).await;
    let cases = bad_bearers(&h).await;
    assert_bad_bearers_refused(&h, &cases, "/intent/token", &agent.request(&["repo:read"])).await;

    // The exact challenge (RFC 6750 §3).
    let r = h
        .post_json("/intent/token", None, &agent.request(&["repo:read"]))
        .await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            "Bearer error=\"invalid_token\", error_description=\"Missing bearer token (RFC 6750)\""
        )
    );
    r.expect_error(401, "invalid_token", MISSING_BEARER);
}

#[tokio::test]
async fn s4_2_3_wrong_audience_token_is_refused() {
    let h = Harness::new().await;
    let other = h.sibling(IssuerConfig {
        client_audience: "other.localhost".into(),
        ..h.config.clone()
    });
    let token = other.admin_token().await;
    let (_, claims) = decode_unverified(&token);
    assert_eq!(claims["aud"], "other.localhost");
    let agent = TestAgent::new("agent-a");
    let r = h.intent(&token, &agent.request(&["x"])).await;
    r.expect_invalid_token();
    // The exact text is checked by rfc6749_5_2_error_descriptions_do_not_mangle_section_signs.
    assert!(
        r.description()
            .starts_with("Token audience is not 'idp.localhost' "),
        "{r:?}"
    );
    // ...and the sibling itself accepts it (so only the audience differs).
    let r = other.intent(&token, &agent.request(&["x"])).await;
    r.expect_error(
        401,
        "unknown_agent",
        "Agent ID not found in registry. Register first.",
    );
}

#[tokio::test]
async fn s4_2_3_expired_and_future_client_tokens_are_refused() {
    let h = Harness::new().await;
    let token = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&token, &agent).await;
    let ok = h.intent(&token, &agent.request(&["x"])).await;
    assert_eq!(ok.status, 200);

    // Issued more than a minute in the future.
    h.advance(-61);
    let r = h.intent(&token, &agent.request(&["x"])).await;
    r.expect_invalid_token();
    assert_eq!(r.description(), "Token issued in the future");
    h.advance(61);

    // exp = iat + 3600: at exp the token is expired.
    h.advance(3599);
    assert_eq!(h.intent(&token, &agent.request(&["x"])).await.status, 200);
    h.advance(1);
    let r = h.intent(&token, &agent.request(&["x"])).await;
    r.expect_invalid_token();
    assert_eq!(r.description(), "Token expired");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"Token expired\"")
    );
    // Registration endpoints refuse it too.
    let r = h
        .register_agent_raw(&token, &TestAgent::new("agent-b").registration_body())
        .await;
    r.expect_invalid_token();
    assert_eq!(r.description(), "Token expired");
}

#[tokio::test]
async fn s4_2_3_token_without_generate_scope_is_insufficient_scope() {
    let h = Harness::new().await;
    let register_only = h.token_with_scopes(&[REGISTER]).await;
    let agent = TestAgent::new("agent-a");
    h.register(&register_only, &agent).await;
    let r = h.intent(&register_only, &agent.request(&["x"])).await;
    r.expect_error(
        403,
        "insufficient_scope",
        "The access token does not carry the scope 'generate:intent-token'",
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"generate:intent-token\"")
    );
    // Also for the form-encoded grant.
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&register_only)),
            &[("grant_type", "agent_checksum")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["error"], "insufficient_scope");
}

#[tokio::test]
async fn s4_2_3_intent_token_is_not_a_client_token() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    // A token-confusion attempt: an intent token with the client-token
    // audience and the admin scopes, signed by the same key.
    let mut request = agent.request(&[GENERATE, REGISTER]);
    request["audience"] = json!(CLIENT_AUD);
    let r = h.intent(&admin, &request).await;
    let intent_token = r.json["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = decode_unverified(&intent_token);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["aud"], CLIENT_AUD);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["scope"], "generate:intent-token register:intent");

    let r = h.intent(&intent_token, &agent.request(&["x"])).await;
    r.expect_invalid_token();
    assert_eq!(
        r.description(),
        "Token rejected: wrong token type: expected 'at+jwt', found 'JWT'"
    );
    let r = h
        .register_agent_raw(
            &intent_token,
            &TestAgent::new("agent-b").registration_body(),
        )
        .await;
    r.expect_invalid_token();
}

#[tokio::test]
async fn s4_2_3_protection_precedes_body_decoding() {
    let h = Harness::new().await;
    // Unreadable body, missing grant type: without a token the answer is 401.
    // (A grant type the endpoint does not serve at all is 400
    // unsupported_grant_type first, RFC 6749 §5.2, I-53:
    // tests/token_endpoint_interop.rs.)
    for body in ["{not json", r#"{"agent_id":"a"}"#] {
        let r = h
            .post("/intent/token", None, Some("application/json"), body)
            .await;
        r.expect_error(401, "invalid_token", MISSING_BEARER);
    }
    let r = h
        .post_form("/intent/token", None, &[("grant_type", "agent_checksum")])
        .await;
    r.expect_error(401, "invalid_token", MISSING_BEARER);
}

#[tokio::test]
async fn s9_1_3_registration_endpoints_refuse_bad_bearer_tokens() {
    let h = Harness::new().await;
    let agent_body = TestAgent::new("agent-a").registration_body();
    let workflow = auto_patch_workflow("wf-protected", "supervisor-agent");
    let client = json!({"allowed_scopes": [GENERATE]});
    let generate_only = h.token_with_scopes(&[GENERATE]).await;
    let cases = bad_bearers(&h).await;
    for (path, body) in [
        ("/intent/register/agent", &agent_body),
        ("/register/agent", &agent_body),
        ("/intent/register/workflow", &workflow),
        ("/intent/register/client", &client),
    ] {
        assert_bad_bearers_refused(&h, &cases, path, body).await;

        let r = h.post_json(path, Some(&generate_only), body).await;
        r.expect_error(
            403,
            "insufficient_scope",
            "The access token does not carry the scope 'register:intent'",
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer error=\"insufficient_scope\", scope=\"register:intent\""),
            "{path}"
        );
    }
    // Nothing was registered by the refused requests.
    assert!(h
        .store
        .latest_registration("agent-a")
        .await
        .unwrap()
        .is_none());
    assert!(h.store.workflow("wf-protected").await.unwrap().is_none());
}

#[tokio::test]
async fn s6_2_2_register_agent_alias_path_works() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-alias");
    let r = h
        .post_json("/register/agent", Some(&admin), &agent.registration_body())
        .await;
    r.expect(
        200,
        json!({
            "agent_id": "agent-alias",
            "registration_id": format!("reg_agent-alias_{}", h.now()),
            "checksum": agent.checksum,
            "version": 1,
        }),
    );
}

// ===========================================================================
// Agent registration (§5.4, §6.2)
// ===========================================================================

#[tokio::test]
async fn s5_4_3_registration_response() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("vulnerability-patcher-v1");
    let r = h
        .register_agent_raw(&admin, &agent.registration_body())
        .await;
    r.expect(
        200,
        json!({
            "agent_id": "vulnerability-patcher-v1",
            "registration_id": format!("reg_vulnerability-patcher-v1_{}", h.now()),
            "checksum": agent.checksum,
            "version": 1,
        }),
    );
    assert!(agent.checksum.starts_with("sha256:"));
    assert_eq!(agent.checksum.len(), 7 + 64);

    // The §5.2.2 example agent (examples/agents) has the checksum CPython computes (I-13).
    let example: Value = serde_json::from_str(include_str!(
        "../../../examples/agents/vulnerability-patcher-v1.json"
    ))
    .unwrap();
    let mut body = example.clone();
    body["public_key"] = json!(p256_key().pem);
    let h2 = Harness::new().await;
    let r = h2.register_agent_raw(&h2.admin_token().await, &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json["checksum"],
        "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d"
    );
}

#[tokio::test]
async fn s5_4_4_reregistration_increments_version_and_latest_is_verified() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let v1 = TestAgent::with_prompt("patcher-v1", "Version one of the prompt.");
    let reg1 = h.register(&admin, &v1).await;
    assert_eq!(reg1["version"], 1);
    assert_eq!(
        reg1["registration_id"],
        format!("reg_patcher-v1_{}", h.now())
    );
    let r = h.intent(&admin, &v1.request(&["repo:read"])).await;
    assert_eq!(r.status, 200);

    h.advance(10);
    let mut v2 = TestAgent::with_prompt("patcher-v1", "Version two of the prompt.");
    v2.key = v1.key.clone();
    let reg2 = h.register(&admin, &v2).await;
    assert_eq!(
        reg2,
        json!({
            "agent_id": "patcher-v1",
            "registration_id": format!("reg_patcher-v1_{}", h.now()),
            "checksum": v2.checksum,
            "version": 2,
        })
    );
    assert_ne!(v1.checksum, v2.checksum);

    // The old checksum is no longer accepted (§5.4.4 step 6, §4.7.1).
    let r = h.intent(&admin, &v1.request(&["repo:read"])).await;
    r.expect_error(
        401,
        "agent_checksum_mismatch",
        "Agent checksum mismatch - code integrity violation",
    );
    let r = h.intent(&admin, &v2.request(&["repo:read"])).await;
    let reg_id = reg2["registration_id"].as_str().unwrap();
    check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &v2,
            registration_id: reg_id,
            aud: json!(API_AUD),
            scope: "repo:read",
            workflow: None,
            full_chain: &["patcher-v1"],
            steps: &[],
        },
    )
    .await;

    // A new key in a re-registration is the one confirmed in cnf.
    h.advance(10);
    let mut v3 = TestAgent::with_prompt("patcher-v1", "Version three of the prompt.");
    v3.key = p256_key();
    let reg3 = h.register(&admin, &v3).await;
    assert_eq!(reg3["version"], 3);
    let r = h.intent(&admin, &v3.request(&["repo:read"])).await;
    check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &v3,
            registration_id: reg3["registration_id"].as_str().unwrap(),
            aud: json!(API_AUD),
            scope: "repo:read",
            workflow: None,
            full_chain: &["patcher-v1"],
            steps: &[],
        },
    )
    .await;
    let all = h.store.registrations("patcher-v1").await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3],
        "§5.4.4 step 5: previous registrations kept"
    );
}

#[tokio::test]
async fn s5_4_2_step_4_registration_ids_unique_within_one_second() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let now = h.now();
    for (i, prompt) in ["one", "two", "three"].iter().enumerate() {
        let agent = TestAgent::with_prompt("fast-agent", prompt);
        let reg = h.register(&admin, &agent).await;
        assert_eq!(reg["version"], i + 1);
        assert_eq!(
            reg["registration_id"],
            format!("reg_fast-agent_{}", now + i as i64),
            "bumped past the previous second"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5_4_4_concurrent_reregistrations_get_distinct_versions() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let app = h.app.clone();
        let admin = admin.clone();
        set.spawn(async move {
            let agent = TestAgent::with_prompt("busy-agent", &format!("prompt number {i}"));
            let request = Request::post("/intent/register/agent")
                .header("authorization", bearer(&admin))
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::to_vec(&agent.registration_body()).unwrap(),
                ))
                .unwrap();
            (send(&app, request).await, agent)
        });
    }
    let mut versions = BTreeSet::new();
    let mut ids = BTreeSet::new();
    let mut by_version = std::collections::BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (r, agent) = done.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json["version"].as_u64().unwrap();
        versions.insert(v);
        ids.insert(r.json["registration_id"].as_str().unwrap().to_owned());
        by_version.insert(v, agent);
    }
    assert_eq!(versions, (1..=8).collect::<BTreeSet<u64>>());
    assert_eq!(ids.len(), 8, "unique registration ids");
    // Only the latest version verifies.
    let latest = &by_version[&8];
    assert_eq!(h.intent(&admin, &latest.request(&["x"])).await.status, 200);
    let r = h.intent(&admin, &by_version[&7].request(&["x"])).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch");
}

#[tokio::test]
async fn s5_4_2_step_3_same_checksum_again_is_duplicate_agent() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let v1 = TestAgent::with_prompt("dup-agent", "First prompt.");
    h.register(&admin, &v1).await;
    let duplicate = json!({
        "error": "duplicate_agent",
        "error_description": "Agent with identical checksum already exists",
        "existing_agent_id": "dup-agent",
    });
    // Same spec, same agent (even with another key).
    let r = h.register_agent_raw(&admin, &v1.registration_body()).await;
    r.expect(400, duplicate.clone());
    let mut other_key = v1.clone();
    other_key.key = p256_key();
    let r = h
        .register_agent_raw(&admin, &other_key.registration_body())
        .await;
    r.expect(400, duplicate.clone());

    // After an update, going back to an earlier checksum is refused too.
    let v2 = TestAgent::with_prompt("dup-agent", "Second prompt.");
    h.register(&admin, &v2).await;
    let r = h.register_agent_raw(&admin, &v1.registration_body()).await;
    r.expect(400, duplicate);
    assert_eq!(
        h.store
            .latest_registration("dup-agent")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

#[tokio::test]
async fn s5_4_2_step_3_checksum_held_by_another_agent_is_duplicate_agent() {
    // A genuine specification cannot hash like another agent's (agent_id is
    // part of the hashed components), so the other holder is put directly in
    // the store, as another instance or an older profile could have.
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("victim-agent");
    h.store
        .register_agent(NewRegistration {
            agent_id: "other-agent-v1".into(),
            checksum: AgentChecksum::parse(&agent.checksum).unwrap(),
            checksum_profile: Profile::Jcs,
            public_jwk: Some(obj(&expected_cnf_jwk(&agent.key.jwk)).clone()),
            jwk_thumbprint: Some(thumbprint(&agent.key.jwk)),
            allowed_scopes: None,
            app_id: None,
            spec_json: "{}".into(),
            registered_at_ms: h.now() * 1000,
        })
        .await
        .unwrap();
    let r = h
        .register_agent_raw(&admin, &agent.registration_body())
        .await;
    r.expect(
        400,
        json!({
            "error": "duplicate_agent",
            "error_description": "Agent with identical checksum already exists",
            "existing_agent_id": "other-agent-v1",
        }),
    );
    assert!(h
        .store
        .latest_registration("victim-agent")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn s6_2_3_step_4_claimed_checksum_must_match() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("claiming-agent");
    let other = TestAgent::new("someone-else");

    let mut body = agent.registration_body();
    body["checksum"] = json!(other.checksum);
    let r = h.register_agent_raw(&admin, &body).await;
    // The exact text is checked by rfc6749_5_2_error_descriptions_do_not_mangle_section_signs.
    r.expect_error_prefix(
        400,
        "invalid_request",
        &format!(
            "Claimed checksum does not match the specification: the server computed {} with profile 'jcs' ",
            agent.checksum
        ),
    );
    body["checksum"] = json!("abc");
    let r = h.register_agent_raw(&admin, &body).await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid checksum format (must be 'sha256:<hex>')",
    );
    // Bare hex (the draft's §5.4.3 form) is not the wire form (I-4).
    body["checksum"] = json!(agent.checksum.trim_start_matches("sha256:"));
    let r = h.register_agent_raw(&admin, &body).await;
    assert_eq!(r.status, 400);

    body["checksum"] = json!(agent.checksum);
    let r = h.register_agent_raw(&admin, &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["checksum"], agent.checksum.as_str());
}

#[tokio::test]
async fn i1_python_ref_profile_registration_and_tokens() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let mut agent = TestAgent::new("python-agent");
    let jcs = agent.checksum.clone();
    let python = checksum_of(&agent.spec, Profile::PythonRef);
    assert_ne!(jcs, python);

    let mut body = agent.registration_body();
    body["checksum_profile"] = json!("python-ref");
    body["checksum"] = json!(python);
    let r = h.register_agent_raw(&admin, &body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["checksum"], python.as_str());
    let reg_id = r.json["registration_id"].as_str().unwrap().to_owned();

    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    r.expect_error(
        401,
        "agent_checksum_mismatch",
        "Agent checksum mismatch - code integrity violation",
    );
    agent.checksum = python;
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &agent,
            registration_id: &reg_id,
            aud: json!(API_AUD),
            scope: "repo:read",
            workflow: None,
            full_chain: &["python-agent"],
            steps: &[],
        },
    )
    .await;

    let mut body = TestAgent::new("python-agent-2").registration_body();
    body["checksum_profile"] = json!("xml");
    let r = h.register_agent_raw(&admin, &body).await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parameter: checksum_profile 'xml' (expected 'jcs' or 'python-ref')",
    );
}

#[tokio::test]
async fn s9_4_1_accepted_public_key_formats_end_up_in_cnf() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let cases: Vec<(&str, AgentKeyPair, bool)> = vec![
        ("ed25519-jwk", ed25519_key(), false),
        ("ed25519-pem", ed25519_key(), true),
        ("p256-jwk", p256_key(), false),
        ("p256-pem", p256_key(), true),
        ("rsa2048-jwk", rsa_key(2048), false),
        ("rsa2048-pem", rsa_key(2048), true),
    ];
    for (id, key, pem) in cases {
        let mut agent = TestAgent::new(id);
        agent.key = key;
        let mut body = agent.registration_body();
        if pem {
            body["public_key"] = json!(agent.key.pem);
        }
        let r = h.register_agent_raw(&admin, &body).await;
        assert_eq!(r.status, 200, "{id}: {r:?}");
        let reg_id = r.json["registration_id"].as_str().unwrap().to_owned();
        let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
        let claims = check_intent_response(
            &h,
            &r,
            &ExpectedIntent {
                agent: &agent,
                registration_id: &reg_id,
                aud: json!(API_AUD),
                scope: "repo:read",
                workflow: None,
                full_chain: &[id],
                steps: &[],
            },
        )
        .await;
        assert_eq!(
            claims["cnf"]["jwk"]["kid"].as_str().unwrap(),
            thumbprint(&agent.key.jwk),
            "{id}: kid = RFC 7638 thumbprint"
        );
    }
}

#[tokio::test]
async fn s9_4_1_refused_public_keys() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let rsa1024 = rsa_key(1024);
    let p384 = p384_key();
    const PREFIX: &str = "Invalid parameter: public_key: unsupported public key: ";
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "rsa1024-jwk",
            Value::Object(rsa1024.jwk.clone()),
            format!("{PREFIX}RSA modulus is 1024 bits; at least 2048 are required ("),
        ),
        (
            "rsa1024-pem",
            json!(rsa1024.pem),
            format!("{PREFIX}RSA modulus is 1024 bits; at least 2048 are required ("),
        ),
        (
            "p384-jwk",
            Value::Object(p384.jwk.clone()),
            format!("{PREFIX}curve 'P-384' is not allowed ("),
        ),
        (
            "p384-pem",
            json!(p384.pem),
            format!("{PREFIX}curve 'P-384' is not allowed ("),
        ),
        (
            "private-jwk",
            {
                let mut k = ed25519_key().jwk;
                k.insert(
                    "d".into(),
                    json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"),
                );
                Value::Object(k)
            },
            format!("{PREFIX}the JWK carries the private member 'd'; register only the public key"),
        ),
        (
            "pem-garbage",
            json!("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            PREFIX.to_owned(),
        ),
    ];
    for (label, key, prefix) in cases {
        let mut body = TestAgent::new("key-agent").registration_body();
        body["public_key"] = key;
        let r = h.register_agent_raw(&admin, &body).await;
        r.expect_error_prefix(400, "invalid_request", &prefix);
        assert!(
            h.store
                .latest_registration("key-agent")
                .await
                .unwrap()
                .is_none(),
            "{label}"
        );
    }
    let mut body = TestAgent::new("key-agent").registration_body();
    obj_mut(&mut body).remove("public_key");
    let r = h.register_agent_raw(&admin, &body).await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: public_key",
    );
    body["public_key"] = json!(5);
    let r = h.register_agent_raw(&admin, &body).await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parameter: public_key must be a JWK object or a PEM string",
    );
}

fn obj_mut(v: &mut Value) -> &mut Map<String, Value> {
    v.as_object_mut().expect("object")
}

#[tokio::test]
async fn s5_2_1_invalid_specifications_are_invalid_request() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let mut dup_tools = TestAgent::new("spec-agent").registration_body();
    dup_tools["tools"] = json!([
        {"name": "read_manifest", "description": "a"},
        {"name": "read_manifest", "description": "b"}
    ]);
    let r = h.register_agent_raw(&admin, &dup_tools).await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid agent specification: tools[1].name: duplicate tool name 'read_manifest'",
    );

    let r = h
        .post(
            "/intent/register/agent",
            Some(&bearer(&admin)),
            Some("application/json"),
            r#"{"agent_id":"spec-agent","agent_id":"evil-agent","prompt":"p","tools":[]}"#,
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid agent specification: $: duplicate key 'agent_id'",
    );
    // Duplicate key deep inside a tool's parameters (I-10).
    let r = h
        .post(
            "/intent/register/agent",
            Some(&bearer(&admin)),
            Some("application/json"),
            r#"{"agent_id":"spec-agent","prompt":"p","tools":[{"name":"t","parameters":{"type":"object","type":"string"}}]}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["error"], "invalid_request");
    assert!(r.description().contains("duplicate key 'type'"), "{r:?}");

    let mut no_prompt = TestAgent::new("spec-agent").registration_body();
    obj_mut(&mut no_prompt).remove("prompt");
    let r = h.register_agent_raw(&admin, &no_prompt).await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid agent specification: prompt: missing required field",
    );

    let mut bad_id = TestAgent::new("spec-agent").registration_body();
    bad_id["agent_id"] = json!("bad id|pipe");
    let r = h.register_agent_raw(&admin, &bad_id).await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid agent specification: agent_id: 'bad id|pipe' does not match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
    );

    let mut unknown = TestAgent::new("spec-agent").registration_body();
    unknown["tools"][0]["checksumLevel"] = json!("deep");
    let r = h.register_agent_raw(&admin, &unknown).await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        r.description()
            .starts_with("Invalid agent specification: tools[0]"),
        "{r:?}"
    );
    assert!(h
        .store
        .latest_registration("spec-agent")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn s4_7_3_unknown_agent_is_not_cached_across_registration() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("late-agent");
    let r = h.intent(&admin, &agent.request(&["x"])).await;
    r.expect_error(
        401,
        "unknown_agent",
        "Agent ID not found in registry. Register first.",
    );
    h.register(&admin, &agent).await;
    let r = h.intent(&admin, &agent.request(&["x"])).await;
    assert_eq!(r.status, 200, "{r:?}");
}

// ===========================================================================
// Workflow registration (§6.3.3, §4.7.2)
// ===========================================================================

/// Three registered agents of the §6.6 scenario.
async fn scenario(h: &Harness, admin: &str) -> (TestAgent, TestAgent, TestAgent) {
    let s = TestAgent::new("supervisor-agent");
    let p = TestAgent::new("patch-planner");
    let v = TestAgent::new("vulnerability-patcher-v1");
    for a in [&s, &p, &v] {
        h.register(admin, a).await;
    }
    (s, p, v)
}

#[tokio::test]
async fn s6_3_3_object_form_and_s4_7_2_array_form_register_the_same_workflow() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, _, v) = scenario(&h, &admin).await;
    let object_form = auto_patch_workflow("wf-object", "supervisor-agent");
    let r = h.register_workflow(&admin, &object_form).await;
    r.expect(
        200,
        json!({"status": "registered", "workflow_id": "wf-object"}),
    );

    let array_form = json!({
        "workflow_id": "wf-array",
        "steps": [
            {"step_id": STEP1, "required": true, "requires_approval": false, "agent_id": "supervisor-agent"},
            {"step_id": STEP2, "required": true, "requires_approval": false, "agent_id": "patch-planner"},
            {"step_id": STEP3, "required": true, "requires_approval": false, "approval_gate": true},
            {"step_id": STEP4, "required": true, "requires_approval": true, "agent_id": "vulnerability-patcher-v1"},
            {"step_id": STEP5, "required": true, "requires_approval": false, "agent_id": "patch-verifier"}
        ]
    });
    let r = h.register_workflow(&admin, &array_form).await;
    r.expect(
        200,
        json!({"status": "registered", "workflow_id": "wf-array"}),
    );

    let a = h.store.workflow("wf-object").await.unwrap().unwrap();
    let b = h.store.workflow("wf-array").await.unwrap().unwrap();
    assert_eq!(a.steps, b.steps, "same ordered steps");

    for wf in ["wf-object", "wf-array"] {
        let r = h
            .intent(
                &admin,
                &v.step_request(wf, STEP4, &[], &[STEP1, STEP2], &["repo:write"]),
            )
            .await;
        r.expect_step_denied(PREREQS, &[STEP3]);
        let r = h
            .intent(
                &admin,
                &v.step_request(wf, STEP4, &[], &[STEP1, STEP2, STEP3], &["repo:write"]),
            )
            .await;
        assert_eq!(r.status, 200, "{wf}: {r:?}");
    }
}

#[tokio::test]
async fn s6_3_workflows_are_immutable() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, p, _) = scenario(&h, &admin).await;
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf-fixed", "supervisor-agent"))
        .await;
    assert_eq!(r.status, 200);
    // Same id, a definition that would let the planner skip step 1.
    let replacement = json!({"workflow_id": "wf-fixed", "steps": {STEP2: {"required": true}}});
    let r = h.register_workflow(&admin, &replacement).await;
    r.expect_error(
        400,
        "invalid_request",
        "Workflow 'wf-fixed' already exists (workflows are immutable: register a new workflow_id)",
    );
    let r = h
        .intent(&admin, &p.step_request("wf-fixed", STEP2, &[], &[], &["x"]))
        .await;
    r.expect_step_denied(PREREQS, &[STEP1]);
}

#[tokio::test]
async fn s9_3_1_invalid_workflow_definitions_name_the_step() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "Workflow must define at least one step"),
        (
            json!([{"step_id": "a"}, {"step_id": "a"}]),
            "Invalid workflow step 'a': duplicate step id",
        ),
        (
            json!({"a": {"requires_approval": true}}),
            "Invalid workflow step 'a': requires approval but no approval gate precedes it",
        ),
        (
            json!({"g": {"approval_gate": true, "agent_id": "someone"}}),
            "Invalid workflow step 'g': an approval gate cannot be assigned to an agent",
        ),
        (
            json!({"g": {"approval_gate": true}, "b": {"requires_aproval": true}}),
            "Invalid workflow step 'b': unknown member 'requires_aproval'",
        ),
        (
            json!({"b": {"required": "yes"}}),
            "Invalid workflow step 'b': required must be a boolean, found string",
        ),
        (
            json!([{"required": true}]),
            "Invalid workflow step 'steps[0]': missing step_id",
        ),
        (
            json!({"bad step": {}}),
            "Invalid workflow step 'bad step': step ids must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        ),
        (
            json!({"s": {"scopes": ["ok", "not ok"]}}),
            "Invalid workflow step 's': malformed scope 'not ok'",
        ),
        (
            json!("steps"),
            "Invalid parameter: steps must be an object or an array",
        ),
    ];
    for (i, (steps, description)) in cases.into_iter().enumerate() {
        let id = format!("wf-bad-{i}");
        let r = h
            .register_workflow(&admin, &json!({"workflow_id": id, "steps": steps}))
            .await;
        r.expect_error(400, "invalid_request", description);
        assert!(h.store.workflow(&id).await.unwrap().is_none());
    }
    let r = h
        .register_workflow(&admin, &json!({"steps": {"a": {}}}))
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: workflow_id",
    );
    let r = h
        .register_workflow(&admin, &json!({"workflow_id": "wf-no-steps"}))
        .await;
    r.expect_error(400, "invalid_request", "Missing required parameter: steps");
    // A step given twice in the object form is a duplicate JSON member.
    let r = h
        .post(
            "/intent/register/workflow",
            Some(&bearer(&admin)),
            Some("application/json"),
            r#"{"workflow_id":"wf-dup","steps":{"a":{},"a":{"required":false}}}"#,
        )
        .await;
    r.expect_error(400, "invalid_request", "Invalid JSON format");
}

// ===========================================================================
// agent_checksum grant: errors of §4.5 and precedence of §4.3.1
// ===========================================================================

#[tokio::test]
async fn s4_5_2_unsupported_grant_type() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    for grant in [
        "client_credentials",
        "password",
        "Agent_Checksum",
        "urn:ietf:params:oauth:grant-type:agent-checksum",
    ] {
        let mut req = agent.request(&["x"]);
        req["grant_type"] = json!(grant);
        let r = h.intent(&admin, &req).await;
        // client_credentials is served, but only form-encoded (I-15); a grant
        // the endpoint never serves names both grants (I-53).
        let description = if grant == "client_credentials" {
            "Grant type must be 'agent_checksum'"
        } else {
            BOTH_GRANTS
        };
        r.expect_error(400, "unsupported_grant_type", description);
    }
    // The URN and the short name both work (§4.1).
    let mut req = agent.request(&["x"]);
    req["grant_type"] = json!("urn:ietf:params:oauth:grant-type:agent_checksum");
    assert_eq!(h.intent(&admin, &req).await.status, 200);
}

#[tokio::test]
async fn s4_5_6_invalid_request_descriptions() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    h.register(&admin, &agent).await;
    let base = agent.request(&["repo:read"]);
    let without = |name: &str| {
        let mut r = base.clone();
        obj_mut(&mut r).remove(name);
        r
    };
    let with = |name: &str, v: Value| {
        let mut r = base.clone();
        r[name] = v;
        r
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            without("grant_type"),
            "Missing required parameter: grant_type",
        ),
        (without("agent_id"), "Missing required parameter: agent_id"),
        (
            without("computed_checksum"),
            "Missing required parameter: computed_checksum",
        ),
        (
            without("requested_scopes"),
            "Missing required parameter: requested_scopes",
        ),
        (without("audience"), "Missing required parameter: audience"),
        (
            with("computed_checksum", json!("")),
            "Missing required parameter: computed_checksum",
        ),
        (
            with("requested_scopes", json!([])),
            "Missing required parameter: requested_scopes",
        ),
        (
            with("computed_checksum", json!("md5:abc")),
            "Invalid checksum format (must be 'sha256:<hex>')",
        ),
        (
            with(
                "computed_checksum",
                json!(agent.checksum.trim_start_matches("sha256:")),
            ),
            "Invalid checksum format (must be 'sha256:<hex>')",
        ),
        (
            with("computed_checksum", json!(agent.checksum.to_uppercase())),
            "Invalid checksum format (must be 'sha256:<hex>')",
        ),
        (
            with("workflow_enabled", json!(true)),
            "workflow_enabled=true but workflow_id/workflow_step missing",
        ),
        (
            with("grant_type", json!(5)),
            "Invalid parameter: grant_type",
        ),
        (
            with("agent_id", json!("a|b")),
            "Invalid parameter: agent_id",
        ),
        (
            with("requested_scopes", json!("repo:read")),
            "Invalid parameter: requested_scopes",
        ),
        (with("audience", json!(7)), "Invalid parameter: audience"),
        (
            with("workflow_enabled", json!("yes")),
            "Invalid parameter: workflow_enabled",
        ),
        (
            with("delegation_context", json!([])),
            "Invalid parameter: delegation_context",
        ),
        (
            with("delegation_context", json!({"chain": "supervisor"})),
            "Invalid parameter: delegation_context.chain",
        ),
        (
            with("parent_token", json!(1)),
            "Invalid parameter: parent_token",
        ),
    ];
    for (req, description) in cases {
        let r = h.intent(&admin, &req).await;
        r.expect_error(400, "invalid_request", description);
    }
    for raw in [
        "{not json",
        "[]",
        "null",
        r#"{"grant_type":"agent_checksum","grant_type":"agent_checksum"}"#,
    ] {
        let r = h
            .post(
                "/intent/token",
                Some(&bearer(&admin)),
                Some("application/json"),
                raw,
            )
            .await;
        r.expect_error(400, "invalid_request", "Invalid JSON format");
    }
    let r = h
        .intent(&admin, &with("requested_scopes", json!(["ok", "not ok"])))
        .await;
    r.expect_error(400, "invalid_scope", "Malformed scope: 'not ok'");
}

#[tokio::test]
async fn s4_3_1_validation_order() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, p, v) = scenario(&h, &admin).await;
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf", "supervisor-agent"))
        .await;
    assert_eq!(r.status, 200);
    let ghost = TestAgent::new("ghost-agent");

    // 1. Wrong grant type beats an unknown agent.
    let mut req = ghost.request(&["x"]);
    req["grant_type"] = json!("password");
    h.intent(&admin, &req)
        .await
        .expect_error(400, "unsupported_grant_type", BOTH_GRANTS);
    // Wrong grant type beats every missing parameter.
    h.intent(&admin, &json!({"grant_type": "password"}))
        .await
        .expect_error(400, "unsupported_grant_type", BOTH_GRANTS);
    // Decoding comes before the registry: unknown agent + bad checksum format.
    let mut req = ghost.request(&["x"]);
    req["computed_checksum"] = json!("sha256:1234");
    h.intent(&admin, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid checksum format (must be 'sha256:<hex>')",
    );
    // 2. Unknown agent beats workflow and delegation errors.
    let req = ghost.step_request("no-such-workflow", STEP4, &["nobody"], &[], &["x"]);
    h.intent(&admin, &req).await.expect_error(
        401,
        "unknown_agent",
        "Agent ID not found in registry. Register first.",
    );
    // 3. Checksum mismatch beats workflow and delegation errors.
    let mut req = v.step_request("no-such-workflow", STEP4, &["nobody"], &[], &["x"]);
    req["computed_checksum"] = json!(s.checksum);
    h.intent(&admin, &req).await.expect_error(
        401,
        "agent_checksum_mismatch",
        "Agent checksum mismatch - code integrity violation",
    );
    // 4. Workflow errors beat delegation errors.
    let req = v.step_request("wf", STEP4, &["nobody"], &[STEP1, STEP2], &["x"]);
    h.intent(&admin, &req)
        .await
        .expect_step_denied(PREREQS, &[STEP3]);
    // Then delegation beats scope binding.
    let mut req = p.step_request("wf", STEP2, &["nobody"], &[STEP1], &["x"]);
    req["parent_token"] = json!("x.y.z");
    h.intent(&admin, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid delegation chain: agent 'nobody' is not registered",
    );
}

#[tokio::test]
async fn s4_5_3_and_s4_5_4_unknown_agent_and_checksum_mismatch() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("agent-a");
    let r = h.intent(&admin, &agent.request(&["x"])).await;
    r.expect_error(
        401,
        "unknown_agent",
        "Agent ID not found in registry. Register first.",
    );
    // RFC 9110 §11.6.1: every 401 carries a challenge (I-32).
    assert_eq!(
        r.header("www-authenticate"),
        Some("AgentChecksum error=\"unknown_agent\"")
    );
    h.register(&admin, &agent).await;
    let mut req = agent.request(&["x"]);
    req["computed_checksum"] = json!(format!("sha256:{}", "0".repeat(64)));
    let r = h.intent(&admin, &req).await;
    r.expect_error(
        401,
        "agent_checksum_mismatch",
        "Agent checksum mismatch - code integrity violation",
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("AgentChecksum error=\"agent_checksum_mismatch\"")
    );
    // A modified configuration (the point of §4.5.4).
    let mut modified = agent.spec.clone();
    modified["configuration"]["temperature"] = json!(0.7);
    req["computed_checksum"] = json!(checksum_of(&modified, Profile::Jcs));
    let r = h.intent(&admin, &req).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch");
}

#[tokio::test]
async fn s4_5_5_workflow_step_unauthorized_and_approval_gate_bypass() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, p, v) = scenario(&h, &admin).await;
    let r = h
        .register_workflow(&admin, &auto_patch_workflow("wf", "supervisor-agent"))
        .await;
    assert_eq!(r.status, 200);
    let scopes = ["repo:write"];

    // Skipping the approval gate.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2], &scopes),
        )
        .await;
    r.expect_step_denied(PREREQS, &[STEP3]);
    // Skipping everything.
    let r = h
        .intent(&admin, &v.step_request("wf", STEP4, &[], &[], &scopes))
        .await;
    r.expect_step_denied(PREREQS, &[STEP1, STEP2, STEP3]);
    // Claiming a later step as completed.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3, STEP5], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!(
            "{STEP_DENIED} Invalid completed_steps: step '{STEP5}' comes after the requested step."
        ),
        &[],
    );
    // Claiming the requested step itself.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3, STEP4], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Invalid completed_steps: step '{STEP4}' is the requested step."),
        &[],
    );
    // An out-of-order history.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP2, STEP1, STEP3], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!(
            "{STEP_DENIED} Invalid completed_steps: step '{STEP1}' is listed after step '{STEP2}', which comes later in the workflow."
        ),
        &[],
    );
    // An unknown step in the history.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, "step_x", STEP3], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!(
            "{STEP_DENIED} Invalid completed_steps: step 'step_x' is not defined in the workflow."
        ),
        &[],
    );
    // A step assigned to another agent: the planner tries the patch step.
    let r = h
        .intent(
            &admin,
            &p.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step '{STEP4}' is assigned to agent 'vulnerability-patcher-v1'."),
        &[],
    );
    // The unassigned approval gate step follows the same prerequisite rule.
    let r = h
        .intent(&admin, &s.step_request("wf", STEP3, &[], &[STEP1], &scopes))
        .await;
    r.expect_step_denied(PREREQS, &[STEP2]);
    // Unknown step, unknown workflow.
    let r = h
        .intent(&admin, &v.step_request("wf", "step_9", &[], &[], &scopes))
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step 'step_9' is not defined in the workflow."),
        &[],
    );
    let r = h
        .intent(
            &admin,
            &v.step_request("no-such-workflow", STEP4, &[], &[], &scopes),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Workflow 'no-such-workflow' is not registered."),
        &[],
    );
    // With workflow_enabled=false nothing of this is checked (§4.3.1 step 4).
    let mut req = v.step_request("no-such-workflow", STEP4, &[], &[], &scopes);
    req["workflow_enabled"] = json!(false);
    assert_eq!(h.intent(&admin, &req).await.status, 200);
    // The legitimate request passes.
    let r = h
        .intent(
            &admin,
            &v.step_request("wf", STEP4, &[], &[STEP1, STEP2, STEP3], &scopes),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn s4_3_3_step_4_optional_gate_must_still_be_completed() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("gated-agent");
    h.register(&admin, &agent).await;
    let wf = json!({
        "workflow_id": "wf-optional-gate",
        "steps": {
            "prepare": {"required": true},
            "optional_gate": {"required": false, "approval_gate": true},
            "act": {"requires_approval": true, "agent_id": "gated-agent"}
        }
    });
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    let r = h
        .intent(
            &admin,
            &agent.step_request("wf-optional-gate", "act", &[], &["prepare"], &["x"]),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step requires approval and approval gate 'optional_gate' is not completed."),
        &["optional_gate"],
    );
    let r = h
        .intent(
            &admin,
            &agent.step_request(
                "wf-optional-gate",
                "act",
                &[],
                &["prepare", "optional_gate"],
                &["x"],
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn i21_draft_6_3_3_workflow_refuses_the_6_6_3_supervisor() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, _, _) = scenario(&h, &admin).await;
    let draft: Value = serde_json::from_str(
        r#"{
         "workflow_id": "auto-patch-workflow-v1",
         "steps": {
           "step_1_analyze_manifest": {"required": true, "requires_approval": false, "agent_id": "vulnerability-analyzer"},
           "step_2_create_patch_plan": {"required": true, "requires_approval": false, "agent_id": "patch-planner"},
           "step_3_approval_gate": {"required": true, "requires_approval": false, "approval_gate": true},
           "step_4_apply_patch": {"required": true, "requires_approval": true, "agent_id": "vulnerability-patcher-v1"},
           "step_5_verify_patch": {"required": true, "requires_approval": false, "agent_id": "patch-verifier"}
         }
       }"#,
    )
    .unwrap();
    let r = h.register_workflow(&admin, &draft).await;
    r.expect(
        200,
        json!({"status": "registered", "workflow_id": "auto-patch-workflow-v1"}),
    );
    let r = h
        .intent(
            &admin,
            &s.step_request("auto-patch-workflow-v1", STEP1, &[], &[], &["repo:read"]),
        )
        .await;
    r.expect_step_denied(
        &format!("{STEP_DENIED} Step '{STEP1}' is assigned to agent 'vulnerability-analyzer'."),
        &[],
    );
}

#[tokio::test]
async fn s4_3_4_delegation_chain_errors() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (s, p, v) = scenario(&h, &admin).await;
    let cases: Vec<(&TestAgent, Vec<&str>, String)> = vec![
        (
            &v,
            vec!["supervisor-agent", "unregistered-agent"],
            "Invalid delegation chain: agent 'unregistered-agent' is not registered".into(),
        ),
        (
            &v,
            vec!["supervisor-agent", "vulnerability-patcher-v1", "patch-planner"],
            "Invalid delegation chain: agent 'vulnerability-patcher-v1' appears before the end of the chain".into(),
        ),
        (
            &v,
            vec!["supervisor-agent", "patch-planner", "supervisor-agent"],
            "Invalid delegation chain: agent 'supervisor-agent' appears more than once".into(),
        ),
        (
            &s,
            vec!["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"],
            "Invalid delegation chain: depth 9 exceeds the maximum of 8".into(),
        ),
    ];
    for (agent, chain, description) in cases {
        let mut req = agent.request(&["x"]);
        req["delegation_context"] = json!({"chain": chain, "completed_steps": []});
        let r = h.intent(&admin, &req).await;
        r.expect_error(400, "invalid_request", &description);
    }
    // Exactly the maximum depth is accepted.
    let mut req = p.request(&["x"]);
    req["delegation_context"] = json!({"chain": ["supervisor-agent"]});
    assert_eq!(h.intent(&admin, &req).await.status, 200);
    let small = Harness::with_config(IssuerConfig {
        max_delegation_depth: 2,
        ..test_config()
    })
    .await;
    let admin2 = small.admin_token().await;
    let (_, p2, v2) = scenario(&small, &admin2).await;
    let mut req = p2.request(&["x"]);
    req["delegation_context"] = json!({"chain": ["supervisor-agent"]});
    assert_eq!(small.intent(&admin2, &req).await.status, 200);
    let mut req = v2.request(&["x"]);
    req["delegation_context"] = json!({"chain": ["supervisor-agent", "patch-planner"]});
    small.intent(&admin2, &req).await.expect_error(
        400,
        "invalid_request",
        "Invalid delegation chain: depth 3 exceeds the maximum of 2",
    );
}

#[tokio::test]
async fn a3_scope_binding_at_registration_and_step() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("scoped-agent");
    let mut body = agent.registration_body();
    body["allowed_scopes"] = json!(["repo:read", "repo:write"]);
    assert_eq!(h.register_agent_raw(&admin, &body).await.status, 200);

    let r = h
        .intent(
            &admin,
            &agent.request(&["repo:read", "admin:all", "repo:write", "x"]),
        )
        .await;
    r.expect_error(
        400,
        "invalid_scope",
        "Requested scopes not allowed: admin:all x",
    );
    let r = h
        .intent(
            &admin,
            &agent.request(&["repo:write", "repo:read", "repo:write"]),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json["scope"], "repo:write repo:read",
        "request order, each once"
    );

    let wf = json!({
        "workflow_id": "wf-scoped",
        "steps": [{"step_id": "read_only", "agent_id": "scoped-agent", "scopes": ["repo:read"]}]
    });
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    let r = h
        .intent(
            &admin,
            &agent.step_request(
                "wf-scoped",
                "read_only",
                &[],
                &[],
                &["repo:read", "repo:write"],
            ),
        )
        .await;
    r.expect_error(
        400,
        "invalid_scope",
        "Requested scopes not allowed: repo:write",
    );
    let r = h
        .intent(
            &admin,
            &agent.step_request("wf-scoped", "read_only", &[], &[], &["repo:read"]),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["scope"], "repo:read");
}

#[tokio::test]
async fn s4_4_successful_response_and_every_claim() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, _, v) = scenario(&h, &admin).await;
    let reg = h
        .store
        .latest_registration("vulnerability-patcher-v1")
        .await
        .unwrap()
        .unwrap();

    // Without a workflow, audience as a string.
    let r = h
        .intent(&admin, &v.request(&["repo:write", "vulnerability:read"]))
        .await;
    let first = check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &v,
            registration_id: &reg.registration_id,
            aud: json!(API_AUD),
            scope: "repo:write vulnerability:read",
            workflow: None,
            full_chain: &["vulnerability-patcher-v1"],
            steps: &[],
        },
    )
    .await;
    // Empty completed_steps hash to SHA-256("")[..16].
    assert_eq!(first["intent"]["step_sequence_hash"], "e3b0c44298fc1c14");

    // Same request again: a different jti.
    let r = h
        .intent(&admin, &v.request(&["repo:write", "vulnerability:read"]))
        .await;
    let (_, second) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_ne!(first["jti"], second["jti"], "jti unique");

    // With a workflow, delegation and an array audience.
    let wf = auto_patch_workflow("auto-patch-workflow-v1", "supervisor-agent");
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    h.advance(7);
    let mut req = v.step_request(
        "auto-patch-workflow-v1",
        STEP4,
        &["supervisor-agent", "patch-planner"],
        &[STEP1, STEP2, STEP3],
        &["repo:write"],
    );
    req["audience"] = json!(["https://api.github.com", "https://registry.npmjs.org"]);
    let r = h.intent(&admin, &req).await;
    let claims = check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &v,
            registration_id: &reg.registration_id,
            aud: json!(["https://api.github.com", "https://registry.npmjs.org"]),
            scope: "repo:write",
            workflow: Some(("auto-patch-workflow-v1", STEP4)),
            full_chain: &[
                "supervisor-agent",
                "patch-planner",
                "vulnerability-patcher-v1",
            ],
            steps: &[STEP1, STEP2, STEP3, STEP4],
        },
    )
    .await;
    // Known answer (independent of the hash code above and of the issuer).
    assert_eq!(claims["intent"]["delegation_chain"], "2f0b6b1132b4c1f7");

    // I-16: the chain may already end with the requester; same claims.
    let mut req2 = req.clone();
    req2["delegation_context"]["chain"] = json!([
        "supervisor-agent",
        "patch-planner",
        "vulnerability-patcher-v1"
    ]);
    let r = h.intent(&admin, &req2).await;
    let (_, claims2) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_eq!(claims2["intent"], claims["intent"]);
}

#[tokio::test]
async fn s9_2_1_intent_token_lifetime_follows_configuration() {
    let h = Harness::with_config(IssuerConfig {
        intent_token_lifetime: 60,
        ..test_config()
    })
    .await;
    let admin = h.admin_token().await;
    let agent = TestAgent::new("short-lived");
    let reg = h.register(&admin, &agent).await;
    let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
    assert_eq!(r.json["expires_in"], 60);
    check_intent_response(
        &h,
        &r,
        &ExpectedIntent {
            agent: &agent,
            registration_id: reg["registration_id"].as_str().unwrap(),
            aud: json!(API_AUD),
            scope: "repo:read",
            workflow: None,
            full_chain: &["short-lived"],
            steps: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn intent_tokens_verify_with_every_signing_algorithm() {
    for alg in SigningAlgorithm::ALL {
        let h = Harness::with_alg(test_config(), alg).await;
        let jwks = h.jwks().await;
        assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
        assert_eq!(jwks["keys"][0]["use"], "sig");
        let admin = h.admin_token().await;
        verify_independently(&admin, &jwks, ISSUER, &[CLIENT_AUD]);
        let agent = TestAgent::new("alg-agent");
        let reg = h.register(&admin, &agent).await;
        let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
        check_intent_response(
            &h,
            &r,
            &ExpectedIntent {
                agent: &agent,
                registration_id: reg["registration_id"].as_str().unwrap(),
                aud: json!(API_AUD),
                scope: "repo:read",
                workflow: None,
                full_chain: &["alg-agent"],
                steps: &[],
            },
        )
        .await;
    }
}

#[tokio::test]
async fn s4_2_1_form_encoded_agent_checksum_request_works_like_json() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let (_, _, v) = scenario(&h, &admin).await;
    let wf = auto_patch_workflow("wf", "supervisor-agent");
    assert_eq!(h.register_workflow(&admin, &wf).await.status, 200);
    let reg = h.store.latest_registration(&v.id).await.unwrap().unwrap();
    let ctx = json!({"chain": ["supervisor-agent", "patch-planner"], "completed_steps": [STEP1, STEP2, STEP3]})
        .to_string();
    let form = |grant: &'static str, completed: &str| -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", grant.into()),
            ("agent_id", v.id.clone()),
            ("computed_checksum", v.checksum.clone()),
            ("workflow_id", "wf".into()),
            ("workflow_step", STEP4.into()),
            ("workflow_enabled", "true".into()),
            ("requested_scopes", "repo:write vulnerability:read".into()),
            ("audience", API_AUD.into()),
            ("delegation_context", completed.to_owned()),
        ]
    };
    for grant in [
        "agent_checksum",
        "urn:ietf:params:oauth:grant-type:agent_checksum",
    ] {
        let pairs = form(grant, &ctx);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = h
            .post_form("/intent/token", Some(&bearer(&admin)), &pairs)
            .await;
        check_intent_response(
            &h,
            &r,
            &ExpectedIntent {
                agent: &v,
                registration_id: &reg.registration_id,
                aud: json!(API_AUD),
                scope: "repo:write vulnerability:read",
                workflow: Some(("wf", STEP4)),
                full_chain: &[
                    "supervisor-agent",
                    "patch-planner",
                    "vulnerability-patcher-v1",
                ],
                steps: &[STEP1, STEP2, STEP3, STEP4],
            },
        )
        .await;
    }
    // Errors are the same as for JSON.
    let skip = json!({"chain": [], "completed_steps": [STEP1, STEP2]}).to_string();
    let pairs = form("agent_checksum", &skip);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.post_form("/intent/token", Some(&bearer(&admin)), &pairs)
        .await
        .expect_step_denied(PREREQS, &[STEP3]);
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[("grant_type", "password"), ("agent_id", "ghost")],
        )
        .await;
    r.expect_error(400, "unsupported_grant_type", BOTH_GRANTS);
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[("grant_type", "agent_checksum"), ("agent_id", "ghost")],
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: computed_checksum",
    );
    let r = h
        .post_form(
            "/intent/token",
            Some(&bearer(&admin)),
            &[
                ("grant_type", "agent_checksum"),
                ("agent_id", "ghost"),
                ("agent_id", "ghost2"),
            ],
        )
        .await;
    r.expect_error(400, "invalid_request", "Duplicate parameter: agent_id");
    let pairs = form("agent_checksum", "{not json");
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = h
        .post_form("/intent/token", Some(&bearer(&admin)), &pairs)
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parameter: delegation_context",
    );
}

// ===========================================================================
// Malformed HTTP, discovery, health
// ===========================================================================

#[tokio::test]
async fn unsupported_media_type_is_415_json() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let auth = bearer(&admin);
    let r = h
        .post("/intent/token", Some(&auth), Some("text/plain"), "{}")
        .await;
    r.expect_error(
        415,
        "invalid_request",
        "Content-Type must be application/json or application/x-www-form-urlencoded, got text/plain",
    );
    let r = h.post("/intent/token", Some(&auth), None, "{}").await;
    r.expect_error(
        415,
        "invalid_request",
        "Content-Type must be application/json or application/x-www-form-urlencoded, got none",
    );
    for path in [
        "/intent/register/agent",
        "/register/agent",
        "/intent/register/workflow",
        "/intent/register/client",
    ] {
        let r = h
            .post(
                path,
                Some(&auth),
                Some("application/x-www-form-urlencoded"),
                "a=b",
            )
            .await;
        r.expect_error(
            415,
            "invalid_request",
            "Content-Type must be application/json, got application/x-www-form-urlencoded",
        );
        let r = h.post(path, Some(&auth), None, "{}").await;
        r.expect_error(
            415,
            "invalid_request",
            "Content-Type must be application/json, got none",
        );
    }
    // Parameters and case in the media type are fine.
    let agent = TestAgent::new("ct-agent");
    let r = h
        .post(
            "/intent/register/agent",
            Some(&auth),
            Some("Application/JSON; charset=utf-8"),
            serde_json::to_vec(&agent.registration_body()).unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn s9_4_3_body_over_the_limit_is_413_json() {
    let h = Harness::with_config(IssuerConfig {
        body_limit: 1024,
        ..test_config()
    })
    .await;
    let admin = h.admin_token().await;
    let auth = bearer(&admin);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1100));
    for (path, ct) in [
        ("/intent/token", "application/json"),
        ("/intent/token", "application/x-www-form-urlencoded"),
        ("/intent/register/agent", "application/json"),
        ("/register/agent", "application/json"),
        ("/intent/register/workflow", "application/json"),
        ("/intent/register/client", "application/json"),
    ] {
        let r = h.post(path, Some(&auth), Some(ct), big.clone()).await;
        r.expect_error(
            413,
            "invalid_request",
            "Request body larger than 1024 bytes",
        );
    }
    // A body of exactly the limit is read.
    let exact = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 - 10));
    assert_eq!(exact.len(), 1024);
    let r = h
        .post(
            "/intent/token",
            Some(&auth),
            Some("application/json"),
            exact,
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Missing required parameter: grant_type",
    );
}

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_is_405_json() {
    let h = Harness::new().await;
    for path in [
        "/nope",
        "/intent",
        "/intent/token/extra",
        "/.well-known/openid-configuration",
    ] {
        let r = h.get(path).await;
        assert_eq!(
            (r.status, &r.json),
            (
                404,
                &json!({"error": "invalid_request", "error_description": "No such endpoint"})
            ),
            "{path}"
        );
        r.assert_json();
    }
    let r = h.post("/nope", None, Some("application/json"), "{}").await;
    assert_eq!(r.status, 404);
    for (method, path) in [
        ("GET", "/intent/token"),
        ("PUT", "/intent/token"),
        ("DELETE", "/intent/register/agent"),
        ("GET", "/intent/register/workflow"),
        ("POST", "/healthz"),
        ("POST", "/.well-known/jwks.json"),
        ("DELETE", "/.well-known/oauth-authorization-server"),
    ] {
        let r = h
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            (r.status, &r.json),
            (
                405,
                &json!({"error": "invalid_request", "error_description": "Method not allowed on this endpoint"})
            ),
            "{method} {path}"
        );
        r.assert_json();
        assert!(
            r.header("allow").is_some(),
            "RFC 9110 §15.5.6: Allow header"
        );
    }
}

#[tokio::test]
async fn rfc9110_405_allow_header_lists_the_methods_of_the_endpoint() {
    // RFC 9110 §15.5.6: a 405 MUST carry an Allow header listing the target
    // resource's supported methods. Actual: `Allow: GET, POST` everywhere.
    let h = Harness::new().await;
    let methods = |r: &Resp| -> BTreeSet<String> {
        r.header("allow")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect()
    };
    for path in [
        "/intent/token",
        "/intent/register/agent",
        "/register/agent",
        "/intent/register/workflow",
        "/intent/register/client",
    ] {
        let r = h.get(path).await;
        assert_eq!(r.status, 405);
        assert_eq!(
            methods(&r),
            BTreeSet::from(["POST".to_owned()]),
            "GET {path}: Allow {:?}",
            r.header("allow")
        );
    }
    for path in [
        "/healthz",
        "/readyz",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = h.post(path, None, None, "").await;
        assert_eq!(r.status, 405);
        let allowed = methods(&r);
        assert!(allowed.contains("GET"), "POST {path}: {allowed:?}");
        assert!(!allowed.contains("POST"), "POST {path}: Allow {allowed:?}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_400_json_never_500() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let auth = bearer(&admin);
    let deep_array = "[".repeat(1_000_000);
    let deep_object = "{\"a\":".repeat(150_000);
    let just_too_deep = format!(
        "{{\"grant_type\":\"agent_checksum\",\"x\":{}1{}}}",
        "[".repeat(128),
        "]".repeat(128)
    );
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        b"1e400".to_vec(),
        vec![0xff, 0xfe, 0x7b, 0x7d],
        b"{\"grant_type\":\"agent_checksum\",\"x\":\"\\ud800\"}".to_vec(),
        "\u{feff}{}".as_bytes().to_vec(),
        b"{} trailing".to_vec(),
        b"{\"a\":NaN}".to_vec(),
        b"{\"a\":1,\"a\":2}".to_vec(),
        b"{\"agent_id\":\"\xc3\x28\"}".to_vec(),
        deep_array.into_bytes(),
        deep_object.into_bytes(),
        just_too_deep.into_bytes(),
    ];
    for path in [
        "/intent/token",
        "/intent/register/agent",
        "/register/agent",
        "/intent/register/workflow",
        "/intent/register/client",
    ] {
        for body in &bodies {
            let r = h
                .post(path, Some(&auth), Some("application/json"), body.clone())
                .await;
            assert_eq!(
                (r.status, r.json["error"].as_str()),
                (400, Some("invalid_request")),
                "{path} {:?}: {r:?}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
            r.assert_json();
            r.assert_no_store();
        }
    }
    // The JSON grant: unreadable bodies are exactly "Invalid JSON format" (I-15).
    for body in &bodies {
        let r = h
            .post(
                "/intent/token",
                Some(&auth),
                Some("application/json"),
                body.clone(),
            )
            .await;
        r.expect_error(400, "invalid_request", "Invalid JSON format");
    }
    // Form bodies with deep JSON in delegation_context, bad percent-encoding.
    let form = format!(
        "grant_type=agent_checksum&agent_id=a&computed_checksum=sha256:{}&requested_scopes=x&audience=y&delegation_context={}",
        "0".repeat(64),
        "%5B".repeat(200_000)
    );
    for body in [
        form,
        "grant_type=agent_checksum&%zz=%%".to_owned(),
        "&&&==".to_owned(),
    ] {
        let r = h
            .post(
                "/intent/token",
                Some(&auth),
                Some("application/x-www-form-urlencoded"),
                body,
            )
            .await;
        assert_eq!(r.status, 400, "{r:?}");
        r.assert_json();
        r.assert_no_store();
    }
}

#[tokio::test]
async fn health_readiness_jwks_and_metadata() {
    let h = Harness::new().await;
    let r = h.get("/healthz").await;
    assert_eq!((r.status, &r.json), (200, &json!({"status": "ok"})));
    let r = h.get("/readyz").await;
    assert_eq!((r.status, &r.json), (200, &json!({"status": "ready"})));

    let r = h.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200);
    r.assert_json();
    let keys = r.json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = obj(&keys[0]);
    assert_eq!(key["kid"], h.keys.current_kid());
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(
        thumbprint(key),
        h.keys.current_kid(),
        "kid = RFC 7638 thumbprint"
    );
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(!key.contains_key(private), "no private member {private}");
    }

    let r = h.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(r.status, 200);
    r.assert_json();
    let m = &r.json;
    assert_eq!(m["issuer"], ISSUER);
    assert_eq!(m["token_endpoint"], format!("{ISSUER}/intent/token"));
    assert_eq!(m["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    let grants: BTreeSet<&str> = m["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(
        grants,
        BTreeSet::from([
            "client_credentials",
            "agent_checksum",
            "urn:ietf:params:oauth:grant-type:agent_checksum"
        ])
    );
    let methods: BTreeSet<&str> = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        BTreeSet::from(["client_secret_basic", "client_secret_post"])
    );
    let scopes: BTreeSet<&str> = m["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        scopes.contains(REGISTER) && scopes.contains(GENERATE),
        "{scopes:?}"
    );
    assert_eq!(
        m["agent_registration_endpoint"],
        format!("{ISSUER}/intent/register/agent")
    );
    assert_eq!(
        m["workflow_registration_endpoint"],
        format!("{ISSUER}/intent/register/workflow")
    );

    // Readiness follows the store.
    h.store.close().await;
    let r = h.get("/readyz").await;
    r.expect_error(
        503,
        "temporarily_unavailable",
        "The authorization server store is unavailable; retry later",
    );
    let r = h.get("/healthz").await;
    assert_eq!(r.status, 200, "liveness does not depend on the store");
}

#[tokio::test]
async fn closed_store_gives_503_not_500() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    h.store.close().await;
    let r = h
        .register_agent_raw(&admin, &TestAgent::new("late").registration_body())
        .await;
    r.expect_error(
        503,
        "temporarily_unavailable",
        "The authorization server store is unavailable; retry later",
    );
    let r = h.client_credentials(&h.admin.clone(), None).await;
    assert_eq!(r.status, 503, "{r:?}");
    r.assert_no_store();
}

#[tokio::test]
async fn rfc6749_5_2_error_descriptions_do_not_mangle_section_signs() {
    // RFC 6749 §5.2 restricts error_description to printable ASCII, and
    // `rfc6749_description` replaces anything else by '?'. The server's own
    // texts contain '§', so clients read e.g. "(RFC 6749 ?2.3)",
    // "(?4.2.3)", "(?6.2.3 step 4)", "(?9.4.1 allows ...)", "(?5.2.3)".
    // Expected: the server's own descriptions need no substitution (write
    // "Section 2.3" or drop the reference), so none contains '?'.
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let mut descriptions: Vec<(String, String)> = Vec::new();

    let r = h
        .post_form(
            "/intent/token",
            Some(&basic(&h.admin)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &h.admin.client_id),
                ("client_secret", &h.admin.client_secret),
            ],
        )
        .await;
    descriptions.push(("both client auth methods".into(), r.description()));

    let other = h.sibling(IssuerConfig {
        client_audience: "other.localhost".into(),
        ..h.config.clone()
    });
    let r = h
        .intent(
            &other.admin_token().await,
            &TestAgent::new("x").request(&["x"]),
        )
        .await;
    descriptions.push(("wrong audience".into(), r.description()));
    descriptions.push((
        "wrong audience challenge".into(),
        r.header("www-authenticate").unwrap_or_default().to_owned(),
    ));

    let agent = TestAgent::new("claiming-agent");
    let mut body = agent.registration_body();
    body["checksum"] = json!(TestAgent::new("other").checksum);
    let r = h.register_agent_raw(&admin, &body).await;
    descriptions.push(("claimed checksum".into(), r.description()));

    let mut body = TestAgent::new("key-agent").registration_body();
    body["public_key"] = Value::Object(p384_key().jwk);
    let r = h.register_agent_raw(&admin, &body).await;
    descriptions.push(("P-384 key".into(), r.description()));

    let mut body = TestAgent::new("deep-agent").registration_body();
    body["tools"] = json!([{"name": "d", "checksum_level": "deep"}]);
    let r = h.register_agent_raw(&admin, &body).await;
    descriptions.push(("deep tool without source".into(), r.description()));

    let bad: Vec<&(String, String)> = descriptions
        .iter()
        .filter(|(_, d)| d.contains('?'))
        .collect();
    assert!(bad.is_empty(), "mangled descriptions: {bad:#?}");
}
