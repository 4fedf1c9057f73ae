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

mod reliability_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rctoken::{Backend, Error, SaveOptions, TokenStore};
use reliability_common::*;

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
        Err(e) => format!("{} {}", variant(e), exit_code(e)),
    }
}

#[test]
#[ignore = "child process of hang tests"]
fn hanging_secret_service_child() {
    if role().as_deref() != Some("hang-ss") {
        return;
    }
    let store = child_store(Backend::SecretService);
    let t = Instant::now();
    let r = store.save(&tagged("new", 3600), SaveOptions::new().profile("p"));
    println!("REL:SAVE {} after {:?}", outcome(&r), t.elapsed());
    let t = Instant::now();
    let r = store.load("pre");
    println!("REL:LOAD {} after {:?}", outcome(&r), t.elapsed());
    let listed: Vec<String> = store
        .list()
        .expect("list needs no keychain")
        .into_iter()
        .map(|p| p.profile)
        .collect();
    println!("REL:LIST {}", listed.join(","));
    println!("REL:INFO {}", outcome(&store.info(Some("pre"))));
    println!("REL:DONE");
}

#[test]
#[ignore = "child process of hang tests"]
fn hanging_auto_child() {
    if role().as_deref() != Some("hang-auto") {
        return;
    }
    let store = child_store(Backend::Auto);
    let (name, reason) = store.backend().expect("auto falls back");
    println!("REL:BACKEND {name}");
    println!("REL:REASON {reason}");
    store
        .save(&tagged("auto", 3600), SaveOptions::new().profile("p"))
        .expect("save on the fallback");
    println!("REL:TAG {}", loaded_tag(&store.load("p").expect("load")));
    store.remove_all().expect("remove_all");
    println!("REL:DONE");
}

fn run_child(test: &str, role: &str, bus: &HangingBus, app: &str, dir: &Path) -> String {
    let mut cmd = child(test, role);
    cmd.env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("REL_APP", app)
        .env("REL_DIR", dir)
        .stdout(Stdio::piped());
    let (status, out) = wait_with_limit(cmd.spawn().expect("spawn"), CHILD_LIMIT);
    assert!(status.success(), "child failed ({status}): {out}");
    assert!(out.contains("REL:DONE"), "{out}");
    out
}

fn one<'a>(out: &'a str, prefix: &'a str) -> &'a str {
    reports(out, prefix)
        .next()
        .unwrap_or_else(|| panic!("no {prefix} in {out}"))
}

#[test]
fn a_secret_service_that_never_answers_times_out_with_keychain_unavailable() {
    let app = unique_app("hang-ss");
    let _purge = PurgeKeyutils(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    // A profile saved while the keychain still answered (the real Secret
    // Service under .ci/with-keyring.sh, else keyutils).
    let backend_name = if secret_service_configured() {
        "secret-service"
    } else {
        "keyutils"
    };
    let store = open(tmp.path(), &app, backend_name);
    store
        .save(&tagged("pre", 3600), SaveOptions::new().profile("pre"))
        .expect("save before the stall");
    let before = std::fs::read(store.layout().index()).expect("metadata");

    let bus = hanging_bus();
    let out = run_child(
        "hanging_secret_service_child",
        "hang-ss",
        &bus,
        &app,
        tmp.path(),
    );
    drop(bus);
    eprintln!("{out}");
    assert!(
        one(&out, "REL:SAVE ").starts_with("KeychainUnavailable 5 "),
        "{out}"
    );
    assert!(
        one(&out, "REL:LOAD ").starts_with("KeychainUnavailable 5 "),
        "{out}"
    );
    assert_eq!(one(&out, "REL:LIST "), "pre");
    assert_eq!(one(&out, "REL:INFO "), "ok");
    // The failed save changed nothing.
    assert_eq!(
        std::fs::read(store.layout().index()).expect("metadata"),
        before
    );
    assert_eq!(loaded_tag(&store.load("pre").expect("load")), "pre");
    cleanup(&store, &app, backend_name);
}

#[test]
fn auto_falls_back_to_keyutils_when_the_secret_service_never_answers() {
    let app = unique_app("hang-auto");
    let _purge = PurgeKeyutils(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let bus = hanging_bus();
    let out = run_child("hanging_auto_child", "hang-auto", &bus, &app, tmp.path());
    drop(bus);
    eprintln!("{out}");
    assert_eq!(one(&out, "REL:BACKEND "), "keyutils");
    let reason = one(&out, "REL:REASON ").to_lowercase();
    assert!(
        reason.contains("secret service") && reason.contains("keyutils"),
        "the reason names both: {reason}"
    );
    assert!(
        reason.contains("did not answer") || reason.contains("no answer"),
        "the reason says the Secret Service did not answer: {reason}"
    );
    assert_eq!(one(&out, "REL:TAG "), "auto");
    assert_eq!(keyutils_count_settles(&app, 0), vec![], "keys left");
}
