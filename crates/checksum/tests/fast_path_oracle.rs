//! Issue 15 / I-140: `compute_checksum_json` reads the document into a
//! borrowed value and hashes it through the same reader, spec rules and
//! writer, instantiated for borrowed strings. Its result must be exactly the
//! existing slow path's, `compute_json(..).map(|c| c.checksum)` (itself pinned
//! against serde_json, serde_jcs and CPython by the other test files): the
//! same checksum, or an error of the same kind, path and message, on random
//! and mutated specification documents, in both profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_checksum::{compute_checksum_json, compute_json, Profile};
use proptest::prelude::*;

/// A JSON value of any shape: numbers of every kind (huge, inexact, `-0`,
/// overflowing), strings with escapes and non-ASCII, nested containers
/// with names that repeat.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
        Just("1e400".to_owned()),
        Just("12345678901234567890123".to_owned()),
        Just("-0".to_owned()),
        "\"([a-z ]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4}|\\\\ud83d\\\\ude00|é|😀|\u{e000}){0,8}\"",
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5)
                .prop_map(|xs| format!("[{}]", xs.join(","))),
            proptest::collection::vec(("[a-c]{0,2}|\u{1F600}|\u{FB33}", inner), 0..5).prop_map(
                |ms| {
                    let body: Vec<String> = ms
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }
            ),
        ]
    })
}

fn string_or_other() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "\"[a-z][a-z0-9._-]{0,6}\"",
        1 => Just("\"\"".to_owned()),
        1 => Just("\"a|b\"".to_owned()),
        1 => Just("\"x\\ny\"".to_owned()),
        1 => json_value(),
    ]
}

fn tool() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        4 => string_or_other().prop_map(|v| format!("\"name\":{v}")),
        2 => string_or_other().prop_map(|v| format!("\"description\":{v}")),
        3 => json_value().prop_map(|v| format!("\"parameters\":{v}")),
        1 => Just("\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\",\"maximum\":1e2}}}".to_owned()),
        1 => string_or_other().prop_map(|v| format!("\"signature\":{v}")),
        1 => prop_oneof![Just("\"deep\""), Just("\"shallow\""), Just("\"full\""), Just("null")]
            .prop_map(|v| format!("\"checksum_level\":{v}")),
        1 => string_or_other().prop_map(|v| format!("\"source_code\":{v}")),
        1 => prop_oneof![Just("true"), Just("false"), Just("null"), Just("0")]
            .prop_map(|v| format!("\"is_agent\":{v}")),
        1 => Just("\"extra\":1".to_owned()),
    ];
    proptest::collection::vec(member, 0..6).prop_map(|ms| format!("{{{}}}", ms.join(",")))
}

fn spec_document() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        4 => string_or_other().prop_map(|v| format!("\"agent_id\":{v}")),
        3 => string_or_other().prop_map(|v| format!("\"prompt\":{v}")),
        1 => string_or_other().prop_map(|v| format!("\"prompt_template\":{v}")),
        1 => Just("\"prompt\":\"  Line one \\r\\n\\n\\t line two\\u2028 \"".to_owned()),
        4 => proptest::collection::vec(tool(), 0..4)
            .prop_map(|ts| format!("\"tools\":[{}]", ts.join(","))),
        1 => json_value().prop_map(|v| format!("\"tools\":{v}")),
        3 => json_value().prop_map(|v| format!("\"configuration\":{v}")),
        1 => Just("\"nope\":null".to_owned()),
    ];
    // Mostly-valid documents too, so that checksums (not only errors) compare.
    let good_tool = ("[a-e]{1,3}", string_or_other(), json_value()).prop_map(|(n, d, p)| {
        let p = if p.starts_with('{') {
            p
        } else {
            "{}".to_owned()
        };
        format!("{{\"name\":\"{n}\",\"description\":{d},\"parameters\":{p}}}")
    });
    let good = (
        proptest::collection::vec(good_tool, 0..4),
        json_value(),
        "\"([a-z ]|\\\\r|\\\\n|é){0,20}\"",
    )
        .prop_map(|(tools, config, prompt)| {
            let config = if config.starts_with('{') { config } else { "{}".to_owned() };
            format!(
                "{{\"agent_id\":\"a1\",\"prompt\":{prompt},\"tools\":[{}],\"configuration\":{config}}}",
                tools.join(",")
            )
        });
    prop_oneof![
        10 => proptest::collection::vec(member, 0..7).prop_map(|ms| format!("{{{}}}", ms.join(","))),
        10 => good,
        1 => json_value(),
    ]
}

/// Documents as above, then up to two bytes inserted, deleted or replaced.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        spec_document(),
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 0..3),
    )
        .prop_map(|(text, edits)| {
            let mut b = text.into_bytes();
            for (at, op, byte) in edits {
                const BYTES: &[u8] = b"{}[]\",:\\ -0e.1tu\n\x01\x7fa\xff";
                let byte = BYTES[usize::from(byte) % BYTES.len()];
                if b.is_empty() || op == 3 {
                    continue;
                }
                let i = at.index(b.len());
                match op {
                    0 => b.insert(i, byte),
                    1 => {
                        b.remove(i);
                    }
                    _ => b[i] = byte,
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn i140_checksum_only_path_equals_compute_json(doc in mutated()) {
        for profile in [Profile::Jcs, Profile::PythonRef] {
            let fast = compute_checksum_json(&doc, profile)
                .map_err(|e| (e.kind(), e.path().map(str::to_owned), e.to_string()));
            let slow = compute_json(&doc, profile)
                .map(|c| c.checksum)
                .map_err(|e| (e.kind(), e.path().map(str::to_owned), e.to_string()));
            prop_assert_eq!(fast, slow, "{} {:?}", profile, String::from_utf8_lossy(&doc));
        }
    }
}

/// The benchmark documents and the draft's example take the fast path to the
/// same checksum (a sanity check on real inputs; the oracles pin the value).
#[test]
fn i140_benchmark_documents_agree() {
    for name in ["draft-example", "large-agent"] {
        let path = format!("{}/benches/data/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read(path).unwrap();
        for profile in [Profile::Jcs, Profile::PythonRef] {
            assert_eq!(
                compute_checksum_json(&doc, profile).unwrap(),
                compute_json(&doc, profile).unwrap().checksum
            );
        }
    }
}
