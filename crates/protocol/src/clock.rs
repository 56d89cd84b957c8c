//! The one `Clock` of the project: seconds since the Unix epoch, replaceable
//! in tests. The issuer and (after the merge) the verifier use it. Reading
//! the system time is the only thing it does: no I/O.

/// Seconds since the Unix epoch; replaceable in tests.
pub trait Clock: Send + Sync + 'static {
    /// Now, in Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// A clock stopped at a given Unix second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_and_fixed_clocks() {
        // 2024-01-01T00:00:00Z, computed with CPython's calendar.timegm.
        assert!(SystemClock.now() > 1_704_067_200);
        assert_eq!(FixedClock(42).now(), 42);
        let boxed: Box<dyn Clock> = Box::new(FixedClock(7));
        assert_eq!(boxed.now(), 7);
    }
}
