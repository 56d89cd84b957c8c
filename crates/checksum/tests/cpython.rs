//! Property tests against CPython as an independent oracle (§5.3.1, §5.3.2).
//!
//! Each test generates thousands of cases with proptest, sends them to ONE
//! `python3` process running the draft's own reference code, and compares.
//! Without python3 (or the `jcs` package) the tests skip with a message,
//! unless AJWT_REQUIRE_PYTHON=1 (set by .ci/run). Reproduce a failure with the
//! printed AJWT_SEED.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use ajwt_checksum::normalize::is_python_space;
use ajwt_checksum::{compute_json, normalize_prompt, ErrorKind, Profile};
use common::{generate, run_python, seed, PY_NORMALIZE_PROMPT};
use proptest::prelude::*;
use proptest::sample::select;

const CASES: usize = 4000;

/// Every Python whitespace code point, U+200B/U+180E/U+FEFF (not whitespace),
/// line-break combinations and ordinary text.
fn prompt_piece() -> impl Strategy<Value = &'static str> {
    select(vec![
        "\n", "\n", "\n", "\r\n", "\r\n", "\r", "\n\r", " ", " ", "  ", "\t", "\u{0B}", "\u{0C}",
        "\u{1C}", "\u{1D}", "\u{1E}", "\u{1F}", "\u{85}", "\u{A0}", "\u{1680}", "\u{2000}",
        "\u{2001}", "\u{2002}", "\u{2003}", "\u{2004}", "\u{2005}", "\u{2006}", "\u{2007}",
        "\u{2008}", "\u{2009}", "\u{200A}", "\u{2028}", "\u{2029}", "\u{202F}", "\u{205F}",
        "\u{3000}", "\u{200B}", "\u{180E}", "\u{FEFF}", "a", "b", "word", "é", "😀", "\u{0}",
        "x y", ".",
    ])
}

fn prompt() -> impl Strategy<Value = String> {
    prop::collection::vec(prompt_piece(), 0..40).prop_map(|v| v.concat())
}

#[test]
fn s5_3_2_python_isspace_is_exactly_cpythons() {
    let script = r#"
import json, sys
json.load(sys.stdin)
print(json.dumps([c for c in range(0x110000) if chr(c).isspace()]))
"#;
    let Some(expected) = run_python(script, &[], &serde_json::Value::Null) else {
        return;
    };
    let ours: Vec<u32> = (0..0x110000u32)
        .filter_map(char::from_u32)
        .filter(|c| is_python_space(*c))
        .map(u32::from)
        .collect();
    assert_eq!(serde_json::to_value(ours).unwrap(), expected);
}

#[test]
fn s5_3_2_normalize_prompt_matches_cpython() {
    let seed = seed();
    let cases = generate(&prompt(), CASES, seed);
    let script = format!(
        "{PY_NORMALIZE_PROMPT}\nimport json, sys\nprint(json.dumps([normalize_prompt(p) for p in json.load(sys.stdin)]))"
    );
    let Some(expected) = run_python(&script, &[], &serde_json::to_value(&cases).unwrap()) else {
        return;
    };
    let expected: Vec<String> = serde_json::from_value(expected).unwrap();
    assert_eq!(expected.len(), cases.len());
    for (input, want) in cases.iter().zip(&expected) {
        assert_eq!(
            &normalize_prompt(input),
            want,
            "input {input:?}; reproduce with AJWT_SEED={}",
            hex::encode(seed)
        );
    }
}

/// Where two long strings first differ, with some context.
fn first_difference(ours: &str, theirs: &str) -> String {
    let at = ours
        .char_indices()
        .zip(theirs.chars())
        .find(|((_, a), b)| a != b)
        .map_or(ours.len().min(theirs.len()), |((i, _), _)| i);
    let mut from = at.saturating_sub(60);
    while !ours.is_char_boundary(from) {
        from -= 1;
    }
    let ours_ctx: String = ours[from..].chars().take(100).collect();
    let theirs_ctx: String = theirs.get(from..).unwrap_or("").chars().take(100).collect();
    format!("first difference at byte {at}:\n ours:    {ours_ctx}\n CPython: {theirs_ctx}")
}

/// Doubles of every magnitude, plus values whose two shortest decimal
/// candidates tie (a few fraction bits above 2^48), where dtoa rounds to even.
fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (1u64 << 40..1u64 << 52, 0u32..8)
            .prop_map(|(i, eighths)| i as f64 + f64::from(eighths) / 8.0),
        (1u64..1u64 << 53, -30i32..30).prop_map(|(m, e)| m as f64 * 10f64.powi(e)),
    ]
}

#[test]
fn s5_3_2_float_repr_matches_cpython() {
    let seed = seed();
    let cases = generate(&double(), CASES * 5, seed);
    let bits: Vec<String> = cases
        .iter()
        .map(|f| format!("{:016x}", f.to_bits()))
        .collect();
    let script = r#"
import json, struct, sys
print(json.dumps([repr(struct.unpack(">d", bytes.fromhex(b))[0]) for b in json.load(sys.stdin)]))
"#;
    let Some(expected) = run_python(script, &[], &serde_json::to_value(&bits).unwrap()) else {
        return;
    };
    let expected: Vec<String> = serde_json::from_value(expected).unwrap();
    for (f, want) in cases.iter().zip(&expected) {
        assert_eq!(
            ajwt_checksum::canonical::python_float_repr(*f).as_deref(),
            Some(want.as_str()),
            "bits {:016x}; reproduce with AJWT_SEED={}",
            f.to_bits(),
            hex::encode(seed)
        );
    }
}

// ------------------------------------------------------ generated specs ----

/// JSON number literals in every spelling: ints of any size, fractions,
/// exponents (e/E, signed), zeros, values that overflow or underflow.
fn number_literal() -> impl Strategy<Value = String> {
    let int = prop_oneof![
        Just("0".to_owned()),
        "[1-9][0-9]{0,3}",
        "[1-9][0-9]{14,17}",
        "[1-9][0-9]{18,30}",
    ];
    let frac = prop::option::of("[0-9]{1,18}");
    let exp = prop::option::of((
        select(vec!["e", "E"]),
        select(vec!["", "+", "-"]),
        0u32..330,
    ));
    (any::<bool>(), int, frac, exp).prop_map(|(neg, int, frac, exp)| {
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        s.push_str(&int);
        if let Some(f) = frac {
            s.push('.');
            s.push_str(&f);
        }
        if let Some((e, sign, n)) = exp {
            s.push_str(&format!("{e}{sign}{n}"));
        }
        s
    })
}

fn string_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z]{0,6}",
        prompt(),
        select(vec![
            "\u{1F600}",
            "\u{FB33}",
            "\u{FF61}",
            "\u{E000}",
            "\u{7F}",
            "</script>"
        ])
        .prop_map(str::to_owned),
    ]
    .prop_map(|s| serde_json::to_string(&s).unwrap())
}

/// Arbitrary JSON text with unique member names per object.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_literal(),
        number_literal(),
        string_literal(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::btree_map(string_literal(), inner, 0..6).prop_map(|m| {
                let members: Vec<String> =
                    m.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

fn object_text() -> impl Strategy<Value = String> {
    prop::collection::btree_map(string_literal(), json_text(), 0..6).prop_map(|m| {
        let members: Vec<String> = m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", members.join(", "))
    })
}

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "a",
            "b",
            "search",
            "Search",
            "é",
            "\u{FF61}x",
            "\u{1F600}x",
            "\u{E000}",
            "z",
            "a b",
            "read_manifest",
            "create_patch",
        ])
        .prop_map(str::to_owned),
        "\\PC{1,5}",
    ]
}

fn tool() -> impl Strategy<Value = (String, String)> {
    (
        tool_name(),
        prop::option::of(string_literal()),
        prop::option::of(object_text()),
        prop::option::of(string_literal()),
        prop::option::of(string_literal()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(name, description, parameters, signature, source, is_agent)| {
                let mut members = vec![format!(
                    "\"name\": {}",
                    serde_json::to_string(&name).unwrap()
                )];
                if let Some(d) = description {
                    members.push(format!("\"description\": {d}"));
                }
                if let Some(p) = parameters {
                    members.push(format!("\"parameters\": {p}"));
                }
                if let Some(s) = signature {
                    members.push(format!("\"signature\": {s}"));
                }
                if let Some(src) = source {
                    members.push("\"checksum_level\": \"deep\"".to_owned());
                    members.push(format!("\"source_code\": {src}"));
                }
                // I-62: a sub-agent marker, which neither oracle hashes.
                if let Some(b) = is_agent {
                    members.push(format!("\"is_agent\": {b}"));
                }
                (name, format!("{{{}}}", members.join(", ")))
            },
        )
}

fn spec_text() -> impl Strategy<Value = String> {
    (
        "[A-Za-z0-9][A-Za-z0-9._-]{0,20}",
        any::<bool>(),
        prompt(),
        prop::collection::vec(tool(), 0..6),
        prop::option::of(object_text()),
    )
        .prop_map(|(id, template, prompt, tools, config)| {
            let mut seen = std::collections::HashSet::new();
            let tools: Vec<String> = tools
                .into_iter()
                .filter(|(name, _)| seen.insert(name.clone()))
                .map(|(_, t)| t)
                .collect();
            let key = if template {
                "prompt_template"
            } else {
                "prompt"
            };
            let mut s = format!(
                "{{\"agent_id\": \"{id}\", \"{key}\": {}, \"tools\": [{}]",
                serde_json::to_string(&prompt).unwrap(),
                tools.join(", ")
            );
            if let Some(c) = config {
                s.push_str(&format!(", \"configuration\": {c}"));
            }
            s.push('}');
            s
        })
}

/// The input-model mapping shared by both oracles (our spec format: defaults
/// for absent members), then each profile's component object.
const PY_SPEC: &str = r#"
import json, sys, hashlib, math
def tools_of(spec):
    return spec["tools"]
def prompt_of(spec):
    return spec["prompt"] if "prompt" in spec else spec["prompt_template"]
def overflows(v):
    # A float literal that json.loads turned into +/-inf, anywhere in the document.
    if isinstance(v, float):
        return math.isinf(v)
    if isinstance(v, list):
        return any(overflows(x) for x in v)
    if isinstance(v, dict):
        return any(overflows(x) for x in v.values())
    return False
"#;

#[test]
fn s5_3_2_python_ref_profile_matches_cpython_json_dumps() {
    let seed = seed();
    let cases = generate(&spec_text(), CASES, seed);
    // The draft's §5.3.2 compute_agent_checksum, with the spec read by json.loads.
    let script = format!(
        r#"{PY_NORMALIZE_PROMPT}
{PY_SPEC}
out = []
for text in json.load(sys.stdin):
    spec = json.loads(text)
    components = {{
        "id": spec["agent_id"],
        "prompt": normalize_prompt(prompt_of(spec)),
        "tools": sorted([
            dict({{"name": t["name"], "signature": t.get("signature"), "description": t.get("description", "")}},
                 **({{"source_code": t["source_code"]}} if t.get("checksum_level") == "deep" else {{}}))
            for t in tools_of(spec)], key=lambda x: x["name"]),
        # I-61: the deployed reference code (hypernome/patchet) hashes {{}} when absent.
        "config": spec.get("configuration") if spec.get("configuration") is not None else {{}},
    }}
    content = json.dumps(components, sort_keys=True)
    out.append([content, hashlib.sha256(content.encode("utf-8")).hexdigest(), overflows(spec)])
print(json.dumps(out))
"#
    );
    let Some(expected) = run_python(&script, &[], &serde_json::to_value(&cases).unwrap()) else {
        return;
    };
    let expected: Vec<(String, String, bool)> = serde_json::from_value(expected).unwrap();
    let mut overflow = 0;
    for (text, (canonical, digest, overflows)) in cases.iter().zip(&expected) {
        let ctx = format!(
            "spec {text}; reproduce with AJWT_SEED={}",
            hex::encode(seed)
        );
        match compute_json(text.as_bytes(), Profile::PythonRef) {
            Ok(got) => {
                assert!(!overflows, "CPython saw a number overflow to inf; {ctx}");
                let got_text = String::from_utf8(got.canonical).unwrap();
                assert!(
                    got_text == *canonical,
                    "{}; {ctx}",
                    first_difference(&got_text, canonical)
                );
                assert_eq!(
                    got.checksum.to_string(),
                    format!("sha256:{digest}"),
                    "{ctx}"
                );
            }
            Err(e) => {
                // Our one refusal: a literal that overflows a double anywhere in
                // the document (CPython would read inf and print the non-JSON
                // token Infinity if it is hashed).
                assert_eq!(e.kind(), ErrorKind::NumberOutOfRange, "{e}; {ctx}");
                assert!(overflows, "{e}; {ctx}");
                overflow += 1;
            }
        }
    }
    assert!(
        overflow < CASES / 2,
        "generator should mostly produce finite numbers"
    );
}

#[test]
fn s5_3_1_jcs_profile_matches_python_jcs_package() {
    let seed = seed();
    let cases = generate(&spec_text(), CASES, seed);
    // §5.3.1 components, canonicalized by the `jcs` package (RFC 8785 reference
    // code in Python); integers become doubles only when exactly representable.
    let script = format!(
        r#"{PY_NORMALIZE_PROMPT}
{PY_SPEC}
import jcs
class Refused(Exception):
    pass
def doubles(v, errors):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        try:
            f = float(v)
        except OverflowError:
            errors.add("unrepresentable_number"); return 0.0
        if f != v:
            errors.add("unrepresentable_number")
        return f
    if isinstance(v, float):
        return v
    if isinstance(v, list):
        return [doubles(x, errors) for x in v]
    return {{k: doubles(x, errors) for k, x in v.items()}}
out = []
for text in json.load(sys.stdin):
    spec = json.loads(text)
    errors = set()
    if overflows(spec):
        errors.add("number_out_of_range")
    tools = []
    for t in tools_of(spec):
        d = {{"name": t["name"], "description": t.get("description", ""),
              "parameters": doubles(t.get("parameters", {{}}), errors)}}
        if t.get("checksum_level") == "deep":
            d["source_code"] = t["source_code"]
        tools.append(d)
    components = {{
        "agent_id": spec["agent_id"],
        "prompt_template": normalize_prompt(prompt_of(spec)),
        "tools": sorted(tools, key=lambda x: x["name"]),
        "configuration": doubles(spec.get("configuration") or {{}}, errors),
    }}
    if errors:
        out.append({{"errors": sorted(errors)}})
        continue
    canonical = jcs.canonicalize(components)
    out.append({{"canonical": canonical.decode("utf-8"), "sha256": hashlib.sha256(canonical).hexdigest()}})
print(json.dumps(out))
"#
    );
    let Some(expected) = run_python(&script, &["jcs"], &serde_json::to_value(&cases).unwrap())
    else {
        return;
    };
    let expected: Vec<serde_json::Value> = serde_json::from_value(expected).unwrap();
    let mut valid = 0;
    for (text, want) in cases.iter().zip(&expected) {
        let ctx = format!(
            "spec {text}; reproduce with AJWT_SEED={}",
            hex::encode(seed)
        );
        match (
            compute_json(text.as_bytes(), Profile::Jcs),
            want.get("errors"),
        ) {
            (Ok(got), None) => {
                assert_eq!(
                    String::from_utf8(got.canonical).unwrap(),
                    want["canonical"].as_str().unwrap(),
                    "{ctx}"
                );
                assert_eq!(
                    got.checksum.to_hex(),
                    want["sha256"].as_str().unwrap(),
                    "{ctx}"
                );
                valid += 1;
            }
            (Err(e), Some(errors)) => {
                let kinds: Vec<&str> = errors
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .collect();
                assert!(
                    kinds.contains(&e.kind().as_str()),
                    "{e} not in {kinds:?}; {ctx}"
                );
            }
            (got, _) => panic!("ours {got:?} vs CPython {want}; {ctx}"),
        }
    }
    assert!(
        valid > CASES / 3,
        "most generated specs should be valid, got {valid}"
    );
}
