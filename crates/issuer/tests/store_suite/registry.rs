//! The agent registry (§4.7.1, §5.4.2, §5.4.4) on every backend.

use std::sync::Arc;

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::store::{NewRegistration, Store, StoreError};

pub fn registration(agent: &str, n: u8) -> NewRegistration {
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

/// §5.6.1 REVOKED, I-69: revoking marks every registration and is
/// idempotent; a revoked agent cannot be re-registered except by an
/// administrator, which gives an active new version.
pub async fn s5_6_1_revocation_blocks_reregistration_unless_admin(store: Arc<dyn Store>) {
    store.register_agent(registration("r", 10)).await.unwrap();
    store.register_agent(registration("r", 11)).await.unwrap();
    assert_eq!(store.revoke_agent("r").await.unwrap(), 2);
    assert_eq!(store.revoke_agent("r").await.unwrap(), 2, "idempotent");
    assert_eq!(store.revoke_agent("nobody").await.unwrap(), 0);
    assert!(store
        .registrations("r")
        .await
        .unwrap()
        .iter()
        .all(|r| r.revoked));
    let refused = store
        .register_agent(registration("r", 12))
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        StoreError::AgentRevoked {
            agent_id: "r".into()
        }
    );
    let mut admin = registration("r", 12);
    admin.may_reactivate_revoked = true;
    let v3 = store.register_agent(admin).await.unwrap();
    assert_eq!((v3.version, v3.revoked), (3, false));
    let latest = store.latest_registration("r").await.unwrap().unwrap();
    assert_eq!(latest, v3);
}

/// §5.4.2 step 4, I-70: registrations of one agent in one second get
/// distinct ids, the first the plain second.
pub async fn s5_4_2_registration_ids_unique_within_one_second(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for n in 20..23u8 {
        let mut r = registration("s", n);
        r.registered_at_ms = 1_700_000_000_500;
        ids.push(store.register_agent(r).await.unwrap().registration_id);
    }
    assert_eq!(ids[0], "reg_s_1700000000");
    assert_eq!(ids[1], "reg_s_1700000000000001");
    assert_eq!(ids[2], "reg_s_1700000000000002");
    // The specification is kept with its checksum (§5.6, I-112).
    let spec = store
        .registration_specification(&ids[1])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spec.checksum, AgentChecksum::digest(&[21]));
    assert_eq!(spec.spec_json, "{\"n\":21}");
    assert!(store
        .registration_specification("reg_s_0")
        .await
        .unwrap()
        .is_none());
}
