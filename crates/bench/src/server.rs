//! `ajwt serve` as a child process pinned to one core, and what `/proc`
//! tells about it (CPU seconds, peak RSS).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::load::{self, Req};

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 on Linux).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (utime + stime) of a process, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: split after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the man page are 11 and 12 after the name and state.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// Context switches (voluntary + involuntary) of every thread of a
/// process so far, from `/proc/<pid>/task/*/status`. Threads that already
/// ended are not counted (the server's threads live as long as it does).
pub fn context_switches(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            let v = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"));
            if let Some(n) = v.and_then(|v| v.trim().parse::<u64>().ok()) {
                total += n;
            }
        }
    }
    Some(total)
}

/// A `/proc/<pid>/status` value in kB (e.g. `VmHWM`).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Whether `taskset` exists and the machine has at least two cores
/// (counted in `/proc/cpuinfo`: `available_parallelism` follows this
/// process's own affinity, which pinning changes). Computed once.
pub fn can_pin() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        let cores = std::fs::read_to_string("/proc/cpuinfo")
            .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
            .unwrap_or(1);
        cores >= 2
            && Command::new("taskset")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

/// Pins every thread of this process to `cpus` (`taskset -a -p -c`);
/// threads started later inherit it. Silently nothing without `taskset`.
pub fn pin_self(cpus: &str) {
    if can_pin() {
        let _ = Command::new("taskset")
            .args(["-a", "-p", "-c", cpus])
            .arg(std::process::id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `ajwt` binary.
    pub ajwt: PathBuf,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `--signing-alg`.
    pub alg: String,
    /// Extra arguments (`--database-url`, `--kek-file`, `--issuer`).
    pub extra: Vec<String>,
    /// Core list for `taskset -c` (none: not pinned).
    pub cpus: Option<String>,
    /// Where the server's standard error goes.
    pub log: Option<PathBuf>,
}

/// The arguments that keep the rate limits (§9.4.3, I-73) out of the
/// measurement: every limit off, connections up to 1024.
pub const UNTHROTTLED: &[&str] = &[
    "--rate-limit-client",
    "0",
    "--rate-limit-agent",
    "0",
    "--rate-limit-grant-failures",
    "0",
    "--rate-limit-auth-failures",
    "0",
    "--rate-limit-registrations",
    "0",
    "--max-connections",
    "1024",
];

/// A running `ajwt serve`.
pub struct Server {
    child: Child,
    /// Its listen address.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `ajwt serve` on a free port with the rate limits off and
    /// `AJWT_LOG=warn`, and waits until `/healthz` answers 200.
    pub async fn start(opts: &ServeOptions) -> Result<Server, String> {
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        Server::start_on(opts, port).await
    }

    /// [`Server::start`] on a given port.
    pub async fn start_on(opts: &ServeOptions, port: u16) -> Result<Server, String> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = match &opts.cpus {
            Some(cpus) if can_pin() => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(&opts.ajwt);
                c
            }
            _ => Command::new(&opts.ajwt),
        };
        cmd.arg("serve")
            .arg("--addr")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&opts.data_dir)
            .arg("--signing-alg")
            .arg(&opts.alg)
            .args(UNTHROTTLED)
            .args(&opts.extra)
            .env("AJWT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match &opts.log {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                cmd.stderr(f);
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.ajwt.display()))?;
        let mut server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = load::once(addr, &Req::get("/healthz")).await {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("ajwt serve exited at start: {status}"));
            }
            if Instant::now() > deadline {
                server.stop();
                return Err("ajwt serve did not become healthy in 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's process id (taskset execs it: the same process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds so far.
    pub fn cpu(&self) -> f64 {
        cpu_seconds(self.pid()).unwrap_or(0.0)
    }

    /// Context switches of all its threads so far.
    pub fn switches(&self) -> u64 {
        context_switches(self.pid()).unwrap_or(0)
    }

    /// Peak resident set size (`VmHWM`) in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        status_kb(self.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0
    }

    /// Stops it with SIGTERM (graceful: the store is closed), killing it
    /// after 20 s.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// The bootstrap admin client of a data directory (`admin-client.json`).
pub fn admin_client(data_dir: &Path) -> Result<(String, String), String> {
    let bytes = std::fs::read(data_dir.join("admin-client.json"))
        .map_err(|e| format!("admin-client.json: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("admin-client.json: {e}"))?;
    let get = |k: &str| {
        v[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("admin-client.json: no {k}"))
    };
    Ok((get("client_id")?, get("client_secret")?))
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `client_credentials` request of RFC 6749 §4.4 with HTTP Basic
/// (form-encoded id and secret, RFC 6749 §2.3.1), as the shim sends it.
pub fn client_credentials_request(client_id: &str, secret: &str) -> Req {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(client_id),
        form_encode(secret)
    ));
    Req::post(
        "/intent/token",
        "application/x-www-form-urlencoded",
        &format!("Basic {basic}"),
        b"grant_type=client_credentials".to_vec(),
    )
}

/// A client access token of the admin client.
pub async fn admin_token(addr: SocketAddr, data_dir: &Path) -> Result<String, String> {
    let (id, secret) = admin_client(data_dir)?;
    let (status, body) = load::once(addr, &client_credentials_request(&id, &secret)).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match v["access_token"].as_str() {
        Some(t) if status == 200 => Ok(t.to_owned()),
        _ => Err(format!(
            "client_credentials: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

/// Total size in bytes of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
