//! The one source of the current time for everything that runs on its own: the background
//! workers (harvest, notifications, the newsletter, the ledger, peers) each hold a `Clock`,
//! and pass the `now` it reads to the store and the use cases. The store never reads the
//! time itself, so one pass stamps every row it writes with the `now` it scheduled with, and a
//! test can move time forward rather than wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, the unit of every `*_at` column: the system clock or a
/// clock a test sets.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(system_now))
    }

    /// A clock that reads `f`.
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    /// A clock that stands at `at` until it is set or advanced; the handle moves it.
    pub fn manual(at: i64) -> (Clock, ManualClock) {
        let cell = Arc::new(AtomicI64::new(at));
        let read = cell.clone();
        (Clock(Arc::new(move || read.load(Ordering::Acquire))), ManualClock(cell))
    }

    /// The current time.
    pub fn now(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// The handle of a `Clock::manual`.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn set(&self, at: i64) {
        self.0.store(at, Ordering::Release);
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::AcqRel);
    }
}

/// Seconds since the Unix epoch by the system clock. Only entry points (the command line,
/// request handlers) and `Clock::system` call it; the store never does.
pub fn system_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let (clock, hand) = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        hand.advance(60);
        assert_eq!(clock.clone().now(), 1_060);
        hand.set(5);
        assert_eq!(clock.now(), 5);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(Clock::system().now() > 1_577_836_800);
    }
}
