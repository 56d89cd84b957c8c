//! Sequence hashes of the intent token (§4.4.4): `delegation_chain` and
//! `step_sequence_hash`, each the first 16 hex digits of SHA-256 over
//! pipe-joined identifiers.

use sha2::{Digest, Sha256};

/// `hex(SHA-256(join("|", items)))[..16]` (§4.4.4).
pub fn truncated_sha256<S: AsRef<str>>(items: &[S]) -> String {
    let mut h = Sha256::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            h.update(b"|");
        }
        h.update(item.as_ref().as_bytes());
    }
    let digest = h.finalize();
    // The first 8 bytes give the 16 hex digits.
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// The full delegation chain of a request: the request's `chain` with the
/// requesting agent appended unless it is already the last element (§4.2.2
/// shows the agent inside the chain, §6.6.3 outside it; see
/// spec/interpretation.md I-16).
pub fn full_chain<'a>(chain: &'a [String], agent_id: &'a str) -> Vec<&'a str> {
    let mut out: Vec<&str> = chain.iter().map(String::as_str).collect();
    if out.last() != Some(&agent_id) {
        out.push(agent_id);
    }
    out
}

/// The `intent.delegation_chain` claim (§4.4.4): hash of the full chain.
pub fn delegation_chain_hash(chain: &[String], agent_id: &str) -> String {
    truncated_sha256(&full_chain(chain, agent_id))
}

/// The `intent.step_sequence_hash` claim (§4.4.4): hash of
/// `completed_steps + [workflow_step]`, or of `completed_steps` alone when the
/// request has no workflow step.
pub fn step_sequence_hash(completed_steps: &[String], workflow_step: Option<&str>) -> String {
    let mut steps: Vec<&str> = completed_steps.iter().map(String::as_str).collect();
    if let Some(step) = workflow_step {
        steps.push(step);
    }
    truncated_sha256(&steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    // Expected values: python3 -c 'import hashlib; print(hashlib.sha256(b"...").hexdigest()[:16])'
    #[test]
    fn s4_4_4_draft_examples_real_values() {
        // The draft prints f3e8d9c7b2a41a3c and a7c9e2f4b8d61c3f, which are not
        // the SHA-256 of these inputs (spec/interpretation.md I-17).
        assert_eq!(
            truncated_sha256(&["supervisor", "planner", "patcher"]),
            "e2b0bb2db17839e8"
        );
        assert_eq!(
            truncated_sha256(&["step_1_analyze", "step_2_plan", "step_3_patch"]),
            "bed72404ae7c18e8"
        );
    }

    #[test]
    fn s4_4_4_chain_with_or_without_requesting_agent() {
        let outside = v(&["supervisor-agent", "patch-planner"]);
        let inside = v(&[
            "supervisor-agent",
            "patch-planner",
            "vulnerability-patcher-v1",
        ]);
        assert_eq!(
            delegation_chain_hash(&outside, "vulnerability-patcher-v1"),
            delegation_chain_hash(&inside, "vulnerability-patcher-v1")
        );
        assert_eq!(full_chain(&[], "a"), vec!["a"]);
        assert_eq!(step_sequence_hash(&[], None), truncated_sha256::<&str>(&[]));
        assert_eq!(
            step_sequence_hash(&v(&["a"]), Some("b")),
            truncated_sha256(&["a", "b"])
        );
    }
}
