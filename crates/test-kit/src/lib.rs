//! Dev-only helpers shared by the tests (never published): run an issuer on a
//! free port — in process ([`RunningIssuer`]) or as an `ajwt serve` child
//! process ([`ServeProcess`]) — wait until `/healthz` answers, read the
//! bootstrap admin client from `admin-client.json`, and get a client access
//! token with `client_credentials` (RFC 6749 §4.4, HTTP Basic). Any other
//! server child process (`protected-api`, `mcp-server`) is kept in a
//! [`ChildGuard`]: killed on drop, polled until healthy, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ajwt_issuer::service::{ClientCredentials, ADMIN_CLIENT_FILE};
use ajwt_issuer::{Issuer, IssuerConfig};
use base64::Engine as _;

/// What went wrong while setting a test issuer up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    /// Local I/O (ports, files, processes).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The issuer did not start.
    #[error("issuer start: {0}")]
    Start(String),
    /// `/healthz` (or the polled URL) did not answer 2xx in time.
    #[error("{0} did not answer 2xx in time")]
    NotHealthy(String),
    /// An HTTP exchange failed or answered unexpectedly.
    #[error("http: {0}")]
    Http(String),
    /// The child process exited while it was expected to run.
    #[error("process exited early with {0}")]
    Exited(ExitStatus),
    /// The child process did not stop in time (after SIGTERM, or at all).
    #[error("process did not stop in time")]
    NotStopped,
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, KitError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until `GET <base>/healthz` is 200, polling every 50 ms.
pub async fn wait_healthy(base: &str, timeout: Duration) -> Result<(), KitError> {
    wait_ok_while(&format!("{base}/healthz"), timeout, || Ok(())).await
}

/// Waits until `GET <url>` answers a 2xx status, polling every 50 ms (for a
/// server without `/healthz`, e.g. polling its metadata document).
pub async fn wait_ok(url: &str, timeout: Duration) -> Result<(), KitError> {
    wait_ok_while(url, timeout, || Ok(())).await
}

/// [`wait_ok`], calling `alive` before each poll and giving up with its
/// error (e.g. a child process that exited). Real time on purpose: it waits
/// for a real socket.
async fn wait_ok_while(
    url: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), KitError>,
) -> Result<(), KitError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| KitError::Http(e.to_string()))?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        alive()?;
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(KitError::NotHealthy(url.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bootstrap admin client of a data directory (`admin-client.json`).
pub fn read_admin_client(data_dir: &Path) -> Result<ClientCredentials, KitError> {
    let bytes = std::fs::read(data_dir.join(ADMIN_CLIENT_FILE))?;
    serde_json::from_slice(&bytes).map_err(|e| KitError::Start(format!("{ADMIN_CLIENT_FILE}: {e}")))
}

/// A client access token of `creds` from `token_endpoint` (`client_credentials`,
/// HTTP Basic with form-urlencoded id and secret, RFC 6749 §2.3.1).
pub async fn client_token(
    token_endpoint: &str,
    creds: &ClientCredentials,
) -> Result<String, KitError> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(&creds.client_id),
        form_encode(&creds.client_secret)
    ));
    let r = reqwest::Client::new()
        .post(token_endpoint)
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .map_err(|e| KitError::Http(e.to_string()))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| KitError::Http(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| KitError::Http(format!("{e}: {text}")))?;
    match value
        .get("access_token")
        .and_then(serde_json::Value::as_str)
    {
        Some(t) if status == 200 => Ok(t.to_owned()),
        _ => Err(KitError::Http(format!(
            "token endpoint answered {status}: {text}"
        ))),
    }
}

/// A JSON file of the repository (e.g. `examples/agents/vulnerability-patcher-v1.json`).
pub fn repo_json(path: &str) -> Result<serde_json::Value, KitError> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let bytes = std::fs::read(&file)?;
    serde_json::from_slice(&bytes).map_err(|e| KitError::Start(format!("{path}: {e}")))
}

/// Registers `body` with an admin token: `POST <base>/intent/register/<kind>`
/// (`kind` is `agent`, §5.4, or `workflow`, §6.3). The response body when
/// the status is 200, else [`KitError::Http`] with status and body.
pub async fn register(
    base: &str,
    admin_token: &str,
    kind: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, KitError> {
    let (status, text, value) =
        post_json(&format!("{base}/intent/register/{kind}"), admin_token, body).await?;
    match value {
        Some(value) if status == 200 => Ok(value),
        _ => Err(KitError::Http(format!("register {kind}: {status} {text}"))),
    }
}

/// An agent registered by [`register_example_agent`].
pub struct ExampleAgent {
    /// `agent_id`.
    pub id: String,
    /// Its registered ES256 key (the `cnf.jwk` of its tokens, its DPoP key).
    pub key: ajwt_jose::DpopKey,
    /// The checksum the issuer computed (§5.4.3).
    pub checksum: String,
    /// `registration_id` (§5.4.2 step 4).
    pub registration_id: String,
}

/// Registers the repository's example agent
/// (`examples/agents/vulnerability-patcher-v1.json`) as `agent_id` with a
/// fresh P-256 key as its public key (§5.4, §6.2). Another `agent_id` also
/// gets its own prompt, so its checksum differs (no `duplicate_agent`).
pub async fn register_example_agent(
    base: &str,
    admin_token: &str,
    agent_id: &str,
) -> Result<ExampleAgent, KitError> {
    const EXAMPLE_ID: &str = "vulnerability-patcher-v1";
    let mut spec = repo_json("examples/agents/vulnerability-patcher-v1.json")?;
    if agent_id != EXAMPLE_ID {
        spec["agent_id"] = serde_json::json!(agent_id);
        spec["prompt"] =
            serde_json::json!(format!("You are {agent_id}, a careful security agent."));
    }
    let key = ajwt_jose::DpopKey::generate(ajwt_jose::Alg::Es256)
        .map_err(|e| KitError::Start(format!("key generation: {e}")))?;
    spec["public_key"] = serde_json::Value::Object(key.public_jwk());
    let r = register(base, admin_token, "agent", &spec).await?;
    let member = |name: &str| {
        r[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| KitError::Http(format!("registration of {agent_id}: no {name} in {r}")))
    };
    if r["agent_id"] != agent_id {
        return Err(KitError::Http(format!(
            "registration of {agent_id} answered {r}"
        )));
    }
    Ok(ExampleAgent {
        id: agent_id.to_owned(),
        checksum: member("checksum")?,
        registration_id: member("registration_id")?,
        key,
    })
}

/// A workflow step an intent token is requested for (§4.2.1).
pub struct StepRequest<'a> {
    /// `workflow_id`.
    pub workflow: &'a str,
    /// `workflow_step`.
    pub step: &'a str,
    /// `delegation_context.completed_steps` (the chain is empty).
    pub completed: &'a [&'a str],
    /// `requested_scopes`.
    pub scopes: &'a [&'a str],
    /// `audience`.
    pub audience: &'a str,
}

/// An intent token for `agent` at `step` from `<base>/intent/token`
/// (`agent_checksum` grant, `workflow_enabled`, §4.2), authenticated with
/// `admin_token`; anything but 200 is [`KitError::Http`].
pub async fn step_intent_token(
    base: &str,
    admin_token: &str,
    agent: &ExampleAgent,
    step: &StepRequest<'_>,
) -> Result<String, KitError> {
    let body = serde_json::json!({
        "grant_type": "agent_checksum",
        "agent_id": agent.id,
        "computed_checksum": agent.checksum,
        "workflow_id": step.workflow,
        "workflow_step": step.step,
        "workflow_enabled": true,
        "requested_scopes": step.scopes,
        "audience": step.audience,
        "delegation_context": {"chain": [], "completed_steps": step.completed},
    });
    let (status, text, json) =
        post_json(&format!("{base}/intent/token"), admin_token, &body).await?;
    let json = json.unwrap_or_default();
    match json["access_token"].as_str() {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => Err(KitError::Http(format!(
            "intent token for {} at {}: {status} {text}",
            agent.id, step.step
        ))),
    }
}

/// `POST url` with a bearer token and a JSON body: status, body text and the
/// body as JSON when it is JSON.
pub async fn post_json(
    url: &str,
    bearer: &str,
    body: &serde_json::Value,
) -> Result<(u16, String, Option<serde_json::Value>), KitError> {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| KitError::Http(e.to_string()))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| KitError::Http(e.to_string()))?;
    let json = serde_json::from_str(&text).ok();
    Ok((status, text, json))
}

/// The payload of a compact JWS, unverified (tests that read claims the
/// server signed); `None` when it is not base64url JSON.
pub fn jwt_payload(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An issuer served in this process on a free port with its own data directory.
pub struct RunningIssuer {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The issuer.
    pub issuer: Arc<Issuer>,
    /// The bootstrap admin client.
    pub admin: ClientCredentials,
    /// The data directory (removed on drop).
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningIssuer {
    /// Starts an issuer whose configuration is the default one with a fresh
    /// data directory, a free port and `issuer` = the base URL, then `edit`
    /// applied; waits until it is healthy.
    pub async fn start(edit: impl FnOnce(&mut IssuerConfig)) -> Result<RunningIssuer, KitError> {
        let data_dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let mut config = IssuerConfig {
            addr,
            data_dir: data_dir.path().to_path_buf(),
            issuer: base_url.clone(),
            ..IssuerConfig::default()
        };
        edit(&mut config);
        let (issuer, _) = Issuer::open(config)
            .await
            .map_err(|e| KitError::Start(e.to_string()))?;
        let issuer = Arc::new(issuer);
        let admin = read_admin_client(data_dir.path())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(ajwt_issuer::serve(issuer.clone(), listener, async {
            let _ = rx.await;
        }));
        wait_healthy(&base_url, Duration::from_secs(10)).await?;
        Ok(RunningIssuer {
            base_url,
            issuer,
            admin,
            data_dir,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The token endpoint of the running issuer (from its configuration).
    pub fn token_endpoint(&self) -> String {
        let path = self.issuer.config().issuer_path();
        format!("{}{path}/intent/token", self.base_url)
    }

    /// A token of the admin client (all its scopes).
    pub async fn admin_token(&self) -> Result<String, KitError> {
        client_token(&self.token_endpoint(), &self.admin).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Result<(), KitError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.map_err(|e| KitError::Start(e.to_string()))??;
        }
        Ok(())
    }
}

/// A child process that is killed (and reaped) when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `cmd` and guards the child.
    pub fn spawn(cmd: &mut Command) -> Result<ChildGuard, KitError> {
        Ok(ChildGuard(cmd.spawn()?))
    }

    /// Waits until `GET <base>/healthz` is 200; fails with
    /// [`KitError::Exited`] as soon as the process has exited.
    pub async fn wait_healthy(&mut self, base: &str, timeout: Duration) -> Result<(), KitError> {
        let child = &mut self.0;
        wait_ok_while(&format!("{base}/healthz"), timeout, || {
            match child.try_wait()? {
                Some(status) => Err(KitError::Exited(status)),
                None => Ok(()),
            }
        })
        .await
    }

    /// Sends SIGTERM (through `kill -TERM`, no `unsafe`) and waits up to
    /// `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, KitError> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()?;
        if !sent.success() {
            return Err(KitError::Start(format!("kill -TERM failed: {sent}")));
        }
        self.wait_timeout(timeout)
    }

    /// Waits up to `timeout` for the process to exit and returns its status
    /// ([`KitError::NotStopped`] if it is still running).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus, KitError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() >= deadline {
                return Err(KitError::NotStopped);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An `ajwt serve` child process on a free port (killed on drop).
pub struct ServeProcess {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The process.
    pub child: ChildGuard,
}

impl ServeProcess {
    /// Runs `<ajwt> serve --addr 127.0.0.1:<free port> --data-dir <data_dir> <extra>`
    /// (standard output discarded, standard error inherited) and waits until
    /// it is healthy.
    pub async fn spawn(
        ajwt: &Path,
        data_dir: &Path,
        extra: &[&str],
    ) -> Result<ServeProcess, KitError> {
        ServeProcess::spawn_with(ajwt, data_dir, extra, Stdio::inherit()).await
    }

    /// [`ServeProcess::spawn`] with standard output discarded and standard
    /// error sent to `stderr` (e.g. `Stdio::piped()`, read back with
    /// [`ServeProcess::take_stderr`]).
    pub async fn spawn_with(
        ajwt: &Path,
        data_dir: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> Result<ServeProcess, KitError> {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let mut child = ChildGuard::spawn(
            Command::new(ajwt)
                .arg("serve")
                .arg("--addr")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(data_dir)
                .args(extra)
                .stdout(Stdio::null())
                .stderr(stderr),
        )?;
        child
            .wait_healthy(&base_url, Duration::from_secs(30))
            .await?;
        Ok(ServeProcess {
            base_url,
            data_dir: data_dir.to_path_buf(),
            child,
        })
    }

    /// The bootstrap admin client it wrote.
    pub fn admin(&self) -> Result<ClientCredentials, KitError> {
        read_admin_client(&self.data_dir)
    }

    /// A token of the admin client from `<base_url>/intent/token`.
    pub async fn admin_token(&self) -> Result<String, KitError> {
        client_token(&format!("{}/intent/token", self.base_url), &self.admin()?).await
    }

    /// Stops it with SIGTERM and returns its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, KitError> {
        self.child.terminate(timeout)
    }

    /// Its standard error, when spawned with `Stdio::piped()`.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.0.stderr.take()
    }
}

// ---- issue 14: a fresh PostgreSQL database per test ----------------------
pub mod postgres;
pub use postgres::{fresh_postgres_database, FreshDatabase, TEST_DATABASE_URL_VAR};
