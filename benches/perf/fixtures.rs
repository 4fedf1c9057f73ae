//! Shared fixtures: realistic tokens, unique app ids, stores, the machine
//! description, and child processes timed with their peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rctoken::{Backend, SaveOptions, TokenInfo, TokenStore};

/// Bytes of a realistic RingCentral access / refresh token (opaque, base64-like).
pub const TOKEN_CHARS: usize = 1024;

/// A token endpoint response with realistic field sizes for owner `owner`.
pub fn token(owner: &str, expires_in: i64, salt: u64) -> TokenInfo {
    let body = |tag: &str| -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = salt ^ 0x9e37_79b9_7f4a_7c15 ^ (tag.len() as u64) << 7;
        let mut s = String::with_capacity(TOKEN_CHARS);
        s.push_str("U0pDMTFQMDFQQVMwMHx");
        while s.len() < TOKEN_CHARS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
        }
        s
    };
    let json = format!(
        r#"{{"access_token":"{}","token_type":"bearer","expires_in":{expires_in},
        "refresh_token":"{}","refresh_token_expires_in":604800,
        "scope":"ReadAccounts ReadCallLog ReadMessages SMS RingOut EditExtensions",
        "owner_id":"{owner}","endpoint_id":"0fZ6qPH6RVa7eIu7-kL0Wg",
        "session_id":"7e9e2f4c-1a2b-4c3d-8e9f-0a1b2c3d4e5f","session_idle_timeout":3600,
        "session_expires_in":86400}}"#,
        body("access"),
        body("refresh"),
    );
    TokenInfo::from_json(json.as_bytes()).expect("bench token parses")
}

/// An app id no other run or test uses.
pub fn app_id(part: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("bench-{part}-{}-{nanos:08x}", std::process::id())
}

pub fn backend_by_name(name: &str) -> Backend {
    Backend::from_name(name).expect("known backend name")
}

pub fn open(app: &str, dir: &Path, backend: &str) -> TokenStore {
    TokenStore::builder(app)
        .dir(dir)
        .backend(backend_by_name(backend))
        .open()
        .expect("store opens")
}

/// A store in its own temp dir; removes all its keychain items on drop.
pub struct BenchStore {
    pub store: TokenStore,
    pub app: String,
    pub backend: String,
    pub tmp: tempfile::TempDir,
}

impl BenchStore {
    pub fn new(part: &str, backend: &str) -> BenchStore {
        let tmp = tempfile::tempdir().expect("temp dir");
        let app = app_id(part);
        let store = open(&app, tmp.path(), backend);
        BenchStore {
            store,
            app,
            backend: backend.to_string(),
            tmp,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Save `n` profiles `1000000001..`, the first one active.
    pub fn fill(&self, n: usize) -> Vec<String> {
        let keys: Vec<String> = (0..n).map(|i| format!("{}", 1_000_000_001 + i)).collect();
        for (i, k) in keys.iter().enumerate() {
            self.store
                .save(&token(k, 3600, i as u64), SaveOptions::new())
                .expect("fill save");
        }
        keys
    }

    /// The keychain service and account of a profile's first item.
    pub fn item_of(&self, key: &str) -> (String, String) {
        let info = self.store.info(Some(key)).expect("profile info");
        (
            format!("rctoken:{}", self.app),
            format!("{key}.{}.0", info.generation()),
        )
    }

    /// Arguments that point the CLI (or a child) at this store.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--app".into(),
            self.app.clone(),
            "--backend".into(),
            self.backend.clone(),
            "--dir".into(),
            self.dir().display().to_string(),
        ]
    }
}

impl Drop for BenchStore {
    fn drop(&mut self) {
        if let Err(e) = self.store.remove_all() {
            eprintln!("cleanup of {} failed: {e}", self.app);
        }
    }
}

/// One finished child process.
#[derive(Debug)]
pub struct Ran {
    pub wall: Duration,
    pub ok: bool,
    pub stdout: Vec<u8>,
    /// What it printed on stderr, if piped (never a secret: errors hold none).
    pub stderr: String,
}

/// Run a command to completion (stdout captured), timing it from spawn to reap.
pub fn run_timed(cmd: &mut Command) -> Ran {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Ran {
        wall: start.elapsed(),
        ok: out.status.success(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// This bench binary, for child modes.
pub fn self_exe() -> PathBuf {
    std::env::current_exe().expect("current exe")
}

/// A command running this binary in a child mode.
pub fn child(mode: &str) -> Command {
    let mut c = Command::new(self_exe());
    c.arg("child").arg(mode);
    c
}

fn first_line_of(path: &str, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Print the machine, toolchain and date, as the doc quotes them.
pub fn print_machine() {
    let cpu = first_line_of("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = command_line("uname", &["-r"]);
    let rustc = command_line("rustc", &["-V"]);
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    println!("machine: {cpu}, {cores} cores, kernel {kernel}");
    println!("toolchain: {rustc}, profile {}", build_profile());
    println!("date: {date}");
}

pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug (numbers are not meaningful)"
    } else {
        "release"
    }
}

/// Is the Secret Service reachable (inside .ci/with-keyring.sh)?
pub fn secret_service_available() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        && zbus_secret_service_keyring_store::Store::new().is_ok()
}
