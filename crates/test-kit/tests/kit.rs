//! The kit's own process helpers: an exited child is reported at once (not
//! after the timeout), `wait_timeout` returns the exit status, and SIGTERM
//! stops a running child.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use ajwt_test_kit::{free_port, ChildGuard, KitError};

#[tokio::test]
async fn wait_healthy_reports_a_child_that_exited_without_waiting_for_the_timeout() {
    let mut child = ChildGuard::spawn(Command::new("sh").args(["-c", "exit 3"])).unwrap();
    let base = format!("http://127.0.0.1:{}", free_port().unwrap());
    let started = Instant::now();
    match child.wait_healthy(&base, Duration::from_secs(30)).await {
        Err(KitError::Exited(status)) => assert_eq!(status.code(), Some(3)),
        other => panic!("expected Exited, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn wait_timeout_and_terminate() {
    let mut done = ChildGuard::spawn(Command::new("sh").args(["-c", "exit 0"])).unwrap();
    assert!(done
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .success());

    let mut running = ChildGuard::spawn(Command::new("sleep").arg("30")).unwrap();
    assert!(matches!(
        running.wait_timeout(Duration::from_millis(100)),
        Err(KitError::NotStopped)
    ));
    let status = running.terminate(Duration::from_secs(10)).unwrap();
    assert!(!status.success(), "killed by SIGTERM: {status:?}");
}
