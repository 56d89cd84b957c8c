//! Bodies buffered before authentication (issue 12 defect 3, spec I-74).
//! Before: `/intent/token` read up to 1 MiB before it checked the client
//! token, and 1,000 stalled connections took the server from 36 MB to
//! 1.05 GB. Now the bearer token is checked from the headers first; without a
//! valid one at most 8 KiB is read, and every body being read holds its share
//! of one process-wide budget. Real TCP, raw requests: the attacker sends
//! headers announcing a large body and then nothing, and the answer must come
//! without the body. The budget is per process, so this binary has one test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use ajwt_issuer::http::{BODY_MEMORY_BUDGET_KIB, UNAUTHENTICATED_BODY_LIMIT};
use ajwt_test_kit::RunningIssuer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a request head announcing `length` body bytes and no body; returns
/// the stream.
async fn head_only(
    addr: &str,
    path: &str,
    authorization: Option<&str>,
    length: usize,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status of the response on `stream`, if one arrives within `within`.
async fn status_within(stream: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    received.extend_from_slice(&buf[..n]);
                    if received.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    let text = String::from_utf8_lossy(&received);
    text.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i74_token_endpoint_authenticates_from_headers_before_reading_bodies() {
    // A body timeout far longer than the test: an answer within it cannot
    // come from the timeout.
    let issuer = RunningIssuer::start(|c| c.body_read_timeout = Duration::from_secs(30))
        .await
        .unwrap();
    let addr = issuer.base_url.trim_start_matches("http://").to_owned();
    let admin = issuer.admin_token().await.unwrap();
    let quick = Duration::from_secs(3);
    let mib = 1024 * 1024;

    // 1. An invalid bearer token announcing 1 MiB: 401 without the body.
    let mut s = head_only(&addr, "/intent/token", Some("Bearer not-a-token"), mib).await;
    assert_eq!(status_within(&mut s, quick).await, Some(401));

    // 2. No credentials, 1 MiB announced: 413 at once (the unauthenticated limit).
    let mut s = head_only(&addr, "/intent/token", None, mib).await;
    assert_eq!(status_within(&mut s, quick).await, Some(413));
    // ...while a small unauthenticated body is still read (client_credentials
    // and the I-53 unsupported-grant check need it).
    let small = UNAUTHENTICATED_BODY_LIMIT / 2;
    let mut s = head_only(&addr, "/intent/token", Some("Bearer not-a-token"), small).await;
    assert_eq!(
        status_within(&mut s, Duration::from_millis(500)).await,
        None,
        "waits for the small body"
    );
    drop(s);

    // 3. 300 stalled unauthenticated connections announcing 1 MiB each: all
    //    answered at once, none holds memory.
    let mut stalled = Vec::new();
    for _ in 0..300 {
        stalled.push(head_only(&addr, "/intent/token", Some("Bearer x"), mib).await);
    }
    for s in &mut stalled {
        assert_eq!(status_within(s, quick).await, Some(401));
    }
    drop(stalled);

    // 4. A valid client announcing bodies it does not send: each holds its
    //    share of the budget; past it, 503 with Retry-After at once, and a
    //    request of another client still gets through once the budget frees.
    let bearer = format!("Bearer {admin}");
    let holders = usize::try_from(BODY_MEMORY_BUDGET_KIB).unwrap() / 1024;
    let mut held = Vec::new();
    for _ in 0..holders {
        held.push(head_only(&addr, "/intent/token", Some(&bearer), mib).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut over = head_only(&addr, "/intent/token", Some(&bearer), mib).await;
    assert_eq!(status_within(&mut over, quick).await, Some(503));
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let token = ajwt_test_kit::client_token(&issuer.token_endpoint(), &issuer.admin).await;
    assert!(token.is_ok(), "{token:?}");
    issuer.stop().await.unwrap();
}
