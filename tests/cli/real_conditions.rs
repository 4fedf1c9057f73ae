//! Regression tests for defects found by running `rctoken` under real
//! conditions, driven through the built binary (`tests/support/cli.rs`):
//!
//! 1. Never write an empty or partial record (session times whose UTC
//!    instant falls outside years 0000–9999).
//! 2. No panic from long keyutils key descriptions (keyutils only).
//! 3. One store, one owner (app ids sharing a directory, relative and `~`
//!    directories, one app id in two directories).
//! 4. No refresh storm (a refreshed token that is still short of
//!    `--min-valid` is not refreshed again and again).
//! 5. A refresh cannot change whose token it is (`owner_id`).
//! 6. Label and key names cannot shadow each other.
//!
//! The property test of case 1 is in `tests/fast/proptest_session_time.rs`.
//!
//! Every test has its own app ids and temp dirs, and a [`World`] that
//! cleans up pass or fail (`logout --all`, then a purge of whatever is left
//! in the app's keychain namespace). A passing test ends with
//! [`World::finish`], which checks `/proc/keys` (keyutils), `secret-tool`
//! (Secret Service) or the Credential Manager's own list (Windows) for
//! items of its app ids. Assertion messages never show a token: every test
//! token contains [`MARK`] and is redacted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::backends::Kind;
use crate::support::cli::{Env, Run, bin, run, run_with_stdin};
use crate::support::cli::{Tok, valid_token};
use crate::support::refresher::{Does, Refresher};

on_both_backends!(
    // 1. Never write an empty or partial record.
    session_time_before_year_0_is_refused_and_nothing_is_written,
    session_time_after_year_9999_is_refused_without_panic,
    refresher_session_time_before_year_0_keeps_the_old_tokens,
    refresher_session_time_after_year_9999_keeps_the_old_tokens,
    session_time_with_offset_in_range_still_imports,
    // 3. One store, one owner.
    second_app_on_the_same_dir_is_refused_and_changes_nothing,
    relative_store_dir_is_made_absolute,
    // Windows's home is the profile folder, which no variable moves.
    #[cfg(unix)]
    tilde_store_dir_means_home,
    same_app_in_two_dirs_doctor_fix_keeps_the_other_dirs_secrets,
    // 4. No refresh storm.
    concurrent_refreshes_to_a_still_short_token_run_cmd_once,
    concurrent_refreshes_to_a_30s_token_run_cmd_once,
    repeated_min_valid_calls_do_not_refresh_a_fresh_token_again,
    // 5. A refresh cannot change whose token it is.
    refresher_returning_another_owner_is_refused,
    refresher_response_without_owner_keeps_the_owner,
    // 7. Never spend a refresh token that cannot be stored.
    a_refresh_whose_result_cannot_be_stored_prints_it_and_exits_8,
    // 6. Label and key names cannot shadow each other.
    profile_named_like_a_label_is_refused,
    owner_id_equal_to_a_label_is_refused,
    label_equal_to_a_profile_key_is_refused,
);

/// 2. keyutils only: the defect is in listing the user keyring.
mod keyutils_only {
    use crate::support::backends::Kind;

    #[test]
    fn long_cjk_profile_key_never_panics_and_descriptions_stay_short() {
        needs!(Kind::Keyutils);
        super::long_cjk_profile_key_never_panics_and_descriptions_stay_short();
    }
    #[test]
    fn foreign_key_with_long_description_does_not_break_doctor_or_logout() {
        needs!(Kind::Keyutils);
        super::foreign_key_with_long_description_does_not_break_doctor_or_logout();
    }
}

// ---------------------------------------------------------------------------
// Test tokens and messages
// ---------------------------------------------------------------------------

/// Every test token contains this, so [`redact`] can hide tokens in messages.
const MARK: &str = "5eCr3t";

const OLD_AT: &str = "AT-old-5eCr3t";
const OLD_RT: &str = "RT-old-5eCr3t";
const NEW_AT: &str = "AT-new-5eCr3t";
const NEW_RT: &str = "RT-new-5eCr3t";

/// Replace every run of token characters that contains [`MARK`].
fn redact(s: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains(MARK) {
            out.push_str("<token>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if is_token_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A run for a message, tokens redacted.
fn show(r: &Run) -> String {
    format!(
        "exit {}, stdout {:?}, stderr {:?}",
        r.code,
        redact(&r.stdout),
        redact(&r.stderr)
    )
}

fn panicked(r: &Run) -> bool {
    r.stderr.contains("panicked") || r.stderr.contains("internal error")
}

/// Assert no panic and the exit code.
#[track_caller]
fn expect(r: Run, code: i32, what: &str) -> Run {
    assert!(!panicked(&r), "{what}: rctoken panicked: {}", show(&r));
    assert!(r.code == code, "{what}: want exit {code}; {}", show(&r));
    r
}

/// Assert a failure with `code`, a `hint:` line and nothing on stdout.
#[track_caller]
fn expect_failure(r: Run, code: i32, what: &str) -> Run {
    let r = expect(r, code, what);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("hint:")),
        "{what}: no hint line: {}",
        show(&r)
    );
    assert!(
        r.stdout.is_empty(),
        "{what}: stdout not empty: {}",
        show(&r)
    );
    r
}

/// Assert `token` printed exactly `token` and a newline (without showing it).
#[track_caller]
fn expect_token(r: Run, token: &str, what: &str) {
    assert!(!panicked(&r), "{what}: rctoken panicked: {}", show(&r));
    assert!(
        r.code == 0 && r.stdout == format!("{token}\n"),
        "{what}: want the access token {}; {}",
        redact(token),
        show(&r)
    );
}

/// Checks that do not stop at the first failure, for tests that run a list
/// of commands: every failure is reported at the end.
#[derive(Default)]
struct Soft(Vec<String>);

impl Soft {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }
    /// Exit code, no panic, and (for failures) a hint line.
    fn code(&mut self, r: &Run, code: i32, what: &str) {
        if panicked(r) {
            self.0
                .push(format!("{what}: rctoken panicked: {}", show(r)));
            return;
        }
        self.check(r.code == code, || {
            format!("{what}: want exit {code}; {}", show(r))
        });
        if code != 0 && r.code == code {
            self.check(r.stderr.lines().any(|l| l.starts_with("hint:")), || {
                format!("{what}: no line starting with `hint:`; {}", show(r))
            });
        }
    }
    #[track_caller]
    fn done(self) {
        assert!(
            self.0.is_empty(),
            "{} check(s) failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

/// A valid token (one hour, refresh one week) for `owner` with a session
/// expiration time.
fn token_with_session_time(access: &str, refresh: &str, owner: &str, at: &str) -> String {
    let mut v: Value = serde_json::from_str(&valid_token(access, refresh, owner)).unwrap();
    v["session_expiration_time"] = json!(at);
    v.to_string()
}

/// An expired access token with a refresh token valid for a week.
fn expired(owner: &str) -> String {
    Tok {
        access: OLD_AT,
        expires_in: 0,
        refresh: Some((OLD_RT, 604_800)),
        owner: Some(owner),
    }
    .json()
}

/// A token response with the new tokens, `expires_in` seconds.
fn new_token(expires_in: i64, owner: Option<&str>) -> String {
    Tok {
        access: NEW_AT,
        expires_in,
        refresh: Some((NEW_RT, 604_800)),
        owner,
    }
    .json()
}

/// The metadata files' bytes (index and profile files, not locks), by name.
fn metadata_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(
        "metadata.json".to_string(),
        std::fs::read(dir.join("metadata.json")).unwrap_or_default(),
    )];
    if let Ok(entries) = std::fs::read_dir(dir.join("profiles")) {
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let bytes = std::fs::read(dir.join("profiles").join(&n)).unwrap_or_default();
            out.push((n, bytes));
        }
    }
    out
}

/// The names of the files in the store's profiles directory (none if absent).
fn profile_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("profiles"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `status --json` without the fields that change as time passes.
fn status_facts(r: Run) -> Value {
    let mut v = expect(r, 0, "status --json").json();
    let obj = v.as_object_mut().expect("status object");
    obj.retain(|k, _| !k.ends_with("_remaining_secs"));
    v
}

// ---------------------------------------------------------------------------
// Keychain observation from outside rctoken
// ---------------------------------------------------------------------------

/// Whether `text` mentions the keychain namespace of `app` (`rctoken:<app>`
/// not followed by another app id character, so `app-1` is not `app-12`).
fn names_app(text: &str, app: &str) -> bool {
    let needle = format!("rctoken:{app}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    })
}

/// Live keys of `app` in `/proc/keys` (invalidated, revoked and dead keys
/// awaiting garbage collection are gone for rctoken and skipped).
fn proc_keys_of(app: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/keys")
        .expect("/proc/keys")
        .lines()
        .filter(|l| names_app(l, app))
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|flags| !flags.contains(['i', 'R', 'D']))
        })
        .map(str::to_string)
        .collect()
}

/// `(id, description)` of every `user` key linked into `@u`, asked with
/// `keyctl rlist` and `keyctl rdescribe` (the description in full, however
/// long). `keyctl` makes the `keyctl` command (maybe inside a namespace).
fn linked_user_keys(keyctl: &dyn Fn() -> Command) -> Result<Vec<(String, String)>, String> {
    let out = keyctl()
        .args(["rlist", "@u"])
        .output()
        .map_err(|e| format!("keyctl (apt-get install keyutils): {e}"))?;
    if !out.status.success() {
        return Err("keyctl rlist @u failed".into());
    }
    let mut keys = Vec::new();
    for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let d = keyctl()
            .args(["rdescribe", id])
            .output()
            .map_err(|e| format!("keyctl: {e}"))?;
        if !d.status.success() {
            continue; // deleted meanwhile (another test)
        }
        let text = String::from_utf8_lossy(&d.stdout).trim_end().to_string();
        let mut parts = text.splitn(5, ';');
        if parts.next() == Some("user")
            && let Some(desc) = parts.nth(3)
        {
            keys.push((id.to_string(), desc.to_string()));
        }
    }
    Ok(keys)
}

/// `rctoken --app APP --backend KIND`, RCTOKEN_* cleared, stdin null.
fn rctoken_for(app: &str, kind: Kind) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("RCTOKEN_APP")
        .env_remove("RCTOKEN_BACKEND")
        .env_remove("RCTOKEN_DIR")
        .env("RUST_BACKTRACE", "1")
        .args(["--app", app, "--backend", kind.name()])
        .stdin(Stdio::null());
    c
}

// ---------------------------------------------------------------------------
// World: one test's stores, with cleanup pass or fail
// ---------------------------------------------------------------------------

/// One test's world: its [`Env`] (own app id, temp dir, backend), the other
/// stores it touched, and the app ids whose namespaces must end up empty.
/// Dropping it, pass or fail: `logout --all` on every store (with `doctor
/// --fix` first if that fails), then every item still in those namespaces
/// is deleted straight through `keyctl`/`secret-tool`.
struct World {
    env: Env,
    /// Base commands (app, backend, directory) of the other stores.
    stores: Vec<Box<dyn Fn() -> Command>>,
    /// App ids whose keychain namespaces must be empty at the end.
    apps: Vec<String>,
    /// For keyutils tests that must not share `@u` with other tests.
    ns: Option<UserNs>,
}

impl World {
    fn new(test: &str, kind: Kind) -> World {
        let env = Env::new(test, kind);
        let apps = vec![env.app.clone()];
        World {
            env,
            stores: Vec::new(),
            apps,
            ns: None,
        }
    }

    /// A keyutils world whose commands all run in a private user namespace,
    /// with a user keyring `@u` of its own.
    fn in_user_ns(test: &str) -> World {
        let mut w = World::new(test, Kind::Keyutils);
        w.ns = Some(UserNs::new());
        w
    }

    fn kind(&self) -> Kind {
        self.env.kind
    }

    fn wrap(&self, c: Command) -> Command {
        match &self.ns {
            Some(ns) => ns.wrap(&c),
            None => c,
        }
    }

    /// `rctoken --app <this test's app> --dir <its dir> --backend <kind>`.
    fn cmd(&self) -> Command {
        self.wrap(self.env.cmd())
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args))
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        run_with_stdin(self.cmd().args(args), input.as_bytes())
    }

    #[track_caller]
    fn import(&self, json: &str, extra: &[&str]) {
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        expect(self.run_stdin(&args, json), 0, "import");
    }

    /// `rctoken --app APP --backend <kind>`, RCTOKEN_* cleared, no `--dir`.
    fn cmd_for(&self, app: &str) -> Command {
        self.wrap(rctoken_for(app, self.kind()))
    }

    /// [`cmd_for`](Self::cmd_for) with `--dir DIR`.
    fn cmd_in(&self, app: &str, dir: &Path) -> Command {
        let mut c = self.cmd_for(app);
        c.arg("--dir").arg(dir);
        c
    }

    /// Another app id for this test (named as every CLI test's app id is);
    /// its namespace is cleaned up at the end too.
    fn other_app(&mut self, test: &str) -> String {
        let app = Env::new(test, self.kind()).app.clone();
        // Its own (empty) store: `logout --all` there deletes every item of
        // its namespace.
        let dir = self.env.path(&format!("own-store-{app}"));
        self.also_store(&app, &dir);
        self.apps.push(app.clone());
        app
    }

    /// Clean the store of `app` in `dir` up at the end too.
    fn also_store(&mut self, app: &str, dir: &Path) {
        let (app, dir, kind) = (app.to_string(), dir.to_path_buf(), self.kind());
        let ns = self.ns.as_ref().map(UserNs::path);
        self.stores.push(Box::new(move || {
            let mut c = rctoken_for(&app, kind);
            c.arg("--dir").arg(&dir);
            match &ns {
                Some(path) => UserNs::wrap_in(path, &c),
                None => c,
            }
        }));
    }

    /// `logout --all` everywhere (the test's own store last).
    fn clean(&self) {
        let own = || self.cmd();
        let mut all: Vec<&dyn Fn() -> Command> = self.stores.iter().map(|b| &**b).collect();
        all.push(&own);
        for base in all {
            let logout = || {
                base()
                    .args(["logout", "--all"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if !logout() {
                let _ = base().args(["doctor", "--fix"]).output();
                let _ = logout();
            }
        }
    }

    /// What is left of `app` in the keychain.
    fn leftovers(&self, app: &str) -> Vec<String> {
        match self.kind() {
            Kind::Keyutils => proc_keys_of(app),
            Kind::SecretService => {
                crate::support::secret_service::accounts(&format!("rctoken:{app}"))
            }
            #[cfg(windows)]
            Kind::WindowsCredentialManager => {
                crate::support::credential_manager::accounts(&format!("rctoken:{app}"))
            }
            Kind::Memory | Kind::Sealed => unreachable!("these tests run on the keychains"),
        }
    }

    /// The `user` keys linked into this world's `@u`.
    fn linked_user_keys(&self) -> Result<Vec<(String, String)>, String> {
        match &self.ns {
            Some(ns) => linked_user_keys(&|| ns.command("keyctl")),
            None => linked_user_keys(&|| Command::new("keyctl")),
        }
    }

    /// End of a passing test: clean up through rctoken, then nothing of
    /// any of the test's app ids may be left in the keychain.
    #[track_caller]
    fn finish(self) {
        self.clean();
        for app in &self.apps {
            let left = self.leftovers(app);
            assert!(left.is_empty(), "items of {app} left behind: {left:?}");
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.clean();
        for app in self.apps.clone() {
            match self.kind() {
                Kind::Keyutils => {
                    for (id, desc) in self.linked_user_keys().unwrap_or_default() {
                        if names_app(&desc, &app) {
                            let mut c = match &self.ns {
                                Some(ns) => ns.command("keyctl"),
                                None => Command::new("keyctl"),
                            };
                            let _ = c.args(["unlink", &id, "@u"]).output();
                        }
                    }
                }
                Kind::SecretService => {
                    let _ = Command::new("secret-tool")
                        .args(["clear", "service", &format!("rctoken:{app}")])
                        .output();
                }
                #[cfg(windows)]
                Kind::WindowsCredentialManager => {
                    crate::support::credential_manager::purge(&format!("rctoken:{app}"));
                }
                Kind::Memory | Kind::Sealed => {}
            }
        }
    }
}

/// A private user namespace (root mapped to root), kept alive by a `cat`
/// holding it; commands enter it with `nsenter --user`. Since Linux 5.3
/// each user namespace has its own user keyring `@u`. The keyutils tests
/// of case 2 put keys with long descriptions into `@u`, and the defect they
/// guard makes every rctoken that lists `@u` panic meanwhile: in the shared
/// `@u` that would break other keyutils tests running at the same time.
/// Dropping it ends `cat` (EOF, then kill by its id), and the kernel
/// discards that keyring with everything in it.
struct UserNs {
    holder: Child,
}

impl UserNs {
    fn new() -> UserNs {
        let holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare (util-linux)");
        let mut ns = UserNs { holder };
        let own = std::fs::read_link("/proc/self/ns/user").expect("own user namespace");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::fs::read_link(ns.path()).is_ok_and(|l| l != own) {
                return ns;
            }
            if let Ok(Some(status)) = ns.holder.try_wait() {
                panic!("unshare --user failed ({status}): user namespaces needed");
            }
            assert!(Instant::now() < deadline, "unshare --user did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/user", self.holder.id())
    }

    /// The same command, run inside the namespace at `path`.
    fn wrap_in(path: &str, c: &Command) -> Command {
        let mut n = Command::new("nsenter");
        // --preserve-credentials: an unprivileged caller may not setgroups,
        // which nsenter otherwise does after entering.
        n.arg(format!("--user={path}"))
            .arg("--preserve-credentials")
            .arg("--")
            .arg(c.get_program())
            .args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => n.env(k, v),
                None => n.env_remove(k),
            };
        }
        if let Some(d) = c.get_current_dir() {
            n.current_dir(d);
        }
        n.stdin(Stdio::null());
        n
    }

    fn wrap(&self, c: &Command) -> Command {
        Self::wrap_in(&self.path(), c)
    }

    fn command(&self, program: &str) -> Command {
        self.wrap(&Command::new(program))
    }
}

impl Drop for UserNs {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A refresher (`support::refresher`, so it runs under `cmd /C` too): reads
/// stdin, counts its runs, waits `delay_ms` (so concurrent callers queue on
/// the refresh lock), then prints `response`. Returns the CMD and the
/// refresher.
fn refresher(w: &World, name: &str, response: &str, delay_ms: u64) -> (String, Refresher) {
    let r = Refresher::new(w.env.tmp.path(), name);
    let cmd = r.cmd(&Does {
        sleep_ms: delay_ms,
        ..Does::print(response)
    });
    (cmd, r)
}

/// How many times a [`refresher`] ran.
fn runs(r: &Refresher) -> usize {
    r.runs()
}

/// Start `n` commands at once and collect them; a generous bound (120 s)
/// catches a hang, and then every child is killed.
fn concurrently(n: usize, make: impl Fn() -> Command) -> Vec<Run> {
    let mut children: Vec<Child> = (0..n)
        .map(|_| {
            make()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn rctoken")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !children
        .iter_mut()
        .all(|c| c.try_wait().is_ok_and(|s| s.is_some()))
    {
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!("concurrent rctoken calls still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait rctoken");
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Never write an empty or partial record
// ---------------------------------------------------------------------------

/// UTC instant in year -1: not representable in RFC 3339.
const BEFORE_YEAR_0: &str = "0000-01-01T00:00:00+00:01";
/// UTC instant in year 10000: not representable in RFC 3339.
const AFTER_YEAR_9999: &str = "9999-12-31T23:59:59-00:01";

/// After a refused import: no profile listed, no profile file, no item.
#[track_caller]
fn assert_nothing_written(w: &World) {
    if !w.env.dir().exists() {
        // Refused before the store was opened: not even created.
        let list = expect(
            w.run(&["list", "--json"]),
            3,
            "list after the refused import",
        );
        assert!(list.stderr.contains("no store for app"), "{}", list.stderr);
        assert!(!w.env.dir().exists(), "list creates no store");
    } else {
        let list = expect(
            w.run(&["list", "--json"]),
            0,
            "list after the refused import",
        );
        assert_eq!(list.json(), json!([]), "no profile may be listed");
    }
    assert_eq!(
        profile_files(&w.env.dir()),
        Vec::<String>::new(),
        "no profile file may be written"
    );
    let left = w.leftovers(&w.env.app);
    assert!(left.is_empty(), "no keychain item may be written: {left:?}");
}

/// Defect 1: a `session_expiration_time` whose UTC instant is in year -1
/// was accepted, and its profile saved as an empty record (the metadata
/// writer cannot format the instant), so the store was corrupt. It must be
/// refused as bad input, writing nothing.
fn session_time_before_year_0_is_refused_and_nothing_is_written(kind: Kind) {
    let w = World::new("sess-before-0", kind);
    let json = token_with_session_time(OLD_AT, OLD_RT, "111", BEFORE_YEAR_0);
    expect_failure(
        w.run_stdin(&["import"], &json),
        6,
        "import, session in year -1",
    );
    assert_nothing_written(&w);
    w.finish();
}

/// Defect 1: a `session_expiration_time` whose UTC instant is in year 10000
/// made `import` panic (converting it to UTC overflows). It must be refused
/// as bad input, writing nothing.
fn session_time_after_year_9999_is_refused_without_panic(kind: Kind) {
    let w = World::new("sess-after-9999", kind);
    let json = token_with_session_time(OLD_AT, OLD_RT, "111", AFTER_YEAR_9999);
    expect_failure(
        w.run_stdin(&["import"], &json),
        6,
        "import, session in year 10000",
    );
    assert_nothing_written(&w);
    w.finish();
}

/// A `--refresh-with` CMD printing a token with session time `at`: exit 6,
/// and the stored tokens and metadata stay as they were.
fn refresher_bad_session_time_keeps_old_tokens(kind: Kind, test: &str, at: &str) {
    let w = World::new(test, kind);
    // Valid for 600 s: plain `token` works, `--min-valid 1200` refreshes.
    let tok = Tok {
        access: OLD_AT,
        expires_in: 600,
        refresh: Some((OLD_RT, 604_800)),
        owner: Some("111"),
    };
    w.import(&tok.json(), &[]);
    let before = status_facts(w.run(&["status", "--json"]));
    let response = token_with_session_time(NEW_AT, NEW_RT, "111", at);
    let (cmd, ran) = refresher(&w, "bad-session", &response, 0);
    expect_failure(
        w.run(&["token", "--min-valid", "1200", "--refresh-with", &cmd]),
        6,
        &format!("token --refresh-with, CMD prints session time {at}"),
    );
    assert_eq!(runs(&ran), 1, "CMD ran");
    expect_token(w.run(&["token"]), OLD_AT, "token after the refused refresh");
    let v = expect(w.run(&["export", "--reveal"]), 0, "export --reveal").json();
    assert!(v["refresh_token"] == OLD_RT, "the old refresh token stays");
    let after = status_facts(w.run(&["status", "--json"]));
    assert_eq!(after, before, "status --json unchanged");
    assert_eq!(after["owner_id"], "111");
    w.finish();
}

/// Defect 1 through `--refresh-with`: a refreshed token with a session time
/// in year -1 was saved as an empty record, corrupting the profile.
fn refresher_session_time_before_year_0_keeps_the_old_tokens(kind: Kind) {
    refresher_bad_session_time_keeps_old_tokens(kind, "refr-sess-before-0", BEFORE_YEAR_0);
}

/// Defect 1 through `--refresh-with`: a refreshed token with a session time
/// in year 10000 made `token` panic.
fn refresher_session_time_after_year_9999_keeps_the_old_tokens(kind: Kind) {
    refresher_bad_session_time_keeps_old_tokens(kind, "refr-sess-after-9999", AFTER_YEAR_9999);
}

/// Control for defect 1: a session time with an offset, well in range, is
/// still imported, kept verbatim and converted to UTC.
fn session_time_with_offset_in_range_still_imports(kind: Kind) {
    let w = World::new("sess-in-range", kind);
    let at = "2025-06-01T12:00:00+02:00";
    w.import(&token_with_session_time(OLD_AT, OLD_RT, "111", at), &[]);
    let v = expect(w.run(&["status", "--json"]), 0, "status --json").json();
    assert_eq!(v["session_expiration_time"], at);
    assert_eq!(v["session_expires_at"], "2025-06-01T10:00:00Z");
    let v = expect(w.run(&["list", "--json"]), 0, "list --json").json();
    assert_eq!(v[0]["session_expires_at"], "2025-06-01T10:00:00Z");
    let v = expect(w.run(&["export", "--reveal"]), 0, "export --reveal").json();
    assert_eq!(v["session_expiration_time"], at);
    expect_token(w.run(&["token"]), OLD_AT, "token");
    w.finish();
}

// ---------------------------------------------------------------------------
// 2. No panic from long key descriptions (keyutils only)
// ---------------------------------------------------------------------------

/// Longest description of a key of the app's namespace allowed in `@u`.
const MAX_DESCRIPTION: usize = 300;

/// Defect 2: a profile key of 60 CJK characters (within the 128-character
/// limit) escapes to 540 bytes, so its keys' descriptions exceed the
/// 512-byte buffer `linux-keyutils` describes keys into, and every command
/// that lists `@u` (`doctor`, `doctor --fix`, `logout --all`) panicked.
/// Every command must work, descriptions stay within 300 bytes, and
/// `logout --all` leaves nothing.
fn long_cjk_profile_key_never_panics_and_descriptions_stay_short() {
    let w = World::in_user_ns("cjk-key");
    let key = "測".repeat(60);
    let json = valid_token(OLD_AT, OLD_RT, "555");
    let mut soft = Soft::default();
    let r = w.run_stdin(&["import", "--profile", &key], &json);
    soft.code(&r, 0, "import --profile <60 CJK>");
    let r = w.run(&["list"]);
    soft.code(&r, 0, "list");
    soft.check(r.stdout.contains(&key), || {
        format!("list does not show the profile: {}", show(&r))
    });
    let r = w.run(&["token"]);
    soft.check(r.code == 0 && r.stdout == format!("{OLD_AT}\n"), || {
        format!("token: want the access token; {}", show(&r))
    });
    soft.code(&w.run(&["doctor"]), 0, "doctor");
    soft.code(&w.run(&["doctor", "--fix"]), 0, "doctor --fix");
    let r = w.run(&["token"]);
    soft.check(r.code == 0 && r.stdout == format!("{OLD_AT}\n"), || {
        format!(
            "token after doctor --fix: want the access token; {}",
            show(&r)
        )
    });
    let ours: Vec<(String, String)> = w
        .linked_user_keys()
        .expect("keyctl")
        .into_iter()
        .filter(|(_, d)| names_app(d, &w.env.app))
        .collect();
    soft.check(!ours.is_empty(), || "no key of the app in @u".into());
    for (_, d) in &ours {
        soft.check(d.len() <= MAX_DESCRIPTION, || {
            format!(
                "key description of {} bytes (max {MAX_DESCRIPTION}): {d}",
                d.len()
            )
        });
    }
    soft.code(&w.run(&["logout", "--all"]), 0, "logout --all");
    let r = w.run(&["list", "--json"]);
    soft.check(r.code == 0 && r.json() == json!([]), || {
        format!("list after logout --all: want no profile; {}", show(&r))
    });
    let files = profile_files(&w.env.dir());
    soft.check(files.is_empty(), || {
        format!("profile files left after logout --all: {files:?}")
    });
    let left: Vec<String> = w
        .linked_user_keys()
        .expect("keyctl")
        .into_iter()
        .filter(|(_, d)| names_app(d, &w.env.app))
        .map(|(_, d)| d)
        .collect();
    soft.check(left.is_empty(), || {
        format!("keys left after logout --all: {left:?}")
    });
    soft.done();
    w.finish();
}

/// A `user` key added with `keyctl` inside a [`UserNs`]; unlinked on drop,
/// pass or fail.
struct ForeignKey<'a> {
    ns: &'a UserNs,
    id: String,
}

impl<'a> ForeignKey<'a> {
    fn add(ns: &'a UserNs, description: &str) -> ForeignKey<'a> {
        let out = ns
            .command("keyctl")
            .args(["add", "user", description, "foreign payload", "@u"])
            .output()
            .expect("keyctl add");
        assert!(out.status.success(), "keyctl add failed");
        ForeignKey {
            ns,
            id: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }

    fn exists(&self, description: &str) -> bool {
        self.ns
            .command("keyctl")
            .args(["search", "@u", "user", description])
            .output()
            .expect("keyctl search")
            .status
            .success()
    }
}

impl Drop for ForeignKey<'_> {
    fn drop(&mut self) {
        let _ = self
            .ns
            .command("keyctl")
            .args(["unlink", &self.id, "@u"])
            .output();
    }
}

/// Defect 2: another program's `user` key in `@u` with a 600-byte
/// description made every command that lists `@u` panic (`doctor`,
/// `doctor --fix`, `logout --all`). They must work and leave that key alone.
fn foreign_key_with_long_description_does_not_break_doctor_or_logout() {
    let w = World::in_user_ns("foreign-key");
    w.import(&valid_token(OLD_AT, OLD_RT, "111"), &[]);
    let ns = w.ns.as_ref().expect("namespace");
    let description = format!("other-app:{}", "x".repeat(590));
    assert_eq!(description.len(), 600);
    let foreign = ForeignKey::add(ns, &description);
    let mut soft = Soft::default();
    soft.code(&w.run(&["doctor"]), 0, "doctor");
    soft.code(&w.run(&["doctor", "--fix"]), 0, "doctor --fix");
    soft.check(foreign.exists(&description), || {
        "doctor --fix deleted the foreign key".into()
    });
    soft.code(&w.run(&["logout", "--all"]), 0, "logout --all");
    soft.check(foreign.exists(&description), || {
        "logout --all deleted the foreign key".into()
    });
    let r = w.run(&["list", "--json"]);
    soft.check(r.code == 0 && r.json() == json!([]), || {
        format!("list after logout --all: want no profile; {}", show(&r))
    });
    let left: Vec<String> = w
        .linked_user_keys()
        .expect("keyctl")
        .into_iter()
        .filter(|(_, d)| names_app(d, &w.env.app))
        .map(|(_, d)| d)
        .collect();
    soft.check(left.is_empty(), || {
        format!("keys left after logout --all: {left:?}")
    });
    drop(foreign);
    soft.done();
    w.finish();
}

// ---------------------------------------------------------------------------
// 3. One store, one owner
// ---------------------------------------------------------------------------

/// Defect 3: a store directory records no owner, so a second app id on the
/// same `--dir` imported into it, listed its profiles and "repaired" them
/// (its `doctor --fix` dropped the first app's profiles, whose secrets are
/// in another namespace). Every command of the second app must exit 7 with
/// a hint, and the first app's profile and secrets stay intact.
fn second_app_on_the_same_dir_is_refused_and_changes_nothing(kind: Kind) {
    let mut w = World::new("one-owner-a", kind);
    let b = w.other_app("one-owner-b");
    let dir = w.env.dir();
    w.import(&valid_token(OLD_AT, OLD_RT, "111"), &[]);
    let before = metadata_bytes(&dir);
    let mut soft = Soft::default();
    let b_token = valid_token(NEW_AT, NEW_RT, "222");
    let r = run_with_stdin(w.cmd_in(&b, &dir).arg("import"), b_token.as_bytes());
    soft.code(&r, 7, "app B: import");
    soft.code(&run(w.cmd_in(&b, &dir).arg("list")), 7, "app B: list");
    soft.code(
        &run(w.cmd_in(&b, &dir).args(["doctor", "--fix"])),
        7,
        "app B: doctor --fix",
    );
    soft.check(metadata_bytes(&dir) == before, || {
        "app B changed the metadata of app A's store".into()
    });
    let r = run(w.cmd_in(&w.env.app, &dir).arg("token"));
    soft.check(r.code == 0 && r.stdout == format!("{OLD_AT}\n"), || {
        format!("app A: token: want A's access token; {}", show(&r))
    });
    soft.done();
    w.finish();
}

/// Whether `reported` is `want` as an absolute path (the same directory,
/// possibly canonicalized).
fn is_abs_path_of(reported: &Value, want: &Path) -> bool {
    let Some(p) = reported.as_str().map(Path::new) else {
        return false;
    };
    p.is_absolute()
        && (p == want
            || std::fs::canonicalize(p).ok() == std::fs::canonicalize(want).ok() && p.exists())
}

/// Defect 3: a relative `--dir`/`RCTOKEN_DIR` was used as given, so the
/// store's identity depended on the working directory and `doctor --json`
/// and `status --json` reported a relative path. It must be made absolute.
fn relative_store_dir_is_made_absolute(kind: Kind) {
    let mut w = World::new("rel-dir", kind);
    let app = w.env.app.clone();
    let (x, y) = (w.env.path("x"), w.env.path("y"));
    std::fs::create_dir(&x).unwrap();
    std::fs::create_dir(&y).unwrap();
    let abs = x.join("rel");
    w.also_store(&app, &abs);
    let with_env = |value: &Path, cwd: &Path| {
        let mut c = w.cmd_for(&app);
        c.env("RCTOKEN_DIR", value).current_dir(cwd);
        c
    };
    let r = run_with_stdin(
        with_env(Path::new("rel"), &x).arg("import"),
        valid_token(OLD_AT, OLD_RT, "111").as_bytes(),
    );
    expect(r, 0, "import with RCTOKEN_DIR=rel");
    let v = expect(
        run(with_env(&abs, &y).args(["list", "--json"])),
        0,
        "list with RCTOKEN_DIR=<absolute> from another cwd",
    )
    .json();
    assert_eq!(v[0]["profile"], "111", "{v}");

    let mut soft = Soft::default();
    for (what, mut cmd) in [
        ("RCTOKEN_DIR=rel", with_env(Path::new("rel"), &x)),
        ("--dir rel", {
            let mut c = w.cmd_for(&app);
            c.args(["--dir", "rel"]).current_dir(&x);
            c
        }),
    ] {
        let r = run(cmd.args(["doctor", "--json"]));
        soft.code(&r, 0, &format!("doctor --json with {what}"));
        if let Ok(v) = serde_json::from_str::<Value>(&r.stdout) {
            soft.check(is_abs_path_of(&v["paths"]["dir"]["path"], &abs), || {
                format!(
                    "doctor --json with {what}: paths.dir.path {} is not {}",
                    v["paths"]["dir"]["path"],
                    abs.display()
                )
            });
            for f in ["metadata", "lock", "profiles"] {
                let p = &v["paths"][f]["path"];
                soft.check(
                    p.as_str().is_some_and(|s| Path::new(s).is_absolute()),
                    || format!("doctor --json with {what}: paths.{f}.path {p} is not absolute"),
                );
            }
        }
    }
    let r = run(with_env(Path::new("rel"), &x).args(["status", "--json"]));
    soft.code(&r, 0, "status --json with RCTOKEN_DIR=rel");
    if let Ok(v) = serde_json::from_str::<Value>(&r.stdout) {
        soft.check(is_abs_path_of(&v["store_dir"], &abs), || {
            format!(
                "status --json: store_dir {} is not {}",
                v["store_dir"],
                abs.display()
            )
        });
    }
    soft.done();
    w.finish();
}

/// Defect 3: `RCTOKEN_DIR="~/x"` (a tilde the shell did not expand, as in
/// a systemd unit or a quoted assignment) created a directory literally
/// named `~` in the working directory. It must mean `$HOME/x`.
#[cfg(unix)]
fn tilde_store_dir_means_home(kind: Kind) {
    let mut w = World::new("tilde-dir", kind);
    let app = w.env.app.clone();
    let (home, cwd) = (w.env.path("home"), w.env.path("cwd"));
    std::fs::create_dir(&home).unwrap();
    std::fs::create_dir(&cwd).unwrap();
    w.also_store(&app, &home.join("x"));
    w.also_store(&app, &cwd.join("~").join("x"));
    let tilde = || {
        let mut c = w.cmd_for(&app);
        c.env("HOME", &home)
            .env("RCTOKEN_DIR", "~/x")
            .current_dir(&cwd);
        c
    };
    let r = run_with_stdin(
        tilde().arg("import"),
        valid_token(OLD_AT, OLD_RT, "111").as_bytes(),
    );
    expect(r, 0, "import with RCTOKEN_DIR=~/x");
    assert!(
        !cwd.join("~").exists(),
        "RCTOKEN_DIR=~/x created a directory named `~` in the working directory"
    );
    assert!(
        home.join("x").join("metadata.json").exists(),
        "RCTOKEN_DIR=~/x did not store under $HOME/x"
    );
    let v = expect(
        run(w.cmd_in(&app, &home.join("x")).args(["list", "--json"])),
        0,
        "list --dir $HOME/x",
    )
    .json();
    assert_eq!(v[0]["profile"], "111", "{v}");
    let v = expect(run(tilde().args(["status", "--json"])), 0, "status --json").json();
    assert!(
        is_abs_path_of(&v["store_dir"], &home.join("x")),
        "store_dir {} is not $HOME/x",
        v["store_dir"]
    );
    w.finish();
}

/// Defect 3: one app id with two store directories shares one keychain
/// namespace, and `doctor --fix` in one directory deleted the other
/// directory's secrets as orphans. Each directory's secrets must survive
/// the other's `doctor --fix`.
fn same_app_in_two_dirs_doctor_fix_keeps_the_other_dirs_secrets(kind: Kind) {
    let mut w = World::new("two-dirs", kind);
    let app = w.env.app.clone();
    let (d1, d2) = (w.env.dir(), w.env.path("store2"));
    w.also_store(&app, &d2);
    let import = |dir: &Path, at: &str, rt: &str| {
        let r = run_with_stdin(
            w.cmd_in(&app, dir).arg("import"),
            valid_token(at, rt, "111").as_bytes(),
        );
        expect(r, 0, &format!("import into {}", dir.display()));
    };
    import(&d1, OLD_AT, OLD_RT);
    import(&d2, NEW_AT, NEW_RT);
    let token = |dir: &Path| run(w.cmd_in(&app, dir).arg("token"));
    expect_token(token(&d1), OLD_AT, "D1: token");
    expect_token(token(&d2), NEW_AT, "D2: token");

    expect(
        run(w.cmd_in(&app, &d1).args(["doctor", "--fix"])),
        0,
        "D1: doctor --fix",
    );
    expect_token(token(&d2), NEW_AT, "D2: token after D1's doctor --fix");
    expect_token(token(&d1), OLD_AT, "D1: token after D1's doctor --fix");

    expect(
        run(w.cmd_in(&app, &d2).args(["doctor", "--fix"])),
        0,
        "D2: doctor --fix",
    );
    expect_token(token(&d1), OLD_AT, "D1: token after D2's doctor --fix");
    expect_token(token(&d2), NEW_AT, "D2: token after D2's doctor --fix");
    w.finish();
}

// ---------------------------------------------------------------------------
// 4. No refresh storm
// ---------------------------------------------------------------------------

/// `n` concurrent `token --refresh-with CMD ARGS` on one expired profile,
/// CMD returning a token of `expires_in` seconds: CMD runs once, every
/// caller exits 4, and the refreshed token is saved.
fn storm(kind: Kind, test: &str, expires_in: i64, extra: &[&str]) {
    let w = World::new(test, kind);
    w.import(&expired("111"), &[]);
    let (cmd, ran) = refresher(&w, "count", &new_token(expires_in, Some("111")), 200);
    let mut args = vec!["token", "--refresh-with", cmd.as_str()];
    args.extend_from_slice(extra);
    let results = concurrently(8, || {
        let mut c = w.cmd();
        c.args(&args);
        c
    });
    assert_eq!(runs(&ran), 1, "CMD must run exactly once for 8 callers");
    for (i, r) in results.into_iter().enumerate() {
        expect_failure(r, 4, &format!("caller {i}: token too short"));
    }
    expect_token(
        w.run(&["token", "--min-valid", "0"]),
        NEW_AT,
        "the refreshed token is saved",
    );
    w.finish();
}

/// Defect 4: when CMD returns a token that is still shorter than
/// `--min-valid` (3600 s < 4000 s), every queued caller refreshed again,
/// spending the single-use refresh token once per caller. CMD must run once.
fn concurrent_refreshes_to_a_still_short_token_run_cmd_once(kind: Kind) {
    storm(kind, "storm-4000", 3600, &["--min-valid", "4000"]);
}

/// Defect 4: a server issuing 30-second tokens made every caller at the
/// default `--min-valid` (60) refresh again. CMD must run once.
fn concurrent_refreshes_to_a_30s_token_run_cmd_once(kind: Kind) {
    storm(kind, "storm-30s", 30, &[]);
}

/// Defect 4: one caller asking `--min-valid 3600` of 3600-second tokens
/// refreshed on every call. A token refreshed less than 60 s ago is not
/// refreshed again by `--min-valid` alone: CMD runs once over three calls.
fn repeated_min_valid_calls_do_not_refresh_a_fresh_token_again(kind: Kind) {
    let w = World::new("storm-repeat", kind);
    w.import(&expired("111"), &[]);
    let (cmd, ran) = refresher(&w, "count", &new_token(3600, Some("111")), 0);
    for call in 1..=3 {
        expect_failure(
            w.run(&["token", "--min-valid", "3600", "--refresh-with", &cmd]),
            4,
            &format!("call {call}: token too short"),
        );
    }
    assert_eq!(runs(&ran), 1, "CMD must run once over three calls");
    expect_token(
        w.run(&["token", "--min-valid", "0"]),
        NEW_AT,
        "the refreshed token is saved",
    );
    w.finish();
}

// ---------------------------------------------------------------------------
// 5. A refresh cannot change whose token it is
// ---------------------------------------------------------------------------

/// Defect 5: a refresher returning another extension's token (`owner_id`
/// 999 for profile 111) was saved under profile 111. It must be refused as
/// bad input (exit 6), keeping the old tokens and owner.
fn refresher_returning_another_owner_is_refused(kind: Kind) {
    let w = World::new("refresh-owner", kind);
    w.import(&expired("111"), &[]);
    let before = status_facts(w.run(&["status", "--json"]));
    let (cmd, ran) = refresher(&w, "other-owner", &new_token(3600, Some("999")), 0);
    expect_failure(
        w.run(&["token", "--refresh-with", &cmd]),
        6,
        "token --refresh-with, CMD returns owner 999",
    );
    assert_eq!(runs(&ran), 1, "CMD ran");
    let v = expect(w.run(&["export", "--reveal"]), 0, "export --reveal").json();
    assert!(v["access_token"] == OLD_AT, "the old access token stays");
    assert!(v["refresh_token"] == OLD_RT, "the old refresh token stays");
    assert!(v["owner_id"] == "111", "the owner stays 111");
    let after = status_facts(w.run(&["status", "--json"]));
    assert_eq!(after, before, "status --json unchanged");
    let v = expect(w.run(&["list", "--json"]), 0, "list --json").json();
    let profiles: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["profile"])
        .collect();
    assert_eq!(profiles, [&json!("111")], "no other profile appears");
    w.finish();
}

/// Defect 7: when the save after a successful refresh fails, the refresh
/// token is spent. The error says so (never "retry"), exits 8, and the new
/// access token (the only thing left) is still printed; the stored tokens
/// are the old ones and nothing is left behind in the keychain.
fn a_refresh_whose_result_cannot_be_stored_prints_it_and_exits_8(kind: Kind) {
    let w = World::new("refresh-not-stored", kind);
    w.import(&expired("111"), &[]);
    let (cmd, ran) = refresher(&w, "not-stored", &new_token(3600, Some("111")), 0);
    let out = run(w.cmd().env("RCTOKEN_CLI_TEST_FAIL_COMMIT", "1").args([
        "token",
        "--refresh-with",
        &cmd,
    ]));
    assert_eq!(runs(&ran), 1, "CMD ran");
    assert_eq!(out.code, 8, "{}", show(&out));
    assert_eq!(
        out.stdout,
        format!("{NEW_AT}\n"),
        "the new access token is printed"
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&out));
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("spent"),
        "{}",
        show(&out)
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains("log in again"),
        "{}",
        show(&out)
    );
    assert!(!lines[1].starts_with("hint: retry"), "{}", show(&out));
    let v = expect(w.run(&["export", "--reveal"]), 0, "export --reveal").json();
    assert!(
        v["access_token"] == OLD_AT,
        "the stored tokens are the old ones"
    );
    expect(
        w.run(&["doctor"]),
        0,
        "doctor: no reservation or new item left behind",
    );
    w.finish();
}

/// Defect 5: a refresher response without `owner_id` (allowed by the
/// token endpoint) erased the profile's owner. The owner must be kept.
fn refresher_response_without_owner_keeps_the_owner(kind: Kind) {
    let w = World::new("refresh-no-owner", kind);
    w.import(&expired("111"), &[]);
    let (cmd, ran) = refresher(&w, "no-owner", &new_token(3600, None), 0);
    expect_token(
        w.run(&["token", "--refresh-with", &cmd]),
        NEW_AT,
        "token --refresh-with, response without owner_id",
    );
    assert_eq!(runs(&ran), 1, "CMD ran");
    let v = expect(w.run(&["status", "--json"]), 0, "status --json").json();
    assert_eq!(v["owner_id"], "111", "status --json keeps the owner");
    let v = expect(w.run(&["list", "--json"]), 0, "list --json").json();
    assert_eq!(v[0]["owner_id"], "111", "list --json keeps the owner");
    let v = expect(w.run(&["export", "--reveal"]), 0, "export --reveal").json();
    assert!(v["owner_id"] == "111", "export keeps the owner");
    w.finish();
}

// ---------------------------------------------------------------------------
// 6. Label and key names cannot shadow each other
// ---------------------------------------------------------------------------

/// Defect 6: `import --profile work` while `work` is profile 111's label
/// created a profile `work` that hid the label (`logout work` then removed
/// the new profile, not 111). It must be a usage error (exit 2) that
/// changes nothing, and `logout work` removes 111 and only 111.
fn profile_named_like_a_label_is_refused(kind: Kind) {
    let w = World::new("shadow-label", kind);
    let dir = w.env.dir();
    w.import(&valid_token(OLD_AT, OLD_RT, "111"), &["--label", "work"]);
    // A bystander that must not change.
    w.import(&valid_token(NEW_AT, NEW_RT, "333"), &["--no-switch"]);
    let before = metadata_bytes(&dir);
    let other = valid_token("AT-work-5eCr3t", "RT-work-5eCr3t", "444");
    expect_failure(
        w.run_stdin(&["import", "--profile", "work"], &other),
        2,
        "import --profile <a label>",
    );
    assert!(
        metadata_bytes(&dir) == before,
        "the refused import changed the metadata"
    );
    let bystander = std::fs::read(dir.join("profiles").join("333.json")).unwrap();

    let r = expect(w.run(&["logout", "work"]), 0, "logout work");
    assert!(
        r.stdout.starts_with("logged out profile 111 (label work)"),
        "logout work must remove profile 111: {}",
        show(&r)
    );
    let v = expect(w.run(&["list", "--json"]), 0, "list --json").json();
    let profiles: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["profile"])
        .collect();
    assert_eq!(profiles, [&json!("333")], "only the bystander is left");
    assert!(v[0]["label"].is_null());
    assert_eq!(
        std::fs::read(dir.join("profiles").join("333.json")).unwrap(),
        bystander,
        "the bystander's file is unchanged"
    );
    expect_token(w.run(&["token", "333"]), NEW_AT, "the bystander's token");
    expect_failure(w.run(&["token", "111"]), 3, "profile 111 is gone");
    w.finish();
}

/// Defect 6: importing a token whose `owner_id` (222) is another profile's
/// label created profile 222, hiding the label. It must be a usage error
/// (exit 2) that changes nothing.
fn owner_id_equal_to_a_label_is_refused(kind: Kind) {
    let w = World::new("shadow-owner", kind);
    let dir = w.env.dir();
    w.import(&valid_token(OLD_AT, OLD_RT, "111"), &["--label", "222"]);
    let before = metadata_bytes(&dir);
    expect_failure(
        w.run_stdin(&["import"], &valid_token(NEW_AT, NEW_RT, "222")),
        2,
        "import of owner 222 while 222 is a label",
    );
    assert!(
        metadata_bytes(&dir) == before,
        "the refused import changed the metadata"
    );
    expect_token(
        w.run(&["token", "222"]),
        OLD_AT,
        "`222` still names profile 111",
    );
    let v = expect(w.run(&["list", "--json"]), 0, "list --json").json();
    let profiles: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["profile"])
        .collect();
    assert_eq!(profiles, [&json!("111")]);
    assert_eq!(v[0]["label"], "222");
    w.finish();
}

/// Defect 6, the reverse order: `--label 222` while profile 222 exists is a
/// usage error (exit 2) that changes nothing. (Passes before the fix too;
/// kept so the fix cannot break it.)
fn label_equal_to_a_profile_key_is_refused(kind: Kind) {
    let w = World::new("shadow-key", kind);
    let dir = w.env.dir();
    w.import(&valid_token(NEW_AT, NEW_RT, "222"), &[]);
    let before = metadata_bytes(&dir);
    expect_failure(
        w.run_stdin(
            &["import", "--label", "222"],
            &valid_token(OLD_AT, OLD_RT, "111"),
        ),
        2,
        "import --label <a profile key>",
    );
    assert!(
        metadata_bytes(&dir) == before,
        "the refused import changed the metadata"
    );
    let v = expect(w.run(&["list", "--json"]), 0, "list --json").json();
    let profiles: Vec<&Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["profile"])
        .collect();
    assert_eq!(profiles, [&json!("222")]);
    expect_token(w.run(&["token", "222"]), NEW_AT, "profile 222's token");
    w.finish();
}
