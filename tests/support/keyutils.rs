//! Kernel keyutils seen from outside the library: `/proc/keys` for what is
//! there, the `keyctl` command for reading, writing and deleting keys.
//! [`keys`] counts only keys linked into the user keyring `@u` (where
//! rctoken keeps its keys), [`visible`] those in any keyring; both leave
//! out invalidated, revoked or dead keys that wait for the kernel's garbage
//! collector (gone for every caller).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One live `user` key linked into `@u`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    /// Its description.
    pub description: String,
    /// Its payload's length.
    pub len: usize,
    /// Its serial number, in decimal as `keyctl` takes it.
    pub id: String,
}

/// The keychain namespace of app id `app`: `rctoken:<app>:`, the start of
/// the description of each of its keys.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn namespace(app: &str) -> String {
    format!("rctoken:{app}:")
}

/// The description prefix of `app`'s sealed stores' keys.
pub fn sealing_keys(app: &str) -> String {
    format!("rctoken-key:{app}:")
}

/// Run `keyctl ARGS...`, panicking unless it succeeds; returns stdout.
pub fn keyctl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("keyctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run keyctl (apt-get install keyutils): {e}"));
    assert!(
        out.status.success(),
        "keyctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One line of `/proc/keys` of a `user` key.
struct ProcKey {
    id: u32,
    /// `I R D Q U N i`: instantiated, revoked, dead, quota, under
    /// construction, negative, invalidated (`-` where not).
    flags: Vec<u8>,
    description: String,
    len: usize,
}

impl ProcKey {
    /// Instantiated, and not revoked, dead or invalidated: a key callers see.
    fn live(&self) -> bool {
        self.flags.first() == Some(&b'I')
            && self.flags.get(1) != Some(&b'R')
            && self.flags.get(2) != Some(&b'D')
            && self.flags.get(6) != Some(&b'i')
    }

    fn key(self) -> Key {
        Key {
            description: self.description,
            len: self.len,
            id: self.id.to_string(),
        }
    }
}

/// The `user` keys in `/proc/keys` (every key this uid may view, in any
/// keyring) whose description starts with `prefix`.
fn proc_keys(prefix: &str) -> Vec<ProcKey> {
    let text = std::fs::read_to_string("/proc/keys").expect("read /proc/keys");
    parse_proc_keys(&text, prefix)
}

fn parse_proc_keys(text: &str, prefix: &str) -> Vec<ProcKey> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || fields[7] != "user" {
            continue;
        }
        let Ok(id) = u32::from_str_radix(fields[0], 16) else {
            continue;
        };
        let rest = fields[8..].join(" ");
        let (description, len) = match rest.rsplit_once(": ") {
            Some((d, l)) => (d.to_string(), l.trim().parse().unwrap_or(usize::MAX)),
            None => (rest, 0),
        };
        if description.starts_with(prefix) {
            out.push(ProcKey {
                id,
                flags: fields[1].as_bytes().to_vec(),
                description,
                len,
            });
        }
    }
    out
}

/// Every live `user` key linked into `@u` whose description starts with
/// `prefix`, sorted by description.
pub fn keys(prefix: &str) -> Vec<Key> {
    let linked: Vec<u32> = String::from_utf8_lossy(&keyctl(&["rlist", "@u"]))
        .split_whitespace()
        .filter_map(|id| id.parse().ok())
        .collect();
    let mut out: Vec<Key> = proc_keys(prefix)
        .into_iter()
        .filter(|k| k.live() && linked.contains(&k.id))
        .map(ProcKey::key)
        .collect();
    out.sort();
    out
}

/// Every live `user` key whose description starts with `prefix`, in any
/// keyring this uid may view (a session keyring too), sorted by description.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn visible(prefix: &str) -> Vec<Key> {
    let mut out: Vec<Key> = proc_keys(prefix)
        .into_iter()
        .filter(ProcKey::live)
        .map(ProcKey::key)
        .collect();
    out.sort();
    out
}

/// The raw `/proc/keys` lines naming `prefix`, for failure messages
/// (descriptions and sizes only: `/proc/keys` never shows payloads).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn proc_lines(prefix: &str) -> String {
    let text = std::fs::read_to_string("/proc/keys").unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(prefix))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The keys of `app`'s namespace as (account, payload length).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn items(app: &str) -> Vec<(String, usize)> {
    let ns = namespace(app);
    keys(&ns)
        .into_iter()
        .map(|k| (k.description[ns.len()..].to_string(), k.len))
        .collect()
}

/// The id of the live key holding `account` of `app`.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn key_id(app: &str, account: &str) -> Option<String> {
    find(&format!("{}{account}", namespace(app)))
}

/// The id of the live key with exactly this description.
pub fn find(description: &str) -> Option<String> {
    keys(description)
        .into_iter()
        .find(|k| k.description == description)
        .map(|k| k.id)
}

/// The payload of key `id`.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn read(id: &str) -> Vec<u8> {
    keyctl(&["pipe", id])
}

/// Add (or replace) a `user` key in `@u` with rctoken's permissions
/// (possessor and user: everything); returns its id.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn add(description: &str, data: &[u8]) -> String {
    let mut child = Command::new("keyctl")
        .args(["padd", "user", description, "@u"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn keyctl padd (apt-get install keyutils)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to keyctl");
    let out = child.wait_with_output().expect("keyctl padd");
    assert!(out.status.success(), "keyctl padd failed");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    keyctl(&["setperm", &id, "0x3f3f0000"]);
    id
}

/// Invalidate key `id` (the way rctoken deletes a key).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn invalidate(id: &str) {
    keyctl(&["invalidate", id]);
}

/// Unlink key `id` from `@u`.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn unlink(id: &str) {
    keyctl(&["unlink", id, "@u"]);
}

/// Poll until `app`'s namespace holds `n` keys (the kernel unlinks
/// invalidated keys asynchronously), giving up after a few seconds; returns
/// what it holds then.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn items_settle(app: &str, n: usize) -> Vec<(String, usize)> {
    let start = Instant::now();
    loop {
        let items = items(app);
        if items.len() == n || start.elapsed() > Duration::from_secs(5) {
            return items;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Best-effort removal of every key (live or revoked) whose description
/// starts with `prefix`, for cleanup after a failed test. Never panics (it
/// may run while unwinding).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn purge(prefix: &str) {
    let Ok(text) = std::fs::read_to_string("/proc/keys") else {
        return;
    };
    for key in parse_proc_keys(&text, prefix) {
        // Invalidate live keys; unlink revoked ones, which would otherwise
        // linger for key_gc_delay.
        let id = key.id.to_string();
        for args in [vec!["invalidate", &id], vec!["unlink", &id, "@u"]] {
            let _ = Command::new("keyctl")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Purges `app`'s namespace, and its sealed stores' keys, on drop, so a
/// failing test leaves nothing in the user keyring (where keys last until
/// reboot).
#[allow(dead_code, reason = "not every test crate uses it")]
pub struct Purge(pub String);

impl Drop for Purge {
    fn drop(&mut self) {
        purge(&namespace(&self.0));
        purge(&sealing_keys(&self.0));
    }
}

/// (used bytes, max bytes) of this uid's keyutils quota, from
/// `/proc/key-users`.
#[cfg(target_os = "linux")]
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn quota() -> (u64, u64) {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::geteuid() };
    let text = std::fs::read_to_string("/proc/key-users").expect("/proc/key-users");
    for line in text.lines() {
        let Some((who, rest)) = line.split_once(':') else {
            continue;
        };
        if who.trim() == uid.to_string() {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let (used, max) = f[3].split_once('/').expect("qnbytes/maxbytes");
            return (used.parse().unwrap(), max.parse().unwrap());
        }
    }
    panic!("no line for uid {uid} in /proc/key-users");
}

/// Wait (at most `limit`) until this uid's quota use has not changed for
/// `still` and, with `below_half`, is below half the quota. Whether it
/// got there.
#[cfg(target_os = "linux")]
#[allow(dead_code, reason = "not every test crate uses it")]
fn steady_quota(limit: Duration, still: Duration, below_half: bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut last = quota().0;
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let (now, max) = quota();
        if now != last {
            since = Instant::now();
            last = now;
        } else if since.elapsed() >= still && (!below_half || now < max / 2) {
            return true;
        }
    }
    false
}

/// Wait (at most 60 s) until this uid's quota use stops falling and is
/// below half the quota: keys that earlier tests deleted are freed by the
/// kernel's garbage collector a moment later (later on a loaded machine),
/// and the quota is shared by every process of the uid. Says so on stderr
/// if it never settles; the test then goes on and fails where it must.
#[cfg(target_os = "linux")]
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn settle() {
    if !steady_quota(Duration::from_secs(60), Duration::from_millis(100), true) {
        let (used, max) = quota();
        eprintln!("settle: the quota is still at {used} of {max} bytes after 60 s");
    }
}

/// Wait (at most 10 s) until this uid's quota use has not changed for
/// 300 ms: what a test that filled the quota on purpose waits for before
/// it reads the figures (deleted keys are freed a moment later).
#[cfg(target_os = "linux")]
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn quiet() {
    steady_quota(Duration::from_secs(10), Duration::from_millis(300), false);
}
