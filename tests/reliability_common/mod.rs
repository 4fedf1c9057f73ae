//! Shared helpers of the reliability tests (crash, faults, concurrency,
//! large, hang): counter-tagged tokens, child processes re-executing the
//! test binary, a small RNG, the CLI exit-code mapping, and independent
//! views of the keychains (`/proc/keys`, `secret-tool`).
#![allow(dead_code)]

pub mod fault_store;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rctoken::secrecy::{ExposeSecret, SecretString};
use rctoken::{Backend, Error, StoredToken, TokenInfo, TokenStore};

/// Environment variable that turns a re-executed test binary into a child.
pub const ROLE_ENV: &str = "RCTOKEN_REL_ROLE";

/// A unique app id (≤ 64 chars of `[A-Za-z0-9_.-]`) for one test run.
pub fn unique_app(test: &str) -> String {
    let mut rng = Rng::seeded();
    let mut app = format!(
        "rel-{test}-{}-{:06x}",
        std::process::id(),
        rng.below(1 << 24)
    );
    app.truncate(64);
    app
}

/// splitmix64: enough randomness for delays and op mixes, no crate needed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    /// Seeded from the clock, the pid and a per-process counter.
    pub fn seeded() -> Rng {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut r =
            Rng(t ^ (u64::from(std::process::id()) << 32) ^ N.fetch_add(1, Ordering::Relaxed));
        r.next();
        r
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A token whose three secrets all carry `tag`: `acc-<tag>`, `ref-<tag>`,
/// `id-<tag>`, so a load can prove they come from one save.
pub fn tagged(tag: &str, expires_in: i64) -> TokenInfo {
    let mut t = TokenInfo::new(
        SecretString::from(format!("acc-{tag}")),
        expires_in,
        "ReadAccounts",
    );
    t.refresh_token = Some(SecretString::from(format!("ref-{tag}")));
    t.refresh_token_expires_in = Some(604_800);
    t.id_token = Some(SecretString::from(format!("id-{tag}")));
    t.endpoint_id = Some("rel-endpoint".into());
    t
}

/// The common tag of a token's three secrets; panics if they differ (a torn read).
pub fn tag_of(t: &TokenInfo) -> String {
    let access = t.access_token.expose_secret();
    let refresh = t
        .refresh_token
        .as_ref()
        .map(|s| s.expose_secret().to_string())
        .unwrap_or_default();
    let id = t
        .id_token
        .as_ref()
        .map(|s| s.expose_secret().to_string())
        .unwrap_or_default();
    let a = access.strip_prefix("acc-").unwrap_or("<bad access>");
    let r = refresh.strip_prefix("ref-").unwrap_or("<bad refresh>");
    let i = id.strip_prefix("id-").unwrap_or("<bad id>");
    assert!(
        a == r && r == i,
        "torn read: access/refresh/id tags differ: {a:?} {r:?} {i:?}"
    );
    a.to_string()
}

/// The tag of a loaded token (see [`tag_of`]).
pub fn loaded_tag(s: &StoredToken) -> String {
    tag_of(&s.token)
}

/// Whether a real Secret Service session bus is configured (CI runs the
/// tests under `.ci/with-keyring.sh`).
pub fn secret_service_configured() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
}

/// Skip notice for Secret Service parts when no session bus is configured.
pub fn skip_secret_service(test: &str) -> bool {
    if secret_service_configured() {
        return false;
    }
    eprintln!("{test}: SKIPPED the Secret Service part: run under .ci/with-keyring.sh");
    true
}

/// A backend by its CLI name (`keyutils`, `secret-service`).
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

/// The CLI exit code (issue 3) an error maps to.
pub fn exit_code(e: &Error) -> i32 {
    match e {
        Error::NoSuchProfile(_) | Error::NoActiveProfile => 3,
        Error::LoginRequired { .. } => 4,
        Error::KeychainUnavailable { .. } => 5,
        Error::BadToken { .. } => 6,
        Error::CorruptMetadata { .. }
        | Error::UnsupportedVersion { .. }
        | Error::UnsafeStore { .. } => 7,
        _ => 1,
    }
}

/// The codes the CLI documents.
pub const DOCUMENTED_CODES: [i32; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// The variant name of an error, for messages and child reports.
pub fn variant(e: &Error) -> String {
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_string()
}

/// A command re-running this test binary as a child that runs only the
/// `#[ignore]`d test `test_name`, with `ROLE_ENV=role`.
pub fn child(test_name: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        test_name,
        "--nocapture",
        "--ignored",
        "--test-threads=1",
    ])
    .env(ROLE_ENV, role)
    .env("RUST_BACKTRACE", "0")
    .stdin(Stdio::null());
    cmd
}

/// This process's child role, if it is one.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A required environment variable of a child.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child needs {name}"))
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

    /// Wait for a line ending with `marker` (libtest prints `test NAME ... `
    /// before a child's first line). Panics if the child's stdout closes
    /// first or nothing comes within `limit` (a hang, not a speed check).
    pub fn wait_for(&mut self, marker: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.ends_with(marker);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(e) => panic!(
                    "child did not print {marker:?} ({e:?}); it printed {:?}",
                    self.seen
                ),
            }
        }
    }
}

/// Wait for a child to exit, at most `limit` (a generous "it returned at all"
/// bound, never a speed assertion). Returns its exit status and stdout.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
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

/// Lines of a child's stdout that carry `prefix` (anywhere: libtest may print
/// `test NAME ... ` before the first), with everything up to it removed.
pub fn reports<'a>(stdout: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    stdout
        .lines()
        .filter_map(move |l| l.find(prefix).map(|i| &l[i + prefix.len()..]))
}

/// The live keyutils keys of `app`'s namespace as (account, payload length),
/// read from `/proc/keys` (independent of the library). Invalidated keys
/// that wait for the kernel's garbage collector are not counted.
pub fn keyutils_items(app: &str) -> Vec<(String, usize)> {
    let prefix = format!("rctoken:{app}:");
    // Only keys linked into the user keyring are in the namespace: a key a
    // killed writer had only in its own process keyring stays visible in
    // /proc/keys until the kernel's garbage collector frees it.
    let linked: Vec<u32> = String::from_utf8_lossy(&keyctl(&["rlist", "@u"]))
        .split_whitespace()
        .filter_map(|id| id.parse().ok())
        .collect();
    let text = std::fs::read_to_string("/proc/keys").expect("read /proc/keys");
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || fields[7] != "user" {
            continue;
        }
        if !u32::from_str_radix(fields[0], 16).is_ok_and(|id| linked.contains(&id)) {
            continue;
        }
        let flags = fields[1].as_bytes();
        // I R D Q U N i: revoked, dead or invalidated keys are gone for callers.
        if flags.get(1) == Some(&b'R') || flags.get(2) == Some(&b'D') || flags.get(6) == Some(&b'i')
        {
            continue;
        }
        let rest = fields[8..].join(" ");
        let Some(desc) = rest.strip_prefix(&prefix) else {
            continue;
        };
        let (account, len) = match desc.rsplit_once(": ") {
            Some((a, l)) => (a.to_string(), l.trim().parse().unwrap_or(usize::MAX)),
            None => (desc.to_string(), 0),
        };
        out.push((account, len));
    }
    out.sort();
    out
}

/// The serial number (decimal, as `keyctl` takes it) of the live keyutils
/// key holding `account` of `app`.
pub fn keyutils_key_id(app: &str, account: &str) -> Option<String> {
    let desc = format!("rctoken:{app}:{account}:");
    let text = std::fs::read_to_string("/proc/keys").expect("read /proc/keys");
    text.lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|f| f.as_bytes().get(6) != Some(&b'i'))
        })
        .find(|l| l.split_whitespace().nth(8) == Some(desc.as_str()))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .map(|id| id.to_string())
}

/// Run `keyctl ARGS...`, panicking on failure; returns stdout.
pub fn keyctl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("keyctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run keyctl");
    assert!(
        out.status.success(),
        "keyctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Invalidates every live keyutils key of `app` on drop, so a failing test
/// leaves nothing in root's user keyring (where keys last until reboot).
pub struct PurgeKeyutils(pub String);

impl Drop for PurgeKeyutils {
    fn drop(&mut self) {
        let prefix = format!("rctoken:{}:", self.0);
        let Ok(text) = std::fs::read_to_string("/proc/keys") else {
            return;
        };
        for line in text.lines().filter(|l| l.contains(&prefix)) {
            if let Some(id) = line
                .split_whitespace()
                .next()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
            {
                // Invalidate live keys; unlink revoked ones, which would
                // otherwise linger for key_gc_delay.
                let id = id.to_string();
                for args in [vec!["invalidate", &id], vec!["unlink", &id, "@u"]] {
                    let _ = Command::new("keyctl")
                        .args(&args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }
}

/// Poll `/proc/keys` until `app`'s live key count is `n` (the kernel
/// unlinks invalidated keys asynchronously), giving up after a few seconds.
pub fn keyutils_count_settles(app: &str, n: usize) -> Vec<(String, usize)> {
    let start = Instant::now();
    loop {
        let items = keyutils_items(app);
        if items.len() == n || start.elapsed() > Duration::from_secs(5) {
            return items;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Number of Secret Service items of `app` (`secret-tool search --all
/// service rctoken:<app>`), independent of the library.
pub fn secret_service_count(app: &str) -> usize {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", &format!("rctoken:{app}")])
        .stdin(Stdio::null())
        .output()
        .expect("run secret-tool");
    // Item paths are printed as "[/org/freedesktop/secrets/collection/login/N]"
    // on stdout; "label =", "secret =" and attribute lines follow.
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text.lines().filter(|l| l.starts_with("[/")).count();
    if n == 0 {
        let err = String::from_utf8_lossy(&out.stderr);
        let errs = err.lines().filter(|l| l.starts_with("[/")).count();
        return errs;
    }
    n
}

/// Number of keychain items of `app` on the named real backend, seen from
/// outside the library.
pub fn outside_count(app: &str, backend_name: &str) -> usize {
    match backend_name {
        "keyutils" => keyutils_items(app).len(),
        "secret-service" => secret_service_count(app),
        other => panic!("no outside view of {other}"),
    }
}

/// Monotonic nanoseconds, comparable across processes (CLOCK_MONOTONIC).
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

/// Remove everything the test stored, and check nothing of it remains.
pub fn cleanup(store: &TokenStore, app: &str, backend_name: &str) {
    store.remove_all().expect("remove_all");
    let left = match backend_name {
        "keyutils" => keyutils_count_settles(app, 0).len(),
        "secret-service" => secret_service_count(app),
        _ => 0,
    };
    assert_eq!(
        left, 0,
        "items of {app} left in {backend_name} after remove_all"
    );
}
