//! Unique names: markers for secrets and app ids (keychain namespaces), so
//! tests running at the same time, in one process or several, never share
//! anything.

use std::sync::atomic::{AtomicU64, Ordering};

/// A per-process counter: every call gets another number.
fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A marker unique within this run: `tag`, the pid, a per-process counter
/// and the clock's nanoseconds.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}-{}-{}-{t:08x}", std::process::id(), next())
}

/// A valid app id (at most 64 of `[A-Za-z0-9_-]`) that no other call makes:
/// `t-`, the start of `test`, a hash of all of it, the start of `tag` (the
/// backend, say), the pid and a per-process counter.
pub fn app_id(test: &str, tag: &str) -> String {
    let mut h: u32 = 2166136261;
    for b in test.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(16777619);
    }
    let short: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect();
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(4)
        .collect();
    let id = format!("t-{short}-{h:08x}-{tag}-{}-{}", std::process::id(), next());
    assert!(id.len() <= 64, "app id too long: {id}");
    id
}
