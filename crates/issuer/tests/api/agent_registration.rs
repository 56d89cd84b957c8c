//! Agent registration (§5.4, §6.2).

use super::*;

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
        "../../../../examples/agents/vulnerability-patcher-v1.json"
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
        let expected = if i == 0 {
            format!("reg_fast-agent_{now}")
        } else {
            format!("reg_fast-agent_{}", now * 1_000_000 + i as i64)
        };
        assert_eq!(
            reg["registration_id"], expected,
            "the real second, then microseconds within it (I-70)"
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
            may_reactivate_revoked: false,
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
