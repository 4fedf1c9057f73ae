//! The `rctoken` binary driven as a user would: a per-test store (own app
//! id, own temp dir, one real backend), runs of the built binary, and
//! checks of the keychain made from outside the program.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use super::backends::Kind;
#[cfg(windows)]
use super::credential_manager;
use super::{ids, keyutils, secret_service};

/// Define one module per real backend of this platform, with one `#[test]`
/// per listed function `fn name(kind: Kind)`: `mod keyutils` and
/// `mod secret_service` on Linux, `mod windows_credential_manager` on
/// Windows. Attributes before a name go on each of its tests: a body that
/// only Linux can run is listed as `#[cfg(target_os = "linux")] name` (and
/// the function itself carries the same `cfg`). A backend the run declares
/// absent is skipped (see `support::backends`).
#[macro_export]
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        #[cfg(target_os = "linux")]
        mod keyutils {
            $( $(#[$attr])* #[test] fn $name() {
                let kind = $crate::support::backends::Kind::Keyutils;
                $crate::needs!(kind);
                super::$name(kind)
            } )*
        }
        #[cfg(target_os = "linux")]
        mod secret_service {
            $( $(#[$attr])* #[test] fn $name() {
                let kind = $crate::support::backends::Kind::SecretService;
                $crate::needs!(kind);
                super::$name(kind)
            } )*
        }
        #[cfg(windows)]
        mod windows_credential_manager {
            $( $(#[$attr])* #[test] fn $name() {
                let kind = $crate::support::backends::Kind::WindowsCredentialManager;
                $crate::needs!(kind);
                super::$name(kind)
            } )*
        }
    };
}

/// The finished run of one command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Assert the exit code, showing everything on failure.
    #[track_caller]
    pub fn code(self, want: i32) -> Run {
        assert_eq!(self.code, want, "unexpected exit code: {self:#?}");
        self
    }

    /// Assert success.
    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// Assert a failure with exactly the two-line error on stderr and
    /// nothing on stdout.
    #[track_caller]
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn fails(self, want: i32) -> Run {
        let run = self.code(want);
        two_line_error(&run.stderr);
        assert_eq!(run.stdout, "", "nothing on stdout when failing");
        run
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Assert none of `secrets` appears on stdout or stderr.
    #[track_caller]
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn reveals_none(self, secrets: &[&str]) -> Run {
        for s in secrets {
            assert!(!self.stdout.contains(s), "secret on stdout: {self:#?}");
            assert!(!self.stderr.contains(s), "secret on stderr: {self:#?}");
        }
        self
    }
}

/// stderr is exactly "error: …" and "hint: …".
#[track_caller]
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn two_line_error(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "error must be two lines: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(lines[1].starts_with("hint: "), "{stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr:?}");
}

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rctoken")
}

/// One test's store: its own app id and directory on one backend. Dropping
/// it runs `logout --all`, so keychain items never outlive a test.
pub struct Env {
    pub kind: Kind,
    pub app: String,
    pub tmp: tempfile::TempDir,
}

impl Env {
    pub fn new(test: &str, kind: Kind) -> Env {
        // A test that forgot `needs!` still fails with the clear message.
        super::backends::require(kind);
        let app = ids::app_id(test, kind.name());
        Env {
            kind,
            app,
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The store directory (created by the first command).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("store")
    }

    /// Create the (empty) store directory, 0700, as a first save would:
    /// for tests of commands on a store that exists but lacks something.
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn make_store_dir(&self) {
        let b = &mut std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(b, 0o700);
        b.create(self.dir()).expect("create the store dir");
    }

    /// A scratch path inside the test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The binary with `--app`, `--dir` and no `--backend`; RCTOKEN_* cleared.
    pub fn bare(&self) -> Command {
        let mut c = Command::new(bin());
        c.env_remove("RCTOKEN_APP")
            .env_remove("RCTOKEN_BACKEND")
            .env_remove("RCTOKEN_DIR")
            .env("RUST_BACKTRACE", "1")
            .arg("--app")
            .arg(&self.app)
            .arg("--dir")
            .arg(self.dir())
            .stdin(Stdio::null());
        c
    }

    /// The binary on this test's backend.
    pub fn cmd(&self) -> Command {
        let mut c = self.bare();
        c.arg("--backend").arg(self.kind.name());
        c
    }

    /// Run `rctoken ARGS` on this test's backend.
    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args))
    }

    /// Run `rctoken ARGS` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run_with_stdin(self.cmd().args(args), input)
    }

    /// Import token JSON through stdin and expect success.
    #[track_caller]
    pub fn import(&self, json: &str, extra: &[&str]) -> Run {
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        self.run_stdin(&args, json.as_bytes()).ok()
    }

    /// A profile's metadata file, parsed.
    pub fn profile_file(&self, profile: &str) -> Value {
        let path = self
            .dir()
            .join("profiles")
            .join(format!("{}.json", escape(profile)));
        let text = std::fs::read_to_string(path).expect("profile file");
        serde_json::from_str(&text).expect("profile JSON")
    }

    /// The keychain accounts of a profile's committed generation, from the metadata.
    pub fn accounts(&self, profile: &str) -> Vec<String> {
        let meta = self.profile_file(profile);
        let secret = &meta["secret"];
        let generation = secret["generation"].as_str().expect("generation");
        let items = secret["items"].as_u64().expect("items");
        (0..items)
            .map(|i| format!("{}.{generation}.{i}", escape(profile)))
            .collect()
    }

    /// The keychain service name of this test's namespace.
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn service(&self) -> String {
        format!("rctoken:{}", self.app)
    }

    /// Is this account's item in the keychain? Asked from outside rctoken:
    /// `/proc/keys`, `secret-tool search`, or the Credential Manager's
    /// credential of that target name.
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn in_keychain(&self, account: &str) -> bool {
        match self.kind {
            Kind::Keyutils => keyutils::find(&format!("{}:{account}", self.service())).is_some(),
            Kind::SecretService => secret_service::accounts(&self.service())
                .iter()
                .any(|a| a == account),
            #[cfg(windows)]
            Kind::WindowsCredentialManager => credential_manager::exists(&self.service(), account),
            Kind::Memory => panic!("the CLI's memory backend lives and dies with one command"),
            Kind::Sealed => panic!("the CLI harness has no sealed instance; see tests/cli/sealed"),
        }
    }

    /// Assert no item of this app id is left in the keychain.
    #[track_caller]
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn assert_namespace_empty(&self, accounts: &[String]) {
        for a in accounts {
            assert!(!self.in_keychain(a), "{a} still in the keychain");
        }
        if self.kind == Kind::SecretService {
            let found = secret_service::search(&self.service());
            assert_eq!(found.trim(), "", "secret-tool still finds items");
        }
        #[cfg(windows)]
        if self.kind == Kind::WindowsCredentialManager {
            let found = credential_manager::accounts(&self.service());
            assert_eq!(found, Vec::<String>::new(), "credentials left behind");
        }
    }

    /// Delete one item behind rctoken's back.
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn delete_from_outside(&self, account: &str) {
        match self.kind {
            Kind::Keyutils => {
                let desc = format!("{}:{account}", self.service());
                let id = keyutils::find(&desc)
                    .unwrap_or_else(|| panic!("could not delete {account} from outside: no key"));
                keyutils::unlink(&id);
            }
            #[cfg(windows)]
            Kind::WindowsCredentialManager => assert!(
                credential_manager::delete(&self.service(), account),
                "could not delete {account} from outside: no such credential"
            ),
            _ => assert!(
                secret_service::clear(&self.service(), account),
                "could not delete {account} from outside"
            ),
        }
        assert!(!self.in_keychain(account));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !self.dir().exists() {
            return;
        }
        let logout = |env: &Env| {
            env.cmd()
                .args(["logout", "--all"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !logout(self) {
            // Corrupt metadata (a test may leave it so): rebuild, then retry.
            let _ = self.cmd().args(["doctor", "--fix"]).output();
            let _ = logout(self);
        }
        // A command run with `auto` and no session bus seals the store,
        // whose key stays in keyutils after a logout.
        #[cfg(target_os = "linux")]
        keyutils::purge(&keyutils::sealing_keys(&self.app));
        // What a failed test left in the Credential Manager.
        #[cfg(windows)]
        if self.kind == Kind::WindowsCredentialManager {
            credential_manager::purge(&self.service());
        }
    }
}

/// rctoken's escaping of profile keys in account and file names
/// (src/names.rs): ASCII letters, digits, `_` and `-` stay, upper-case
/// letters only where file names are case-sensitive (not on Windows or
/// macOS); every other byte is `%XX`; on Windows a device name (`CON`,
/// `com1`…) has its first byte escaped too.
pub fn escape(key: &str) -> String {
    let folds_case = cfg!(any(windows, target_os = "macos"));
    let mut out: String = key
        .bytes()
        .map(|b| {
            if b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'_'
                || b == b'-'
                || (!folds_case && b.is_ascii_uppercase())
            {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let upper = out.to_ascii_uppercase();
    let device = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (upper.len() == 4
            && (upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.as_bytes()[3].is_ascii_digit());
    if cfg!(windows) && device {
        out = format!("%{:02X}{}", out.as_bytes()[0], &out[1..]);
    }
    out
}

/// Run a prepared command.
pub fn run(cmd: &mut Command) -> Run {
    Run::from(cmd.output().expect("run rctoken"))
}

/// Run a prepared command with `input` on stdin.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rctoken");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // rctoken may stop reading early (oversized input): ignore EPIPE.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait rctoken");
    let _ = writer.join();
    Run::from(out)
}

/// A token endpoint response, as JSON text.
pub struct Tok<'a> {
    pub access: &'a str,
    pub expires_in: i64,
    pub refresh: Option<(&'a str, i64)>,
    pub owner: Option<&'a str>,
}

impl Tok<'_> {
    pub fn json(&self) -> String {
        let mut v = json!({
            "access_token": self.access,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": "ReadAccounts CallControl",
            "endpoint_id": "8zXq6oaLT7WvwWITlGiA1A",
            "session_id": "sess-1234",
            "session_idle_timeout": 900,
        });
        if let Some((rt, ttl)) = self.refresh {
            v["refresh_token"] = json!(rt);
            v["refresh_token_expires_in"] = json!(ttl);
        }
        if let Some(o) = self.owner {
            v["owner_id"] = json!(o);
        }
        v.to_string()
    }
}

/// A valid token for `owner` with one-hour access and one-week refresh
/// TTLs, as JSON text.
pub fn valid_token(access: &str, refresh: &str, owner: &str) -> String {
    Tok {
        access,
        expires_in: 3600,
        refresh: Some((refresh, 604_800)),
        owner: Some(owner),
    }
    .json()
}

/// Read a file, or "" if absent.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The body of the fenced block after `<!-- recipe: name -->` in
/// docs/cli.md: the recipes tests run as written.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn doc_recipe(name: &str) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md"))
        .expect("docs/cli.md");
    let marker = format!("<!-- recipe: {name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/cli.md has no recipe `{name}`"));
    let rest = &doc[at + marker.len()..];
    let fence = rest.find("```").expect("a fenced block after the marker");
    let body_start = rest[fence..].find('\n').expect("fence line") + fence + 1;
    let body_end = rest[body_start..].find("\n```").expect("closing fence") + body_start;
    rest[body_start..body_end].to_string()
}
