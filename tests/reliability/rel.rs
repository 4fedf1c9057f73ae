//! Helpers of the reliability tests: stores opened by backend name, the
//! keychain seen from outside, cleanup, child processes watched line by
//! line, a small RNG and a clock that processes share.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rctoken::{Backend, Error, TokenStore};

use crate::support::child::MARK;
use crate::support::{keyutils, secret_service};

/// A backend by its CLI name (`keyutils`, `secret-service`,
/// `windows-credential-manager`).
pub fn backend(name: &str) -> Backend {
    Backend::from_name(name).expect("known backend name")
}

/// Open a store in `dir` for `app` on the named backend.
pub fn open(dir: &Path, app: &str, backend_name: &str) -> TokenStore {
    open_split(dir, app, backend_name, None)
}

/// [`open`], splitting envelopes into items of at most `max_item` bytes.
pub fn open_split(
    dir: &Path,
    app: &str,
    backend_name: &str,
    max_item: Option<usize>,
) -> TokenStore {
    let mut b = TokenStore::builder(app)
        .dir(dir)
        .backend(backend(backend_name))
        .lock_timeout(Duration::from_secs(60));
    if let Some(n) = max_item {
        b = b.max_item_bytes(n);
    }
    b.open().expect("open store")
}

/// The variant name of an error, for messages and child reports.
pub fn variant(e: &Error) -> String {
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Number of keychain items of `app` on the named real backend (for the
/// sealed store: item files in `store`'s directory), seen from outside the
/// library.
pub fn outside_count(store: &TokenStore, app: &str, backend_name: &str) -> usize {
    match backend_name {
        "keyutils" => keyutils::items(app).len(),
        "secret-service" => secret_service::count(app),
        "sealed" => std::fs::read_dir(store.layout().dir().join("sealed"))
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0),
        #[cfg(windows)]
        "windows-credential-manager" => {
            crate::support::credential_manager::accounts(&format!("rctoken:{app}")).len()
        }
        other => panic!("no outside view of {other}"),
    }
}

/// The accounts of `app`'s items on the named backend, seen from outside
/// the library, where the tests list them item by item (keyutils: live keys
/// in `@u`; the Credential Manager: its own list); `None` elsewhere.
pub fn outside_accounts(app: &str, backend_name: &str) -> Option<Vec<String>> {
    match backend_name {
        "keyutils" => Some(keyutils::items(app).into_iter().map(|(a, _)| a).collect()),
        #[cfg(windows)]
        "windows-credential-manager" => Some(crate::support::credential_manager::accounts(
            &format!("rctoken:{app}"),
        )),
        _ => None,
    }
}

/// Monotonic nanoseconds, comparable across processes (CLOCK_MONOTONIC).
#[cfg(unix)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the valid timespec we pass.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds comparable across processes: elsewhere than on Unix, the
/// wall clock (std has no system-wide monotonic clock it exposes as a
/// number), which is good enough while nobody sets the clock mid-test.
#[cfg(not(unix))]
pub fn monotonic_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Remove everything the test stored, and check nothing of it remains.
pub fn cleanup(store: &TokenStore, app: &str, backend_name: &str) {
    store.remove_all().expect("remove_all");
    let left = match backend_name {
        "keyutils" => keyutils::items_settle(app, 0).len(),
        "secret-service" => secret_service::count(app),
        #[cfg(windows)]
        "windows-credential-manager" => outside_count(store, app, backend_name),
        "sealed" => {
            // The last logout takes the store's key with it.
            let keys = keyutils::keys(&keyutils::sealing_keys(app));
            assert!(keys.is_empty(), "the sealed store's key is left: {keys:?}");
            outside_count(store, app, backend_name) + keyutils::items(app).len()
        }
        _ => 0,
    };
    assert_eq!(
        left, 0,
        "items of {app} left in {backend_name} after remove_all"
    );
}

/// Kills (SIGKILL) and reaps the child on drop, so a failing test leaves no
/// process behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child's stdout, drained line by line on a thread (so the pipe never
/// fills up and blocks the child).
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(child: &mut Child) -> Lines {
        let out = child.stdout.take().expect("child stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line, waiting at most `limit`.
    pub fn next_line(&mut self, limit: Duration) -> String {
        match self.rx.recv_timeout(limit) {
            Ok(l) => {
                self.seen.push(l.clone());
                l
            }
            Err(e) => panic!("no line from the child ({e:?}); it printed {:?}", self.seen),
        }
    }

    /// Wait for a line ending with `marker`. Panics if the child's stdout
    /// closes first or nothing comes within `limit` (a hang, not a speed
    /// check).
    pub fn wait_for(&mut self, marker: &str, limit: Duration) {
        self.wait_until(marker, limit, |l| l.ends_with(marker).then(String::new));
    }

    /// Wait until the child reports `key` (`support::child::report`) and
    /// return the value; panics as [`Lines::wait_for`].
    pub fn wait_report(&mut self, key: &str, limit: Duration) -> String {
        let prefix = format!("{MARK}{key}=");
        self.wait_until(key, limit, |l| {
            l.find(&prefix).map(|i| l[i + prefix.len()..].to_string())
        })
    }

    fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        hit: impl Fn(&str) -> Option<String>,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let found = hit(&l);
                    self.seen.push(l);
                    if let Some(v) = found {
                        return v;
                    }
                }
                Err(e) => panic!(
                    "child did not print {what:?} ({e:?}); it printed {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Everything read so far, one line each.
    pub fn text(&self) -> String {
        self.seen.join("\n")
    }
}

/// Wait for a child to exit, at most `limit` (a generous "it returned at all"
/// bound, never a speed assertion). Returns its exit status and stdout.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> (ExitStatus, String) {
    let mut out = child.stdout.take().map(BufReader::new);
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_string(o, &mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

/// splitmix64: enough randomness for delays and op mixes, no crate needed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Seeded from the clock, the pid and a per-process counter.
    pub fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let mut r = Rng(t ^ (u64::from(std::process::id()) << 32) ^ n);
        r.next();
        r
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
