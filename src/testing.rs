//! Test support (feature `testing`): a clock that stands still, and fault
//! injection points (feature `failpoints`). Nothing here is for production
//! use, and none of it is covered by semver.

pub use crate::clock::{Clock, ManualClock, SystemClock};

/// Fault injection points (feature `failpoints`; without it every point is
/// inert).
pub mod failpoint {
    pub use crate::failpoint::*;
}
