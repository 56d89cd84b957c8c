//! Issue 15 / I-136: the one-pass strict reader against serde_json, an
//! independent RFC 8259 parser (the one the earlier reader was built on).
//!
//! Random documents, valid and mutated (bytes inserted, deleted, replaced),
//! must be accepted by both with the same value, or refused by both; where we
//! refuse with a syntax error, serde_json's message (wording and position) is
//! ours. The only documents serde_json accepts and we refuse are the ones
//! I-10 refuses on purpose: duplicate member names, nesting deeper than
//! 128, integers longer than 4300 digits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ajwt_json::{parse_strict, parse_strict_serde, JsonError};
use proptest::prelude::*;

fn serde(doc: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(doc);
    de.disable_recursion_limit();
    let v = serde::Deserialize::deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// The earlier reader's view: each maximal run of `0-9 + - . e E` starting
/// with `-` or a digit outside strings replaced by `0` and spaces.
fn masked(doc: &[u8]) -> Vec<u8> {
    let mut out = doc.to_vec();
    let mut i = 0;
    while i < doc.len() {
        match doc[i] {
            b'"' => {
                i += 1;
                while i < doc.len() {
                    let c = doc[i];
                    i += if c == b'\\' { 2 } else { 1 };
                    if c == b'"' {
                        break;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < doc.len()
                    && matches!(doc[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                out[start..i].fill(b' ');
                out[start] = b'0';
            }
            _ => i += 1,
        }
    }
    out
}

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
        "\"([a-z ]|\\\\[\"\\\\/bfnrt]|\\\\u[0-9a-fA-F]{4}|é|😀){0,8}\"",
    ];
    leaf.prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|xs| format!("[{}]", xs.join(" , "))),
            proptest::collection::vec(("[a-c]{0,2}", inner), 0..6).prop_map(|ms| {
                let body: Vec<String> = ms
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\" :{v}"))
                    .collect();
                format!("{{\n{}}}", body.join(","))
            }),
        ]
    })
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        json_text(),
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..3),
    )
        .prop_map(|(text, edits)| {
            let mut b = text.into_bytes();
            for (at, op, byte) in edits {
                const BYTES: &[u8] = b"{}[]\",:\\ -0e.1tu\n\x01\x7f";
                let byte = BYTES[usize::from(byte) % BYTES.len()];
                if b.is_empty() {
                    b.push(byte);
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
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn i136_one_pass_reader_agrees_with_serde_json(doc in mutated()) {
        let ours = parse_strict(&doc);
        let theirs = serde(&doc);
        match (&ours, &theirs) {
            (Ok(v), Ok(t)) => {
                prop_assert_eq!(&v.to_serde_json(), t);
                // The one-step conversion of the verifier's hot path (issue 15).
                prop_assert_eq!(&parse_strict_serde(&doc).unwrap(), t);
            }
            (Err(JsonError::Syntax(msg)), Err(_)) => {
                // The earlier reader showed serde_json the text with every run
                // of number characters masked as `0`, and checked the literals
                // afterwards (reported with their path): same messages as that.
                if !msg.contains("invalid number") && std::str::from_utf8(&doc).is_ok() {
                    let before = serde(&masked(&doc)).map(|_| ()).map_err(|e| e.to_string());
                    prop_assert_eq!(Err(msg.clone()), before, "{}", String::from_utf8_lossy(&doc));
                }
            }
            (Err(JsonError::Syntax(msg)), Ok(_)) => {
                prop_assert!(false, "we refuse {:?} ({msg}), serde_json accepts", String::from_utf8_lossy(&doc));
            }
            (Err(JsonError::DuplicateKey { .. }), _) => {}
            (Err(JsonError::NumberOutOfRange { .. }), Err(e)) => {
                prop_assert!(e.to_string().contains("number out of range"), "{e}");
            }
            (Ok(_), Err(e)) => {
                prop_assert!(false, "we accept {:?}, serde_json refuses: {e}", String::from_utf8_lossy(&doc));
            }
            (Err(other), _) => prop_assert!(false, "{other:?} on {:?}", String::from_utf8_lossy(&doc)),
        }
    }
}

/// I-139: the string scanner reads 32-byte blocks and 8-byte words, past the
/// end of a string into the rest of the document. A special byte (escape,
/// raw control character, stray quote) at every offset of strings of every
/// length around the block and word sizes, followed by 0..9 bytes of
/// document, must give serde_json's value or serde_json's error message.
#[test]
fn i139_word_scanner_agrees_with_serde_json_at_every_offset() {
    let specials: [&[u8]; 5] = [b"\\n", b"\\u00e9", b"\x01", b"\\\"", b"\x1f"];
    let tails: [&[u8]; 4] = [b"", b" ", b"        ", b"\n\n\n\n\n\n\n\n\n"];
    for len in 0..70 {
        for at in 0..=len {
            for special in specials {
                for tail in tails {
                    let mut doc = b"[\"".to_vec();
                    doc.extend(std::iter::repeat_n(b'a', at));
                    doc.extend_from_slice(special);
                    doc.extend(std::iter::repeat_n(b'b', len - at));
                    doc.extend_from_slice(b"\"]");
                    doc.extend_from_slice(tail);
                    let ours = parse_strict(&doc).map(|v| v.to_serde_json());
                    let theirs = serde(&doc);
                    match (ours, theirs) {
                        (Ok(v), Ok(t)) => assert_eq!(v, t),
                        (Err(JsonError::Syntax(m)), Err(e)) => assert_eq!(m, e.to_string()),
                        (o, t) => panic!("{:?}: {o:?} vs {t:?}", String::from_utf8_lossy(&doc)),
                    }
                    // Unterminated: the scan runs into the end of the input.
                    let cut = &doc[..2 + at + special.len()];
                    assert_eq!(
                        parse_strict(cut)
                            .map(|v| v.to_serde_json())
                            .map_err(|e| e.to_string()),
                        serde(cut).map_err(|e| format!("invalid JSON: {e}"))
                    );
                }
            }
        }
    }
}

/// Issue 15: numbers become serde_json numbers without serde_json's reader
/// when they are plain 64-bit integers; at and around every boundary the
/// result is exactly serde_json's own (type and value).
#[test]
fn parse_strict_serde_numbers_at_64_bit_boundaries_match_serde_json() {
    let mut literals: Vec<String> = vec![
        "0".into(),
        "-0".into(),
        "1".into(),
        "-1".into(),
        "0.0".into(),
        "-0.0".into(),
        "1e3".into(),
        "1E-3".into(),
        "123456789012345678".into(),
        "-123456789012345678".into(),
        "999999999999999999".into(),
        "-999999999999999999".into(),
        "1000000000000000000".into(),
        "-1000000000000000000".into(),
    ];
    for base in [i64::MAX as i128, i64::MIN as i128, u64::MAX as i128] {
        for d in -2i128..=2 {
            literals.push((base + d).to_string());
        }
    }
    for lit in &literals {
        let doc = format!("[{lit}, {{\"n\": {lit}}}]");
        assert_eq!(
            parse_strict_serde(doc.as_bytes()).unwrap(),
            serde(doc.as_bytes()).unwrap(),
            "{lit}"
        );
        assert_eq!(
            parse_strict(doc.as_bytes()).unwrap().to_serde_json(),
            serde(doc.as_bytes()).unwrap(),
            "{lit}"
        );
    }
}
