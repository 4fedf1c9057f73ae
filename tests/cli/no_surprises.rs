//! No silent surprises: a store that does not exist is reported and never
//! created by a command that only reads; a read-only store can be read;
//! failed saves leave no lock files; one unreadable profile file does not
//! hide the others; secrets never move out of a backend that cannot be
//! reached unless asked; empty environment variables count as unset;
//! hostile text never reaches a terminal raw; and the input mistakes users
//! make (a byte order mark, RingCentral's error response) are named.

use std::path::Path;

use crate::support::backends::Kind;
use crate::support::cli::{Env, Run, run, run_with_stdin, valid_token};

/// Every path under `dir`, sorted (empty if it does not exist).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Windows: rctoken sets no ACL of its own on the store (the directory
/// inherits its parent's, which is left as it was; Wine implements no
/// ACLs, so that is all this can check there), and it creates nothing
/// outside the store directory: a session of every command, a refresh
/// included, leaves nothing named after the app in the user's AppData
/// (Local, Roaming) or Temp, and under the test's directory only the
/// store's own files.
#[cfg(windows)]
#[test]
fn on_windows_nothing_is_created_outside_the_store_directory() {
    use crate::support::refresher::{Does, Refresher};
    let kind = Kind::WindowsCredentialManager;
    needs!(kind);
    let env = Env::new("outside", kind);
    // Where an app's files go on Windows (the default store directory is
    // %LOCALAPPDATA%\\<app id>), three levels down: Wine shows the Unix
    // links it makes there (Templates → the Unix home) as directories.
    let roots: Vec<std::path::PathBuf> = ["LOCALAPPDATA", "APPDATA", "TEMP"]
        .iter()
        .map(|v| {
            std::env::var_os(v)
                .unwrap_or_else(|| panic!("{v} is not set"))
                .into()
        })
        .collect();
    let named_after_app = || -> Vec<String> {
        let mut found = Vec::new();
        let mut stack: Vec<(std::path::PathBuf, usize)> =
            roots.iter().map(|r| (r.clone(), 0)).collect();
        while let Some((d, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if e.file_name().to_string_lossy().contains(&env.app) {
                    found.push(p.display().to_string());
                }
                if depth < 2 && e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()) {
                    stack.push((p, depth + 1));
                }
            }
        }
        found
    };
    assert_eq!(named_after_app(), Vec::<String>::new(), "before");
    let parent_attributes = || {
        std::fs::metadata(env.tmp.path())
            .expect("stat the parent")
            .permissions()
            .readonly()
    };
    let parent_before = parent_attributes();

    let input = env.path("a.json");
    std::fs::write(&input, valid_token("AT-o1", "RT-o1", "1001")).unwrap();
    env.run(&["import", input.to_str().unwrap(), "--label", "one"])
        .ok();
    env.import(&valid_token("AT-o2", "RT-o2", "2002"), &["--no-switch"]);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status"],
        &["status", "2002", "--json"],
        &["token"],
        &["switch", "2002"],
        &["export", "--reveal"],
        &["doctor"],
        &["doctor", "--fix"],
        &["logout", "one"],
    ] {
        env.run(args).ok();
    }
    // A refresh: its refresher keeps its files in a directory of its own.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let refresher = Refresher::new(elsewhere.path(), "r");
    let cmd = refresher.cmd(&Does::print(&valid_token("AT-o3", "RT-o3", "2002")));
    let out = env
        .run(&["token", "--min-valid", "7200", "--refresh-with", &cmd])
        .code(4);
    assert_eq!(out.stdout, "");
    assert_eq!(refresher.runs(), 1);
    assert_eq!(env.run(&["token"]).ok().stdout, "AT-o3\n");

    let mut seen = tree(env.tmp.path());
    seen.retain(|p| p != "a.json");
    for p in &seen {
        let p = p.replace('\\', "/");
        let ok = p == "store"
            || p == "store/metadata.json"
            || p == "store/metadata.lock"
            || p == "store/profiles"
            || p == "store/refresh-locks"
            || (p.starts_with("store/profiles/") && p.ends_with(".json"))
            || (p.starts_with("store/refresh-locks/") && p.ends_with(".lock"));
        assert!(
            ok,
            "unexpected path under the test's directory: {p:?} (all: {seen:?})"
        );
    }
    assert_eq!(named_after_app(), Vec::<String>::new(), "after");
    assert_eq!(
        parent_attributes(),
        parent_before,
        "the parent's attributes"
    );
    env.run(&["logout", "--all"]).ok();
    assert_eq!(named_after_app(), Vec::<String>::new(), "after logout");
}

#[test]
fn commands_on_a_store_that_does_not_exist_report_it_and_create_nothing() {
    needs!(Kind::Keyutils);
    let env = Env::new("nostore", Kind::Keyutils);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status"],
        &["doctor"],
        &["doctor", "--fix"],
        &["token"],
        &["export", "--reveal"],
        &["switch", "x"],
        &["logout", "--all"],
        &["api", "/restapi/v1.0/account/~"],
    ] {
        let out = env.run(args).fails(3);
        let dir = env.dir();
        assert!(
            out.stderr.starts_with(&format!(
                "error: no store for app `{}` at {}\nhint: ",
                env.app,
                dir.display()
            )),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("--app"), "{args:?}: {}", out.stderr);
        assert!(!dir.exists(), "{args:?} created the store directory");
    }
    assert_eq!(
        tree(env.tmp.path()),
        Vec::<String>::new(),
        "nothing written"
    );
    // An empty directory given with --dir is a store with no profiles:
    // listed as such, and still nothing is written into it.
    env.make_store_dir();
    let out = env.run(&["list"]).ok();
    assert!(out.stderr.contains("no profiles"), "{}", out.stderr);
    assert_eq!(env.run(&["list", "--json"]).ok().stdout, "[]\n");
    env.run(&["status"]).fails(3);
    assert_eq!(tree(&env.dir()), Vec::<String>::new(), "nothing written");
}

/// Unprivileged only: root opens a 0400 file read-write anyway.
/// File modes: Unix only.
#[cfg(unix)]
#[test]
fn a_read_only_store_can_be_read() {
    needs!(Kind::Keyutils);
    let env = Env::new("readonly", Kind::Keyutils);
    env.import(&valid_token("AT-ro", "RT-ro", "5150"), &["--label", "ro"]);
    let lock = env.dir().join("metadata.lock");
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    // A lock file of mode 0400, then also a directory of mode 0500.
    mode(&lock, 0o400);
    for step in ["0400 lock file", "0500 directory"] {
        if step == "0500 directory" {
            mode(&env.dir(), 0o500);
        }
        let out = env.run(&["list"]).ok();
        assert!(out.stdout.contains("5150"), "{step}: {}", out.stdout);
        assert!(env.run(&["status"]).ok().stdout.contains("5150"), "{step}");
        assert_eq!(env.run(&["token"]).ok().stdout, "AT-ro\n", "{step}");
        assert_eq!(env.run(&["token", "ro"]).ok().stdout, "AT-ro\n", "{step}");
    }
    mode(&env.dir(), 0o700);
    mode(&lock, 0o600);
    env.run(&["logout", "--all"]).ok();
}

fn lock_files(env: &Env) -> Vec<String> {
    tree(&env.dir().join("refresh-locks"))
        .into_iter()
        .filter(|n| n.ends_with(".lock"))
        .collect()
}

#[test]
fn failed_saves_and_logouts_leave_no_refresh_lock_files() {
    needs!(Kind::Keyutils);
    let env = Env::new("lockpile", Kind::Keyutils);
    env.import(&valid_token("AT-1", "RT-1", "1001"), &["--label", "work"]);
    env.import(&valid_token("AT-2", "RT-2", "1002"), &[]);
    assert_eq!(lock_files(&env).len(), 2, "{:?}", lock_files(&env));
    // Twenty imports that fail inside the save (the label is taken).
    for i in 0..20 {
        let json = valid_token("AT-x", "RT-x", &format!("20{i:02}"));
        let out = env.run_stdin(&["import", "--label", "work"], json.as_bytes());
        assert_eq!(out.code, 2, "{}", out.stderr);
    }
    assert_eq!(
        lock_files(&env).len(),
        2,
        "failed imports leave no lock files: {:?}",
        lock_files(&env)
    );
    // A failed re-save of an existing profile keeps its lock file.
    let out = env.run_stdin(
        &["import", "--label", "work"],
        valid_token("AT-2b", "RT-2b", "1002").as_bytes(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(lock_files(&env).len(), 2);
    env.run(&["logout", "1002"]).ok();
    assert_eq!(lock_files(&env).len(), 1, "logout removes its lock file");
    env.run(&["logout", "--all"]).ok();
    assert_eq!(lock_files(&env), Vec::<String>::new(), "logout --all too");
}

#[test]
fn one_unreadable_profile_file_does_not_hide_the_others() {
    needs!(Kind::Keyutils);
    let env = Env::new("onebad", Kind::Keyutils);
    for owner in ["3001", "3002", "3003"] {
        env.import(&valid_token("AT", "RT", owner), &[]);
    }
    let bad = env.dir().join("profiles").join("3002.json");
    std::fs::write(&bad, b"{ not json").unwrap();
    let out = env.run(&["list"]).fails_after_output(7);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[0].contains("3001") && lines[1].contains("3003"),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("! 3002.json") && lines[2].contains("unreadable"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("3002.json"), "{}", out.stderr);
    assert!(out.stderr.contains("doctor"), "{}", out.stderr);
    let out = env.run(&["list", "--json"]).fails_after_output(7);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["3001", "3003"]);
    // A hand-edited file that parses but breaks a rule of the save: also
    // unreadable, also marked.
    let edited = env.dir().join("profiles").join("3003.json");
    let text = std::fs::read_to_string(&edited).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["owner_id"] = "".into();
    std::fs::write(&edited, v.to_string()).unwrap();
    let out = env.run(&["list"]).fails_after_output(7);
    assert!(out.stdout.contains("! 3003.json"), "{}", out.stdout);
    assert!(out.stdout.contains("3001"), "{}", out.stdout);
    std::fs::write(&edited, text).unwrap();
    std::fs::remove_file(&bad).unwrap();
    env.run(&["doctor", "--fix"]).ok();
    env.run(&["logout", "--all"]).ok();
}

/// A profile saved in the Secret Service, re-imported where there is no
/// session bus: refused (exit 5, nothing changes) unless `--move`, which
/// says where the secrets went.
#[test]
fn a_save_never_moves_secrets_out_of_an_unreachable_backend_unless_asked() {
    needs!(Kind::SecretService, Kind::Keyutils);
    let env = Env::new("nomove", Kind::SecretService);
    env.import(&valid_token("AT-ss", "RT-ss", "6006"), &[]);
    let headless = |args: &[&str], input: &str| {
        let mut c = env.bare();
        c.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("RCTOKEN_KEY_FILE")
            .env_remove("CREDENTIALS_DIRECTORY")
            .args(args);
        run_with_stdin(&mut c, input.as_bytes())
    };
    let before = std::fs::read(env.dir().join("profiles").join("6006.json")).unwrap();
    let new = valid_token("AT-new", "RT-new", "6006");
    let out = headless(&["import"], &new).fails(5);
    assert!(
        out.stderr.contains("secret-service") && out.stderr.contains("--move"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--backend secret-service"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(env.dir().join("profiles").join("6006.json")).unwrap(),
        before,
        "nothing changed"
    );
    assert_eq!(env.run(&["token"]).ok().stdout, "AT-ss\n");
    // Neither the refused save nor commands that only read created the
    // sealed store `auto` picks here, or a key for it.
    headless(&["status"], "").ok();
    headless(&["doctor"], "").code(5);
    assert!(!env.dir().join("sealed").exists(), "no sealed store made");
    assert!(
        crate::support::keyutils::keys(&crate::support::keyutils::sealing_keys(&env.app))
            .is_empty(),
        "no key made"
    );
    // Asked: moved, and said so.
    let out = headless(&["import", "--move"], &new).ok();
    assert_eq!(
        out.stdout,
        "saved profile 6006, active; secrets in sealed\n"
    );
    assert!(
        out.stderr.contains("moved from secret-service to sealed"),
        "{}",
        out.stderr
    );
    assert_eq!(headless(&["token"], "").ok().stdout, "AT-new\n");
    // The old item is an orphan there, which doctor --fix removes.
    let out = run(env
        .bare()
        .args(["--backend", "secret-service", "doctor", "--fix"]));
    assert!(out.code == 0 || out.code == 5, "{}", out.stderr);
    headless(&["logout", "--all"], "").ok();
}

#[test]
fn empty_environment_variables_count_as_unset() {
    needs!(Kind::Keyutils);
    let env = Env::new("emptyenv", Kind::Keyutils);
    env.import(&valid_token("AT-e", "RT-e", "7117"), &[]);
    let mut c = env.cmd();
    for var in [
        "RCTOKEN_BACKEND",
        "RCTOKEN_LOCK_TIMEOUT",
        "RCTOKEN_KEYCHAIN_TIMEOUT",
        "RCTOKEN_KEY_FILE",
        "RCTOKEN_CLIENT_ID",
        "RCTOKEN_SERVER",
    ] {
        c.env(var, "");
    }
    assert_eq!(run(c.arg("token")).ok().stdout, "AT-e\n");
    // An empty RCTOKEN_DIR and RCTOKEN_APP: the default store of the
    // default app, under this test's home (reported, not created).
    let home = env.path("home");
    let mut c = std::process::Command::new(crate::support::cli::bin());
    c.env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env("RCTOKEN_DIR", "")
        .env("RCTOKEN_APP", "")
        .env("RCTOKEN_BACKEND", "")
        .arg("list");
    let out = run(&mut c).fails(3);
    assert!(
        out.stderr.contains(&format!(
            "no store for app `rctoken` at {}",
            home.join(".local/share/rctoken").display()
        )),
        "{}",
        out.stderr
    );
    assert!(!home.exists());
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn hostile_text_in_a_token_never_reaches_the_terminal_raw() {
    needs!(Kind::Keyutils);
    let env = Env::new("hostile", Kind::Keyutils);
    let json = r#"{"access_token":"AT-h","token_type":"bearer","expires_in":3600,"refresh_token":"RT-h","refresh_token_expires_in":86400,"owner_id":"8228","scope":"ReadAccounts \u202eevil \u200bx\ufeff","endpoint_id":"ep\u2066x"}"#;
    env.import(json, &["--label", "w\u{202e}ork"]);
    let raw = |s: &str| {
        s.chars().find(|c| {
            c.is_control() && *c != '\n' && *c != '\t'
                || matches!(
                    c,
                    '\u{200b}' | '\u{feff}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                )
        })
    };
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status"],
        &["status", "--json"],
        &["doctor"],
        &["doctor", "--json"],
        &["switch", "w\u{202e}ork"],
    ] {
        let out = env.run(args).ok();
        assert_eq!(raw(&out.stdout), None, "{args:?}: {:?}", out.stdout);
        assert_eq!(raw(&out.stderr), None, "{args:?}: {:?}", out.stderr);
    }
    let status = env.run(&["status"]).ok().stdout;
    assert!(
        status.contains("\\u{202e}evil \\u{200b}x\\u{feff}"),
        "visible escapes: {status}"
    );
    assert!(status.contains("ep\\u{2066}x"), "{status}");
    // JSON means the same after escaping.
    let v = env.run(&["status", "--json"]).ok().json();
    assert_eq!(v["scope"], "ReadAccounts \u{202e}evil \u{200b}x\u{feff}");
    // An error naming the label escapes it too.
    let out = env.run(&["token", "no\u{202e}such"]).fails(3);
    assert_eq!(raw(&out.stderr), None, "{:?}", out.stderr);
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn a_byte_order_mark_is_accepted_and_an_error_response_is_named() {
    needs!(Kind::Keyutils);
    let env = Env::new("inputs", Kind::Keyutils);
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(valid_token("AT-bom", "RT-bom", "9339").as_bytes());
    let out = env.run_stdin(&["import"], &bom).ok();
    assert!(out.stdout.contains("saved profile 9339"), "{}", out.stdout);
    assert_eq!(env.run(&["token"]).ok().stdout, "AT-bom\n");
    // RingCentral's error response instead of a token.
    let body = r#"{"error":"invalid_grant","error_description":"Token not found","errors":[{"errorCode":"OAU-213","message":"Token not found"}]}"#;
    let out = env.run_stdin(&["import"], body.as_bytes()).fails(6);
    assert!(
        out.stderr.starts_with(
            "error: the JSON is RingCentral's error response, not a token: invalid_grant (OAU-213): Token not found\nhint: "
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
    let body = r#"{"error":"invalid_client","error_description":"Invalid client"}"#;
    let out = env.run_stdin(&["import"], body.as_bytes()).fails(6);
    assert!(
        out.stderr.contains("invalid_client: Invalid client"),
        "{}",
        out.stderr
    );
    env.run(&["logout", "--all"]).ok();
}

/// The last command's output, when it fails after printing (list with an
/// unreadable profile): exit `code`, the error in two lines on stderr.
trait FailsAfterOutput {
    fn fails_after_output(self, code: i32) -> Run;
}

impl FailsAfterOutput for Run {
    fn fails_after_output(self, code: i32) -> Run {
        let run = self.code(code);
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", run.stderr);
        assert!(lines[0].starts_with("error: ") && lines[1].starts_with("hint: "));
        run
    }
}

/// A lock another process holds: after 1.5 s one line on stderr says what
/// rctoken waits for and how long it will wait, with --verbose or on a
/// terminal; never otherwise (stderr is a pipe here).
#[cfg(unix)] // flock(1) and process groups
#[test]
fn a_long_wait_for_a_lock_is_told_with_verbose_and_only_then() {
    needs!(Kind::Keyutils);
    let env = Env::new("waitnote", Kind::Keyutils);
    env.import(&valid_token("AT-w", "RT-w", "1221"), &[]);
    let lock = env.dir().join("metadata.lock");
    let holder = Holder::new(&lock);
    let out = env
        .run(&["--lock-timeout", "2.5", "--verbose", "list"])
        .code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stderr);
    assert_eq!(
        lines[0],
        format!(
            "rctoken: waiting for a lock another process holds ({}), for at most 2.5 s (--lock-timeout)",
            lock.display()
        )
    );
    assert!(lines[1].starts_with("error: timed out"), "{}", out.stderr);
    // Not a terminal, no --verbose: only the error.
    let out = env.run(&["--lock-timeout", "2.5", "list"]).fails(1);
    assert!(!out.stderr.contains("rctoken: waiting"), "{}", out.stderr);
    // A wait shorter than the notice time is never told.
    let out = env.run(&["--lock-timeout", "1", "-v", "list"]).fails(1);
    assert!(!out.stderr.contains("rctoken: waiting"), "{}", out.stderr);
    // import waits once, not once per lock it looks at.
    let out = env.run_stdin(
        &["--lock-timeout", "2", "-v", "import"],
        valid_token("AT-w2", "RT-w2", "1222").as_bytes(),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("rctoken: waiting for a lock").count(),
        1,
        "{}",
        out.stderr
    );
    drop(holder);
    env.run(&["logout", "--all"]).ok();
}

/// `flock -x -o LOCK sleep 30`, in a process group of its own (-o: the
/// lock is flock's, not sleep's), killed with its group on drop.
#[cfg(unix)]
struct Holder(std::process::Child);

#[cfg(unix)]
impl Holder {
    fn new(lock: &Path) -> Holder {
        let mut c = std::process::Command::new("flock");
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let child = c
            .args(["-x", "-o"])
            .arg(lock)
            .args(["sleep", "30"])
            .spawn()
            .expect("flock (util-linux)");
        // It holds the lock once a non-blocking attempt fails.
        let start = std::time::Instant::now();
        while std::process::Command::new("flock")
            .args(["-n", "-s"])
            .arg(lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
        {
            assert!(
                start.elapsed().as_secs() < 10,
                "flock did not take the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Holder(child)
    }
}

#[cfg(unix)]
impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

#[test]
fn logout_all_on_a_directory_that_is_not_a_store_writes_nothing() {
    needs!(Kind::Keyutils);
    let env = Env::new("notastore", Kind::Keyutils);
    env.make_store_dir();
    std::fs::write(env.dir().join("notes.txt"), "mine").unwrap();
    let out = env.run(&["logout", "--all", "--no-revoke"]).ok();
    assert!(out.stdout.contains("0 profiles"), "{}", out.stdout);
    assert_eq!(tree(&env.dir()), ["notes.txt"], "nothing written");
}

/// A JWT or client secret pasted where its file's path belongs is never
/// echoed (as `import FILE` never echoes FILE).
#[test]
fn a_secret_given_as_a_file_path_is_never_echoed() {
    needs!(Kind::Keyutils);
    let env = Env::new("pastedjwt", Kind::Keyutils);
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", "QUJD".repeat(100));
    let secret_file = env.path("secret");
    std::fs::write(&secret_file, "s3cret").unwrap();
    for args in [
        vec![
            "login",
            "--jwt",
            jwt.as_str(),
            "--client-id",
            "AbCdEf",
            "--client-secret-file",
            secret_file.to_str().unwrap(),
        ],
        vec![
            "login",
            "--jwt",
            secret_file.to_str().unwrap(),
            "--client-id",
            "AbCdEf",
            "--client-secret-file",
            "pasted-Client-Secret-1234567890",
        ],
    ] {
        let out = env
            .run(&args)
            .fails(1)
            .reveals_none(&[&jwt, "pasted-Client-Secret-1234567890"]);
        assert!(
            out.stderr.contains("cannot open the file with"),
            "{}",
            out.stderr
        );
    }
    assert!(!env.dir().exists(), "nothing was saved");
}

/// A missing argument is named on the error line (clap lists it on the
/// lines below, which the two-line form used to cut off), and `rctoken
/// help` errors do not point at a `help --help` that does not exist.
#[test]
fn usage_errors_name_what_is_missing() {
    needs!(Kind::Keyutils);
    let env = Env::new("missingarg", Kind::Keyutils);
    let out = env.run(&["login", "--jwt", "jwt.txt"]).fails(2);
    assert!(
        out.stderr.starts_with(
            "error: the following required arguments were not provided: --client-id <ID>\n"
        ),
        "{}",
        out.stderr
    );
    let out = env.run(&["switch"]).fails(2);
    assert!(
        out.stderr.contains("not provided: <PROFILE>\n"),
        "{}",
        out.stderr
    );
    let out = env.run(&["help", "--help"]).fails(2);
    assert!(
        out.stderr.contains("(see rctoken --help)"),
        "{}",
        out.stderr
    );
}

/// A key file others can read: the hint is about that file, not about
/// choosing a directory.
#[cfg(unix)] // file modes
#[test]
fn a_loose_key_file_gets_a_hint_about_the_file() {
    needs!(Kind::Keyutils);
    let env = Env::new("loosekey", Kind::Keyutils);
    let key = env.path("key");
    std::fs::write(&key, "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = env.bare();
    c.env("RCTOKEN_KEY_FILE", &key)
        .args(["--backend", "sealed", "import"]);
    let out = run_with_stdin(&mut c, valid_token("AT-k", "RT-k", "1331").as_bytes()).fails(7);
    assert!(
        out.stderr
            .contains(&format!("hint: `chmod 600 {}`", key.display())),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("directory"), "{}", out.stderr);
}
