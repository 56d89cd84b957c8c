//! The HTTP/1.1 load generator: keep-alive connections (hyper's client
//! connection, `TCP_NODELAY`), pre-built requests, latencies in an
//! HDR histogram (microseconds).
//!
//! * [`closed_loop`]: `concurrency` connections, each sending its next request
//!   as soon as the previous answer is read (throughput).
//! * [`open_loop`]: requests *scheduled* at a fixed rate by a dedicated OS
//!   thread (`std::thread::sleep`, microsecond precision, unlike tokio's
//!   1 ms timer wheel); a pool of connections sends them. Each latency is
//!   measured from the request's scheduled send time, so a stalled server
//!   is charged for every request it delayed (no coordinated omission).
//!
//! Every non-2xx answer and every transport error counts as an error; the
//! first one is kept for the report.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;

/// One pre-built request.
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET` or `POST`.
    pub method: hyper::Method,
    /// Path and query.
    pub path: String,
    /// Headers besides `host` and `content-length`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

impl Req {
    /// A `POST` of `body` with `content-type` and an `authorization` header.
    pub fn post(path: &str, content_type: &str, authorization: &str, body: Vec<u8>) -> Req {
        let mut headers = vec![(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("text/plain")),
        )];
        if let Ok(v) = HeaderValue::from_str(authorization) {
            headers.push((hyper::header::AUTHORIZATION, v));
        }
        Req {
            method: hyper::Method::POST,
            path: path.to_owned(),
            headers,
            body: Bytes::from(body),
        }
    }

    /// A `GET` without a body.
    pub fn get(path: &str) -> Req {
        Req {
            method: hyper::Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn build(&self, host: &HeaderValue) -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut b = hyper::Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(hyper::header::HOST, host.clone());
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body.clone()))
            .map_err(|e| format!("request: {e}"))
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    /// Connects (with `TCP_NODELAY`) and performs the HTTP/1.1 handshake.
    pub async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("nodelay: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake {addr}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host =
            HeaderValue::from_str(&addr.to_string()).map_err(|e| format!("host header: {e}"))?;
        Ok(Conn { sender, host })
    }

    /// Sends `req` and reads the whole answer: status and body.
    pub async fn send(&mut self, req: &Req) -> Result<(u16, Bytes), String> {
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let request = req.build(&self.host)?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// One request on a fresh connection (setup calls, not measured).
pub async fn once(addr: SocketAddr, req: &Req) -> Result<(u16, Bytes), String> {
    Conn::open(addr).await?.send(req).await
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// 2xx answers.
    pub ok: u64,
    /// Non-2xx answers plus transport errors.
    pub errors: u64,
    /// The first error seen (status and body, or the transport error).
    pub first_error: Option<String>,
    /// Wall time from the first send to the last answer.
    pub elapsed: Duration,
    /// Latencies in microseconds (2xx and non-2xx answers alike).
    pub hist: Histogram<u64>,
}

impl LoadResult {
    fn empty() -> LoadResult {
        LoadResult {
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            hist: new_hist(),
        }
    }

    fn merge(&mut self, other: LoadResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        let _ = self.hist.add(&other.hist);
    }

    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.ok as f64 / s
        } else {
            0.0
        }
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
}

#[allow(clippy::expect_used)]
fn new_hist() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits: constant, valid bounds (the
    // constructor fails only for low < 1, high < 2 * low or sigfig > 5).
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

fn record(res: &mut LoadResult, latency: Duration, outcome: Result<(u16, Bytes), String>) {
    let us = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let _ = res.hist.record(us.min(600_000_000));
    match outcome {
        Ok((status, _)) if (200..300).contains(&status) => res.ok += 1,
        Ok((status, body)) => {
            res.errors += 1;
            if res.first_error.is_none() {
                let text = String::from_utf8_lossy(&body);
                res.first_error = Some(format!("HTTP {status}: {}", truncate(&text, 300)));
            }
        }
        Err(e) => {
            res.errors += 1;
            if res.first_error.is_none() {
                res.first_error = Some(e);
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Sends on `conn`, reconnecting once after a transport error (the error
/// still counts).
async fn send_on(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    req: &Req,
) -> Result<(u16, Bytes), String> {
    if conn.is_none() {
        *conn = Some(Conn::open(addr).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let r = c.send(req).await;
    if r.is_err() {
        *conn = None;
    }
    r
}

/// Closed loop: `concurrency` connections (spread round-robin over
/// `targets`) each send requests back to back for `duration`, or until
/// `limit` requests were started when given (each request of `reqs` taken
/// in turn, cycling).
pub async fn closed_loop(
    targets: Vec<SocketAddr>,
    reqs: Arc<Vec<Req>>,
    concurrency: usize,
    duration: Duration,
    limit: Option<usize>,
) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let addr = targets[w % targets.len().max(1)];
        let (reqs, next) = (reqs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut res = LoadResult::empty();
            let mut conn = Conn::open(addr).await.ok();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match limit {
                    Some(l) if i >= l => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let req = &reqs[i % reqs.len()];
                let t0 = Instant::now();
                let out = send_on(&mut conn, addr, req).await;
                record(&mut res, t0.elapsed(), out);
            }
            res
        }));
    }
    let mut total = LoadResult::empty();
    for t in tasks {
        if let Ok(r) = t.await {
            total.merge(r);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Open loop at `rate` requests per second for `duration`: the schedule is
/// fixed in advance (request `i` at `start + i / rate`), `connections`
/// connections send them, and each latency runs from the scheduled time to
/// the end of the answer. All scheduled requests are sent and awaited, also
/// when the server falls behind (their queueing time is part of their
/// latency).
pub async fn open_loop(
    targets: Vec<SocketAddr>,
    reqs: Arc<Vec<Req>>,
    rate: f64,
    duration: Duration,
    connections: usize,
) -> LoadResult {
    let total_requests = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    let (tx, rx) = tokio::sync::mpsc::channel::<(usize, Instant)>(total_requests + 1);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    // AJWT_BENCH_TRACE=FILE appends one line per request (schedule index,
    // scheduled offset in µs, latency in µs) for a latency timeline.
    let trace_file = std::env::var_os("AJWT_BENCH_TRACE");
    let trace = trace_file
        .as_ref()
        .map(|_| Arc::new(std::sync::Mutex::new(Vec::<(usize, u64)>::new())));
    let mut tasks = Vec::new();
    for w in 0..connections.max(1) {
        let addr = targets[w % targets.len().max(1)];
        let (reqs, rx, trace) = (reqs.clone(), rx.clone(), trace.clone());
        tasks.push(tokio::spawn(async move {
            let mut res = LoadResult::empty();
            let mut conn = Conn::open(addr).await.ok();
            loop {
                let item = rx.lock().await.recv().await;
                let Some((i, scheduled)) = item else { break };
                let req = &reqs[i % reqs.len()];
                let out = send_on(&mut conn, addr, req).await;
                let latency = scheduled.elapsed();
                if let Some(trace) = &trace {
                    trace
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((i, latency.as_micros() as u64));
                }
                record(&mut res, latency, out);
            }
            res
        }));
    }
    // Let the connections open before the schedule starts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now() + Duration::from_millis(5);
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let scheduler = std::thread::spawn(move || {
        for i in 0..total_requests {
            let at = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.blocking_send((i, at)).is_err() {
                break;
            }
        }
    });
    let mut total = LoadResult::empty();
    for t in tasks {
        if let Ok(r) = t.await {
            total.merge(r);
        }
    }
    let _ = scheduler.join();
    total.elapsed = start.elapsed();
    if let (Some(path), Some(trace)) = (trace_file, trace) {
        use std::io::Write as _;
        let mut lines = trace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        lines.sort_unstable();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let step = interval.as_micros() as u64;
            let _ = writeln!(f, "# open loop {rate}/s, {} requests", lines.len());
            for (i, us) in lines {
                let _ = writeln!(f, "{i} {} {us}", i as u64 * step);
            }
        }
    }
    total
}
