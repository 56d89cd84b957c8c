//! The agent registry (§4.7.1, §5.4.2, §5.4.4) on every backend.

use std::sync::Arc;

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::store::{NewRegistration, Store, StoreError};

fn registration(agent: &str, n: u8) -> NewRegistration {
    NewRegistration {
        agent_id: agent.to_owned(),
        checksum: AgentChecksum::digest(&[n]),
        checksum_profile: Profile::Jcs,
        public_jwk: None,
        jwk_thumbprint: None,
        allowed_scopes: None,
        app_id: None,
        spec_json: format!("{{\"n\":{n}}}"),
        registered_at_ms: 1_700_000_000_000 + i64::from(n),
        may_reactivate_revoked: false,
    }
}

/// §5.4.4: versions 1, 2, ... per agent, the latest wins, a checksum is
/// registered once across all agents (§5.4.2 step 3).
pub async fn s4_7_1_registration_versions_and_latest(store: Arc<dyn Store>) {
    let a1 = store.register_agent(registration("a", 1)).await.unwrap();
    let a2 = store.register_agent(registration("a", 2)).await.unwrap();
    assert_eq!((a1.version, a2.version), (1, 2));
    assert_ne!(a1.registration_id, a2.registration_id);
    let latest = store.latest_registration("a").await.unwrap().unwrap();
    assert_eq!(latest, a2);
    let dup = store
        .register_agent(registration("b", 1))
        .await
        .unwrap_err();
    assert_eq!(
        dup,
        StoreError::DuplicateChecksum {
            existing_agent_id: "a".to_owned()
        }
    );
    assert_eq!(store.registrations("a").await.unwrap(), vec![a1, a2]);
    assert!(store.latest_registration("b").await.unwrap().is_none());
}
