//! Bearer protection of the token endpoint (§4.2.3) and registration (§9.1.3).

use super::*;

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
