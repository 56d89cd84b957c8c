//! Malformed HTTP, discovery, health.

use super::*;

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
