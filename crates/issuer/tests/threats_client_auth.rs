//! Unauthenticated memory and CPU exhaustion through client authentication
//! (issue 12 defect 1, spec I-72). Before: every wrong or unknown client
//! secret ran Argon2id (19 MiB) on a blocking thread, unbounded; 200
//! concurrent bad requests took the server to 12 GB. Now generated secrets
//! are checked as SHA-256 digests in constant time, and the Argon2 hashes
//! that remain (operator-chosen secrets, hashes from earlier versions) run at
//! most one per core with a short queue, past which the answer is 503 with
//! `Retry-After`. The server runs in this process, so its peak resident set
//! is this process's: one test in this binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use ajwt_issuer::secrets;
use ajwt_issuer::service::ClientCredentials;
use ajwt_issuer::store::ClientRecord;
use ajwt_test_kit::RunningIssuer;
use base64::Engine as _;

/// `VmHWM` (peak resident set) or `VmRSS` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets the peak resident set to the current one (Linux, proc(5) clear_refs).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// `n` concurrent client_credentials requests; their statuses and `Retry-After`s.
async fn storm(token_endpoint: &str, creds: &[ClientCredentials]) -> Vec<(u16, Option<String>)> {
    let http = reqwest::Client::new();
    let tasks: Vec<_> = creds
        .iter()
        .map(|c| {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.client_id, c.client_secret));
            let req = http
                .post(token_endpoint)
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials");
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (r.status().as_u16(), retry)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn wrong(client_id: &str, n: usize) -> Vec<ClientCredentials> {
    (0..n)
        .map(|i| ClientCredentials {
            client_id: client_id.replace("{i}", &i.to_string()),
            client_secret: format!("wrong-secret-{i}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i72_bad_client_secrets_cannot_exhaust_memory_or_cpu() {
    // Without the failed-authentication rate limit (I-73), which would
    // throttle this one peer first: this test isolates the hashing bound.
    let issuer = RunningIssuer::start(|c| c.rate_limits.auth_failures = 0)
        .await
        .unwrap();
    let endpoint = issuer.token_endpoint();
    // The bootstrap admin client's secret is stored as a SHA-256 digest.
    let admin_record = issuer
        .issuer
        .store()
        .client(&issuer.admin.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        admin_record.secret_hash.starts_with(secrets::SHA256_PREFIX),
        "{}",
        admin_record.secret_hash
    );
    // A client whose secret an operator chose: Argon2id, the slow path.
    let legacy = ClientCredentials {
        client_id: "client_operator_chosen".into(),
        client_secret: "correct horse battery staple".into(),
    };
    issuer
        .issuer
        .store()
        .insert_client(&ClientRecord {
            client_id: legacy.client_id.clone(),
            secret_hash: secrets::hash_secret(&legacy.client_secret).unwrap(),
            allowed_scopes: vec!["generate:intent-token".into()],
            created_at_ms: 0,
            description: None,
        })
        .await
        .unwrap();
    // Warm up allocator and connection code paths before measuring.
    ajwt_test_kit::client_token(&endpoint, &issuer.admin)
        .await
        .unwrap();
    ajwt_test_kit::client_token(&endpoint, &legacy)
        .await
        .unwrap();

    // 1. 200 concurrent unknown clients with wrong secrets: all 401, no Argon2.
    reset_peak();
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let out = storm(&endpoint, &wrong("client_unknown_{i}", 200)).await;
    let unknown_ms = started.elapsed().as_millis();
    let unknown_peak = status_kib("VmHWM:").saturating_sub(before);
    assert!(out.iter().all(|(s, _)| *s == 401), "{out:?}");
    // 200 Argon2 runs at once would need 200 x 19 MiB.
    assert!(
        unknown_peak < 150 * 1024,
        "peak grew by {unknown_peak} KiB for 200 unknown clients"
    );

    // 2. 200 concurrent wrong secrets for the Argon2 client: bounded (one per
    // core running, a short queue), the rest 503 with Retry-After.
    reset_peak();
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let out = storm(&endpoint, &wrong(&legacy.client_id, 200)).await;
    let legacy_ms = started.elapsed().as_millis();
    let legacy_peak = status_kib("VmHWM:").saturating_sub(before);
    let refused = out.iter().filter(|(s, _)| *s == 401).count();
    let busy: Vec<_> = out.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(refused + busy.len(), 200, "{out:?}");
    assert!(
        !busy.is_empty(),
        "no 503 for 200 concurrent Argon2 requests"
    );
    assert!(
        busy.iter().all(|(_, r)| r.as_deref() == Some("1")),
        "{busy:?}"
    );
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    assert!(
        legacy_peak < (cores * 19 + 150) * 1024,
        "peak grew by {legacy_peak} KiB with {cores} cores"
    );

    // 3. Legitimate clients still get tokens, the operator's one too.
    ajwt_test_kit::client_token(&endpoint, &issuer.admin)
        .await
        .unwrap();
    ajwt_test_kit::client_token(&endpoint, &legacy)
        .await
        .unwrap();
    eprintln!(
        "measured: 200 unknown clients in {unknown_ms} ms, peak +{unknown_peak} KiB; \
         200 Argon2 attempts in {legacy_ms} ms, {refused} x 401, {} x 503, peak +{legacy_peak} KiB",
        busy.len()
    );
    issuer.stop().await.unwrap();
}
