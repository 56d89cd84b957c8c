//! Connection-level denial of service against a running issuer over real
//! TCP (§9.4.3; issue 12 defects 2, 8 and 9; spec I-67): slow request heads,
//! a connection limit full of them, stalled bodies, shutdown while clients
//! hold partial requests, and early error responses on keep-alive
//! connections. Timeouts are configured short (hundreds of milliseconds) so
//! the attacks play out in real time within a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::{Duration, Instant};

use ajwt_test_kit::RunningIssuer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(issuer: &RunningIssuer) -> String {
    issuer.base_url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (EOF or reset) and returns
/// what it sent; `None` if it is still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(received)
}

/// Reads one response (head and `Content-Length` body) without waiting for
/// the connection to close.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a whole response");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

fn has_connection_close(response: &str) -> bool {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        })
    })
}

/// Whether the server has closed `stream` (EOF or reset right away).
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// (a) A head sent one byte every 100 ms is cut off after
/// `header_read_timeout` (500 ms), long before it would be complete.
#[tokio::test]
async fn slow_header_is_closed_after_header_read_timeout() {
    let issuer = RunningIssuer::start(|c| {
        c.header_read_timeout = Duration::from_millis(500);
    })
    .await
    .unwrap();
    let stream = TcpStream::connect(addr(&issuer)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let dripper = tokio::spawn(async move {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    dripper.abort();
    assert!(closed.is_ok(), "a slow head was still open after 3 s");
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed too early: {elapsed:?}"
    );
    eprintln!("slow head closed after {elapsed:?}");
    issuer.stop().await.unwrap();
}

/// (b) With `max_connections` (50) held by 200 clients that each sent a
/// partial head, a client sending a whole request is still answered at
/// once: the oldest connections without a request in flight are closed to
/// make room (the header timeout, 10 s here, is not what frees them).
#[tokio::test]
async fn connection_limit_full_of_slow_heads_still_serves_a_whole_request() {
    let issuer = RunningIssuer::start(|c| {
        c.max_connections = 50;
        c.header_read_timeout = Duration::from_secs(10);
        c.idle_timeout = Duration::from_secs(10);
    })
    .await
    .unwrap();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr(&issuer)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut client = TcpStream::connect(addr(&issuer)).await.unwrap();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let response = read_until_closed(&mut client, Duration::from_secs(3))
        .await
        .expect("the whole request got no answer within 3 s");
    let elapsed = started.elapsed();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut closed = 0;
    for s in &mut slow {
        if is_closed(s).await {
            closed += 1;
        }
    }
    eprintln!(
        "GET /healthz answered in {elapsed:?} while 200 slow heads competed for 50 slots; {closed} slow connections closed"
    );
    assert!(
        closed >= 150,
        "only {closed} of 200 slow connections were closed with max_connections = 50"
    );
    drop(slow);
    issuer.stop().await.unwrap();
}

/// (c) A body announced as 1000 bytes of which 10 arrive is answered 408
/// with `Connection: close` after `body_read_timeout` (500 ms).
#[tokio::test]
async fn stalled_body_gets_408_after_body_read_timeout() {
    let issuer = RunningIssuer::start(|c| {
        c.body_read_timeout = Duration::from_millis(500);
    })
    .await
    .unwrap();
    let mut s = TcpStream::connect(addr(&issuer)).await.unwrap();
    let started = Instant::now();
    s.write_all(
        b"POST /intent/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"grant_ty",
    )
    .await
    .unwrap();
    let response = read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .expect("a stalled body was still open after 3 s");
    let elapsed = started.elapsed();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(has_connection_close(&response), "{response}");
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    eprintln!("stalled body answered 408 after {elapsed:?}");
    issuer.stop().await.unwrap();
}

/// (d) Shutdown returns within `shutdown_grace` (500 ms) although one
/// client holds a partial head and another a request whose body stalls
/// (its handler is in flight, the body timeout is 30 s).
#[tokio::test]
async fn graceful_shutdown_finishes_within_grace_while_a_partial_request_is_held() {
    let issuer = RunningIssuer::start(|c| {
        c.shutdown_grace = Duration::from_millis(500);
        c.header_read_timeout = Duration::from_secs(30);
        c.body_read_timeout = Duration::from_secs(30);
    })
    .await
    .unwrap();
    let mut head = TcpStream::connect(addr(&issuer)).await.unwrap();
    head.write_all(b"GET /hea").await.unwrap();
    let mut body = TcpStream::connect(addr(&issuer)).await.unwrap();
    body.write_all(
        b"POST /intent/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(5), issuer.stop()).await;
    let elapsed = started.elapsed();
    assert!(
        stopped.is_ok(),
        "shutdown still waiting after 5 s for a partial request"
    );
    stopped.unwrap().unwrap();
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        read_until_closed(&mut body, Duration::from_secs(1))
            .await
            .is_some(),
        "the stalled request's connection survived shutdown"
    );
    assert!(read_until_closed(&mut head, Duration::from_secs(1))
        .await
        .is_some());
    eprintln!("shutdown with two held requests took {elapsed:?}");
}

/// (e) A response sent before the request body was read (401 before the
/// body on a registration endpoint, 415 on the token endpoint) announces
/// `Connection: close`: the server will not read the next request on it.
/// A response to a request whose body was read keeps the connection.
#[tokio::test]
async fn early_error_with_unread_body_announces_connection_close() {
    let issuer = RunningIssuer::start(|_| {}).await.unwrap();
    for (request, status) in [
        (
            "POST /intent/register/agent HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"agent_id\":\"xxxxx\"}",
            "HTTP/1.1 401",
        ),
        (
            "POST /intent/token HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n{\"agent_id\":\"xxxxx\"}",
            "HTTP/1.1 415",
        ),
    ] {
        let mut s = TcpStream::connect(addr(&issuer)).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut s).await;
        assert!(response.starts_with(status), "{response}");
        assert!(has_connection_close(&response), "{response}");
    }
    // Control: a body read to its end leaves the connection reusable.
    let mut s = TcpStream::connect(addr(&issuer)).await.unwrap();
    let bad_json = "POST /intent/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    s.write_all(bad_json.as_bytes()).await.unwrap();
    let first = read_response(&mut s).await;
    assert!(first.starts_with("HTTP/1.1 4"), "{first}");
    assert!(!has_connection_close(&first), "{first}");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let second = read_response(&mut s).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    issuer.stop().await.unwrap();
}

/// A keep-alive connection with no next request is closed after
/// `idle_timeout` (500 ms).
#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let issuer = RunningIssuer::start(|c| {
        c.idle_timeout = Duration::from_millis(500);
    })
    .await
    .unwrap();
    let mut s = TcpStream::connect(addr(&issuer)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut s).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let started = Instant::now();
    assert!(
        read_until_closed(&mut s, Duration::from_secs(3))
            .await
            .is_some(),
        "an idle keep-alive connection was still open after 3 s"
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    eprintln!("idle keep-alive connection closed after {elapsed:?}");
    issuer.stop().await.unwrap();
}
