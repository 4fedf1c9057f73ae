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
    assert_eq!(
        ss(&["doctor", "--json"]).code(1).json()["profiles"][0]["secret"],
        "other-backend"
    );
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
    run_with_stdin(&mut c, json.as_bytes()).ok();
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
