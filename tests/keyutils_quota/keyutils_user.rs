//! Kernel keyutils as an ordinary user meets it: every kind of session
//! keyring, and the kernel's small per-user quota (20,000 bytes and 200
//! keys by default for a non-root uid). These tests run the built binary.
//!
//! The quota tests need a non-root uid (root's quota is 25,000,000 bytes)
//! and fail, never skip, as root: CI runs them as an unprivileged user
//! (`.ci/test.sh`). The quota is shared by every process of the uid, so the
//! tests of this binary (`tests/keyutils_quota`) run one at a time
//! (`crate::serial`; cargo runs test binaries one after another), and each
//! measures the room left instead of assuming it.

#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::serial;
use crate::support::backends::Kind;
use crate::support::cli::{self, Env, run};
use crate::support::keyutils::{self, quota, settle};

/// A token the size RingCentral issues: 1.3 KB access and refresh tokens, a
/// 3 KB id_token.
fn realistic(owner: &str, tag: &str, expires_in: i64) -> String {
    let fill = |n: usize| -> String {
        let mut s = format!("{tag}-{owner}-");
        while s.len() < n {
            s.push('x');
        }
        s
    };
    json!({
        "access_token": fill(1300),
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": format!("R{}", fill(1300)),
        "refresh_token_expires_in": 604800,
        "id_token": format!("I{}", fill(3000)),
        "scope": "ReadAccounts",
        "owner_id": owner,
        "endpoint_id": "ep",
    })
    .to_string()
}

#[allow(unsafe_code)]
fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

#[track_caller]
fn require_non_root() {
    assert_ne!(
        uid(),
        0,
        "this test needs the kernel's non-root key quota: run it as an unprivileged user \
         (`.ci/test.sh` does)"
    );
}

/// A plain user key that eats quota; unlinked on drop, pass or fail.
struct Filler(String);

impl Filler {
    fn new(bytes: usize) -> Filler {
        let desc = format!("rctoken-test-filler-{}", std::process::id());
        Filler(keyutils::add(&desc, &vec![b'f'; bytes]))
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = Command::new("keyctl")
            .args(["unlink", &self.0, "@u"])
            .output();
    }
}

/// `logout --all` and a check from outside that nothing of the app is left.
fn clean(env: &Env) {
    env.run(&["logout", "--all"]);
    let left = keyutils_keys(&env.app);
    assert!(left.is_empty(), "keys left behind: {left:?}");
}

/// A refresher script that records each run in `runs` and prints `reply`.
fn refresher(env: &Env, reply: &str) -> (String, std::path::PathBuf) {
    let runs = env.path("runs");
    let reply_path = env.path("reply.json");
    std::fs::write(&reply_path, reply).unwrap();
    let cmd = format!(
        "cat >/dev/null; echo run >> '{}'; cat '{}'",
        runs.display(),
        reply_path.display()
    );
    (cmd, runs)
}

fn count_runs(runs: &Path) -> usize {
    std::fs::read_to_string(runs)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The live keys of `app`'s namespace in any keyring (accounts, sorted),
/// read from `/proc/keys`, independent of rctoken.
fn keyutils_keys(app: &str) -> Vec<String> {
    let ns = keyutils::namespace(app);
    keyutils::visible(&ns)
        .into_iter()
        .map(|k| k.description[ns.len()..].to_string())
        .collect()
}

/// The `/proc/keys` lines of `app`, for failure messages.
fn raw_lines(app: &str) -> String {
    keyutils::proc_lines(&keyutils::namespace(app))
}

// ---------------------------------------------------------------- sessions

/// Starts `rctoken ARGS` on a test's store in some session setup.
type Launcher = fn(&Env, &[&str]) -> Command;

/// `rctoken ARGS` inside a fresh session keyring that is *not* linked to the
/// user keyring (what `keyctl session -` gives, and a systemd service with
/// the default `KeyringMode=private`).
fn in_private_session(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new("keyctl");
    c.args(["session", "-", cli::bin()])
        .args(["--app", &env.app, "--backend", "keyutils", "--dir"])
        .arg(env.dir())
        .args(args);
    c
}

/// The same, with the user keyring linked into the new session keyring.
fn in_linked_session(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new("keyctl");
    c.args([
        "session",
        "-",
        "sh",
        "-c",
        "keyctl link @u @s >/dev/null && exec \"$@\"",
        "sh",
        cli::bin(),
    ])
    .args(["--app", &env.app, "--backend", "keyutils", "--dir"])
    .arg(env.dir())
    .args(args);
    c
}

/// A profile saved in one kind of session is readable and removable from
/// every other kind, and from the caller's own session.
#[test]
fn works_in_every_session_keyring() {
    needs!(Kind::Keyutils);
    let _serial = serial();
    let env = Env::new("sessions", Kind::Keyutils);
    let setups: [(&str, Launcher); 3] = [
        ("private", in_private_session),
        ("linked", in_linked_session),
        ("inherited", |env: &Env, args: &[&str]| {
            let mut c = env.cmd();
            c.args(args);
            c
        }),
    ];
    for (i, (name, import_in)) in setups.iter().enumerate() {
        let owner = format!("{}", 100 + i);
        let token = cli::valid_token(&format!("A-{name}"), &format!("R-{name}"), &owner);
        let imported = cli::run_with_stdin(&mut import_in(&env, &["import"]), token.as_bytes());
        assert_eq!(
            imported.code, 0,
            "import in a {name} session: {}",
            imported.stderr
        );
        for (other, read_in) in &setups {
            let got = run(&mut read_in(&env, &["token", &owner]));
            assert_eq!(
                got.code, 0,
                "token in a {other} session after import in {name}: {}",
                got.stderr
            );
            assert_eq!(
                got.stdout.trim(),
                format!("A-{name}"),
                "{other} reads what {name} saved"
            );
        }
    }
    // Removal from a private session removes the keys for everyone.
    let out = run(&mut in_private_session(&env, &["logout", "--all"]));
    assert_eq!(
        out.code, 0,
        "logout --all in a private session: {}",
        out.stderr
    );
    assert!(keyutils_keys(&env.app).is_empty());
    assert_eq!(env.run(&["list"]).ok().stdout, "");
}

/// A process whose session keyring belongs to someone else (started by
/// root with `setpriv`, as service managers and `su -` without PAM do): it
/// can neither search nor link through that session keyring. Saving,
/// reading and removing still work, through the process and user keyrings.
/// Needs root to change uid; runs rctoken as `nobody`.
#[test]
fn works_with_a_session_keyring_it_cannot_use_as_root() {
    needs!(Kind::Keyutils);
    let _serial = serial();
    assert_eq!(
        uid(),
        0,
        "must run as root (setpriv changes the uid); .ci/test.sh runs *_as_root tests as root"
    );
    // In /tmp itself: `nobody` must be able to reach it (CI's private
    // TMPDIR is root's 0700); removed on drop like any temp dir.
    let tmp = tempfile::tempdir_in("/tmp").expect("tempdir");
    let dir = tmp.path().join("store");
    std::os::unix::fs::chown(tmp.path(), Some(65534), Some(65534)).expect("chown to nobody");
    let app = format!("ku-foreign-session-{}", std::process::id());
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            cli::bin(),
        ])
        .args(["--app", &app, "--backend", "keyutils", "--dir"])
        .arg(&dir)
        .args(args);
        c
    };
    // Remove nobody's keys of this app, pass or fail.
    struct Cleanup<'a>(&'a dyn Fn(&[&str]) -> Command);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["logout", "--all"]).output();
        }
    }
    let _cleanup = Cleanup(&as_nobody);
    let token = cli::valid_token("A-foreign", "R-foreign", "4242");
    let out = cli::run_with_stdin(&mut as_nobody(&["import"]), token.as_bytes());
    assert_eq!(out.code, 0, "import: {}", out.stderr);
    let out = run(&mut as_nobody(&["token"]));
    assert_eq!(out.code, 0, "token: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "A-foreign");
    let out = run(&mut as_nobody(&["logout", "--all"]));
    assert_eq!(out.code, 0, "logout: {}", out.stderr);
    let out = run(&mut as_nobody(&["token"]));
    assert_eq!(out.code, 3, "gone after logout: {}", out.stderr);
}

// ------------------------------------------------------------------- quota

/// As a non-root user the quota holds only a few realistic profiles; the
/// import that does not fit fails with the figures, changes nothing, and
/// leaves no item behind. Prints how many fit (a measurement for the docs).
#[test]
fn a_full_quota_is_named_with_figures_and_changes_nothing() {
    needs!(Kind::Keyutils);
    require_non_root();
    let _serial = serial();
    settle();
    let env = Env::new("quotafull", Kind::Keyutils);
    let mut fitted = 0;
    let failure = loop {
        let owner = format!("{}", 500 + fitted);
        let out = env.run_stdin(&["import"], realistic(&owner, "q", 3600).as_bytes());
        if out.code != 0 {
            break out;
        }
        fitted += 1;
        assert!(
            fitted < 50,
            "the quota never filled up: is this really a non-root uid?"
        );
    };
    let (_, max) = quota();
    eprintln!("realistic profiles that fit in a {max}-byte keyutils quota: {fitted}");
    assert!(fitted >= 1, "not even one realistic profile fits");
    assert_eq!(failure.code, 1, "{}", failure.stderr);
    assert!(
        failure.stderr.contains("quota") && failure.stderr.contains(&format!("of {max} bytes")),
        "the error names the quota with figures: {}",
        failure.stderr
    );
    assert!(!failure.stderr.contains("retry"), "{}", failure.stderr);
    assert!(
        failure.stderr.contains("rctoken logout PROFILE")
            && failure.stderr.contains("rctoken --backend sealed migrate"),
        "the hint says what to do: {}",
        failure.stderr
    );
    let listed = env.run(&["list", "--json"]).ok().json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(fitted),
        "the failed import added nothing"
    );
    // Exactly the committed items of the listed profiles: nothing orphaned.
    let mut committed: Vec<String> = (0..fitted)
        .flat_map(|i| env.accounts(&format!("{}", 500 + i)))
        .collect();
    committed.sort();
    assert_eq!(
        keyutils_keys(&env.app),
        committed,
        "{}",
        raw_lines(&env.app)
    );
    // doctor says the quota is nearly full instead of "ok".
    keyutils::quiet();
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    assert!(
        doctor.stdout.contains("quota is nearly full"),
        "{}",
        doctor.stdout
    );
    clean(&env);
}

/// When there is no room for the refreshed token, the refresher is not run
/// (the refresh token is not spent); once there is room, it runs once.
#[test]
fn no_refresh_without_room_for_its_result() {
    needs!(Kind::Keyutils);
    require_non_root();
    let _serial = serial();
    settle();
    let env = Env::new("noroom", Kind::Keyutils);
    env.import(&realistic("777", "old", 0), &[]);
    let (cmd, runs) = refresher(&env, &realistic("777", "new", 3600));
    // Leave less room than one more envelope needs.
    let (used, max) = quota();
    let free = usize::try_from(max - used).unwrap();
    let filler = Filler::new(free.saturating_sub(3000).max(1));
    let out = env.run(&["token", "--refresh-with", &cmd]);
    assert_eq!(
        count_runs(&runs),
        0,
        "the refresher ran without room for its result"
    );
    assert_ne!(out.code, 0);
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(
        out.stderr.contains("did not refresh") && out.stderr.contains("not used"),
        "the error says the refresh token was not used: {}",
        out.stderr
    );
    assert!(out.stderr.contains("bytes"), "with figures: {}", out.stderr);
    let exported = env.run(&["export", "--reveal"]).ok().json();
    assert!(
        exported["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("Rold-"),
        "the stored tokens are unchanged"
    );
    assert_eq!(
        keyutils_keys(&env.app),
        env.accounts("777"),
        "the reservation was released; the refresh said: {}",
        out.stderr
    );
    let (full, _) = quota();
    drop(filler);
    // The kernel frees an unlinked key's quota when its garbage collector
    // runs, shortly after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while quota().0 + 3000 > full && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = env.run(&["token", "--refresh-with", &cmd]).ok();
    assert_eq!(count_runs(&runs), 1);
    assert!(out.stdout.starts_with("new-777-"));
    assert_eq!(
        keyutils_keys(&env.app),
        env.accounts("777"),
        "old generation and reservation gone"
    );
    clean(&env);
}

/// A save that finds the quota full while a delete's room is being freed
/// waits for it instead of failing: the kernel frees a deleted key's quota
/// from its garbage collector a moment later. Here the import starts with
/// the quota full, is still waiting 200 ms later, and succeeds once the
/// filler key is unlinked.
#[test]
fn a_save_waits_for_room_that_is_being_freed() {
    needs!(Kind::Keyutils);
    require_non_root();
    let _serial = serial();
    settle();
    let env = Env::new("quotawait", Kind::Keyutils);
    let (used, max) = quota();
    // Room for less than the envelope's first item.
    let filler = Filler::new((max - used).saturating_sub(1500) as usize);
    let mut child = env
        .cmd()
        .arg("import")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rctoken import");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(realistic("779", "w", 3600).as_bytes())
            .expect("write the token");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let early = child.try_wait().expect("try_wait");
    drop(filler);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        early.is_none(),
        "the import ended ({early:?}) before any room was freed instead of waiting for it: {stderr}"
    );
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert_eq!(keyutils_keys(&env.app), env.accounts("779"));
    clean(&env);
}

/// A refresh with room to spare leaves exactly the new generation: no
/// reserved placeholder survives, and the store verifies clean.
#[test]
fn a_refresh_leaves_only_the_new_generation() {
    needs!(Kind::Keyutils);
    let _serial = serial();
    settle();
    let env = Env::new("reserveclean", Kind::Keyutils);
    env.import(&realistic("778", "old", 0), &[]);
    let (cmd, runs) = refresher(&env, &realistic("778", "new", 3600));
    env.run(&["token", "--refresh-with", &cmd]).ok();
    assert_eq!(count_runs(&runs), 1);
    let keys = keyutils_keys(&env.app);
    assert_eq!(
        keys,
        env.accounts("778"),
        "only the committed generation is left"
    );
    assert!(
        !env.dir().join("refresh-locks").join("778.reserve").exists(),
        "the reserved metadata file became the profile file"
    );
    settle();
    env.run(&["doctor"]).ok();
    clean(&env);
}
