//! In-memory capture of the issuer's `tracing` output as JSON lines, for
//! tests of security events and the audit trail. `install` sets a
//! thread-local default subscriber: keep one such test per test binary,
//! because tracing caches callsite interest process-wide and parallel tests
//! on other threads would hide events from each other.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A `MakeWriter` collecting formatted log lines in memory.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    /// A capture installed as this thread's default subscriber (JSON lines,
    /// with targets) until the guard is dropped.
    pub fn install() -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_target(true)
            .with_writer(capture.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (capture, guard)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The events logged on `target`.
    pub fn events(&self, target: &str) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["target"] == target)
            .collect()
    }

    /// Forgets everything logged so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}
