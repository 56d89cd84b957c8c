//! §4.4.2 claim rules read the strict reader's borrowed value exactly as they
//! read serde_json's (issue 15, I-184: the verifier validates a token's claims
//! without building a serde_json tree). Oracle: the serde_json path, which is
//! what `validate_claims` read before; every verdict and every problem (claim
//! path, kind, message) must be the same on near-valid payloads whose members
//! are missing, ill-typed, or numbers spelled in every way serde_json tells
//! apart (`-0`, `1.0`, `1e3`, beyond 64 bits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_checksum::json::{parse_strict_borrowed, parse_strict_serde};
use ajwt_protocol::audience::aud_contains;
use ajwt_protocol::claims::validate_claims;
use proptest::prelude::*;

const CHECKSUM: &str =
    "\"sha256:986dd6b0fe7f88cc3c851c533aec14f7650ad195edd1071b8a98248e79b9300d\"";
const JKT: &str = "\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"";

/// Raw JSON texts, chosen to hit every branch of the claim rules.
fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "-0",
            "1",
            "-1",
            "1.0",
            "1e3",
            "1E+2",
            "0.5",
            "1735690500",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678901234567890",
            "\"\"",
            "\"a\"",
            "\"x  y\"",
            "\"repo:write vulnerability:read\"",
            "\"0123456789abcdef\"",
            "\"0123456789ABCDEF\"",
            "\"agent-1\"",
            "\"-bad\"",
            "\"https://rs.example\"",
            "\"\\u00e9t\\u00e9\"",
            "\"\\\"quoted\\\"\"",
            CHECKSUM,
            JKT,
            "[]",
            "[\"https://rs.example\"]",
            "[\"https://rs.example\", 2]",
            "[\"\"]",
            "{}",
            "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
            "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}",
            "{\"kty\":\"\"}",
            "{\"status_list\":{\"idx\":7,\"uri\":\"https://i/s/1\"}}",
            "{\"status_list\":{\"idx\":7.0,\"uri\":\"https://i/s/1\"}}",
            "{\"status_list\":{\"idx\":-1,\"uri\":\"https://i/s/1\"}}",
            "{\"status_list\":{\"idx\":1,\"uri\":\"\"}}",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9 ._:-]{0,20}".prop_map(|s| format!("\"{s}\"")),
        any::<i64>().prop_map(|i| i.to_string()),
    ]
}

/// One member: kept valid, left out, or replaced by a leaf.
fn member(name: &'static str, valid: String) -> impl Strategy<Value = Option<(String, String)>> {
    prop_oneof![
        40 => Just(Some((name.to_owned(), valid))),
        1 => Just(None),
        4 => leaf().prop_map(move |v| Some((name.to_owned(), v))),
    ]
}

fn object(members: Vec<Option<(String, String)>>) -> String {
    let body: Vec<String> = members
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn intent() -> impl Strategy<Value = String> {
    (
        member("workflow_id", "\"wf-1\"".into()),
        member("workflow_step", "\"step_1\"".into()),
        member("executed_by", "\"agent-1\"".into()),
        member("delegation_chain", "\"f3e8d9c7b2a41a3c\"".into()),
        member("step_sequence_hash", "\"a7c9e2f4b8d61c3f\"".into()),
    )
        .prop_map(|(a, b, c, d, e)| object(vec![a, b, c, d, e]))
}

fn cnf() -> impl Strategy<Value = String> {
    (
        member("jkt", JKT.into()),
        prop_oneof![4 => Just(None), 1 => member("jwk", "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}".into())],
    )
        .prop_map(|(a, b)| object(vec![a, b]))
}

fn agent_proof() -> impl Strategy<Value = String> {
    (
        member("agent_checksum", CHECKSUM.into()),
        member("registration_id", "\"reg_1\"".into()),
    )
        .prop_map(|(a, b)| object(vec![a, b]))
}

fn payload() -> impl Strategy<Value = String> {
    (
        (
            member("iss", "\"https://idp.example\"".into()),
            member("aud", "\"https://rs.example\"".into()),
            member("sub", "\"agent-1\"".into()),
            member("exp", "1735690800".into()),
            member("iat", "1735690500".into()),
            member("jti", "\"t-1\"".into()),
        ),
        (
            member("scope", "\"repo:write\"".into()),
            cnf().prop_flat_map(|v| member("cnf", v)),
            intent().prop_flat_map(|v| member("intent", v)),
            agent_proof().prop_flat_map(|v| member("agent_proof", v)),
            prop_oneof![
                1 => Just(None),
                1 => member(
                    "status",
                    "{\"status_list\":{\"idx\":3,\"uri\":\"https://i/s/1\"}}".into()
                )
            ],
        ),
    )
        .prop_map(|((a, b, c, d, e, f), (g, h, i, j, k))| {
            object(vec![a, b, c, d, e, f, g, h, i, j, k])
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn i184_s4_4_2_borrowed_and_serde_views_give_the_same_verdict(text in payload()) {
        let bytes = text.as_bytes();
        let serde = parse_strict_serde(bytes).unwrap();
        let borrowed = parse_strict_borrowed(bytes).unwrap();
        prop_assert_eq!(validate_claims(&borrowed), validate_claims(&serde), "{}", text);
        for rs in ["https://rs.example", "https://other.example"] {
            prop_assert_eq!(
                aud_contains(borrowed.get("aud"), rs),
                aud_contains(serde.get("aud"), rs)
            );
        }
    }
}

/// The property's generator reaches both verdicts (it would prove nothing if
/// every payload were refused).
#[test]
fn i184_generator_reaches_valid_and_invalid_payloads() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..2000 {
        let text = payload().new_tree(&mut runner).unwrap().current();
        match validate_claims(&parse_strict_serde(text.as_bytes()).unwrap()) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(ok > 20 && err > 20, "ok {ok}, err {err}");
}
