//! RFC 8785 (JCS) conformance of the `jcs` profile's serializer (§5.3.1):
//! the cyberphone reference corpus and the ES6 number-serialization sequence,
//! both independent of this code (see conformance/vectors/external/jcs-cyberphone).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use ajwt_checksum::jcs_canonicalize;
use ajwt_checksum::json::{parse_strict, Number, Value};
use sha2::{Digest, Sha256};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance/vectors/external/jcs-cyberphone")
}

#[test]
fn s5_3_1_rfc8785_cyberphone_corpus_matches_byte_for_byte() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus().join("input")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        let input = std::fs::read(&path).unwrap();
        let expected = std::fs::read(corpus().join("output").join(&name)).unwrap();
        let got = jcs_canonicalize(&parse_strict(&input).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name:?}"
        );
        let outhex = std::fs::read_to_string(
            corpus()
                .join("outhex")
                .join(name.to_string_lossy().replace(".json", ".txt")),
        )
        .unwrap();
        let hex_bytes: Vec<u8> = outhex
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        assert_eq!(got, hex_bytes, "{name:?} (outhex)");
        n += 1;
    }
    assert_eq!(n, 6, "all six corpus files were checked");
}

/// The first values of the ES6 test sequence (UPSTREAM-README.md, `staticU64s`).
const STATIC_U64S: [u64; 168] = [
    0x0000000000000000,
    0x8000000000000000,
    0x0000000000000001,
    0x8000000000000001,
    0xc46696695dbd1cc3,
    0xc43211ede4974a35,
    0xc3fce97ca0f21056,
    0xc3c7213080c1a6ac,
    0xc39280f39a348556,
    0xc35d9b1f5d20d557,
    0xc327af4c4a80aaac,
    0xc2f2f2a36ecd5556,
    0xc2be51057e155558,
    0xc28840d131aaaaac,
    0xc253670dc1555557,
    0xc21f0b4935555557,
    0xc1e8d5d42aaaaaac,
    0xc1b3de4355555556,
    0xc17fca0555555556,
    0xc1496e6aaaaaaaab,
    0xc114585555555555,
    0xc0e046aaaaaaaaab,
    0xc0aa0aaaaaaaaaaa,
    0xc074d55555555555,
    0xc040aaaaaaaaaaab,
    0xc00aaaaaaaaaaaab,
    0xbfd5555555555555,
    0xbfa1111111111111,
    0xbf6b4e81b4e81b4f,
    0xbf35d867c3ece2a5,
    0xbf0179ec9cbd821e,
    0xbecbf647612f3696,
    0xbe965e9f80f29212,
    0xbe61e54c672874db,
    0xbe2ca213d840baf8,
    0xbdf6e80fe033c8c6,
    0xbdc2533fe68fd3d2,
    0xbd8d51ffd74c861c,
    0xbd5774ccac3d3817,
    0xbd22c3d6f030f9ac,
    0xbcee0624b3818f79,
    0xbcb804ea293472c7,
    0xbc833721ba905bd3,
    0xbc4ebe9c5db3c61e,
    0xbc18987d17c304e5,
    0xbbe3ad30dfcf371d,
    0xbbaf7b816618582f,
    0xbb792f9ab81379bf,
    0xbb442615600f9499,
    0xbb101e77800c76e1,
    0xbad9ca58cce0be35,
    0xbaa4a1e0a3e6fe90,
    0xba708180831f320d,
    0xba3a68cd9e985016,
    0x446696695dbd1cc3,
    0x443211ede4974a35,
    0x43fce97ca0f21056,
    0x43c7213080c1a6ac,
    0x439280f39a348556,
    0x435d9b1f5d20d557,
    0x4327af4c4a80aaac,
    0x42f2f2a36ecd5556,
    0x42be51057e155558,
    0x428840d131aaaaac,
    0x4253670dc1555557,
    0x421f0b4935555557,
    0x41e8d5d42aaaaaac,
    0x41b3de4355555556,
    0x417fca0555555556,
    0x41496e6aaaaaaaab,
    0x4114585555555555,
    0x40e046aaaaaaaaab,
    0x40aa0aaaaaaaaaaa,
    0x4074d55555555555,
    0x4040aaaaaaaaaaab,
    0x400aaaaaaaaaaaab,
    0x3fd5555555555555,
    0x3fa1111111111111,
    0x3f6b4e81b4e81b4f,
    0x3f35d867c3ece2a5,
    0x3f0179ec9cbd821e,
    0x3ecbf647612f3696,
    0x3e965e9f80f29212,
    0x3e61e54c672874db,
    0x3e2ca213d840baf8,
    0x3df6e80fe033c8c6,
    0x3dc2533fe68fd3d2,
    0x3d8d51ffd74c861c,
    0x3d5774ccac3d3817,
    0x3d22c3d6f030f9ac,
    0x3cee0624b3818f79,
    0x3cb804ea293472c7,
    0x3c833721ba905bd3,
    0x3c4ebe9c5db3c61e,
    0x3c18987d17c304e5,
    0x3be3ad30dfcf371d,
    0x3baf7b816618582f,
    0x3b792f9ab81379bf,
    0x3b442615600f9499,
    0x3b101e77800c76e1,
    0x3ad9ca58cce0be35,
    0x3aa4a1e0a3e6fe90,
    0x3a708180831f320d,
    0x3a3a68cd9e985016,
    0x4024000000000000,
    0x4014000000000000,
    0x3fe0000000000000,
    0x3fa999999999999a,
    0x3f747ae147ae147b,
    0x3f40624dd2f1a9fc,
    0x3f0a36e2eb1c432d,
    0x3ed4f8b588e368f1,
    0x3ea0c6f7a0b5ed8d,
    0x3e6ad7f29abcaf48,
    0x3e35798ee2308c3a,
    0x3ed539223589fa95,
    0x3ed4ff26cd5a7781,
    0x3ed4f95a762283ff,
    0x3ed4f8c60703520c,
    0x3ed4f8b72f19cd0d,
    0x3ed4f8b5b31c0c8d,
    0x3ed4f8b58d1c461a,
    0x3ed4f8b5894f7f0e,
    0x3ed4f8b588ee37f3,
    0x3ed4f8b588e47da4,
    0x3ed4f8b588e3849c,
    0x3ed4f8b588e36bb5,
    0x3ed4f8b588e36937,
    0x3ed4f8b588e368f8,
    0x3ed4f8b588e368f1,
    0x3ff0000000000000,
    0xbff0000000000000,
    0xbfeffffffffffffa,
    0xbfeffffffffffffb,
    0x3feffffffffffffa,
    0x3feffffffffffffb,
    0x3feffffffffffffc,
    0x3feffffffffffffe,
    0xbfefffffffffffff,
    0xbfefffffffffffff,
    0x3fefffffffffffff,
    0x3fefffffffffffff,
    0x3fd3333333333332,
    0x3fd3333333333333,
    0x3fd3333333333334,
    0x0010000000000000,
    0x000ffffffffffffd,
    0x000fffffffffffff,
    0x7fefffffffffffff,
    0xffefffffffffffff,
    0x4340000000000000,
    0xc340000000000000,
    0x4430000000000000,
    0x44b52d02c7e14af5,
    0x44b52d02c7e14af6,
    0x44b52d02c7e14af7,
    0x444b1ae4d6e2ef4e,
    0x444b1ae4d6e2ef4f,
    0x444b1ae4d6e2ef50,
    0x3eb0c6f7a0b5ed8c,
    0x3eb0c6f7a0b5ed8d,
    0x41b3de4355555553,
    0x41b3de4355555554,
    0x41b3de4355555555,
    0x41b3de4355555556,
    0x41b3de4355555557,
    0xbecbf647612f3696,
    0x43143ff3c1cb0959,
];

/// The deterministic ES6 test sequence of UPSTREAM-README.md.
struct Es6Numbers {
    idx: usize,
    block: [u8; 32],
    data: Vec<f64>,
}

impl Iterator for Es6Numbers {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        let i = self.idx;
        self.idx += 1;
        if i < STATIC_U64S.len() {
            return Some(f64::from_bits(STATIC_U64S[i]));
        }
        if i < STATIC_U64S.len() + 2000 {
            return Some(f64::from_bits(
                0x0010000000000000 + (i - STATIC_U64S.len()) as u64,
            ));
        }
        loop {
            if self.data.is_empty() {
                self.block = Sha256::digest(self.block).into();
                // Float64Array over the block: little-endian on every JS engine in use.
                self.data = self
                    .block
                    .chunks_exact(8)
                    .rev()
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
            }
            let f = self.data.pop().unwrap();
            if f != 0.0 && f.is_finite() {
                return Some(f);
            }
        }
    }
}

/// Canonicalizes `f` the way the checksum code does: from a JSON number literal
/// (Rust's shortest round-trip spelling) through the `jcs` profile's serializer.
fn jcs_text(f: f64) -> String {
    let literal = format!("{f:e}");
    let number = Number::from_literal(&literal).unwrap();
    String::from_utf8(jcs_canonicalize(&Value::Number(number)).unwrap()).unwrap()
}

#[test]
fn s5_3_1_es6_number_serialization_matches_published_hashes() {
    // (lines, SHA-256 of the first `lines` lines) from UPSTREAM-README.md.
    let checkpoints: &[(usize, &str)] = &[
        (
            1_000,
            "be18b62b6f69cdab33a7e0dae0d9cfa869fda80ddc712221570f9f40a5878687",
        ),
        (
            10_000,
            "b9f7a8e75ef22a835685a52ccba7f7d6bdc99e34b010992cbc5864cd12be6892",
        ),
        (
            100_000,
            "22776e6d4b49fa294a0d0f349268e5c28808fe7e0cb2bcbe28f63894e494d4c7",
        ),
        (
            1_000_000,
            "49415fee2c56c77864931bd3624faad425c3c577d6d74e89a83bc725506dad16",
        ),
        (
            10_000_000,
            "b9f8a44a91d46813b21b9602e72f112613c91408db0b8341fb94603d9db135e0",
        ),
        (
            100_000_000,
            "0f7dda6b0837dde083c5d6b896f7d62340c8a2415b0c7121d83145e08a755272",
        ),
    ];
    // 1M lines take a few seconds; AJWT_ES6_FULL=1 runs all 100M (minutes, release).
    let limit = if std::env::var_os("AJWT_ES6_FULL").is_some() {
        6
    } else {
        4
    };
    let mut hasher = Sha256::new();
    let mut numbers = Es6Numbers {
        idx: 0,
        block: [0; 32],
        data: Vec::new(),
    };
    let mut done = 0;
    for &(lines, expected) in &checkpoints[..limit] {
        while done < lines {
            let f = numbers.next().unwrap();
            hasher.update(format!("{:x},{}\n", f.to_bits(), jcs_text(f)));
            done += 1;
        }
        assert_eq!(
            hex::encode(hasher.clone().finalize()),
            expected,
            "first {lines} lines"
        );
    }
}

#[test]
fn s5_3_1_es6_sample_lines_from_upstream_readme() {
    for (bits, expected) in [
        (0x4340000000000001u64, "9007199254740994"),
        (0x4340000000000002, "9007199254740996"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x8000000000000000, "0"),
        (0, "0"),
    ] {
        assert_eq!(jcs_text(f64::from_bits(bits)), expected, "{bits:x}");
    }
}

/// RFC 8785 Appendix B: IEEE-754 bit patterns and their canonical text
/// (the RFC's table; cross-checked with the Python `jcs` package).
#[test]
fn s5_3_1_rfc8785_appendix_b_numbers() {
    let rows: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, expected) in rows {
        assert_eq!(jcs_text(f64::from_bits(*bits)), *expected, "{bits:016x}");
    }
}

/// RFC 8785 §3.2.3: members sorted by UTF-16 code units (the emoji, a
/// surrogate pair D83D DE00, sorts before U+FB33 although its code point is larger).
#[test]
fn s5_3_1_rfc8785_section_3_2_3_sorting_example() {
    let input = r#"{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let got = jcs_canonicalize(&parse_strict(input.as_bytes()).unwrap()).unwrap();
    let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1F600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(String::from_utf8(got).unwrap(), expected);
}
