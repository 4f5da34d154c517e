//! Time, behind one trait so tests control it.
//!
//! Every time-dependent decision of the guard (token `exp`/`iat`/`nbf`, cache
//! expiry, the stale-if-error window) reads the guard's [`Clock`]. Tests use
//! [`FakeClock`] and [`FakeClock::advance`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Seconds since the Unix epoch (the unit of JWT `iat`/`exp`).
    fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Whether the clock moves on by itself as real time passes (`true`,
    /// the default). A guard waits a moment for the next second (a login
    /// in the second its subject's record was created) only on such a
    /// clock; on one that moves only when told ([`FakeClock`]) it answers
    /// [`Error::RetryLater`](crate::Error::RetryLater) at once.
    fn moves_by_itself(&self) -> bool {
        true
    }
}

/// The system's wall clock (`std::time::SystemTime`, read on every call).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        // Milliseconds since the Unix epoch, negative before it; read
        // directly (no calendar arithmetic on the hot path).
        let now = std::time::SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        }
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use jwt_revoke::{Clock, FakeClock};
///
/// let clock = FakeClock::new(1_700_000_000);
/// clock.advance(Duration::from_secs(31));
/// assert_eq!(clock.now_seconds(), 1_700_000_031);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    millis: Arc<AtomicI64>,
}

impl FakeClock {
    /// A clock set to `unix_seconds`.
    pub fn new(unix_seconds: i64) -> Self {
        Self::from_millis(unix_seconds.saturating_mul(1000))
    }

    /// A clock set to `unix_millis`.
    pub fn from_millis(unix_millis: i64) -> Self {
        FakeClock {
            millis: Arc::new(AtomicI64::new(unix_millis)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `unix_seconds` (it may move backwards, to test skew).
    pub fn set(&self, unix_seconds: i64) {
        self.millis
            .store(unix_seconds.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }

    fn moves_by_itself(&self) -> bool {
        false
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_millis(&self) -> i64 {
        (**self).now_millis()
    }

    fn moves_by_itself(&self) -> bool {
        (**self).moves_by_itself()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_unix_milliseconds() {
        let before = chrono::Utc::now().timestamp_millis();
        let ours = SystemClock.now_millis();
        let after = chrono::Utc::now().timestamp_millis();
        assert!(
            before <= ours && ours <= after,
            "{before} <= {ours} <= {after}"
        );
    }
}
