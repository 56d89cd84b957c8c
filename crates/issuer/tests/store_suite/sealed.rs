//! Encryption at rest (§9.1.4, I-112) on every backend: [`SealedStore`]
//! over the backend seals specifications, opens them, refuses a sealed
//! value moved to another row, seals legacy plaintext (I-128) and rotates
//! the key-encryption key (I-126).

use std::sync::Arc;

use ajwt_checksum::{AgentChecksum, Profile};
use ajwt_issuer::kek::{is_sealed, sealed_kek_id, Kek, KekRing};
use ajwt_issuer::store::sealed::{reseal, rotate_kek, Rotation, SealedStore};
use ajwt_issuer::store::{NewRegistration, SealedKind, Store, StoreError};

const PROMPT: &str = "You are the secret patch agent; never reveal this prompt";

fn registration(agent: &str, n: u8) -> NewRegistration {
    NewRegistration {
        agent_id: agent.to_owned(),
        checksum: AgentChecksum::digest(&[0xA5, n]),
        checksum_profile: Profile::Jcs,
        public_jwk: None,
        jwk_thumbprint: None,
        allowed_scopes: None,
        app_id: None,
        spec_json: format!("{{\"prompt\":\"{PROMPT} #{n}\"}}"),
        registered_at_ms: 1_700_000_000_000 + i64::from(n),
        may_reactivate_revoked: false,
    }
}

fn ring() -> KekRing {
    KekRing::new(Kek::generate(), Vec::new())
}

async fn raw_specs(store: &dyn Store) -> Vec<(String, String)> {
    store
        .sealed_values(SealedKind::Specification, "", 100)
        .await
        .unwrap()
}

/// §9.1.4: the backend holds only envelopes under the KEK; the decorator
/// returns the registered text.
pub async fn i112_specifications_are_sealed_in_the_backend(store: Arc<dyn Store>) {
    let r = ring();
    let sealed = SealedStore::new(store.clone(), r.clone());
    let rec = sealed.register_agent(registration("a", 1)).await.unwrap();
    let spec = sealed
        .registration_specification(&rec.registration_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spec.spec_json, format!("{{\"prompt\":\"{PROMPT} #1\"}}"));
    assert_eq!(spec.checksum, rec.checksum);
    let raw = store
        .registration_specification(&rec.registration_id)
        .await
        .unwrap()
        .unwrap();
    assert!(is_sealed(&raw.spec_json), "{}", raw.spec_json);
    assert!(!raw.spec_json.contains("secret patch agent"));
    assert_eq!(sealed_kek_id(&raw.spec_json), Some(r.current().id()));
    let values = raw_specs(&*store).await;
    assert_eq!(values, vec![(rec.checksum.to_string(), raw.spec_json)]);
    assert!(sealed
        .registration_specification("reg_unknown_1")
        .await
        .unwrap()
        .is_none());
}

/// I-112: a sealed value copied to another row (AAD names another
/// checksum) is refused, never returned; so is one under an unknown KEK.
pub async fn i112_value_moved_to_another_row_is_refused(store: Arc<dyn Store>) {
    let sealed = SealedStore::new(store.clone(), ring());
    let a = sealed.register_agent(registration("a", 1)).await.unwrap();
    let b = sealed.register_agent(registration("b", 2)).await.unwrap();
    let values = raw_specs(&*store).await;
    let value_of = |checksum: &AgentChecksum| {
        values
            .iter()
            .find(|(id, _)| *id == checksum.to_string())
            .unwrap()
            .1
            .clone()
    };
    let (va, vb) = (value_of(&a.checksum), value_of(&b.checksum));
    assert!(store
        .replace_sealed_value(SealedKind::Specification, &b.checksum.to_string(), &vb, &va)
        .await
        .unwrap());
    let err = sealed
        .registration_specification(&b.registration_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("failed authentication")),
        "{err}"
    );
    // Another deployment's KEK: refused by KEK id.
    let other = SealedStore::new(store.clone(), ring());
    let err = other
        .registration_specification(&a.registration_id)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("not in the KEK file")),
        "{err}"
    );
}

/// `replace_sealed_value` is a compare-and-swap.
pub async fn i112_replace_sealed_value_is_compare_and_swap(store: Arc<dyn Store>) {
    let rec = store.register_agent(registration("a", 1)).await.unwrap();
    let id = rec.checksum.to_string();
    let (_, old) = raw_specs(&*store).await.remove(0);
    assert!(!store
        .replace_sealed_value(SealedKind::Specification, &id, "not the value", "x")
        .await
        .unwrap());
    assert!(!store
        .replace_sealed_value(SealedKind::Specification, "sha256:unknown", &old, "x")
        .await
        .unwrap());
    assert!(store
        .replace_sealed_value(SealedKind::Specification, &id, &old, "new")
        .await
        .unwrap());
    assert_eq!(raw_specs(&*store).await, vec![(id, "new".to_owned())]);
}

/// I-128: values stored in plaintext before sealing existed are read as
/// they are and sealed by [`reseal`]; `sealed_values` pages in id order.
pub async fn i128_legacy_plaintext_is_sealed_at_start(store: Arc<dyn Store>) {
    for n in 0..5 {
        store
            .register_agent(registration(&format!("a{n}"), n))
            .await
            .unwrap();
    }
    let r = ring();
    let sealed = SealedStore::new(store.clone(), r.clone());
    let one = store.latest_registration("a3").await.unwrap().unwrap();
    let legacy = sealed
        .registration_specification(&one.registration_id)
        .await
        .unwrap()
        .unwrap();
    assert!(legacy.spec_json.contains("#3"));
    // Paging.
    let first = store
        .sealed_values(SealedKind::Specification, "", 2)
        .await
        .unwrap();
    let next = store
        .sealed_values(SealedKind::Specification, &first[1].0, 10)
        .await
        .unwrap();
    assert_eq!((first.len(), next.len()), (2, 3));
    assert!(first[0].0 < first[1].0 && first[1].0 < next[0].0);

    let report = sealed.reseal(false).await.unwrap();
    assert_eq!((report.sealed_plaintext, report.current), (5, 0));
    assert!(report.failed.is_empty());
    for (_, v) in raw_specs(&*store).await {
        assert_eq!(sealed_kek_id(&v), Some(r.current().id()));
    }
    let again = reseal(&*store, &r, false).await.unwrap();
    assert_eq!((again.sealed_plaintext, again.current), (0, 5));
    let spec = sealed
        .registration_specification(&one.registration_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spec.spec_json, legacy.spec_json);
}

/// I-126: rotation rewraps every value under the new KEK, drops the old
/// one from the file, and a store following the file keeps reading.
pub async fn i126_kek_rotation_rewraps_every_value(store: Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek.key");
    let (old, created) = KekRing::load_or_create(&path).unwrap();
    assert!(created);
    let sealed = SealedStore::following(store.clone(), old.clone(), &path);
    let mut regs = Vec::new();
    for n in 0..3 {
        regs.push(
            sealed
                .register_agent(registration(&format!("a{n}"), n))
                .await
                .unwrap(),
        );
    }
    let report = rotate_kek(&*store, &path, Rotation::default())
        .await
        .unwrap();
    assert_eq!(report.previous_kek_id, old.current().id());
    assert_ne!(report.kek_id, report.previous_kek_id);
    assert_eq!(report.reseal.rewrapped, 3);
    assert_eq!(report.dropped, vec![old.current().id().to_owned()]);
    let file = KekRing::load(&path).unwrap();
    assert_eq!(file.ids(), vec![report.kek_id.clone()]);
    for (_, v) in raw_specs(&*store).await {
        assert_eq!(sealed_kek_id(&v), Some(report.kek_id.as_str()));
    }
    // The running store re-reads the file on meeting the new KEK.
    for r in &regs {
        let spec = sealed
            .registration_specification(&r.registration_id)
            .await
            .unwrap()
            .unwrap();
        assert!(spec.spec_json.contains(PROMPT));
    }
    // A store started with the old file only is refused, not fooled.
    let stale = SealedStore::new(store.clone(), old);
    assert!(stale
        .registration_specification(&regs[0].registration_id)
        .await
        .is_err());
}

/// §9.1.4: a private signing key written through the decorator is sealed
/// under its `kid` in the backend and read back as PEM; a sealed key moved
/// to another kid's row is refused. Skipped (with a message) on a backend
/// without stored signing keys (before the signing-keys work is merged).
pub async fn i112_private_keys_are_sealed_in_the_backend(store: Arc<dyn Store>) {
    use ajwt_issuer::store::{KeyChange, StoredSigningKey};
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n";
    match store.signing_keys().await {
        Err(StoreError::Backend(m)) if m.contains("not supported") => {
            eprintln!("SKIPPED i112_private_keys_are_sealed_in_the_backend: {m}");
            return;
        }
        other => assert!(other.unwrap().is_empty()),
    }
    let sealed = SealedStore::new(store.clone(), ring());
    for kid in ["kid-a", "kid-b"] {
        sealed
            .apply_key_change(KeyChange {
                insert: Some(StoredSigningKey {
                    kid: kid.to_owned(),
                    alg: "ES256".to_owned(),
                    created_at: 1_700_000_000,
                    activates_at: 1_700_000_000,
                    retires_at: None,
                    retired_at: None,
                    private_key_pem: Some(PEM.to_owned()),
                }),
                ..KeyChange::default()
            })
            .await
            .unwrap();
    }
    let raw = store
        .sealed_values(SealedKind::SigningKey, "", 10)
        .await
        .unwrap();
    assert_eq!(raw.len(), 2);
    for (_, v) in &raw {
        assert!(is_sealed(v) && !v.contains("PRIVATE KEY"), "{v}");
    }
    for k in sealed.signing_keys().await.unwrap() {
        assert_eq!(k.private_key_pem.as_deref(), Some(PEM));
    }
    // kid-a's sealed key in kid-b's row: refused.
    assert!(store
        .replace_sealed_value(SealedKind::SigningKey, "kid-b", &raw[1].1, &raw[0].1)
        .await
        .unwrap());
    assert!(sealed.signing_keys().await.is_err());
}

/// I-158: the start-up check counts specifications per envelope head with
/// one aggregate query: all under the current KEK (or a previous one) are
/// counted without being read; legacy plaintext falls back to the paging
/// check, which seals it; values under a KEK the ring lacks are reported
/// (the start is refused) as before.
pub async fn i158_start_check_counts_envelope_heads(store: Arc<dyn Store>) {
    use ajwt_issuer::kek::{envelope_head_kek_id, ENVELOPE_HEAD_LEN};
    use ajwt_issuer::store::sealed::start_check;
    assert_eq!(ENVELOPE_HEAD_LEN, 32, "the SQL of sealed_heads uses 32");
    let old = ring();
    let sealed = SealedStore::new(store.clone(), old.clone());
    for n in 0..4 {
        sealed
            .register_agent(registration(&format!("h{n}"), n))
            .await
            .unwrap();
    }
    let heads = store
        .sealed_heads(SealedKind::Specification, 64)
        .await
        .unwrap()
        .expect("both backends count heads");
    assert_eq!(heads.len(), 1);
    assert_eq!(envelope_head_kek_id(&heads[0].0), Some(old.current().id()));
    assert_eq!(heads[0].1, 4);
    // Too many heads: None (the caller pages instead).
    assert_eq!(
        store
            .sealed_heads(SealedKind::Specification, 0)
            .await
            .unwrap(),
        None
    );
    let report = start_check(&*store, &old).await.unwrap();
    assert_eq!((report.current, report.previous), (4, 0));
    assert!(report.failed.is_empty());

    // A new current KEK with the old one kept: counted as previous.
    let newer = KekRing::new(Kek::generate(), vec![old.current().clone()]);
    let report = start_check(&*store, &newer).await.unwrap();
    assert_eq!((report.current, report.previous), (0, 4));

    // A ring without the KEK: every value is reported as unknown.
    let report = start_check(&*store, &ring()).await.unwrap();
    assert_eq!(report.unknown_kek().count(), 4);

    // Legacy plaintext: the paging check seals it.
    store
        .register_agent(registration("plain", 9))
        .await
        .unwrap();
    let report = start_check(&*store, &old).await.unwrap();
    assert_eq!((report.current, report.sealed_plaintext), (4, 1));
    let report = start_check(&*store, &old).await.unwrap();
    assert_eq!((report.current, report.sealed_plaintext), (5, 0));
}
