//! The connection layer of `ajwt serve` (§9.4.3, I-67): an accept loop over
//! hyper's HTTP/1.1 server with a connection limit, header-read and
//! keep-alive idle timeouts, `Connection: close` on responses that leave the
//! request body unread, and a graceful shutdown with a deadline.
//!
//! - **Header read.** A request head must be complete within
//!   `header_read_timeout`, counted from the accept (first request) or from
//!   the first byte of a later request on a keep-alive connection.
//! - **Idle.** A keep-alive connection waits at most `idle_timeout` for the
//!   first byte of its next request.
//! - **Body read.** Handlers read bodies within `body_read_timeout` (408,
//!   `crate::http`); no timeout runs while a handler works.
//! - **Connection limit.** At most `max_connections` connections are open.
//!   When a new connection arrives at the limit, the oldest open connection
//!   that is not inside a request (idle, or still sending its head) is closed
//!   for it; when every connection is inside a request, accepting pauses
//!   until one ends (new clients wait in the listen backlog). So slow clients
//!   holding partial heads evict each other, while a client that sends a
//!   whole request at once is served.
//! - **Shutdown.** When `shutdown` resolves the listener closes, idle
//!   connections close, in-flight requests finish; after `shutdown_grace`
//!   the remaining connections are dropped and [`run`] returns.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::IssuerConfig;

/// The limits [`run`] enforces (from [`IssuerConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    shutdown_grace: Duration,
}

impl Limits {
    /// The limits configured in `config`.
    pub(crate) fn of(config: &IssuerConfig) -> Limits {
        Limits {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections.max(1),
            shutdown_grace: config.shutdown_grace,
        }
    }
}

/// Where a connection is in its request cycle.
#[derive(Debug)]
struct Clock {
    /// Requests handed to the router whose response is not produced yet.
    in_flight: usize,
    /// When the current request head began: the accept, or the first byte
    /// read while no request was in flight. `None` while idle.
    head_since: Option<Instant>,
    /// When the last response was produced.
    idle_since: Instant,
}

impl Clock {
    /// When the connection is to be closed if nothing changes (`None` while
    /// a request is in flight: the handler's own timeouts apply).
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        if self.in_flight > 0 {
            return None;
        }
        Some(match self.head_since {
            Some(t) => t + limits.header_read_timeout,
            None => self.idle_since + limits.idle_timeout,
        })
    }
}

/// One open connection, shared by its task, its I/O, its service and the
/// accept loop.
#[derive(Debug)]
struct Conn {
    clock: Mutex<Clock>,
    /// The clock changed (a head began or a response was produced).
    changed: Notify,
    /// The accept loop closes this connection for a new one.
    evict: Notify,
}

impl Conn {
    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type Open = Mutex<BTreeMap<u64, Arc<Conn>>>;

fn open_conns(open: &Open) -> MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
    open.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Closes the oldest open connection that is not inside a request; false
/// if there is none.
fn evict_oldest_idle(open: &Open) -> bool {
    let mut conns = open_conns(open);
    let victim = conns
        .iter()
        .find(|(_, c)| c.clock().in_flight == 0)
        .map(|(id, _)| *id);
    match victim.and_then(|id| conns.remove(&id)) {
        Some(conn) => {
            conn.evict.notify_one();
            true
        }
        None => false,
    }
}

/// The socket, noting the first byte of each request head on the clock.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            let mut clock = this.conn.clock();
            if clock.in_flight == 0 && clock.head_since.is_none() {
                clock.head_since = Some(Instant::now());
                drop(clock);
                this.conn.changed.notify_one();
            }
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that records whether it was read to its end.
struct Tracked {
    inner: Incoming,
    done: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.done.store(true, Ordering::Release);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Runs one request through the router. A response produced without the
/// request body read to its end announces `Connection: close` (the
/// connection cannot be reused: hyper closes it after the response), so
/// keep-alive clients do not send the next request into a closing socket.
async fn handle(
    router: Router,
    conn: Arc<Conn>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    {
        let mut clock = conn.clock();
        clock.in_flight += 1;
        clock.head_since = None;
    }
    let done = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(
        request.body(),
    )));
    let request = request.map(|inner| Tracked {
        inner,
        done: done.clone(),
    });
    let mut response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !done.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    {
        let mut clock = conn.clock();
        clock.in_flight = clock.in_flight.saturating_sub(1);
        clock.idle_since = Instant::now();
    }
    conn.changed.notify_one();
    Ok(response)
}

/// Serves one connection until it ends, times out, is evicted, or the
/// shutdown grace is over (the task is then aborted).
async fn serve_connection(
    http: hyper::server::conn::http1::Builder,
    router: Router,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    conn: Arc<Conn>,
    mut draining: watch::Receiver<bool>,
    limits: Limits,
) {
    let service_conn = conn.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        // The peer address, for per-address rate limits (I-73).
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        handle(router.clone(), service_conn.clone(), request)
    });
    let io = TokioIo::new(Watched {
        stream,
        conn: conn.clone(),
    });
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        if !stopping && *draining.borrow_and_update() {
            connection.as_mut().graceful_shutdown();
            stopping = true;
        }
        let deadline = conn.clock().deadline(&limits);
        let timer = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.evict.notified() => {
                tracing::debug!("connection closed for a new one (max_connections reached)");
                return;
            }
            () = conn.changed.notified() => {}
            changed = draining.changed(), if !stopping => {
                if changed.is_err() {
                    connection.as_mut().graceful_shutdown();
                    stopping = true;
                }
            }
            () = timer => {
                let due = conn.clock().deadline(&limits).is_some_and(|at| at <= Instant::now());
                if due {
                    tracing::debug!("connection closed: header read or idle timeout");
                    return;
                }
            }
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves,
/// then drains (see the module documentation). Accept errors (e.g. out of
/// descriptors) are logged and retried after 50 ms; they never end the loop.
pub(crate) async fn run(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Header and idle timeouts are this module's clock (hyper's own header
    // timer would also count the idle time of a keep-alive connection).
    http.header_read_timeout(None).keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let open: Arc<Open> = Arc::new(Mutex::new(BTreeMap::new()));
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !evict_oldest_idle(&open) {
                    tracing::debug!(
                        "max_connections reached and every connection is in a request; waiting"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let now = Instant::now();
        let conn = Arc::new(Conn {
            clock: Mutex::new(Clock {
                in_flight: 0,
                head_since: Some(now),
                idle_since: now,
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        });
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        open_conns(&open).insert(id, conn.clone());
        let (http, router, open, draining) =
            (http.clone(), router.clone(), open.clone(), drain_rx.clone());
        tasks.spawn(async move {
            serve_connection(http, router, stream, peer, conn, draining, limits).await;
            open_conns(&open).remove(&id);
            drop(permit);
        });
    }
    drop(listener);
    let _ = drain_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "shutdown grace over; dropping the remaining connections"
        );
        tasks.shutdown().await;
    }
    Ok(())
}
