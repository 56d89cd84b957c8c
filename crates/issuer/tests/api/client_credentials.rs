//! client_credentials (RFC 6749 §4.4, RFC 9068).

use super::*;

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
