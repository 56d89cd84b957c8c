//! I-145: the cache of verified client access tokens (§4.2.3). A token
//! verified once is not verified again while it is unexpired and the key
//! that verified it is published; it is refused after its `exp` and after
//! that key leaves the ring, a different token is never a hit, the number of
//! cached tokens stays bounded, and client access tokens stay unrevocable
//! (RFC 7009 §2.2.1, I-81). The token's `exp` is read here with base64 and
//! serde_json, not with the issuer's code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use ajwt_issuer::service::{ApiError, Issuer, KEY_MAINTENANCE_INTERVAL};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{basic, Harness, GENERATE, REGISTER};
use serde_json::Value;

/// A claim of a compact JWS, decoded independently.
fn claim(token: &str, name: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims[name].clone()
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn is_invalid_token(r: &Result<ajwt_issuer::service::ClientContext, ApiError>) -> bool {
    matches!(r, Err(ApiError::InvalidToken(_)))
}

#[tokio::test]
async fn i145_s4_2_3_cached_client_token_is_refused_after_its_exp() {
    let h = Harness::new().await;
    let token = h.admin_token().await;
    let exp = claim(&token, "exp").as_i64().unwrap();
    // First use verifies and caches, second use is a hit; both succeed.
    for _ in 0..2 {
        let ctx = h.issuer.authorize(Some(&bearer(&token)), GENERATE).unwrap();
        assert_eq!(ctx.client_id, h.admin.client_id);
    }
    assert_eq!(h.issuer.cached_client_tokens(), 1);
    // The last second of its life (RFC 7519 §4.1.4: valid before exp).
    h.advance(exp - h.now() - 1);
    assert!(h.issuer.authorize(Some(&bearer(&token)), GENERATE).is_ok());
    h.advance(1);
    let r = h.issuer.authorize(Some(&bearer(&token)), GENERATE);
    assert!(is_invalid_token(&r), "{r:?}");
    // ... also over HTTP (401, RFC 6750 §3.1).
    let resp = h
        .post_json(
            "/intent/register/workflow",
            Some(&token),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(resp.status, 401, "{resp:?}");
}

#[tokio::test]
async fn i145_cached_client_token_is_refused_after_its_key_leaves_the_ring() {
    let h = Harness::new().await;
    let token = h.admin_token().await;
    let exp = claim(&token, "exp").as_i64().unwrap();
    let old_kid = kid_of(&token);
    let ops = h
        .issuer
        .create_client(vec!["admin:intent".to_owned()], None)
        .await
        .unwrap();
    let ops_token = h.client_token(&ops, None).await;
    assert!(h.issuer.authorize(Some(&bearer(&token)), REGISTER).is_ok());
    // I-70: beyond MAX_PREVIOUS_KEYS older keys the oldest is withdrawn
    // early, long before the token's exp.
    let step = i64::try_from(KEY_MAINTENANCE_INTERVAL).unwrap() + 2;
    for _ in 0..12 {
        if !h.issuer.key_ring().publishes(&old_kid) {
            break;
        }
        // The operator's own token may be signed by a key withdrawn later;
        // a fresh one each round.
        let ops_token = if h
            .issuer
            .authorize(Some(&bearer(&ops_token)), "admin:intent")
            .is_ok()
        {
            ops_token.clone()
        } else {
            h.client_token(&ops, None).await
        };
        let by = h
            .issuer
            .authorize(Some(&bearer(&ops_token)), "admin:intent")
            .unwrap();
        h.issuer.rotate_keys(b"{}", &by).await.unwrap();
        h.advance(step);
        let _ = h.issuer.key_ring();
    }
    assert!(!h.issuer.key_ring().publishes(&old_kid), "key withdrawn");
    assert!(h.now() < exp, "the token itself is still unexpired");
    let r = h.issuer.authorize(Some(&bearer(&token)), REGISTER);
    assert!(is_invalid_token(&r), "{r:?}");
    // A fresh token of the same client, signed by the current key, works.
    let fresh = h.admin_token().await;
    assert!(h.issuer.authorize(Some(&bearer(&fresh)), REGISTER).is_ok());
}

#[tokio::test]
async fn i145_rfc7009_client_tokens_are_not_revocable_so_the_cached_token_stays_valid() {
    let h = Harness::new().await;
    let token = h.admin_token().await;
    assert!(h.issuer.authorize(Some(&bearer(&token)), GENERATE).is_ok());
    let r = h
        .post_form(
            "/intent/revoke",
            Some(&basic(&h.admin)),
            &[("token", &token)],
        )
        .await;
    assert_eq!(r.json["error"], "unsupported_token_type", "{r:?}");
    assert!(h.issuer.authorize(Some(&bearer(&token)), GENERATE).is_ok());
}

#[tokio::test]
async fn i145_a_different_token_is_never_a_hit() {
    let h = Harness::new().await;
    let token = h.admin_token().await;
    assert!(h.issuer.authorize(Some(&bearer(&token)), GENERATE).is_ok());
    // Same header and payload, another signature (one character of the
    // signature's middle changed; still canonical base64url).
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    let forged = format!("{head}.{}", sig.into_iter().collect::<String>());
    for _ in 0..2 {
        let r = h.issuer.authorize(Some(&bearer(&forged)), GENERATE);
        assert!(is_invalid_token(&r), "{r:?}");
    }
    // A longer token starting with the cached one is not a hit either.
    let longer = format!("{token}A");
    assert!(is_invalid_token(
        &h.issuer.authorize(Some(&bearer(&longer)), GENERATE)
    ));
    // Refused tokens are not cached.
    assert_eq!(h.issuer.cached_client_tokens(), 1);
    // The scope is still checked on a hit (§9.1.3).
    let r = h.issuer.authorize(Some(&bearer(&token)), "admin:intent");
    assert!(
        matches!(r, Err(ApiError::InsufficientScope { .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn i145_the_cache_bound_holds_under_many_distinct_tokens() {
    const BOUND: usize = 16;
    let h = Harness::new().await;
    let issuer = Arc::new(
        Issuer::new(
            h.config.clone(),
            h.store.clone(),
            h.issuer.key_ring(),
            Arc::new(h.clock.clone()),
        )
        .with_client_token_cache(BOUND),
    );
    let creds = issuer
        .create_client(vec![GENERATE.to_owned()], None)
        .await
        .unwrap();
    let params = vec![
        ("grant_type".to_owned(), "client_credentials".to_owned()),
        ("client_id".to_owned(), creds.client_id.clone()),
        ("client_secret".to_owned(), creds.client_secret.clone()),
    ];
    let mut tokens = Vec::new();
    for _ in 0..(4 * BOUND) {
        let t = issuer
            .client_credentials(&params, None, None)
            .await
            .unwrap()
            .access_token;
        let ctx = issuer.authorize(Some(&bearer(&t)), GENERATE).unwrap();
        assert_eq!(ctx.client_id, creds.client_id);
        assert!(issuer.cached_client_tokens() <= BOUND);
        tokens.push(t);
    }
    assert_eq!(issuer.cached_client_tokens(), BOUND);
    // An evicted token is verified again and still accepted.
    assert!(issuer
        .authorize(Some(&bearer(&tokens[0])), GENERATE)
        .is_ok());
    assert_eq!(issuer.cached_client_tokens(), BOUND);
}

/// A cache hit changes nothing observable but the time: every request is
/// still audited with the client (I-100, I-101) and counted (I-114).
#[tokio::test]
async fn i145_hits_keep_the_audit_trail_and_metrics_unchanged() {
    let h = Harness::new().await;
    let admin = h.admin_token().await;
    let agent = common::TestAgent::new("cache-agent");
    h.register(&admin, &agent).await;
    let before = h.store.audit_last(1).await.unwrap()[0].seq;
    for _ in 0..3 {
        let r = h.intent(&admin, &agent.request(&["repo:read"])).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let records = h.store.audit_records(before, 100).await.unwrap();
    let issued: Vec<_> = records
        .iter()
        .filter(|r| r.event == "token_issued")
        .collect();
    assert_eq!(issued.len(), 3);
    assert!(issued
        .iter()
        .all(|r| r.client_id.as_deref() == Some(h.admin.client_id.as_str())));
    let metrics = h.get("/metrics").await;
    let text = String::from_utf8(metrics.bytes.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("ajwt_tokens_issued_total{grant=\"agent_checksum\"}"))
        .unwrap();
    assert!(line.ends_with(" 3"), "{line}");
}
