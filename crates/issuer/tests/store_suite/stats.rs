//! Store sizes for `/metrics` (I-114) on every backend.

use std::sync::Arc;

use ajwt_issuer::store::Store;

use crate::registry::registration;

/// I-114: the counts follow what was stored; the pool is reported.
pub async fn i114_stats_count_everything(store: Arc<dyn Store>) {
    let empty = store.stats().await.unwrap();
    assert_eq!(
        (empty.agents, empty.registrations, empty.token_records),
        (0, 0, 0)
    );
    let a = store.register_agent(registration("m1", 70)).await.unwrap();
    store.register_agent(registration("m1", 71)).await.unwrap();
    store.register_agent(registration("m2", 72)).await.unwrap();
    store
        .insert_workflow(&crate::workflows::workflow("wf"))
        .await
        .unwrap();
    store
        .insert_client(&crate::clients::client("c"))
        .await
        .unwrap();
    for jti in ["j1", "j2"] {
        store
            .record_token(
                crate::tokens::token(jti, "m1", &a.registration_id, 2_000_000_000),
                8,
                1,
            )
            .await
            .unwrap();
    }
    let s = store.stats().await.unwrap();
    assert_eq!(
        (
            s.agents,
            s.registrations,
            s.workflows,
            s.clients,
            s.token_records,
            s.status_lists,
            s.statuses_used
        ),
        (2, 3, 1, 1, 2, 1, 2)
    );
    assert!(s.pool_max >= 1);
    assert!(s.pool_connections <= s.pool_max);
    assert!(s.pool_idle <= s.pool_connections);
}
