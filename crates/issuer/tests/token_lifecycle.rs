//! Token and agent lifecycle against the real router (issue 13): token
//! records, RFC 7009 revocation, RFC 7662 introspection, Token Status Lists
//! (draft-ietf-oauth-status-list), revocation of agents and registrations
//! through three-level delegation chains (§9.3.2), and the §5.6 lifecycle
//! view. Status list tokens are checked with the `jsonwebtoken` crate and a
//! decoder written here (base64 + zlib + bit extraction), not the issuer's
//! codec.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::Read as _;

use ajwt_issuer::service::{ClientCredentials, SCOPE_ADMIN, SCOPE_INTROSPECT};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const WF: &str = "auto-patch-workflow-v1";
const S: &str = "supervisor-agent";
const P: &str = "patch-planner";
const V: &str = "vulnerability-patcher-v1";

/// An issuer with an admin (register + admin), a token-requesting client
/// (`shim`) and an introspecting client (a resource server).
struct World {
    h: Harness,
    /// `register:intent admin:intent introspect:intent` client token.
    admin: String,
    shim: ClientCredentials,
    shim_token: String,
    rs: ClientCredentials,
}

async fn world_with(config: ajwt_issuer::IssuerConfig) -> World {
    let h = Harness::with_config(config).await;
    let admin_creds = h
        .issuer
        .create_client(
            vec![
                REGISTER.into(),
                GENERATE.into(),
                SCOPE_ADMIN.into(),
                SCOPE_INTROSPECT.into(),
            ],
            None,
        )
        .await
        .unwrap();
    let admin = h.client_token(&admin_creds, None).await;
    let shim = h
        .issuer
        .create_client(vec![GENERATE.into()], None)
        .await
        .unwrap();
    let shim_token = h.client_token(&shim, None).await;
    let rs = h
        .issuer
        .create_client(vec![SCOPE_INTROSPECT.into()], None)
        .await
        .unwrap();
    World {
        h,
        admin,
        shim,
        shim_token,
        rs,
    }
}

async fn world() -> World {
    world_with(test_config()).await
}

impl World {
    async fn register(&self, agent: &TestAgent) -> String {
        let mut body = agent.registration_body();
        body["allowed_scopes"] = json!(["manifest:read", "repo:write", "vulnerability:read"]);
        let r = self.h.register_agent_raw(&self.admin, &body).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json["registration_id"].as_str().unwrap().to_owned()
    }

    async fn token(&self, request: &Value) -> String {
        let r = self.h.intent(&self.shim_token, request).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json["access_token"].as_str().unwrap().to_owned()
    }

    async fn introspect(&self, token: &str) -> Resp {
        self.h
            .post_form(
                "/intent/introspect",
                Some(&basic(&self.rs)),
                &[("token", token)],
            )
            .await
    }

    async fn active(&self, token: &str) -> bool {
        let r = self.introspect(token).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.assert_no_store();
        r.json["active"].as_bool().unwrap()
    }

    async fn revoke(&self, creds: &ClientCredentials, pairs: &[(&str, &str)]) -> Resp {
        self.h
            .post_form("/intent/revoke", Some(&basic(creds)), pairs)
            .await
    }

    /// Fetches the status list named by `token`'s `status` claim, checks it
    /// independently and returns (its claims, the status of `token`).
    async fn status_of(&self, token: &str) -> (Value, u8) {
        let claims = decode_unverified(token).1;
        let uri = claims["status"]["status_list"]["uri"].as_str().unwrap();
        let idx = claims["status"]["status_list"]["idx"].as_u64().unwrap();
        let path = uri.strip_prefix(ISSUER).unwrap();
        let r = self.h.get(path).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/statuslist+jwt"));
        let jwt = std::str::from_utf8(&r.bytes).unwrap();
        let list = verify_status_list_token(jwt, &self.h.jwks().await);
        assert_eq!(list["sub"], uri, "sub is the referenced uri (TSL §5.1)");
        let max_age: u64 = r
            .header("cache-control")
            .unwrap()
            .strip_prefix("public, max-age=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(max_age <= list["ttl"].as_u64().unwrap() && max_age > 0);
        let status = independent_status(&list["status_list"], idx);
        (list, status)
    }
}

/// Verifies a status list token with `jsonwebtoken` against the JWKS
/// (ES256): header `typ` `statuslist+jwt`, `iss`, `exp`, `iat`.
fn verify_status_list_token(jwt: &str, jwks: &Value) -> Value {
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("statuslist+jwt"));
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[ISSUER]);
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .unwrap_or_else(|e| panic!("jsonwebtoken refused the status list token: {e}"))
        .claims
}

/// TSL §4.1 by hand: base64url, zlib (flate2 directly), bit `idx % 8` of
/// byte `idx / 8`, least significant first.
fn independent_status(list: &Value, idx: u64) -> u8 {
    assert_eq!(list["bits"], 1);
    let compressed = URL_SAFE_NO_PAD
        .decode(list["lst"].as_str().unwrap())
        .unwrap();
    let mut bytes = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .read_to_end(&mut bytes)
        .unwrap();
    (bytes[(idx / 8) as usize] >> (idx % 8)) & 1
}

fn with_parent(mut request: Value, parent: &str) -> Value {
    request["parent_token"] = json!(parent);
    request
}

/// The §6.6 chain supervisor → planner → patcher; returns the three tokens.
async fn three_level_chain(w: &World) -> (TestAgent, TestAgent, TestAgent, [String; 3]) {
    let s = TestAgent::with_prompt(S, "You orchestrate vulnerability patching.");
    let p = TestAgent::with_prompt(P, "You plan dependency patches.");
    let v = TestAgent::with_prompt(V, "You apply security patches to dependencies.");
    for a in [&s, &p, &v] {
        w.register(a).await;
    }
    let r =
        w.h.register_workflow(&w.admin, &auto_patch_workflow(WF, S))
            .await;
    assert_eq!(r.status, 200, "{r:?}");
    let t1 = w
        .token(&s.step_request(
            WF,
            STEP1,
            &[],
            &[],
            &["manifest:read", "repo:write", "vulnerability:read"],
        ))
        .await;
    let t2 = w
        .token(&with_parent(
            p.step_request(
                WF,
                STEP2,
                &[S],
                &[STEP1],
                &["repo:write", "vulnerability:read"],
            ),
            &t1,
        ))
        .await;
    let t3 = w
        .token(&with_parent(
            v.step_request(WF, STEP4, &[S, P], &[STEP1, STEP2, STEP3], &["repo:write"]),
            &t2,
        ))
        .await;
    (s, p, v, [t1, t2, t3])
}

/// RFC 8414 §2: both endpoints and their auth methods are advertised.
#[tokio::test]
async fn rfc8414_metadata_advertises_revocation_and_introspection() {
    let h = Harness::new().await;
    let m = h.get("/.well-known/oauth-authorization-server").await.json;
    assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/intent/revoke"));
    assert_eq!(
        m["introspection_endpoint"],
        format!("{ISSUER}/intent/introspect")
    );
    for k in [
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        assert_eq!(m[k], json!(["client_secret_basic", "client_secret_post"]));
    }
    assert_eq!(m["ajwt_introspection_scope"], SCOPE_INTROSPECT);
}

/// RFC 7662 §2.2: an issued token is active with the claims a resource
/// server needs; RFC 7009 §2.1 revocation by the requesting client makes
/// it inactive and sets its status list bit (TSL §7.1 INVALID).
#[tokio::test]
async fn rfc7662_rfc7009_revoked_token_becomes_inactive_and_its_status_bit_is_set() {
    let w = world().await;
    let agent = TestAgent::new("agent-one");
    let reg = w.register(&agent).await;
    let token = w.token(&agent.request(&["repo:write"])).await;
    let claims = decode_unverified(&token).1;

    let r = w.introspect(&token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["active"], true);
    assert_eq!(r.json["sub"], "agent-one");
    assert_eq!(r.json["jti"], claims["jti"]);
    assert_eq!(r.json["scope"], "repo:write");
    assert_eq!(r.json["aud"], API_AUD);
    assert_eq!(r.json["iss"], ISSUER);
    assert_eq!(r.json["exp"], claims["exp"]);
    assert_eq!(r.json["client_id"], w.shim.client_id);
    assert_eq!(r.json["agent_proof"]["registration_id"], reg);
    assert_eq!(r.json["cnf"], claims["cnf"]);
    assert_eq!(r.json["status"], claims["status"]);
    // Exactly the token's claims plus `active` and `client_id` (I-80).
    let mut expected = claims.clone();
    expected["active"] = json!(true);
    expected["client_id"] = json!(w.shim.client_id);
    assert_eq!(r.json, expected);
    let (list, status) = w.status_of(&token).await;
    assert_eq!(status, 0, "VALID before revocation");
    assert_eq!(list["ttl"], 60);
    assert_eq!(list["exp"], list["iat"].as_i64().unwrap() + 120);

    // client_secret_post this time (RFC 7009 §2.1, RFC 6749 §2.3.1).
    let r =
        w.h.post_form(
            "/intent/revoke",
            None,
            &[
                ("token", &token),
                ("token_type_hint", "access_token"),
                ("client_id", &w.shim.client_id),
                ("client_secret", &w.shim.client_secret),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.bytes.is_empty());
    r.assert_no_store();
    assert!(!w.active(&token).await);
    assert_eq!(w.introspect(&token).await.json, json!({"active": false}));
    assert_eq!(w.status_of(&token).await.1, 1, "INVALID after revocation");
    // Idempotent (RFC 7009 §2.2).
    assert_eq!(w.revoke(&w.shim, &[("token", &token)]).await.status, 200);
}

/// RFC 7009 §2.2 / §2.2.1 and I-81: invalid and unknown tokens are 200,
/// a missing token 400, bad client credentials 401, another client's token
/// `unauthorized_client`, a client access token `unsupported_token_type`;
/// any `token_type_hint` is accepted.
#[tokio::test]
async fn rfc7009_i81_answers_for_every_kind_of_token() {
    let w = world().await;
    let agent = TestAgent::new("agent-two");
    w.register(&agent).await;
    let token = w.token(&agent.request(&["repo:write"])).await;

    for garbage in ["not-a-token", "a.b.c", &tamper_signature(&token)] {
        let r = w.revoke(&w.shim, &[("token", garbage)]).await;
        assert_eq!(r.status, 200, "{garbage}: {r:?}");
    }
    let r = w.revoke(&w.shim, &[]).await;
    r.expect_error(400, "invalid_request", "Missing required parameter: token");
    let r = w
        .revoke(&w.shim, &[("token", &token), ("token", &token)])
        .await;
    r.expect_error(400, "invalid_request", "Duplicate parameter: token");
    let wrong = ClientCredentials {
        client_id: w.shim.client_id.clone(),
        client_secret: "wrong".into(),
    };
    let r = w.revoke(&wrong, &[("token", &token)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"], "invalid_client");
    let r =
        w.h.post("/intent/revoke", None, Some("application/json"), "{}")
            .await;
    assert_eq!(r.status, 415);

    // Another client may not revoke it (I-81) ...
    let other =
        w.h.issuer
            .create_client(vec![GENERATE.into()], None)
            .await
            .unwrap();
    let r = w.revoke(&other, &[("token", &token)]).await;
    r.expect_error(
        400,
        "unauthorized_client",
        "The token was not issued to this client",
    );
    assert!(w.active(&token).await);
    // ... a client access token is not revocable ...
    let r = w.revoke(&w.shim, &[("token", &w.shim_token)]).await;
    assert_eq!(r.json["error"], "unsupported_token_type");
    // ... and an unknown hint is ignored (RFC 7009 §2.1), by bearer auth.
    let r =
        w.h.post_form(
            "/intent/revoke",
            Some(&format!("Bearer {}", w.shim_token)),
            &[("token", &token), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!w.active(&token).await);
}

/// RFC 7662 §2.1/§2.2 and I-80: the dedicated scope is required; expired,
/// unknown, foreign and garbage tokens are `active: false`.
#[tokio::test]
async fn rfc7662_i80_scope_required_and_inactive_answers() {
    let w = world().await;
    let agent = TestAgent::new("agent-three");
    w.register(&agent).await;
    let token = w.token(&agent.request(&["repo:write"])).await;

    let r =
        w.h.post_form(
            "/intent/introspect",
            Some(&basic(&w.shim)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json["error"], "insufficient_scope");
    let r =
        w.h.post_form("/intent/introspect", None, &[("token", &token)])
            .await;
    assert_eq!(r.status, 401);
    let r =
        w.h.post_form("/intent/introspect", Some(&basic(&w.rs)), &[])
            .await;
    assert_eq!(r.status, 400);

    for t in [
        "garbage",
        &tamper_signature(&token),
        &w.shim_token,
        &tamper_payload(&token, |c| c["jti"] = json!("unknown")),
    ] {
        assert!(!w.active(t).await, "{t}");
    }
    // A token of another issuer with the same keys is not ours.
    let other = w.h.sibling(ajwt_issuer::IssuerConfig {
        issuer: "https://other.example.com".into(),
        ..test_config()
    });
    let foreign = other
        .intent(&w.shim_token, &agent.request(&["repo:write"]))
        .await;
    if foreign.status == 200 {
        let t = foreign.json["access_token"].as_str().unwrap();
        assert!(!w.active(t).await);
    }
    // Bearer authentication with the scope works too.
    let rs_token = w.h.client_token(&w.rs, None).await;
    let r =
        w.h.post_form(
            "/intent/introspect",
            Some(&format!("Bearer {rs_token}")),
            &[("token", &token)],
        )
        .await;
    assert_eq!(r.json["active"], true);
    // Expired: inactive (RFC 7662 §2.2).
    w.h.advance(301);
    assert!(!w.active(&token).await);
}

/// §9.3.2 "Revoke all tokens in a delegation chain if a parent agent is
/// compromised": revoking the planner (middle of a three-level chain)
/// revokes its token and the patcher's, not the supervisor's; the status
/// list says the same; the revoked agent then gets `unknown_agent` (I-85).
#[tokio::test]
async fn s9_3_2_revoking_an_agent_revokes_every_token_whose_chain_contains_it() {
    let w = world().await;
    let (_s, p, _v, [t1, t2, t3]) = three_level_chain(&w).await;
    for t in [&t1, &t2, &t3] {
        assert!(w.active(t).await);
    }
    let r =
        w.h.post_json(
            "/intent/admin/revoke-agent",
            Some(&w.admin),
            &json!({"agent_id": P}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let first = r.json.clone();
    assert!(
        w.active(&t1).await,
        "the supervisor is upstream: unaffected"
    );
    assert!(!w.active(&t2).await, "the revoked agent's token");
    assert!(!w.active(&t3).await, "a token whose chain contains it");
    assert_eq!(w.status_of(&t1).await.1, 0);
    assert_eq!(w.status_of(&t2).await.1, 1);
    assert_eq!(w.status_of(&t3).await.1, 1);

    // I-85: a revoked agent asking for a token gets unknown_agent (401).
    let r = w.h.intent(&w.shim_token, &p.request(&["repo:write"])).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["error"], "unknown_agent");
    // Idempotent (§5.6.1).
    let again =
        w.h.post_json(
            "/intent/admin/revoke-agent",
            Some(&w.admin),
            &json!({"agent_id": P}),
        )
        .await;
    assert_eq!((again.status, again.json), (200, first));
}

/// I-82: revoking a token (RFC 7009) revokes the tokens derived from it
/// through `parent_token`, and a revoked parent cannot be delegated from.
#[tokio::test]
async fn s9_3_2_i82_revoking_a_parent_token_revokes_its_descendants() {
    let w = world().await;
    let (s, p, _v, [t1, t2, t3]) = three_level_chain(&w).await;
    let r = w.revoke(&w.shim, &[("token", &t2)]).await;
    assert_eq!(r.status, 200);
    assert!(w.active(&t1).await);
    assert!(!w.active(&t2).await);
    assert!(!w.active(&t3).await);
    // A new delegation from the revoked planner token is refused.
    let v = TestAgent::with_prompt(V, "You apply security patches to dependencies.");
    let r =
        w.h.intent(
            &w.shim_token,
            &with_parent(
                v.step_request(WF, STEP4, &[S, P], &[STEP1, STEP2, STEP3], &["repo:write"]),
                &t2,
            ),
        )
        .await;
    r.expect_error(
        400,
        "invalid_request",
        "Invalid parameter: parent_token has been revoked (Section 9.3.2)",
    );
    let _ = (s, p);
}

/// §5.6.1 and §9.3.2 for one registration: revoking v1 revokes the token
/// issued under v1 and the chains containing v1, not the v2 token; the
/// admin call is idempotent; an unknown id is 400; the hook needs
/// `admin:intent`.
#[tokio::test]
async fn s5_6_1_revoking_one_registration_revokes_its_tokens_and_is_idempotent() {
    let w = world().await;
    let a1 = TestAgent::with_prompt("agent-four", "first prompt");
    let reg1 = w.register(&a1).await;
    let t1 = w.token(&a1.request(&["repo:write"])).await;
    w.h.advance(1);
    let mut a2 = TestAgent::with_prompt("agent-four", "second prompt");
    a2.key = a1.key.clone();
    let reg2 = w.register(&a2).await;
    assert_ne!(reg1, reg2);
    let t2 = w.token(&a2.request(&["repo:write"])).await;

    let body = json!({"registration_id": reg1});
    let r =
        w.h.post_json("/intent/admin/revoke-registration", Some(&w.admin), &body)
            .await;
    r.expect(
        200,
        json!({"registration_id": reg1, "agent_id": "agent-four", "revoked": true}),
    );
    r.assert_no_store();
    assert!(!w.active(&t1).await);
    assert!(w.active(&t2).await, "the other registration's token stays");
    let again =
        w.h.post_json("/intent/admin/revoke-registration", Some(&w.admin), &body)
            .await;
    assert_eq!((again.status, again.json.clone()), (200, r.json.clone()));
    let r =
        w.h.post_json(
            "/intent/admin/revoke-registration",
            Some(&w.admin),
            &json!({"registration_id": "reg_nobody_1"}),
        )
        .await;
    r.expect_error(400, "invalid_request", "Unknown registration_id");
    let r =
        w.h.post_json(
            "/intent/admin/revoke-registration",
            Some(&w.shim_token),
            &body,
        )
        .await;
    assert_eq!(r.status, 403);
    // The agent lives on with v2.
    let view =
        w.h.send(
            axum::http::Request::get("/intent/agents/agent-four")
                .header("authorization", format!("Bearer {}", w.admin))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(view.json["state"], "VERIFIED");
    assert_eq!(view.json["registrations"][0]["revoked"], true);
    assert_eq!(view.json["registrations"][1]["revoked"], false);
}

async fn lifecycle(w: &World, token: &str, agent: &str) -> Resp {
    w.h.send(
        axum::http::Request::get(format!("/intent/agents/{agent}"))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
}

/// §5.6.1/§5.6.2 through the API (I-86): REGISTERED → VERIFIED (a token)
/// → UPDATED (another checksum presented) → REGISTERED (re-registered) →
/// REVOKED; the specification only with `admin:intent` (T12, I-87).
#[tokio::test]
async fn s5_6_2_i86_i87_lifecycle_states_and_specification_only_for_admins() {
    let w = world().await;
    let register_only = w.h.token_with_scopes(&[REGISTER]).await;
    let a = TestAgent::with_prompt("agent-five", "v1 prompt");
    let reg1 = w.register(&a).await;
    let view = lifecycle(&w, &register_only, "agent-five").await;
    assert_eq!(view.status, 200, "{view:?}");
    view.assert_no_store();
    assert_eq!(view.json["state"], "REGISTERED");
    assert_eq!(view.json["latest_version"], 1);
    assert_eq!(view.json["registrations"][0]["registration_id"], reg1);
    assert_eq!(view.json["registrations"][0]["agent_checksum"], a.checksum);
    assert!(view.json["registrations"][0].get("specification").is_none());
    assert!(
        !view.text_contains("v1 prompt"),
        "T12: no prompt without admin"
    );

    w.token(&a.request(&["repo:write"])).await;
    let view = lifecycle(&w, &register_only, "agent-five").await;
    assert_eq!(view.json["state"], "VERIFIED");
    assert_eq!(
        view.json["registrations"][0]["first_token_at"],
        json!(w.h.now())
    );

    w.h.advance(1);
    let mut changed = a.request(&["repo:write"]);
    changed["computed_checksum"] =
        json!(TestAgent::with_prompt("agent-five", "v2 prompt").checksum);
    let r = w.h.intent(&w.shim_token, &changed).await;
    assert_eq!(r.json["error"], "agent_checksum_mismatch");
    assert_eq!(
        lifecycle(&w, &register_only, "agent-five").await.json["state"],
        "UPDATED"
    );

    w.h.advance(1);
    let mut a2 = TestAgent::with_prompt("agent-five", "v2 prompt");
    a2.key = a.key.clone();
    w.register(&a2).await;
    let view = lifecycle(&w, &w.admin, "agent-five").await;
    assert_eq!(view.json["state"], "REGISTERED");
    assert_eq!(view.json["latest_version"], 2);
    assert!(
        view.json["registrations"][1]["specification"].is_object(),
        "{view:?}"
    );
    assert!(
        view.text_contains("v2 prompt"),
        "admins see the prompt (T12)"
    );

    w.h.post_json(
        "/intent/admin/revoke-agent",
        Some(&w.admin),
        &json!({"agent_id": "agent-five"}),
    )
    .await;
    let view = lifecycle(&w, &register_only, "agent-five").await;
    assert_eq!(view.json["state"], "REVOKED");
    assert_eq!(
        view.json["registrations"][1]["revoked_at"],
        json!(w.h.now())
    );

    assert_eq!(lifecycle(&w, &register_only, "nobody").await.status, 404);
    let generate_only = lifecycle(&w, &w.shim_token, "agent-five").await;
    assert_eq!(generate_only.status, 403);
    let r = w.h.get("/intent/agents/agent-five").await;
    assert_eq!(r.status, 401);
}

trait TextContains {
    fn text_contains(&self, needle: &str) -> bool;
}

impl TextContains for Resp {
    fn text_contains(&self, needle: &str) -> bool {
        String::from_utf8_lossy(&self.bytes).contains(needle)
    }
}

/// TSL privacy considerations (I-83): indices do not follow issuance
/// order; a full list rolls over to a new list (a new URI); every index of
/// a list is used once.
#[tokio::test]
async fn i83_status_indices_are_random_and_lists_roll_over() {
    let mut config = test_config();
    config.tokens.status_list_size = 16;
    let w = world_with(config).await;
    let agent = TestAgent::new("agent-six");
    w.register(&agent).await;
    let mut by_list: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for _ in 0..20 {
        let t = w.token(&agent.request(&["repo:write"])).await;
        let c = decode_unverified(&t).1;
        let sl = &c["status"]["status_list"];
        by_list
            .entry(sl["uri"].as_str().unwrap().to_owned())
            .or_default()
            .push(sl["idx"].as_u64().unwrap());
    }
    assert_eq!(by_list.len(), 2, "{by_list:?}");
    let first = by_list
        .get(&format!("{ISSUER}/intent/status-lists/1"))
        .unwrap();
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..16).collect::<Vec<u64>>(), "each index once");
    assert_ne!(first, &sorted, "not in issuance order (1/16! by chance)");
    assert_eq!(by_list[&format!("{ISSUER}/intent/status-lists/2")].len(), 4);
    // Unknown and malformed list ids are 404.
    for path in [
        "/intent/status-lists/99",
        "/intent/status-lists/x",
        "/intent/status-lists/-1",
    ] {
        assert_eq!(w.h.get(path).await.status, 404, "{path}");
    }
}

/// I-84: the signed list is reused within its ttl (same bytes, max-age
/// counting down) and re-signed at once after a revocation.
#[tokio::test]
async fn i84_status_list_token_cached_within_ttl_and_refreshed_on_revocation() {
    let w = world().await;
    let agent = TestAgent::new("agent-seven");
    w.register(&agent).await;
    let token = w.token(&agent.request(&["repo:write"])).await;
    let path = decode_unverified(&token).1["status"]["status_list"]["uri"]
        .as_str()
        .unwrap()
        .strip_prefix(ISSUER)
        .unwrap()
        .to_owned();
    let first = w.h.get(&path).await;
    w.h.advance(10);
    let second = w.h.get(&path).await;
    assert_eq!(first.bytes, second.bytes);
    assert_eq!(first.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(second.header("cache-control"), Some("public, max-age=50"));
    w.revoke(&w.shim, &[("token", &token)]).await;
    let third = w.h.get(&path).await;
    assert_ne!(third.bytes, second.bytes);
    assert_eq!(w.status_of(&token).await.1, 1);
}

/// Token records are pruned after exp + leeway (issue 13; bounded store).
#[tokio::test]
async fn token_records_are_pruned_after_expiry_plus_leeway() {
    let w = world().await;
    let agent = TestAgent::new("agent-eight");
    w.register(&agent).await;
    let old = w.token(&agent.request(&["repo:write"])).await;
    let jti = decode_unverified(&old).1["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(w.h.store.token_record(&jti).await.unwrap().is_some());
    // Before exp + leeway (300 + 300): kept.
    w.h.advance(590);
    w.token(&agent.request(&["repo:write"])).await;
    assert!(w.h.store.token_record(&jti).await.unwrap().is_some());
    w.h.advance(70);
    w.token(&agent.request(&["repo:write"])).await;
    assert!(w.h.store.token_record(&jti).await.unwrap().is_none());
}

/// I-80: an `admin:intent` client made before `introspect:intent` existed
/// (so without it) can create a resource-server client holding it; a
/// `register:intent` client cannot.
#[tokio::test]
async fn i80_admins_can_create_introspection_clients() {
    let h = Harness::new().await;
    let old_admin = h
        .token_with_scopes(&[REGISTER, GENERATE, SCOPE_ADMIN])
        .await;
    let body = json!({"allowed_scopes": [SCOPE_INTROSPECT], "description": "resource server"});
    let r = h
        .post_json("/intent/register/client", Some(&old_admin), &body)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["allowed_scopes"], json!([SCOPE_INTROSPECT]));
    let register_only = h.token_with_scopes(&[REGISTER]).await;
    let r = h
        .post_json("/intent/register/client", Some(&register_only), &body)
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json["error"], "invalid_scope");
}

/// I-82, §5.6.1, §9.3.2: `Store::revoke_agent` alone (as if the process died
/// right after it, before anything else of the admin call ran) has already
/// revoked the agent's tokens and the tokens of every chain containing it:
/// their status bits are set and introspection says inactive.
#[tokio::test]
async fn i82_revoking_an_agent_in_the_store_revokes_its_tokens_in_the_same_transaction() {
    let w = world().await;
    let (_s, _p, _v, [t1, t2, t3]) = three_level_chain(&w).await;
    assert_eq!(w.h.store.revoke_agent(P).await.unwrap(), 1);
    let jti = |t: &str| decode_unverified(t).1["jti"].as_str().unwrap().to_owned();
    let revoked = |t: String| {
        let store = w.h.store.clone();
        async move { store.token_record(&jti(&t)).await.unwrap().unwrap().revoked }
    };
    assert!(
        !revoked(t1.clone()).await,
        "the supervisor's own token stays valid"
    );
    assert!(revoked(t2.clone()).await, "the planner's token");
    assert!(
        revoked(t3.clone()).await,
        "a token whose chain contains the planner"
    );
    assert_eq!(
        w.status_of(&t3).await.1,
        1,
        "status bit of the chained token"
    );
    assert!(!w.active(&t2).await);
    assert!(w.active(&t1).await);
}
