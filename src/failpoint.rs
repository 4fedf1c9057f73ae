//! Fault injection points for tests (feature `failpoints`); without the
//! feature every check compiles to `Ok(())`.

/// A place where a test can make the next operation fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Point {
    /// The rename that commits a new metadata file.
    MetadataRename,
}

#[cfg(feature = "failpoints")]
mod imp {
    use super::Point;
    use std::sync::Mutex;

    static ARMED: Mutex<Vec<Point>> = Mutex::new(Vec::new());

    /// Make the next operation at `point` fail once.
    pub fn fail_next(point: Point) {
        ARMED.lock().unwrap_or_else(|p| p.into_inner()).push(point);
    }

    /// Disarm everything.
    pub fn clear() {
        ARMED.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub(crate) fn check(point: Point) -> std::io::Result<()> {
        let mut armed = ARMED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = armed.iter().position(|p| *p == point) {
            armed.remove(i);
            return Err(std::io::Error::other(format!(
                "injected failure at {point:?}"
            )));
        }
        Ok(())
    }
}

#[cfg(feature = "failpoints")]
pub(crate) use imp::check;
#[cfg(feature = "failpoints")]
pub use imp::{clear, fail_next};

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn check(_point: Point) -> std::io::Result<()> {
    Ok(())
}
