//! The adapter target: a program speaking the line-delimited JSON protocol of
//! `conformance/adapters/PROTOCOL.md` on its stdin/stdout. It is started
//! once; each request is one JSON line, each response one JSON line. A
//! `hello` request checks it is usable before any test runs (failure: a
//! setup error, exit status 2). Later, a crash, a timeout or a response
//! that is not JSON fails the test at hand with the reason and the end of
//! the adapter's stderr, and the adapter is restarted for the next test (at
//! most [`MAX_RESTARTS`] times).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::timeout;

use super::protocol::{unsupported, PROTOCOL};
use crate::Error;

/// How many times a crashed, hung or garbling adapter is restarted before
/// every remaining test fails.
pub const MAX_RESTARTS: usize = 5;
/// Bytes of the adapter's stderr kept for error messages.
const STDERR_TAIL: usize = 2000;
/// Longest accepted response line.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// Why an exchange with the adapter failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The adapter exited (or closed stdout) before answering.
    #[error("the adapter exited before answering ({0})")]
    Exited(String),
    /// No response within the timeout.
    #[error("the adapter did not answer within {0} s{1}")]
    Timeout(u64, String),
    /// The response line is not a JSON object of the protocol.
    #[error("the adapter's response is out of protocol: {0}")]
    Garbled(String),
    /// Too many restarts, or it cannot be restarted.
    #[error("the adapter is no longer usable: {0}")]
    GaveUp(String),
}

/// A running adapter process.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// A started adapter.
pub struct Adapter {
    argv: Vec<String>,
    timeout: Duration,
    proc: Option<Proc>,
    restarts: usize,
    about: Option<String>,
    dead: Option<String>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("argv", &self.argv)
            .field("restarts", &self.restarts)
            .finish()
    }
}

/// Splits a command line like a POSIX shell would for simple cases:
/// whitespace separates words; `'…'` is literal; `"…"` allows `\"` and `\\`;
/// a backslash outside quotes escapes the next character.
pub(crate) fn split_command(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated ' in {command:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated \" in {command:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated \" in {command:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("trailing backslash in {command:?}")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn spawn(argv: &[String]) -> std::io::Result<Proc> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the adapter's pipes are unavailable"));
    };
    let tail = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&tail);
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut t) = sink.lock() {
                        t.extend_from_slice(buf.get(..n).unwrap_or(&[]));
                        if t.len() > STDERR_TAIL {
                            let cut = t.len() - STDERR_TAIL;
                            t.drain(..cut);
                        }
                    }
                }
            }
        }
    });
    Ok(Proc {
        child,
        stdin,
        stdout: BufReader::new(stdout),
        stderr: tail,
    })
}

/// `; stderr: …` with the end of the adapter's stderr, or nothing.
fn stderr_tail(p: &Proc) -> String {
    let text = p
        .stderr
        .lock()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default();
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.is_empty() {
        String::new()
    } else {
        let n = flat.chars().count();
        let last: String = flat.chars().skip(n.saturating_sub(300)).collect();
        format!("; stderr: {}{last}", if n > 300 { "…" } else { "" })
    }
}

/// The exit status (waiting briefly for it) and stderr tail of a process
/// that stopped answering.
async fn exit_report(p: &mut Proc) -> String {
    // Let the stderr reader catch up with the last output.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = match timeout(Duration::from_secs(2), p.child.wait()).await {
        Ok(Ok(s)) => s.to_string(),
        Ok(Err(e)) => format!("status unknown: {e}"),
        Err(_) => "stdout closed, still running".to_owned(),
    };
    format!("{status}{}", stderr_tail(p))
}

/// Excerpt of a response line for error messages.
fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end();
    if s.chars().count() > 200 {
        let t: String = s.chars().take(199).collect();
        format!("{t:?}…")
    } else {
        format!("{s:?}")
    }
}

/// One request/response exchange with a running process.
async fn exchange(p: &mut Proc, request: &Value, wait: Duration) -> Result<Value, AdapterError> {
    let secs = wait.as_secs();
    let mut line = serde_json::to_vec(request)
        .map_err(|e| AdapterError::Garbled(format!("cannot encode the request: {e}")))?;
    line.push(b'\n');
    let write = async {
        p.stdin.write_all(&line).await?;
        p.stdin.flush().await
    };
    match timeout(wait, write).await {
        Err(_) => {
            return Err(AdapterError::Timeout(
                secs,
                " (it does not read its stdin)".to_owned(),
            ))
        }
        Ok(Err(e)) => {
            let report = exit_report(p).await;
            return Err(AdapterError::Exited(format!(
                "cannot write the request: {e}; {report}"
            )));
        }
        Ok(Ok(())) => {}
    }
    let read = async {
        loop {
            let mut buf = Vec::new();
            let n = (&mut p.stdout)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .await?;
            // Blank lines are tolerated; anything else is the response.
            if n == 0 || !buf.iter().all(u8::is_ascii_whitespace) {
                return Ok::<Vec<u8>, std::io::Error>(buf);
            }
        }
    };
    let buf = match timeout(wait, read).await {
        Err(_) => {
            let tail = stderr_tail(p);
            return Err(AdapterError::Timeout(secs, tail));
        }
        Ok(Err(e)) => return Err(AdapterError::Garbled(format!("cannot read stdout: {e}"))),
        Ok(Ok(buf)) => buf,
    };
    if buf.is_empty() {
        return Err(AdapterError::Exited(exit_report(p).await));
    }
    if buf.last() != Some(&b'\n') && buf.len() >= MAX_LINE {
        return Err(AdapterError::Garbled(format!(
            "response line longer than {MAX_LINE} bytes"
        )));
    }
    let value: Value = serde_json::from_slice(&buf).map_err(|e| {
        AdapterError::Garbled(format!(
            "not a JSON line ({e}): {}{}",
            excerpt(&buf),
            stderr_tail(p)
        ))
    })?;
    if !value.is_object() {
        return Err(AdapterError::Garbled(format!(
            "not a JSON object: {}",
            excerpt(&buf)
        )));
    }
    if let (Some(sent), Some(got)) = (request.get("id"), value.get("id")) {
        if sent != got {
            return Err(AdapterError::Garbled(format!(
                "answered id {got} to request id {sent}"
            )));
        }
    }
    Ok(value)
}

impl Adapter {
    /// Starts `command` (split by [`split_command`]) and checks it answers
    /// the `hello` request within `wait`.
    pub async fn start(command: &str, wait: Duration) -> Result<Adapter, Error> {
        let argv = split_command(command).map_err(|e| Error::Setup(format!("--adapter: {e}")))?;
        if argv.is_empty() {
            return Err(Error::Setup("--adapter: empty command".to_owned()));
        }
        let proc = spawn(&argv)
            .map_err(|e| Error::Setup(format!("cannot start adapter `{command}`: {e}")))?;
        let mut adapter = Adapter {
            argv,
            timeout: wait,
            proc: Some(proc),
            restarts: 0,
            about: None,
            dead: None,
        };
        let hello = json!({"op": "hello", "protocol": PROTOCOL});
        let answer = match adapter.proc.as_mut() {
            Some(p) => exchange(p, &hello, wait).await,
            None => Err(AdapterError::GaveUp("not started".to_owned())),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                adapter.shutdown().await;
                return Err(Error::Setup(format!(
                    "adapter `{command}` is not usable: no valid answer to the hello request: {e}"
                )));
            }
        };
        if unsupported(&answer).is_none() {
            if let Some(e) = answer.get("error") {
                adapter.shutdown().await;
                return Err(Error::Setup(format!(
                    "adapter `{command}` refused the hello request: {e}"
                )));
            }
            if let Some(p) = answer.get("protocol").and_then(Value::as_str) {
                if p != PROTOCOL {
                    adapter.shutdown().await;
                    return Err(Error::Setup(format!(
                        "adapter `{command}` speaks protocol {p:?}, this suite speaks {PROTOCOL:?}"
                    )));
                }
            }
            let name = answer.get("name").and_then(Value::as_str);
            let version = answer.get("version").and_then(Value::as_str);
            adapter.about = match (name, version) {
                (Some(n), Some(v)) => Some(format!("{n} {v}")),
                (Some(n), None) => Some(n.to_owned()),
                (None, Some(v)) => Some(v.to_owned()),
                (None, None) => None,
            };
        }
        Ok(adapter)
    }

    /// The adapter's self-description from its `hello` answer (`name version`).
    pub fn about(&self) -> Option<String> {
        self.about.clone()
    }

    /// How many times the adapter was restarted.
    pub fn restarts(&self) -> usize {
        self.restarts
    }

    /// Sends one request and returns the response object. After a failure
    /// the process is killed and restarted on the next call.
    pub async fn call(&mut self, request: &Value) -> Result<Value, AdapterError> {
        if let Some(reason) = &self.dead {
            return Err(AdapterError::GaveUp(reason.clone()));
        }
        if self.proc.is_none() {
            if self.restarts >= MAX_RESTARTS {
                let reason = format!("it failed {} times", MAX_RESTARTS + 1);
                self.dead = Some(reason.clone());
                return Err(AdapterError::GaveUp(reason));
            }
            self.restarts += 1;
            match spawn(&self.argv) {
                Ok(mut p) => {
                    // A restarted adapter is greeted like a new one.
                    let hello = json!({"op": "hello", "protocol": PROTOCOL});
                    if let Err(e) = exchange(&mut p, &hello, self.timeout).await {
                        let _ = p.child.start_kill();
                        let _ = timeout(Duration::from_secs(2), p.child.wait()).await;
                        return Err(AdapterError::Exited(format!(
                            "after a restart it did not answer the hello request: {e}"
                        )));
                    }
                    self.proc = Some(p);
                }
                Err(e) => {
                    let reason = format!("cannot restart it: {e}");
                    self.dead = Some(reason.clone());
                    return Err(AdapterError::GaveUp(reason));
                }
            }
        }
        let result = match self.proc.as_mut() {
            Some(p) => exchange(p, request, self.timeout).await,
            None => Err(AdapterError::GaveUp("not running".to_owned())),
        };
        if result.is_err() {
            if let Some(mut p) = self.proc.take() {
                let _ = p.child.start_kill();
                let _ = timeout(Duration::from_secs(2), p.child.wait()).await;
            }
        }
        result
    }

    /// Closes the adapter's stdin (its signal to exit), waits up to two
    /// seconds, then kills it.
    pub async fn shutdown(mut self) {
        if let Some(p) = self.proc.take() {
            let Proc {
                mut child, stdin, ..
            } = p;
            drop(stdin);
            if timeout(Duration::from_secs(2), child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = timeout(Duration::from_secs(2), child.wait()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_handles_quotes_and_escapes() {
        assert_eq!(
            split_command(r#"python3 "my adapter.py" --x 'a b' c\ d "q\"x""#).unwrap(),
            vec!["python3", "my adapter.py", "--x", "a b", "c d", "q\"x"]
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command("''").unwrap(), vec![""]);
        assert!(split_command("a 'b").is_err());
        assert!(split_command("a \"b").is_err());
    }
}
