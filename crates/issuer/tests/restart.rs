//! Restart on the same data directory: `Issuer::open` creates the store, the
//! signing key and `admin-client.json` on first start; after the issuer is
//! dropped and its store closed, a second `Issuer::open` finds the admin
//! client (file unchanged), agents, workflows, clients and the signing key
//! intact, and tokens issued before the restart still verify against the new
//! JWKS (with the independent `jsonwebtoken` crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use ajwt_issuer::service::{ClientCredentials, ADMIN_CLIENT_FILE};
use ajwt_issuer::{Issuer, IssuerConfig};
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use common::*;
use serde_json::{json, Value};

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

async fn jwks(app: &Router) -> Value {
    send(
        app,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn restart_keeps_admin_client_agents_workflows_clients_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = IssuerConfig {
        data_dir: dir.path().join("ajwt-data"),
        issuer: ISSUER.to_owned(),
        ..IssuerConfig::default()
    };

    // ---- first start ------------------------------------------------------
    let (issuer, created) = Issuer::open(config.clone()).await.unwrap();
    let admin_file = created.expect("admin-client.json created on first start");
    assert_eq!(admin_file, config.data_dir.join(ADMIN_CLIENT_FILE));
    assert_eq!(mode(&admin_file), 0o600, "admin-client.json is 0600");
    let admin_bytes = std::fs::read(&admin_file).unwrap();
    let admin_json: Value = serde_json::from_slice(&admin_bytes).unwrap();
    assert_eq!(
        admin_json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["client_id", "client_secret"]
    );
    let admin: ClientCredentials = serde_json::from_value(admin_json).unwrap();
    // The keys are in the store (I-110), not in files.
    assert!(!config.data_dir.join("signing-keys").exists());
    assert_eq!(issuer.store().signing_keys().await.unwrap().len(), 1);

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
    let r = post_json(
        &app,
        "/intent/register/agent",
        &admin_token,
        &agent.registration_body(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let registration_id = r.json["registration_id"].as_str().unwrap().to_owned();

    let workflow = json!({
        "workflow_id": "persistent-workflow",
        "steps": {
            "analyze": {"agent_id": "persistent-agent"},
            "gate": {"approval_gate": true},
            "apply": {"requires_approval": true, "agent_id": "persistent-agent"}
        }
    });
    let r = post_json(&app, "/intent/register/workflow", &admin_token, &workflow).await;
    assert_eq!(r.status, 200, "{r:?}");

    let r = post_json(
        &app,
        "/intent/register/client",
        &admin_token,
        &json!({"allowed_scopes": [GENERATE]}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let shim = ClientCredentials {
        client_id: r.json["client_id"].as_str().unwrap().to_owned(),
        client_secret: r.json["client_secret"].as_str().unwrap().to_owned(),
    };
    let shim_token = client_token(&app, &shim).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let request = agent.step_request("persistent-workflow", "analyze", &[], &[], &["repo:read"]);
    let r = post_json(&app, "/intent/token", &shim_token, &request).await;
    assert_eq!(r.status, 200, "{r:?}");
    let old_intent_token = r.json["access_token"].as_str().unwrap().to_owned();
    let jwks_before = jwks(&app).await;
    let kid_before = jwks_before["keys"][0]["kid"].as_str().unwrap().to_owned();

    // ---- shutdown ---------------------------------------------------------
    issuer.store().close().await;
    drop(app);
    drop(issuer);

    // ---- second start -----------------------------------------------------
    let (issuer, created) = Issuer::open(config.clone()).await.unwrap();
    assert!(created.is_none(), "no new admin client on restart");
    assert_eq!(
        std::fs::read(&admin_file).unwrap(),
        admin_bytes,
        "admin-client.json unchanged"
    );
    let issuer = Arc::new(issuer);
    let app = ajwt_issuer::http::router(issuer.clone());

    // Same signing key.
    let jwks_after = jwks(&app).await;
    assert_eq!(jwks_after, jwks_before);
    assert_eq!(jwks_after["keys"][0]["kid"], kid_before.as_str());

    // Tokens from before the restart: verified independently against the
    // new JWKS, and still accepted by the new issuer.
    let (_, claims) = verify_independently(&old_intent_token, &jwks_after, ISSUER, &[API_AUD]);
    assert_eq!(claims["sub"], "persistent-agent");
    assert_eq!(
        claims["agent_proof"]["registration_id"],
        registration_id.as_str()
    );
    let r = post_json(&app, "/intent/token", &shim_token, &request).await;
    assert_eq!(r.status, 200, "old client token still accepted: {r:?}");

    // The admin client still works.
    let r = client_token(&app, &admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let admin_token = r.json["access_token"].as_str().unwrap().to_owned();

    // The other client is still there.
    let r = client_token(&app, &shim).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["scope"], GENERATE);
    let new_shim_token = r.json["access_token"].as_str().unwrap().to_owned();

    // The agent: same latest registration, its checksum still registered.
    let r = post_json(&app, "/intent/token", &new_shim_token, &request).await;
    assert_eq!(r.status, 200, "{r:?}");
    let (_, claims) = decode_unverified(r.json["access_token"].as_str().unwrap());
    assert_eq!(
        claims["agent_proof"]["registration_id"],
        registration_id.as_str()
    );
    assert_eq!(claims["cnf"]["jwk"], expected_cnf_jwk(&agent.key.jwk));
    let r = post_json(
        &app,
        "/intent/register/agent",
        &admin_token,
        &agent.registration_body(),
    )
    .await;
    r.expect(
        400,
        json!({
            "error": "duplicate_agent",
            "error_description": "Agent with identical checksum already exists",
            "existing_agent_id": "persistent-agent",
        }),
    );
    let updated = TestAgent::with_prompt("persistent-agent", "An updated prompt.");
    let r = post_json(
        &app,
        "/intent/register/agent",
        &admin_token,
        &updated.registration_body(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["version"], 2, "versions continue after restart");

    // The workflow: still registered (immutable) and still enforced.
    let r = post_json(&app, "/intent/register/workflow", &admin_token, &workflow).await;
    r.expect_error(
        400,
        "invalid_request",
        "Workflow 'persistent-workflow' already exists (workflows are immutable: register a new workflow_id)",
    );
    let r = post_json(
        &app,
        "/intent/token",
        &new_shim_token,
        &updated.step_request(
            "persistent-workflow",
            "apply",
            &[],
            &["analyze"],
            &["repo:read"],
        ),
    )
    .await;
    r.expect_step_denied(
        "Agent not authorized for workflow step. Required prerequisite steps not completed.",
        &["gate"],
    );
    let r = post_json(
        &app,
        "/intent/token",
        &new_shim_token,
        &updated.step_request(
            "persistent-workflow",
            "apply",
            &[],
            &["analyze", "gate"],
            &["repo:read"],
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");

    issuer.store().close().await;
}

/// A data directory of an issuer from before I-110 (key files, format 1):
/// the first start imports the keys into the store and deletes the files
/// (no plaintext private key left on disk); the imported key signs with
/// its kid, tokens it signed before still verify, and a restart keeps it.
#[tokio::test]
async fn i110_legacy_key_files_are_imported_into_the_store_and_deleted() {
    use ajwt_jose::{Alg, SigningKey};
    let dir = tempfile::tempdir().unwrap();
    let config = IssuerConfig {
        data_dir: dir.path().join("ajwt-data"),
        issuer: ISSUER.to_owned(),
        ..IssuerConfig::default()
    };
    let key_dir = config.data_dir.join("signing-keys");
    let retired_dir = config.data_dir.join("signing-keys-retired");
    std::fs::create_dir_all(&key_dir).unwrap();
    std::fs::create_dir_all(&retired_dir).unwrap();
    let (old, new) = (
        SigningKey::generate(Alg::Es256).unwrap(),
        SigningKey::generate(Alg::EdDsa).unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (key, alg, created_at) in [(&old, "ES256", now - 100), (&new, "EdDSA", now - 50)] {
        let doc = json!({
            "kid": key.thumbprint(), "alg": alg, "created_at": created_at,
            "private_key_pem": key.to_pkcs8_pem().unwrap(),
        });
        std::fs::write(
            key_dir.join(format!("{}.json", key.thumbprint())),
            doc.to_string(),
        )
        .unwrap();
    }
    // A crash of the old issuer's atomic write left a temporary file.
    std::fs::write(key_dir.join(".tmp-partial"), "-----BEGIN PRIVATE KEY-----").unwrap();
    std::fs::write(
        retired_dir.join("gone.json"),
        json!({"kid": "gone", "alg": "ES256", "state": "retired", "created_at": 10,
               "activates_at": 10, "retires_at": 900})
        .to_string(),
    )
    .unwrap();
    // A token the old issuer signed with its current key.
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), json!("EdDSA"));
    header.insert("kid".into(), json!(new.thumbprint()));
    header.insert("typ".into(), json!("at+jwt"));
    let old_token = new.sign_compact(&header, br#"{"sub":"x"}"#).unwrap();

    let (issuer, _) = Issuer::open(config.clone()).await.unwrap();
    assert!(!key_dir.exists() && !retired_dir.exists(), "files deleted");
    let ring = issuer.key_ring();
    assert_eq!(ring.current_kid(), new.thumbprint());
    assert_eq!(ring.kids(), [new.thumbprint(), old.thumbprint()]);
    assert_eq!(ring.verify(&old_token, "at+jwt").unwrap()["sub"], "x");
    let stored = issuer.store().signing_keys().await.unwrap();
    assert_eq!(stored.len(), 3, "two keys and the retired record");
    let gone = stored.iter().find(|k| k.kid == "gone").unwrap();
    assert_eq!(
        (gone.private_key_pem.as_deref(), gone.retired_at),
        (None, Some(900))
    );
    let described = ring.describe();
    assert_eq!(described[0].kid, "gone");
    let jwks_before = jwks(&ajwt_issuer::http::router(Arc::new(issuer))).await;

    // A restart reads the store: same keys, no files recreated.
    let (issuer, _) = Issuer::open(config.clone()).await.unwrap();
    assert_eq!(issuer.key_ring().current_kid(), new.thumbprint());
    let app = ajwt_issuer::http::router(Arc::new(issuer));
    assert_eq!(jwks(&app).await, jwks_before);
    assert!(!key_dir.exists());
}
