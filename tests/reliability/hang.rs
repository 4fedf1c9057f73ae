//! A keychain that does not answer (issue 4 §5): a private session bus on
//! which `org.freedesktop.secrets` is owned by a process that reads every
//! call and never replies (.ci/hanging-secret-service.py). A store with
//! a 2 s keychain timeout must fail a save and a load with
//! `KeychainUnavailable` (CLI exit 5) instead of hanging, leave the metadata
//! alone, and keep `list`/`info` working; `Backend::Auto` must give up on
//! the Secret Service after the timeout and fall back to keyutils, saying
//! why. The store runs in a child process because the bus address is
//! process-global environment.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rctoken::{Backend, Error, SaveOptions, TokenStore};

use crate::rel::{KillOnDrop, Lines, cleanup, open, variant, wait_with_limit};
use crate::support::backends::{self, Kind};
use crate::support::child::{self, arg as env, role};
use crate::support::tagged::{loaded_tag, tagged};
use crate::support::{ids, keyutils};

const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// "It returned at all": two timed-out calls plus start-up, with a wide
/// margin; the default 30 s timeout would blow it.
const CHILD_LIMIT: Duration = Duration::from_secs(20);

/// A session bus whose Secret Service never answers. Kills both daemons on
/// drop, also when the test fails.
struct HangingBus {
    // Dropped in this order: the fake service, then the bus.
    _service: KillOnDrop,
    _bus: KillOnDrop,
    address: String,
    // Last: the bus's socket lives here, not in /tmp, so a killed bus
    // leaves nothing behind.
    _socket_dir: tempfile::TempDir,
}

fn hanging_bus() -> HangingBus {
    let socket_dir = tempfile::tempdir().expect("tempdir for the bus socket");
    let mut bus = KillOnDrop(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!(
                "--address=unix:dir={}",
                socket_dir.path().display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon (apt: dbus)"),
    );
    let address = Lines::new(&mut bus.0).next_line(Duration::from_secs(30));
    assert!(address.contains('='), "bus address: {address:?}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/hanging-secret-service.py");
    let mut service = KillOnDrop(
        Command::new("python3")
            .arg(&script)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the hanging Secret Service"),
    );
    Lines::new(&mut service.0).wait_for("READY", Duration::from_secs(30));
    HangingBus {
        _service: service,
        _bus: bus,
        address,
        _socket_dir: socket_dir,
    }
}

fn child_store(backend: Backend) -> TokenStore {
    TokenStore::builder(&env("REL_APP"))
        .dir(env("REL_DIR"))
        .backend(backend)
        .keychain_timeout(KEYCHAIN_TIMEOUT)
        .open()
        .expect("open")
}

fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => variant(e),
    }
}

#[test]
#[ignore = "child process of hang tests"]
fn hanging_secret_service_child() {
    if role().as_deref() != Some("hang-ss") {
        return;
    }
    let store = TokenStore::builder(&env("REL_APP"))
        .dir(env("REL_DIR"))
        .backend(Backend::SecretService)
        .keychain_timeout(KEYCHAIN_TIMEOUT)
        .wait_notice(Duration::from_millis(500), |w| {
            child::report("notice", &w.to_string())
        })
        .open()
        .expect("open");
    let t = Instant::now();
    let r = store.save(&tagged("new", 3600), SaveOptions::new().profile("p"));
    child::report("save", &format!("{} after {:?}", outcome(&r), t.elapsed()));
    let t = Instant::now();
    let r = store.load("pre");
    child::report("load", &format!("{} after {:?}", outcome(&r), t.elapsed()));
    let listed: Vec<String> = store
        .list()
        .expect("list needs no keychain")
        .into_iter()
        .map(|p| p.profile)
        .collect();
    child::report("list", &listed.join(","));
    child::report("info", &outcome(&store.info(Some("pre"))));
    child::report("done", "");
}

#[test]
#[ignore = "child process of hang tests"]
fn hanging_auto_child() {
    if role().as_deref() != Some("hang-auto") {
        return;
    }
    let store = child_store(Backend::Auto);
    let (name, reason) = store.backend().expect("auto falls back");
    child::report("backend", &name);
    child::report("reason", &reason);
    store
        .save(&tagged("auto", 3600), SaveOptions::new().profile("p"))
        .expect("save on the fallback");
    child::report("tag", &loaded_tag(&store.load("p").expect("load")));
    store.remove_all().expect("remove_all");
    child::report("done", "");
}

fn run_child(test: &str, role: &str, bus: &HangingBus, app: &str, dir: &Path) -> String {
    let mut cmd = child::command(test, role);
    cmd.env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("REL_APP", app)
        .env("REL_DIR", dir)
        .stdout(Stdio::piped());
    let (status, out) = wait_with_limit(cmd.spawn().expect("spawn"), CHILD_LIMIT);
    assert!(status.success(), "child failed ({status}): {out}");
    assert!(child::reports(&out, "done").next().is_some(), "{out}");
    out
}

fn one<'a>(out: &'a str, key: &str) -> &'a str {
    child::reports(out, key)
        .next()
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn a_secret_service_that_never_answers_times_out_with_keychain_unavailable() {
    // A profile saved while the keychain still answered: on the real
    // Secret Service (.ci/with-keyring.sh), or on keyutils if the run
    // declares the Secret Service absent.
    let backend_name = if backends::declared_absent(Kind::SecretService) {
        needs!(Kind::Keyutils);
        "keyutils"
    } else {
        backends::require(Kind::SecretService);
        "secret-service"
    };
    let _heavy = crate::heavy();
    let app = ids::app_id("hang-ss", backend_name);
    let _purge = keyutils::Purge(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path(), &app, backend_name);
    store
        .save(&tagged("pre", 3600), SaveOptions::new().profile("pre"))
        .expect("save before the stall");
    let before = std::fs::read(store.layout().index()).expect("metadata");

    let bus = hanging_bus();
    let out = run_child(
        test_name!("hanging_secret_service_child"),
        "hang-ss",
        &bus,
        &app,
        tmp.path(),
    );
    drop(bus);
    eprintln!("{out}");
    assert!(
        one(&out, "save").starts_with("KeychainUnavailable "),
        "{out}"
    );
    assert!(
        one(&out, "load").starts_with("KeychainUnavailable "),
        "{out}"
    );
    assert_eq!(one(&out, "list"), "pre");
    assert_eq!(one(&out, "info"), "ok");
    // Each of the two waits was told once, half a second in, with its limit.
    let notices: Vec<&str> = child::reports(&out, "notice").collect();
    assert_eq!(
        notices, ["waiting for the secret-service keychain to answer, for at most 2 s"; 2],
        "{out}"
    );
    // The failed save changed nothing.
    assert_eq!(
        std::fs::read(store.layout().index()).expect("metadata"),
        before
    );
    assert_eq!(loaded_tag(&store.load("pre").expect("load")), "pre");
    cleanup(&store, &app, backend_name);
}

#[test]
fn auto_falls_back_to_the_sealed_store_when_the_secret_service_never_answers() {
    needs!(Kind::Keyutils);
    let _heavy = crate::heavy();
    let app = ids::app_id("hang-auto", "auto");
    let _purge = keyutils::Purge(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let bus = hanging_bus();
    let out = run_child(
        test_name!("hanging_auto_child"),
        "hang-auto",
        &bus,
        &app,
        tmp.path(),
    );
    drop(bus);
    eprintln!("{out}");
    assert_eq!(one(&out, "backend"), "sealed");
    let reason = one(&out, "reason").to_lowercase();
    assert!(
        reason.contains("secret service") && reason.contains("keyutils"),
        "the reason names both: {reason}"
    );
    assert!(
        reason.contains("did not answer") || reason.contains("no answer"),
        "the reason says the Secret Service did not answer: {reason}"
    );
    assert_eq!(one(&out, "tag"), "auto");
    assert_eq!(keyutils::items_settle(&app, 0), vec![], "keys left");
}
