//! Targets over the pure decoders: agent specifications and their checksums
//! (§5.2, §5.3), JCS (RFC 8785), token requests (§4.2.1) and registrations
//! (§5.4, §6.3).

use ajwt_checksum::json::parse_strict;
use ajwt_checksum::{compute_json, jcs_canonicalize, AgentChecksum, ErrorKind, Profile};
use ajwt_protocol::claims::Audience;
use ajwt_protocol::limits::{
    MAX_ALLOWED_SCOPES, MAX_AUDIENCES, MAX_AUDIENCE_LEN, MAX_CHAIN, MAX_COMPLETED_STEPS,
    MAX_SCOPES, MAX_SCOPE_LEN, MAX_WORKFLOW_STEPS,
};
use ajwt_protocol::registration::{
    decode_agent_registration, decode_workflow_registration, validate_workflow,
};
use ajwt_protocol::wire::{decode_token_request, decode_token_request_form, TokenRequest};
use serde::Deserialize as _;
use std::collections::HashSet;

/// §5.2/§5.3: an agent specification read strictly and checksummed under
/// both profiles. When one is accepted: the checksum is SHA-256 of the
/// canonical bytes (recomputed here with `AgentChecksum::digest` over the
/// returned bytes), the computation is deterministic, the canonical bytes are
/// strict JSON, and a `jcs` canonical form that is itself a specification
/// canonicalizes to itself (a fixed point: nothing the canonical form says is
/// lost or changed by reading it again).
pub fn agent_spec(data: &[u8]) -> bool {
    let mut accepted = false;
    for profile in [Profile::Jcs, Profile::PythonRef] {
        let Ok(out) = compute_json(data, profile) else {
            continue;
        };
        accepted = true;
        assert_eq!(out.checksum, AgentChecksum::digest(&out.canonical));
        let again = compute_json(data, profile).expect("deterministic acceptance");
        assert_eq!(
            again.canonical, out.canonical,
            "deterministic canonical form"
        );
        parse_strict(&out.canonical).expect("canonical bytes are strict JSON");
        if profile == Profile::Jcs {
            // A spec with deep tools canonicalizes to something that is no
            // longer a spec (`checksum_level` is not hashed, `source_code`
            // is); every canonical form that is one must be a fixed point.
            if let Ok(round) = compute_json(&out.canonical, profile) {
                assert_eq!(
                    round.canonical, out.canonical,
                    "canonical form is a fixed point"
                );
            }
        }
    }
    accepted
}

/// RFC 8785 (§5.3.1): any strict JSON value that canonicalizes gives UTF-8
/// JSON that serde_json reads, and canonicalizing that again gives the same
/// bytes (idempotence; the one documented exception is in I-9); serde_jcs, the independent canonicalizer, agrees
/// with us on the re-read value.
pub fn jcs(data: &[u8]) -> bool {
    let Ok(value) = parse_strict(data) else {
        return false;
    };
    let Ok(canonical) = jcs_canonicalize(&value) else {
        return false;
    };
    let text = std::str::from_utf8(&canonical).expect("canonical JSON is UTF-8");
    // Our reader bounds nesting (I-10); serde_json's own limit is lower.
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let reread = serde_json::Value::deserialize(&mut de).expect("serde_json reads it");
    let strict = parse_strict(&canonical).expect("strict reader reads it");
    match jcs_canonicalize(&strict) {
        Ok(twice) => assert_eq!(twice, canonical, "JCS is idempotent"),
        // I-9: an exact large integer is written in its shortest form
        // (2^68 as 295147905179352830000), which is refused when read back.
        Err(e) if e.kind() == ErrorKind::UnrepresentableNumber => {}
        Err(e) => panic!("the canonical form does not canonicalize: {e}"),
    }
    let oracle = serde_jcs::to_vec(&reread).expect("serde_jcs serializes");
    assert_eq!(oracle, canonical, "serde_jcs agrees");
    true
}

/// §4.2.1: token-request bodies as JSON (first byte even) or as a form (odd;
/// the byte is dropped either way). An accepted request respects every
/// decode-time limit of `ajwt_protocol::limits` (I-66) and its scopes are
/// distinct.
pub fn token_request(data: &[u8]) -> bool {
    let Some((&mode, body)) = data.split_first() else {
        return false;
    };
    let decoded = if mode % 2 == 0 {
        decode_token_request(body)
    } else {
        decode_token_request_form(body)
    };
    if let Ok(request) = &decoded {
        check_request(request);
    }
    decoded.is_ok()
}

fn check_request(r: &TokenRequest) {
    assert!(r.requested_scopes.len() <= MAX_SCOPES, "scope count");
    assert!(r.requested_scopes.iter().all(|s| s.len() <= MAX_SCOPE_LEN));
    let distinct: HashSet<&String> = r.requested_scopes.iter().collect();
    assert_eq!(distinct.len(), r.requested_scopes.len(), "scopes distinct");
    let audiences: Vec<&String> = match &r.audience {
        Audience::One(a) => vec![a],
        Audience::Many(v) => v.iter().collect(),
    };
    assert!(audiences.len() <= MAX_AUDIENCES, "audience count");
    assert!(audiences.iter().all(|a| a.len() <= MAX_AUDIENCE_LEN));
    assert!(
        r.delegation_context.chain.len() <= MAX_CHAIN,
        "chain length"
    );
    assert!(r.delegation_context.completed_steps.len() <= MAX_COMPLETED_STEPS);
}

/// §6.3 and §5.4: workflow registration (first byte even) or agent
/// registration (odd). An accepted workflow validates and respects the step
/// and scope limits; an accepted agent registration checksums under its
/// profile and respects the `allowed_scopes` limit.
pub fn registration(data: &[u8]) -> bool {
    let Some((&mode, body)) = data.split_first() else {
        return false;
    };
    if mode % 2 == 0 {
        let Ok(w) = decode_workflow_registration(body) else {
            return false;
        };
        assert!(w.steps.len() <= MAX_WORKFLOW_STEPS, "step count");
        let ids: HashSet<&String> = w.steps.iter().map(|s| &s.step_id).collect();
        assert_eq!(ids.len(), w.steps.len(), "step ids distinct");
        for s in &w.steps {
            let n = s.scopes.as_ref().map_or(0, Vec::len);
            assert!(n <= MAX_SCOPES, "step scope count");
        }
        validate_workflow(&w).is_ok()
    } else {
        let Ok(r) = decode_agent_registration(body) else {
            return false;
        };
        let n = r.allowed_scopes.as_ref().map_or(0, Vec::len);
        assert!(n <= MAX_ALLOWED_SCOPES, "allowed_scopes count");
        ajwt_checksum::compute(&r.spec, r.checksum_profile).is_ok()
    }
}
