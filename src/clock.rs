//! Time: an injectable [`Clock`] so tests never sleep, and the derived
//! absolute expiry instants of a saved token.

use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved: for tests.
#[cfg(feature = "testing")]
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<OffsetDateTime>);

#[cfg(feature = "testing")]
impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(std::sync::Mutex::new(at))
    }
    /// Move the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

#[cfg(feature = "testing")]
impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whole seconds since the epoch, as stored: sub-second precision is dropped.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap_or(t)
}

/// `from + secs`, or `None` if `secs` is absent.
pub(crate) fn after(from: OffsetDateTime, secs: Option<i64>) -> Option<OffsetDateTime> {
    secs.and_then(|s| from.checked_add(time::Duration::seconds(s)))
}

/// Whether `expires_at` lies at least `min` after `now`; an absent expiry
/// (the server gave no TTL) counts as never expiring.
pub(crate) fn valid_for(
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    min: Duration,
) -> bool {
    match expires_at {
        None => true,
        Some(at) => (at - now) >= min,
    }
}

/// Seconds from `now` until `at`, never negative.
pub(crate) fn remaining_secs(at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (at - now).whole_seconds().max(0)
}
