//! Property tests: every decoder of untrusted input returns a typed result and
//! never panics, on arbitrary bytes and on near-valid JSON (§4.5.6, §9.4.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_protocol::claims::validate_claims;
use ajwt_protocol::registration::{decode_agent_registration, decode_workflow_registration};
use ajwt_protocol::wire::{decode_token_request, decode_token_request_form};
use proptest::prelude::*;

const VALID_REQUEST: &str = r#"{"grant_type":"agent_checksum","agent_id":"vulnerability-patcher-v1","computed_checksum":"sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d","workflow_id":"auto-patch-workflow-v1","workflow_step":"step_4_apply_patch","workflow_enabled":true,"requested_scopes":["repo:write"],"audience":["https://api.github.com"],"delegation_context":{"chain":["supervisor-agent","patch-planner"],"completed_steps":["step_1_analyze_manifest"]},"parent_token":"a.b.c"}"#;

/// Arbitrary JSON values, with the member names the decoders look at.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("grant_type".to_owned()),
        Just("agent_id".to_owned()),
        Just("computed_checksum".to_owned()),
        Just("workflow_enabled".to_owned()),
        Just("workflow_id".to_owned()),
        Just("workflow_step".to_owned()),
        Just("requested_scopes".to_owned()),
        Just("audience".to_owned()),
        Just("delegation_context".to_owned()),
        Just("chain".to_owned()),
        Just("completed_steps".to_owned()),
        Just("steps".to_owned()),
        Just("step_id".to_owned()),
        Just("approval_gate".to_owned()),
        Just("requires_approval".to_owned()),
        Just("prompt".to_owned()),
        Just("tools".to_owned()),
        Just("intent".to_owned()),
        Just("cnf".to_owned()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        "\\PC{0,12}".prop_map(serde_json::Value::String),
        Just(serde_json::Value::String("agent_checksum".into())),
        Just(serde_json::Value::String(
            "sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d".into()
        )),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn all_decoders(bytes: &[u8]) {
    let _ = decode_token_request(bytes);
    let _ = decode_token_request_form(bytes);
    let _ = decode_workflow_registration(bytes);
    let _ = decode_agent_registration(bytes);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = validate_claims(&v);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn s4_5_6_decoders_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        all_decoders(&bytes);
    }

    #[test]
    fn s4_5_6_decoders_never_panic_on_arbitrary_json(v in json_value()) {
        all_decoders(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn s4_5_6_decoders_never_panic_on_mutated_valid_request(
        cut in 0..VALID_REQUEST.len(),
        byte in any::<u8>(),
        mode in 0..3u8,
    ) {
        let mut bytes = VALID_REQUEST.as_bytes().to_vec();
        match mode {
            0 => bytes.truncate(cut),
            1 => bytes[cut] = byte,
            _ => { bytes.insert(cut, byte); }
        }
        all_decoders(&bytes);
        // Every error is one of the codes the draft defines for this endpoint.
        if let Err(e) = decode_token_request(&bytes) {
            prop_assert!(matches!(e.code(), "invalid_request" | "unsupported_grant_type" | "invalid_scope"), "{e}");
            prop_assert_eq!(e.status(), 400);
        }
    }
}
