//! Issue 15 / I-135: the one-pass canonicalizer against independent oracles.
//!
//! * `jcs`: serde_jcs (RFC 8785 over serde_json values, ECMAScript number
//!   formatting by ryu-js) on random strict values: numbers (integers, doubles
//!   of every magnitude, `-0`), unicode (BMP, supplementary, characters around
//!   the UTF-16 surrogate order RFC 8785 §3.2.3 sorts by), control characters,
//!   and deep nesting.
//! * `python-ref`: serde_json's own writer, which escapes exactly like CPython
//!   `json.dumps(ensure_ascii=False)`, checked after decoding our ASCII-only
//!   output (CPython itself is the oracle of `tests/cpython.rs`).
//! * the checksum-only path (`compute_checksum`) equals SHA-256 (`sha2`, one
//!   shot) of `compute`'s canonical bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_checksum::json::{parse_strict, Number, Value};
use ajwt_checksum::{
    compute, compute_checksum, compute_checksum_json, compute_json, jcs_canonicalize,
    normalize_prompt, python_dumps, AgentSpec, Profile,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn key_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::char::range('a', 'f'),
        1 => Just('\u{e9}'),
        1 => Just('\u{FB33}'),
        1 => Just('\u{E000}'),
        1 => Just('\u{FFFF}'),
        1 => Just('\u{1F600}'),
        1 => Just('\u{10000}'),
        1 => Just('\u{7f}'),
        1 => Just('"'),
        1 => Just('\u{1}'),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z \\\\\"/\n\r\t\u{0}-\u{1f}\u{7f}]{0,24}",
        2 => any::<String>(),
        1 => "[\u{e000}-\u{ffff}\u{10000}-\u{10ffff}a]{0,6}",
        1 => "[a-z]{100,300}",
    ]
}

/// A number literal and the double serde_jcs is given for it.
fn number() -> impl Strategy<Value = (String, f64)> {
    prop_oneof![
        any::<i32>().prop_map(|i| (i.to_string(), f64::from(i))),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(|i| (i.to_string(), i as f64)),
        Just(("-0".to_owned(), -0.0)),
        Just(("-0.0".to_owned(), -0.0)),
        Just(("9007199254740992".to_owned(), 9007199254740992.0)),
        Just(("1180591620717411303424".to_owned(), 2f64.powi(70))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| (format!("{f:e}"), f)),
        (-400i32..400, 1u32..999_999)
            .prop_map(|(e, m)| {
                let lit = format!("{m}e{e}");
                let f: f64 = lit.parse().unwrap();
                (lit, f)
            })
            .prop_filter("finite", |(_, f)| f.is_finite()),
    ]
}

/// A strict value and the serde_json value (numbers as doubles) serde_jcs sees.
fn value() -> impl Strategy<Value = (Value, serde_json::Value)> {
    let leaf = prop_oneof![
        Just((Value::Null, serde_json::Value::Null)),
        any::<bool>().prop_map(|b| (Value::Bool(b), serde_json::Value::Bool(b))),
        number().prop_map(|(lit, f)| (
            Value::Number(Number::from_literal(&lit).unwrap()),
            serde_json::Value::Number(serde_json::Number::from_f64(f).unwrap())
        )),
        text().prop_map(|s| (Value::String(s.clone()), serde_json::Value::String(s))),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(|items| {
                let (ours, theirs): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                (Value::Array(ours), serde_json::Value::Array(theirs))
            }),
            proptest::collection::btree_map(
                proptest::collection::vec(key_char(), 0..5)
                    .prop_map(|cs| cs.into_iter().collect::<String>()),
                inner,
                0..8
            )
            .prop_map(|members| {
                let ours = members
                    .iter()
                    .map(|(k, (v, _))| (k.clone(), v.clone()))
                    .collect();
                let theirs = members.into_iter().map(|(k, (_, v))| (k, v)).collect();
                (Value::Object(ours), serde_json::Value::Object(theirs))
            }),
        ]
    })
}

/// Numbers as doubles (python-ref keeps integer literals as integers).
fn doubles(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Number(n) => J::from(n.as_f64().unwrap()),
        J::Array(items) => J::Array(items.into_iter().map(doubles).collect()),
        J::Object(m) => J::Object(m.into_iter().map(|(k, x)| (k, doubles(x))).collect()),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn i135_streaming_jcs_equals_serde_jcs((ours, theirs) in value()) {
        let got = jcs_canonicalize(&ours).unwrap();
        let want = serde_jcs::to_vec(&theirs).unwrap();
        prop_assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
    }

    #[test]
    fn i135_streaming_python_ref_escapes_like_json_dumps((ours, theirs) in value()) {
        let got = python_dumps(&ours).unwrap();
        prop_assert!(got.is_ascii());
        // Decoding our ensure_ascii output gives back the same value.
        let text = std::str::from_utf8(&got).unwrap();
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        prop_assert_eq!(doubles(back), doubles(theirs));
    }

    #[test]
    fn i135_streaming_prompt_normalization_equals_normalize_prompt(
        prompt in "[ab \t\r\n\u{b}\u{c}\u{1c}-\u{1f}\u{85}\u{a0}\u{2028}\u{3000}\u{200b}]{0,40}"
    ) {
        let spec = AgentSpec {
            agent_id: "a".into(),
            prompt: prompt.clone(),
            tools: vec![],
            configuration: None,
        };
        let canonical = compute(&spec, Profile::Jcs).unwrap().canonical;
        let v = parse_strict(&canonical).unwrap();
        let Some(Value::String(got)) = v.get("prompt_template") else { panic!() };
        prop_assert_eq!(got, &normalize_prompt(&prompt));
    }
}

/// Deep nesting (the strict reader's limit): no recursion surprise, same bytes.
#[test]
fn i135_streaming_jcs_deep_nesting_equals_serde_jcs() {
    let depth = ajwt_checksum::json::MAX_DEPTH;
    let doc = format!(
        "{}{{\"b\":[1.5,\"\u{1F600}\"],\"a\":-0}}{}",
        "[{\"k\":".repeat(depth / 2 - 1),
        "}]".repeat(depth / 2 - 1)
    );
    let ours = parse_strict(doc.as_bytes()).unwrap();
    let theirs: serde_json::Value = {
        let mut de = serde_json::Deserializer::from_str(&doc);
        de.disable_recursion_limit();
        serde::Deserialize::deserialize(&mut de).unwrap()
    };
    assert_eq!(
        String::from_utf8(jcs_canonicalize(&ours).unwrap()).unwrap(),
        String::from_utf8(serde_jcs::to_vec(&theirs).unwrap()).unwrap()
    );
}

#[test]
fn i135_checksum_only_path_equals_sha256_of_canonical_bytes() {
    for file in ["draft-example.json", "large-agent.json"] {
        let path = format!("{}/benches/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(path).unwrap();
        let spec = AgentSpec::from_json(&bytes).unwrap();
        for profile in [Profile::Jcs, Profile::PythonRef] {
            let full = compute_json(&bytes, profile).unwrap();
            let want: [u8; 32] = Sha256::digest(&full.canonical).into();
            assert_eq!(full.checksum.as_bytes(), &want);
            assert_eq!(compute_checksum(&spec, profile).unwrap(), full.checksum);
            assert_eq!(
                compute_checksum_json(&bytes, profile).unwrap(),
                full.checksum
            );
            assert_eq!(spec.checksum(profile).unwrap(), full.checksum);
        }
    }
}

#[test]
fn i135_checksum_only_path_reports_the_same_errors() {
    let bad = [
        r#"{"agent_id":"a","prompt":"","tools":[{"name":"b","parameters":{"x":12345678901234567891}},{"name":"a","parameters":{"y":[1,9007199254740993]}}],"configuration":{"z":18014398509481985}}"#,
        r#"{"agent_id":"a","prompt":"","tools":[],"configuration":{"q":{"z":18014398509481985,"a":9007199254740993}}}"#,
        r#"{"agent_id":"a","prompt":"","tools":[{"name":"x"},{"name":""},{"name":"x"}]}"#,
        r#"{"agent_id":"a","prompt":"","tools":[{"name":"x"},{"name":"x"},{"name":"","checksum_level":"deep"}]}"#,
    ];
    for doc in bad {
        for profile in [Profile::Jcs, Profile::PythonRef] {
            let full = compute_json(doc.as_bytes(), profile);
            let fast = compute_checksum_json(doc.as_bytes(), profile);
            assert_eq!(full.map(|c| c.checksum), fast, "{doc} {profile}");
        }
    }
}
