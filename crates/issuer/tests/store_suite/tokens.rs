//! Token records, status lists and revocation cascades (§9.3.2, RFC 7009,
//! draft-ietf-oauth-status-list; I-82, I-83) on every backend.

use std::sync::Arc;

use ajwt_issuer::store::{ChainLink, NewTokenRecord, Store};

use crate::registry::registration;

pub fn token(jti: &str, agent: &str, reg: &str, exp: i64) -> NewTokenRecord {
    NewTokenRecord {
        jti: jti.to_owned(),
        agent_id: agent.to_owned(),
        registration_id: reg.to_owned(),
        client_id: "client-1".into(),
        iat: 1_700_000_000,
        exp,
        chain: Vec::new(),
        ancestors: Vec::new(),
    }
}

/// §9.3.2, I-82: records round-trip with their chain; revoking a token
/// revokes its descendants; revoking an agent revokes every token whose
/// chain contains it; the status list shows exactly the revoked indices.
pub async fn s9_3_2_token_records_status_lists_and_cascade(store: Arc<dyn Store>) {
    let p = store
        .register_agent(registration("parent", 30))
        .await
        .unwrap();
    let c = store
        .register_agent(registration("child", 31))
        .await
        .unwrap();
    let root = store
        .record_token(
            token("t-root", "parent", &p.registration_id, 2_000_000_000),
            16,
            3,
        )
        .await
        .unwrap();
    let mut delegated = token("t-child", "child", &c.registration_id, 2_000_000_000);
    delegated.chain = vec![ChainLink {
        agent_id: "parent".into(),
        registration_id: Some(p.registration_id.clone()),
    }];
    delegated.ancestors = vec!["t-root".into()];
    let child = store.record_token(delegated.clone(), 16, 3).await.unwrap();
    let other = store
        .record_token(
            token("t-other", "child", &c.registration_id, 2_000_000_000),
            16,
            3,
        )
        .await
        .unwrap();
    assert_eq!(root.list_id, child.list_id);
    let mut idx = vec![root.idx, child.idx, other.idx];
    idx.sort_unstable();
    idx.dedup();
    assert_eq!(idx.len(), 3, "distinct status indices");
    assert!(idx.iter().all(|i| *i < 16));

    let rec = store.token_record("t-child").await.unwrap().unwrap();
    assert_eq!(rec.token, delegated);
    assert_eq!(rec.status, child);
    assert!(!rec.revoked);
    assert!(store.token_record("t-none").await.unwrap().is_none());

    // Revoking the root revokes its descendant (I-82), not the other token.
    assert_eq!(store.revoke_token("t-root", 1).await.unwrap(), 2);
    assert_eq!(store.revoke_token("t-root", 1).await.unwrap(), 0);
    let list = store.status_list(root.list_id).await.unwrap().unwrap();
    assert_eq!(list.size, 16);
    let mut revoked = list.revoked.clone();
    revoked.sort_unstable();
    let mut expected = vec![root.idx, child.idx];
    expected.sort_unstable();
    assert_eq!(revoked, expected);
    assert!(store.status_list(9_999).await.unwrap().is_none());

    // Revoking the child agent revokes its remaining token (§5.6.1).
    store.revoke_agent("child").await.unwrap();
    assert!(
        store
            .token_record("t-other")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    // Lifecycle: the token times of the registration are recorded.
    let activity = store.registration_activity("parent").await.unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].first_token_at_ms, Some(1_700_000_000_000));
    store
        .record_checksum_mismatch("parent", &p.registration_id, 42)
        .await
        .unwrap();
    let activity = store.registration_activity("parent").await.unwrap();
    assert_eq!(activity[0].last_mismatch_at_ms, Some(42));
}

/// §9.3.2: revoking one registration revokes its tokens and every token
/// whose chain contains it, atomically; unknown registrations are `None`.
pub async fn s9_3_2_registration_revocation_cascades(store: Arc<dyn Store>) {
    let r1 = store.register_agent(registration("g", 40)).await.unwrap();
    let r2 = store.register_agent(registration("g", 41)).await.unwrap();
    let h = store.register_agent(registration("h", 42)).await.unwrap();
    store
        .record_token(token("g1", "g", &r1.registration_id, 2_000_000_000), 8, 0)
        .await
        .unwrap();
    store
        .record_token(token("g2", "g", &r2.registration_id, 2_000_000_000), 8, 0)
        .await
        .unwrap();
    let mut via = token("h1", "h", &h.registration_id, 2_000_000_000);
    via.chain = vec![ChainLink {
        agent_id: "g".into(),
        registration_id: Some(r1.registration_id.clone()),
    }];
    store.record_token(via, 8, 0).await.unwrap();
    let done = store
        .revoke_registration(&r1.registration_id, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.agent_id, "g");
    assert_eq!(done.tokens, 2);
    assert!(store.token_record("g1").await.unwrap().unwrap().revoked);
    assert!(store.token_record("h1").await.unwrap().unwrap().revoked);
    assert!(!store.token_record("g2").await.unwrap().unwrap().revoked);
    let regs = store.registrations("g").await.unwrap();
    assert_eq!(
        regs.iter().map(|r| r.revoked).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert!(store
        .revoke_registration("reg_none_1", 5)
        .await
        .unwrap()
        .is_none());
    // Tokens of an agent by itself (revoke_agent_tokens).
    assert_eq!(store.revoke_agent_tokens("g", 6).await.unwrap(), 1);
}

/// I-83: a full list rolls over to a new one; pruning deletes expired
/// records and full lists left without records.
pub async fn i83_prune_deletes_expired_records_and_full_lists(store: Arc<dyn Store>) {
    let r = store.register_agent(registration("p", 50)).await.unwrap();
    let mut lists = Vec::new();
    for i in 0..10 {
        let at = store
            .record_token(
                token(&format!("p{i}"), "p", &r.registration_id, 1_000 + i),
                8,
                u64::try_from(i).unwrap() * 7,
            )
            .await
            .unwrap();
        lists.push(at.list_id);
    }
    assert!(lists[..8].iter().all(|l| *l == lists[0]));
    assert!(lists[8..].iter().all(|l| *l != lists[0]));
    // Records with exp < 1_008 go: p0..p7, the whole first list.
    assert_eq!(store.prune_tokens(1_008).await.unwrap(), 8);
    assert!(store.status_list(lists[0]).await.unwrap().is_none());
    assert!(store.status_list(lists[9]).await.unwrap().is_some());
    assert!(store.token_record("p9").await.unwrap().is_some());
}
