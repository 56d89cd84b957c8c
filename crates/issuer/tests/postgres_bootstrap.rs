//! Replicas starting together on one empty PostgreSQL database (issue 14,
//! I-68, I-116): `Issuer::open` selects the PostgreSQL store from
//! `database_url` (I-117), exactly one replica creates the bootstrap admin
//! client and keeps its `admin-client.json`; the other writes none (it
//! removes the file it prepared) and the one admin client works on both.
//! Skipped (with a message) without `AJWT_TEST_DATABASE_URL`, never in CI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_issuer::config::DatabaseUrl;
use ajwt_issuer::service::{ClientCredentials, ADMIN_CLIENT_FILE};
use ajwt_issuer::{Issuer, IssuerConfig};
use ajwt_test_kit::fresh_postgres_database;
use axum::body::Body;
use axum::http::Request;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i116_two_replicas_on_one_empty_database_create_one_admin_client() {
    let Some(db) = fresh_postgres_database("i116_two_replicas_bootstrap")
        .await
        .unwrap()
    else {
        return;
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // Replicas share one key-encryption key file (I-112): a replica with a
    // KEK of its own would refuse to start on the other's sealed key.
    let kek_file = dirs[0].path().join("kek.key");
    ajwt_issuer::kek::KekRing::load_or_create(&kek_file).unwrap();
    let config = |i: usize| IssuerConfig {
        data_dir: dirs[i].path().join("ajwt-data"),
        issuer: "https://idp.example".to_owned(),
        database_url: Some(DatabaseUrl::new(db.url())),
        kek_file: Some(kek_file.clone()),
        ..IssuerConfig::default()
    };
    let (one, two) = tokio::join!(Issuer::open(config(0)), Issuer::open(config(1)));
    let (one, created_one) = one.unwrap();
    let (two, created_two) = two.unwrap();
    assert_eq!(
        usize::from(created_one.is_some()) + usize::from(created_two.is_some()),
        1,
        "exactly one replica creates the admin client"
    );
    let (file, other) = match (&created_one, &created_two) {
        (Some(f), None) => (f.clone(), config(1).data_dir),
        (None, Some(f)) => (f.clone(), config(0).data_dir),
        _ => unreachable!(),
    };
    assert!(
        !other.join(ADMIN_CLIENT_FILE).exists(),
        "the other replica keeps no credentials the store does not know"
    );
    let creds: ClientCredentials = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(one.store().client_count().await.unwrap(), 1);
    assert!(two
        .store()
        .client(&creds.client_id)
        .await
        .unwrap()
        .is_some());

    // The one admin client authenticates on both replicas (shared clients).
    for issuer in [one, two] {
        let issuer = Arc::new(issuer);
        let app = ajwt_issuer::http::router(issuer.clone());
        let r = send(
            &app,
            Request::post("/intent/token")
                .header("authorization", basic(&creds))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        issuer.store().close().await;
    }
}
