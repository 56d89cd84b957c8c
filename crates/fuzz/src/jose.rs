//! Targets over the JOSE core and the verifier: intent-token verification
//! (§6.5.3, RFC 8725), DPoP proofs (RFC 9449 §4.3) and key parsing (RFC 7517,
//! RFC 7638, SPKI and PKCS#8 PEM).
//!
//! The keys are fixed test keys (`crates/fuzz/fixtures/*.pem`, throw-away
//! P-256 keys made with `openssl genpkey` for this purpose only) so that the
//! committed seeds — tokens and proofs signed by PyJWT with the same keys,
//! see `seeds.py` — are valid and the fuzzer starts from inputs that reach
//! every check. The clock is fixed at [`NOW`], the time the seeds are made for.

use std::sync::{Arc, OnceLock};

use ajwt_jose::dpop::{verify_dpop_proof, DpopCheck};
use ajwt_jose::{jwk_thumbprint, Alg, JwkSet, PublicKey, SigningKey};
use ajwt_json::parse_object;
use ajwt_protocol::claims::Audience;
use ajwt_protocol::clock::FixedClock;
use ajwt_verifier::verify::{
    InMemoryReplayCache, PopPolicy, RequestParts, Requirements, Verifier, VerifierConfig,
};
use ajwt_verifier::KeySource;
use serde_json::{Map, Value};

/// The fixed time of the intent-token and DPoP targets (Unix seconds).
pub const NOW: i64 = 1_800_000_000;
/// Issuer the intent-token verifier trusts.
pub const ISSUER: &str = "https://idp.example.com";
/// Audience of the intent-token verifier.
pub const AUDIENCE: &str = "https://api.example.com";
/// Request URL of the resource the tokens are presented to.
pub const URL: &str = "https://api.example.com/repos/patch";
/// Separator between a raw protected header and its payload in inputs.
const SEP: u8 = 0xff;

struct Fixtures {
    issuer: SigningKey,
    agent: SigningKey,
    jwks: JwkSet,
    rt: tokio::runtime::Runtime,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let issuer =
            SigningKey::from_pkcs8_pem(include_bytes!("../fixtures/issuer-es256.pem"), Alg::Es256)
                .expect("issuer fixture key");
        let agent =
            SigningKey::from_pkcs8_pem(include_bytes!("../fixtures/agent-es256.pem"), Alg::Es256)
                .expect("agent fixture key");
        // The issuer's JWK Set names its key by its RFC 7638 thumbprint.
        let mut jwk = issuer.public_jwk();
        jwk.insert("kid".into(), issuer.thumbprint().into());
        let set = serde_json::json!({ "keys": [jwk] }).to_string();
        let (jwks, _) = JwkSet::parse(set.as_bytes()).expect("fixture JWK Set");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        Fixtures {
            issuer,
            agent,
            jwks,
            rt,
        }
    })
}

/// Splits `data` at the first [`SEP`] into a raw header and a payload.
fn split_header(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == SEP) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// §6.5.3 / RFC 8725: the first byte picks how the rest becomes a request.
/// 0: the rest is the `Authorization` value's token, with a DPoP proof from
/// the fixed agent key; 1: the rest is a payload the issuer key signs under
/// `{typ: JWT, alg: ES256, kid}`, presented with a valid proof; 2: the rest
/// is `header 0xFF payload`, signed as is (hostile headers with a valid
/// signature); 3: as 1, presented as a bearer token. An accepted token has
/// the trusted issuer, our audience, an unexpired `exp` and, under DPoP, a
/// `cnf` that is the proof key.
pub fn intent_token(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let f = fixtures();
    let token = match mode % 4 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 | 3 => {
            let mut header = Map::new();
            header.insert("typ".into(), "JWT".into());
            header.insert("kid".into(), f.issuer.thumbprint().into());
            f.issuer.sign_compact(&header, rest).expect("signing")
        }
        _ => {
            let (header, payload) = split_header(rest);
            f.issuer.sign_raw(header, payload).expect("signing")
        }
    };
    let bearer = mode % 4 == 3;
    let mut config = VerifierConfig::new(ISSUER, AUDIENCE);
    config.pop = if bearer {
        PopPolicy::Disabled
    } else {
        PopPolicy::Required
    };
    let verifier = Verifier::new(config, KeySource::from_jwks(f.jwks.clone()))
        .with_clock(Arc::new(FixedClock(NOW)))
        .with_replay_cache(Arc::new(InMemoryReplayCache::new(64)));
    let proof = f
        .agent
        .proof("GET", URL, Some(&token), None, NOW)
        .expect("proof");
    let authorization = if bearer {
        format!("Bearer {token}")
    } else {
        format!("DPoP {token}")
    };
    let auth = [authorization.as_str()];
    let dpop = [proof.as_str()];
    let parts = RequestParts {
        method: "GET",
        url: URL,
        authorization: &auth,
        dpop: if bearer { &[] } else { &dpop },
    };
    let verified =
        f.rt.block_on(verifier.verify(&parts, &Requirements::default()));
    let Ok(v) = verified else {
        return false;
    };
    {
        let c = &v.claims;
        assert_eq!(c.iss, ISSUER, "issuer");
        let audiences = match &c.aud {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(v) => v.clone(),
        };
        assert!(audiences.iter().any(|a| a == AUDIENCE), "audience");
        assert!(c.exp > NOW - 30, "expired token accepted");
        if !bearer {
            assert_eq!(
                v.dpop_jkt.as_deref(),
                Some(f.agent.thumbprint().as_str()),
                "proof key"
            );
        }
    }
    true
}

/// RFC 9449 §4.3: the first byte picks the form. 0: the rest is the proof;
/// 1: the rest is a payload signed by the fixed agent key under
/// `{typ: dpop+jwt, alg: ES256, jwk}`; 2: `header 0xFF payload` signed as is.
/// The check expects `GET` on [`URL`], `ath` of a fixed token, and (odd
/// second byte) the agent key's thumbprint and a nonce. An accepted proof's
/// `jkt` is the RFC 7638 thumbprint of the key that verifies it.
pub fn dpop_proof(data: &[u8]) -> bool {
    let [mode, flags, rest @ ..] = data else {
        return false;
    };
    let f = fixtures();
    let proof = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => {
            let mut header = Map::new();
            header.insert("typ".into(), "dpop+jwt".into());
            header.insert("jwk".into(), Value::Object(f.agent.public_jwk()));
            f.agent.sign_compact(&header, rest).expect("signing")
        }
        _ => {
            let (header, payload) = split_header(rest);
            f.agent.sign_raw(header, payload).expect("signing")
        }
    };
    let strict = flags % 2 == 1;
    let jkt = f.agent.thumbprint();
    let check = DpopCheck {
        method: "GET",
        url: URL,
        access_token: Some("fuzz-access-token"),
        expected_jkt: strict.then_some(jkt.as_str()),
        now: NOW,
        max_age: 60,
        leeway: 5,
        nonce: strict.then_some("fuzz-nonce"),
        allowed: &Alg::ALL,
        max_len: 16 * 1024,
    };
    let Ok(verified) = verify_dpop_proof(&proof, &check) else {
        return false;
    };
    if strict || mode % 3 == 1 {
        assert_eq!(verified.jkt, jkt, "proof key thumbprint");
    }
    assert!(!verified.jti.is_empty(), "jti");
    true
}

/// RFC 7517 / RFC 7638 / PEM: the first byte picks the parser. 0: a JWK
/// (accepted keys have the RFC 7638 thumbprint of their public members, and
/// survive JWK → SPKI PEM → key with the same thumbprint); 1: an SPKI PEM;
/// 2: a JWK Set; 3: a PKCS#8 private key under the algorithm of the second
/// byte (an accepted key signs, and its public key verifies the signature).
pub fn keys(data: &[u8]) -> bool {
    let [mode, rest @ ..] = data else {
        return false;
    };
    match mode % 4 {
        0 => {
            let Ok(jwk) = parse_object(rest) else {
                return false;
            };
            PublicKey::from_jwk(&jwk).map(|k| round_trip(&k)).is_ok()
        }
        1 => PublicKey::from_spki_pem(&String::from_utf8_lossy(rest))
            .map(|k| round_trip(&k))
            .is_ok(),
        2 => match JwkSet::parse(rest) {
            Ok((set, _skipped)) => {
                set.keys().iter().for_each(round_trip);
                !set.is_empty()
            }
            Err(_) => false,
        },
        _ => {
            let Some((&which, pem)) = rest.split_first() else {
                return false;
            };
            let alg = Alg::ALL[usize::from(which) % Alg::ALL.len()];
            let Ok(key) = SigningKey::from_pkcs8_pem(pem, alg) else {
                return false;
            };
            {
                let token = key
                    .sign_jws("JWT", &Map::new())
                    .expect("an accepted key signs");
                let jws = ajwt_jose::CompactJws::parse(&token, 1 << 16).expect("own token parses");
                jws.verify_with(key.public_key(), &[alg])
                    .expect("own signature verifies");
            }
            true
        }
    }
}

fn round_trip(key: &PublicKey) {
    let public = key.public_members();
    let thumbprint = jwk_thumbprint(&public).expect("thumbprint of an accepted key");
    assert_eq!(thumbprint, key.thumbprint(), "RFC 7638 thumbprint");
    let again = PublicKey::from_jwk(&public).expect("public members re-read");
    assert_eq!(again.thumbprint(), key.thumbprint());
    if let Ok(pem) = key.to_spki_pem() {
        let back = PublicKey::from_spki_pem(&pem).expect("own PEM re-read");
        assert_eq!(back.thumbprint(), key.thumbprint(), "PEM round trip");
    }
}
