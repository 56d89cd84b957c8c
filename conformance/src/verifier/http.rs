//! Talking to the resource server under test: requests with chosen
//! `Authorization` and `DPoP` headers, responses with their parsed
//! `WWW-Authenticate` challenges (RFC 7235 §4.1, RFC 6750 §3, RFC 9449
//! §7.1), the one retry a server nonce asks for (RFC 9449 §8), and the
//! `--exec` child process.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use crate::Error;

/// The credentials of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presentation {
    /// The `Authorization` header value (`DPoP <token>`, `Bearer <token>`), if any.
    pub authorization: Option<String>,
    /// The `DPoP` header values (normally zero or one).
    pub dpop: Vec<String>,
}

/// One authentication challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (`Bearer`, `DPoP`).
    pub scheme: String,
    /// Its auth-params, names lower-cased, values unquoted.
    pub params: BTreeMap<String, String>,
}

/// A response of the resource server, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Every challenge of every `WWW-Authenticate` header.
    pub challenges: Vec<Challenge>,
    /// The raw `WWW-Authenticate` values (for failure messages).
    pub www_authenticate: Vec<String>,
    /// The `DPoP-Nonce` header, if any.
    pub dpop_nonce: Option<String>,
    /// The body (truncated to 64 KiB).
    pub body: String,
}

impl Response {
    /// A one-line summary for failure reasons.
    pub fn summary(&self) -> String {
        let challenge = if self.www_authenticate.is_empty() {
            "no WWW-Authenticate".to_owned()
        } else {
            format!("WWW-Authenticate: {}", self.www_authenticate.join(" | "))
        };
        let mut body: String = self.body.chars().take(160).collect();
        if body.len() < self.body.len() {
            body.push('…');
        }
        format!("got {} ({challenge}; body {body:?})", self.status)
    }

    /// The challenge demanding a server nonce, with the nonce to use.
    pub fn nonce_demand(&self) -> Option<&str> {
        let demanded = self.status == 401
            && self
                .challenges
                .iter()
                .any(|c| c.params.get("error").map(String::as_str) == Some("use_dpop_nonce"));
        if demanded {
            self.dpop_nonce.as_deref()
        } else {
            None
        }
    }
}

/// Parses a `WWW-Authenticate` value into challenges (RFC 7235 §4.1: a
/// comma-separated list of `scheme [token68 | auth-param *(, auth-param)]`).
/// Lenient: malformed pieces are skipped, never an error.
pub fn parse_challenges(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i] == ' ' || chars[*i] == '\t' || chars[*i] == ',') {
            *i += 1;
        }
    };
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        // A token: either a new scheme or an auth-param name.
        let start = i;
        while i < chars.len() && is_tchar(chars[i]) {
            i += 1;
        }
        if i == start {
            // Not a token (stray character): skip it.
            i += 1;
            continue;
        }
        let token: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && (chars[j] == ' ' || chars[j] == '\t') {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' && !out.is_empty() {
            // auth-param of the current challenge.
            i = j + 1;
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            let mut val = String::new();
            if i < chars.len() && chars[i] == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    val.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && chars[i] != ',' {
                    val.push(chars[i]);
                    i += 1;
                }
                val = val.trim().to_owned();
            }
            if let Some(c) = out.last_mut() {
                c.params.insert(token.to_ascii_lowercase(), val);
            }
        } else {
            out.push(Challenge {
                scheme: token,
                params: BTreeMap::new(),
            });
            // A token68 after the scheme (not used by Bearer/DPoP): skip it.
            let mut k = j;
            while k < chars.len() && (is_tchar(chars[k]) || chars[k] == '/') {
                k += 1;
            }
            while k < chars.len() && chars[k] == '=' {
                k += 1;
            }
            if k > j && (k >= chars.len() || chars[k] == ',') && chars[j..k].contains(&'=') {
                i = k;
            }
        }
    }
    out
}

/// The client side of the run: the target URL and method, the body sent
/// with every request, and the last server nonce seen.
#[derive(Debug)]
pub struct Target {
    http: reqwest::Client,
    /// The protected resource URL (also the DPoP `htu`).
    pub url: String,
    /// The HTTP method (also the DPoP `htm`).
    pub method: reqwest::Method,
    body: String,
    /// The last `DPoP-Nonce` the server asked for (RFC 9449 §8).
    pub nonce: Option<String>,
}

/// How a request ended.
#[derive(Debug)]
pub enum Sent {
    /// A response, and the presentation of the last attempt.
    Response(Response, Presentation),
    /// The request could not be completed (connection refused or reset, timeout).
    Transport(String),
}

impl Target {
    /// A client for `url` with `method` and `body`.
    pub fn new(url: &str, method: &str, body: &str) -> Result<Target, Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::Setup(format!("--method {method:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Setup(format!("HTTP client: {e}")))?;
        Ok(Target {
            http,
            url: url.to_owned(),
            method,
            body: body.to_owned(),
            nonce: None,
        })
    }

    /// Sends exactly `p` once.
    pub(crate) async fn send_raw(&self, p: &Presentation) -> Result<Response, String> {
        let mut req = self
            .http
            .request(self.method.clone(), &self.url)
            .header("content-type", "application/json")
            .body(self.body.clone());
        if let Some(a) = &p.authorization {
            req = req.header("authorization", a);
        }
        for d in &p.dpop {
            req = req.header("dpop", d);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let www_authenticate: Vec<String> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let dpop_nonce = resp
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]).into_owned();
        let challenges = www_authenticate
            .iter()
            .flat_map(|v| parse_challenges(v))
            .collect();
        Ok(Response {
            status,
            challenges,
            www_authenticate,
            dpop_nonce,
            body,
        })
    }

    /// Builds the presentation with the current server nonce and sends it;
    /// when the server answers `use_dpop_nonce` with a `DPoP-Nonce`
    /// (RFC 9449 §8), remembers the nonce and retries once with a rebuilt
    /// presentation (a fresh proof carrying the nonce).
    pub async fn send<F>(&mut self, build: F) -> Result<Sent, Error>
    where
        F: Fn(Option<&str>) -> Result<Presentation, Error>,
    {
        let mut p = build(self.nonce.as_deref())?;
        let mut resp = match self.send_raw(&p).await {
            Ok(r) => r,
            Err(e) => return Ok(Sent::Transport(e)),
        };
        if let Some(nonce) = resp.nonce_demand().map(str::to_owned) {
            self.nonce = Some(nonce);
            p = build(self.nonce.as_deref())?;
            resp = match self.send_raw(&p).await {
                Ok(r) => r,
                Err(e) => return Ok(Sent::Transport(e)),
            };
        }
        Ok(Sent::Response(resp, p))
    }
}

/// The `--exec` resource server, killed when dropped.
#[derive(Debug)]
pub struct Child {
    child: tokio::process::Child,
    command: String,
    log: Arc<Mutex<String>>,
}

/// Most output of the child kept for error messages.
const LOG_TAIL: usize = 8 * 1024;

impl Child {
    /// Starts `command` (whitespace-separated program and arguments, no
    /// shell quoting) with `{issuer}` replaced by `issuer` in every argument
    /// and `AJWT_CONFORMANCE_ISSUER` set.
    pub fn spawn(command: &str, issuer: &str) -> Result<Child, Error> {
        let mut words = command
            .split_whitespace()
            .map(|w| w.replace("{issuer}", issuer));
        let program = words
            .next()
            .ok_or_else(|| Error::Setup("--exec: empty command".into()))?;
        let mut child = tokio::process::Command::new(&program)
            .args(words)
            .env("AJWT_CONFORMANCE_ISSUER", issuer)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Setup(format!("--exec: cannot start {program:?}: {e}")))?;
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(collect(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(collect(err, log.clone()));
        }
        Ok(Child {
            child,
            command: command.to_owned(),
            log,
        })
    }

    /// The last part of the child's output.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until `url`'s host and port accept TCP connections, failing
    /// early if the child exits.
    pub async fn wait_ready(&mut self, url: &str, wait: Duration) -> Result<(), Error> {
        let child = &mut self.child;
        let r = poll_connect(url, wait, || match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        })
        .await;
        match r {
            Ok(()) => Ok(()),
            Err(Waited::Bad(e)) => Err(e),
            Err(Waited::Gone(status)) => Err(Error::Setup(format!(
                "--exec {:?} exited ({status}) before {url} accepted connections; its output:\n{}",
                self.command,
                self.log()
            ))),
            Err(Waited::Timeout) => Err(Error::Setup(format!(
                "--exec {:?}: {url} did not accept connections within {} s; its output:\n{}",
                self.command,
                wait.as_secs(),
                self.log()
            ))),
        }
    }

    /// Kills the child and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(mut r: R, log: Arc<Mutex<String>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut l) = log.lock() {
            l.push_str(&String::from_utf8_lossy(&buf[..n]));
            if l.len() > 2 * LOG_TAIL {
                let mut cut = l.len() - LOG_TAIL;
                while !l.is_char_boundary(cut) {
                    cut += 1;
                }
                l.drain(..cut);
            }
        }
    }
}

/// The host and port of `url` (the `--url` of the run).
fn host_port(url: &str) -> Result<(String, u16), Error> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::Setup(format!("--url {url:?}: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::Setup(format!("--url {url:?} has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| Error::Setup(format!("--url {url:?} has no port")))?;
    Ok((host, port))
}

/// Waits until `url`'s host and port accept TCP connections (a resource
/// server the operator starts without `--exec`); a server still unreachable
/// after `wait` is a setup error, not a failed test.
pub async fn wait_reachable(url: &str, wait: Duration) -> Result<(), Error> {
    poll_connect(url, wait, || None).await.map_err(|e| match e {
        Waited::Bad(e) => e,
        Waited::Gone(m) => Error::Setup(m),
        Waited::Timeout => Error::Setup(format!(
            "the resource server at {url} did not accept connections within {} s \
             (start it trusting the test issuer, or give --exec)",
            wait.as_secs()
        )),
    })
}

/// Why [`poll_connect`] stopped waiting.
enum Waited {
    /// The URL is unusable.
    Bad(Error),
    /// `gone()` said the server will never come (e.g. the child exited).
    Gone(String),
    /// Time ran out.
    Timeout,
}

/// Polls `url`'s host and port until they accept a TCP connection, giving
/// up when `gone()` returns a reason or `wait` has passed.
async fn poll_connect(
    url: &str,
    wait: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<(), Waited> {
    let (host, port) = host_port(url).map_err(Waited::Bad)?;
    let deadline = Instant::now() + wait;
    loop {
        if let Some(reason) = gone() {
            return Err(Waited::Gone(reason));
        }
        if tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Waited::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_resource_server_is_a_setup_error_not_a_failure() {
        // A port nobody listens on: bind, note the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/patches");
        match wait_reachable(&url, Duration::from_millis(200)).await {
            Err(Error::Setup(m)) => assert!(m.contains("did not accept connections"), "{m}"),
            other => panic!("expected a setup error, got {other:?}"),
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/patches", listener.local_addr().unwrap());
        assert!(wait_reachable(&url, Duration::from_secs(1)).await.is_ok());
        assert!(matches!(
            wait_reachable("not a url", Duration::ZERO).await,
            Err(Error::Setup(_))
        ));
    }

    #[test]
    fn challenges_are_parsed_with_quoted_params_and_several_schemes() {
        let c = parse_challenges(
            r#"DPoP error="invalid_dpop_proof", error_description="bad, \"proof\"", algs="ES256 EdDSA""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "DPoP");
        assert_eq!(c[0].params["error"], "invalid_dpop_proof");
        assert_eq!(c[0].params["error_description"], "bad, \"proof\"");
        assert_eq!(c[0].params["algs"], "ES256 EdDSA");

        let c = parse_challenges(r#"Bearer realm="x", error=invalid_token, DPoP algs="ES256""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["error"], "invalid_token");
        assert_eq!(c[1].scheme, "DPoP");
        assert_eq!(c[1].params["algs"], "ES256");

        let c = parse_challenges("DPoP");
        assert_eq!(c.len(), 1);
        assert!(c[0].params.is_empty());
        assert!(parse_challenges("").is_empty());
        let c = parse_challenges(r#"Bearer Scope="a b""#);
        assert_eq!(c[0].params["scope"], "a b");
        // Garbage never panics.
        for s in [
            "=",
            "\"",
            "a=\"",
            ",,,",
            "DPoP =",
            "DPoP a=\"\\",
            "Bearer abc==, x",
            "é ü=1",
            "DPoP error=",
            "  , DPoP ,error=\"x\"",
        ] {
            let _ = parse_challenges(s);
        }
        let c = parse_challenges("Bearer abc==, DPoP error=\"x\"");
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[1].params["error"], "x");
    }

    /// A server that demands the nonce `n-1` in every proof (RFC 9449 §8).
    async fn nonce_server() -> String {
        use axum::http::{HeaderMap, StatusCode};
        use base64::Engine as _;
        async fn handler(headers: HeaderMap) -> axum::response::Response {
            use axum::response::IntoResponse as _;
            let nonce = headers
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .and_then(|p| p.split('.').nth(1))
                .and_then(|p| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(p)
                        .ok()
                })
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|c| c["nonce"].as_str().map(str::to_owned));
            if nonce.as_deref() == Some("n-1") {
                (StatusCode::OK, "ok").into_response()
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [
                        ("www-authenticate", r#"DPoP error="use_dpop_nonce""#),
                        ("dpop-nonce", "n-1"),
                    ],
                    "",
                )
                    .into_response()
            }
        }
        let app = axum::Router::new().route("/r", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/r", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }

    fn fake_proof(nonce: Option<&str>) -> Presentation {
        let claims = serde_json::json!({"jti": "x", "nonce": nonce});
        Presentation {
            authorization: Some("DPoP t".into()),
            dpop: vec![format!("e30.{}.", crate::verifier::jose::b64_json(&claims))],
        }
    }

    #[tokio::test]
    async fn a_use_dpop_nonce_answer_is_retried_once_with_the_nonce() {
        let url = nonce_server().await;
        let mut target = Target::new(&url, "POST", "{}").unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let Sent::Response(r, p) = target
            .send(|n| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(fake_proof(n))
            })
            .await
            .unwrap()
        else {
            panic!("transport error")
        };
        assert_eq!(r.status, 200);
        assert_eq!(p, fake_proof(Some("n-1")));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(target.nonce.as_deref(), Some("n-1"));
        // The nonce is used from the start next time; a proof ignoring it
        // is retried once only, then its refusal is the answer.
        let Sent::Response(r, _) = target.send(|_| Ok(fake_proof(None))).await.unwrap() else {
            panic!("transport error")
        };
        assert_eq!(r.nonce_demand(), Some("n-1"));
    }
}
