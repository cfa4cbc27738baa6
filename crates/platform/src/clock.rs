//! Time as the platform hands it out: UTC, truncated to microseconds, the precision PostgreSQL
//! keeps, so a timestamp a service returns is the one it later reads back, in either mode.
//!
//! A service reads time through the [`Clock`] in its `Context`, the system's unless a test moves
//! it forward: deadlines, leases and expiries are then judged by the time the test says it is,
//! without waiting for it. [`now`] is the system's time, for code that has no `Context`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
#[cfg(any(test, feature = "testing"))]
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

/// The system's time, for code that has no `Context` (and so no [`Clock`]).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A service's clock: the system's time plus how far a test moved it forward (nothing, outside
/// tests). Cheap to clone; clones share the offset, so one clock handed to several services
/// moves for all of them at once. Never goes back: the offset only grows.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Microseconds added to the system's time.
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> DateTime<Utc> {
        let offset = TimeDelta::microseconds(self.offset.load(Ordering::Relaxed));
        (Utc::now() + offset).trunc_subsecs(6)
    }

    /// Moves this clock (and every clone of it) forward by `by`, as if that much time passed.
    #[cfg(any(test, feature = "testing"))]
    pub fn advance(&self, by: Duration) {
        let micros =
            i64::try_from(by.as_micros()).expect("a test advances by less than 290,000 years");
        self.offset.fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_the_systems_time() {
        let before = now();
        let read = Clock::system().now();
        assert!(before <= read && read <= now(), "{before} {read}");
        assert_eq!(read, read.trunc_subsecs(6));
    }

    #[test]
    fn advancing_a_clock_moves_every_clone_of_it_and_no_other() {
        let clock = Clock::system();
        let shared = clock.clone();
        let other = Clock::system();
        clock.advance(Duration::from_secs(3600));
        let hour = TimeDelta::hours(1);
        assert!(shared.now() >= now() + hour - TimeDelta::seconds(1));
        assert!(other.now() < now() + TimeDelta::seconds(1));
    }
}
