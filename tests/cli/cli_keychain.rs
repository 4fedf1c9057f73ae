//! The CLI against keychains that cannot be reached or are not the one
//! holding the secrets: `list` keeps working (it never touches the
//! keychain), secret-needing commands exit 5, and `auto` picks keyutils on a
//! headless box and says so.

use std::process::Command;

use crate::support::backends::Kind;
use crate::support::cli::valid_token;
use crate::support::cli::{Env, Run, run, run_with_stdin};

const NO_BUS: &str = "unix:path=/nonexistent/rctoken-test-bus";

/// `rctoken --backend secret-service ARGS` with a session bus address that
/// points at nothing.
fn unreachable(env: &Env, args: &[&str]) -> Run {
    let mut c: Command = env.bare();
    c.env("DBUS_SESSION_BUS_ADDRESS", NO_BUS)
        .args(["--backend", "secret-service"])
        .args(args);
    run(&mut c)
}

fn check_unreachable(env: &Env, at: &str, rt: &str) {
    // list: metadata only, works.
    let out = unreachable(env, &["list"]).ok().reveals_none(&[at, rt]);
    assert!(out.stdout.starts_with("* 6006 "), "{}", out.stdout);
    let v = unreachable(env, &["list", "--json"]).ok().json();
    assert_eq!(v[0]["profile"], "6006");
    // status: reports the keychain as unavailable, still exit 0.
    let v = unreachable(env, &["status", "--json"]).ok().json();
    assert_eq!(v["secret"], "unavailable");
    assert!(v["backend"]["in_use"].is_null());
    assert!(
        v["backend"]["error"]
            .as_str()
            .unwrap()
            .contains("secret-service keychain is unavailable"),
        "{v}"
    );
    let out = unreachable(env, &["status"]).ok();
    assert!(
        out.stdout.contains("backend in use:       unavailable"),
        "{}",
        out.stdout
    );
    // Everything that needs a secret: exit 5, two lines, no secret.
    for args in [
        &["token"][..],
        &["token", "--refresh-with", "cat >/dev/null; exit 9"],
        &["export", "--reveal"],
        &["logout"],
        &["logout", "--all"],
    ] {
        let out = unreachable(env, args).fails(5).reveals_none(&[at, rt]);
        assert!(
            out.stderr.contains("unavailable"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = unreachable(env, &["doctor"]).code(5);
    assert!(
        out.stdout.contains("backend       unavailable"),
        "{}",
        out.stdout
    );
    assert_eq!(
        unreachable(env, &["doctor", "--json"]).code(5).json()["exit_code"],
        5
    );
    // Nothing was removed by the failed logouts.
    assert_eq!(
        env.run(&["list", "--json"]).ok().json()[0]["profile"],
        "6006"
    );
}

/// Saved in the real Secret Service, then the bus goes away.
#[test]
fn list_works_and_token_exits_5_when_the_secret_service_is_unreachable() {
    needs!(Kind::SecretService);
    let env = Env::new("unreach-ss", Kind::SecretService);
    let (at, rt) = ("AT-unreach-ss", "RT-unreach-ss");
    env.import(&valid_token(at, rt, "6006"), &[]);
    check_unreachable(&env, at, rt);
    // With the bus back, the token is there.
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{at}\n"));
    env.run(&["logout", "--all"]).ok();
}

/// Saved in keyutils, read with `--backend secret-service` and no bus:
/// the same behaviour, and it runs without a session bus.
#[test]
fn list_works_and_token_exits_5_on_an_unreachable_backend() {
    needs!(Kind::Keyutils);
    let env = Env::new("unreach-ku", Kind::Keyutils);
    let (at, rt) = ("AT-unreach-ku", "RT-unreach-ku");
    env.import(&valid_token(at, rt, "6006"), &[]);
    check_unreachable(&env, at, rt);
    env.run(&["logout", "--all"]).ok();
}

/// The secrets are in keyutils but the Secret Service is in use: exit 5,
/// and the hint names the right backend.
#[test]
fn secrets_in_another_backend_exit_5_with_a_hint() {
    needs!(Kind::Keyutils, Kind::SecretService);
    let env = Env::new("wrong-backend", Kind::Keyutils);
    env.import(&valid_token("AT-wb", "RT-wb", "7007"), &[]);
    let ss = |args: &[&str]| run(env.bare().args(["--backend", "secret-service"]).args(args));
    let out = ss(&["token"]).fails(5);
    assert!(out.stderr.contains("--backend keyutils"), "{}", out.stderr);
    let v = ss(&["status", "--json"]).ok().json();
    assert_eq!(v["secret"], "other-backend");
    assert_eq!(v["secrets_backend"], "keyutils");
    // doctor: exit 5 as token, and the hint names keyutils, not --fix.
    assert_eq!(
        ss(&["doctor", "--json"]).code(5).json()["profiles"][0]["secret"],
        "other-backend"
    );
    let out = ss(&["doctor"]).code(5);
    assert!(out.stderr.contains("--backend keyutils"), "{}", out.stderr);
    env.run(&["logout", "--all"]).ok();
}

/// A headless box: no session bus, so `auto` uses the sealed store with
/// its key in keyutils, and says why; nothing but that key goes to keyutils.
#[test]
fn auto_uses_the_sealed_store_without_a_session_bus_and_says_so() {
    needs!(Kind::Keyutils);
    let env = Env::new("auto-ku", Kind::Keyutils);
    let auto = |args: &[&str]| {
        let mut c = env.bare();
        c.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("RCTOKEN_KEY_FILE")
            .env_remove("CREDENTIALS_DIRECTORY")
            .args(args);
        run(&mut c)
    };
    let json = valid_token("AT-auto", "RT-auto", "8118");
    let mut c = env.bare();
    c.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("RCTOKEN_KEY_FILE")
        .env_remove("CREDENTIALS_DIRECTORY")
        .arg("import");
    let out = run_with_stdin(&mut c, json.as_bytes()).ok();
    // import says where the secrets went, and that auto fell back.
    assert_eq!(
        out.stdout,
        "saved profile 8118, active; secrets in sealed\n"
    );
    assert!(
        out.stderr.contains(
            "note: auto: no session bus (DBUS_SESSION_BUS_ADDRESS is unset); the sealed store"
        ),
        "{}",
        out.stderr
    );
    let out = auto(&["status"]).ok();
    assert!(
        out.stdout.contains("secrets held by:      sealed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "sealed (auto: no session bus (DBUS_SESSION_BUS_ADDRESS is unset); the sealed store, with its key in kernel keyutils"
        ),
        "{}",
        out.stdout
    );
    let out = auto(&["doctor"]).ok();
    assert!(
        out.stdout
            .contains("backend       sealed (auto: no session bus"),
        "{}",
        out.stdout
    );
    assert_eq!(auto(&["token"]).ok().stdout, "AT-auto\n");
    let account = &env.accounts("8118")[0];
    assert!(!env.in_keychain(account), "no item in keyutils");
    assert!(
        env.dir().join("sealed").join(account).is_file(),
        "the profile is sealed in the store directory"
    );
    auto(&["logout", "--all"]).ok();
}

/// With the Secret Service answering, `auto` uses it.
#[test]
fn auto_uses_the_secret_service_when_it_answers() {
    needs!(Kind::SecretService);
    let env = Env::new("auto-ss", Kind::SecretService);
    let mut c = env.bare();
    c.arg("import");
    run_with_stdin(&mut c, valid_token("AT-as", "RT-as", "8228").as_bytes()).ok();
    let v = run(env.bare().args(["status", "--json"])).ok().json();
    assert_eq!(v["secrets_backend"], "secret-service");
    assert_eq!(v["backend"]["requested"], "auto");
    assert_eq!(
        v["backend"]["reason"],
        "auto: the Secret Service answered on the session bus"
    );
    assert!(env.in_keychain(&env.accounts("8228")[0]));
    env.run(&["logout", "--all"]).ok();
    env.assert_namespace_empty(&[]);
}

/// `doctor` on profiles whose secrets are in another backend than the one
/// in use names that backend in its hint, instead of `doctor --fix` (which
/// cannot help), and exits 5 as `token` does; one whose backend cannot be
/// opened lists that as a problem and names where the secrets are.
#[test]
fn doctor_names_the_backend_that_holds_the_secrets() {
    needs!(Kind::SecretService, Kind::Keyutils);
    let env = Env::new("doctor-other", Kind::SecretService);
    env.import(&valid_token("AT-doc", "RT-doc", "9119"), &[])
        .ok();
    // No session bus: auto opens the sealed store.
    let mut c = env.bare();
    c.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("RCTOKEN_KEY_FILE")
        .env_remove("CREDENTIALS_DIRECTORY")
        .arg("doctor");
    let out = run(&mut c).code(5);
    assert!(
        out.stderr.contains("--backend secret-service"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("doctor --fix"), "{}", out.stderr);
    // The Secret Service named explicitly but unreachable.
    let mut c = env.bare();
    c.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["--backend", "secret-service", "doctor"]);
    let out = run(&mut c).code(5);
    assert!(
        out.stdout
            .contains("problem       the keychain cannot be opened"),
        "{}",
        out.stdout
    );
    env.run(&["logout", "--all"]).ok();
}

/// Run `rctoken --backend secret-service ARGS` (stdin: `input`) against a
/// private gnome-keyring of its own: with no login keyring at all
/// (`locked: false`), or with one that is locked (`locked: true`; no
/// display, so the unlock prompt cannot be shown).
#[cfg(target_os = "linux")]
fn private_keyring(env: &Env, locked: bool, args: &[&str], input: &str) -> Run {
    let tmp = env.path("private-keyring");
    for d in ["data/keyrings", "run", "home", "bus"] {
        std::fs::create_dir_all(tmp.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    for d in ["run", "data/keyrings", "bus"] {
        std::fs::set_permissions(tmp.join(d), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let conf = std::fs::read_to_string("/usr/share/dbus-1/session.conf").expect("dbus config");
    let conf = conf
        .replace(
            "<listen>unix:tmpdir=/tmp</listen>",
            &format!("<listen>unix:dir={}</listen>", tmp.join("bus").display()),
        )
        .replace(
            "<includedir>session.d</includedir>",
            "<includedir>/usr/share/dbus-1/session.d</includedir>",
        );
    assert!(
        conf.contains("unix:dir="),
        "cannot point the bus at a private dir"
    );
    std::fs::write(tmp.join("session.conf"), conf).unwrap();
    let script = r#"
        ready() {
          for _ in $(seq 100); do
            dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
              org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
              grep -q 'boolean true' && return 0
            sleep 0.05
          done
          echo "the private gnome-keyring did not start" >&2; exit 125
        }
        if [ "$LOCKED" = 1 ]; then
          echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
          ready
          dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
            org.freedesktop.Secret.Service.Lock \
            array:objpath:/org/freedesktop/secrets/collection/login >/dev/null
        else
          gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1
          ready
        fi
        "$@"
    "#;
    let mut c = Command::new("dbus-run-session");
    c.arg(format!(
        "--config-file={}",
        tmp.join("session.conf").display()
    ))
    .args(["--", "sh", "-c", script, "sh"])
    .arg(crate::support::cli::bin())
    .args(["--app", &env.app, "--dir"])
    .arg(env.dir())
    .args(["--backend", "secret-service", "--keychain-timeout", "10"])
    .args(args)
    .env("LOCKED", if locked { "1" } else { "0" })
    .env("XDG_DATA_HOME", tmp.join("data"))
    .env("XDG_RUNTIME_DIR", tmp.join("run"))
    .env("HOME", tmp.join("home"))
    .env_remove("DBUS_SESSION_BUS_ADDRESS")
    .env_remove("DISPLAY")
    .env_remove("WAYLAND_DISPLAY");
    run_with_stdin(&mut c, input.as_bytes())
}

/// "SS error: result not returned from SS API" and "SS error: prompt
/// dismissed" are what the Secret Service says when there is no login
/// keyring and when it is locked: translated, with steps to take.
#[cfg(target_os = "linux")]
#[test]
fn secret_service_errors_say_what_is_wrong_with_the_keyring_and_what_to_do() {
    let env = Env::new("ss-jargon", Kind::SecretService);
    let json = valid_token("AT-j", "RT-j", "4114");
    for (locked, words) in [
        (
            false,
            "the Secret Service has no default keyring (the login keyring does not exist)",
        ),
        (true, "the login keyring is locked"),
    ] {
        let out = private_keyring(&env, locked, &["import"], &json);
        assert_eq!(out.code, 5, "locked {locked}: {out:#?}");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: ") || l.starts_with("hint: "))
            .collect();
        assert_eq!(lines.len(), 2, "{}", out.stderr);
        assert!(lines[0].contains(words), "locked {locked}: {}", lines[0]);
        assert!(!lines[0].contains("SS error"), "{}", lines[0]);
        assert!(
            lines[1].contains("unlock the login keyring")
                && lines[1].contains("create one")
                && lines[1].contains("--backend sealed"),
            "{}",
            lines[1]
        );
        assert!(
            !env.dir().join("profiles").exists()
                || std::fs::read_dir(env.dir().join("profiles"))
                    .unwrap()
                    .next()
                    .is_none(),
            "nothing saved"
        );
    }
}
