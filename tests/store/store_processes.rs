//! Tests that need a second process: keyutils and the Secret Service shared
//! across processes (also from a fresh session keyring), automatic backend
//! selection with and without a session bus, listing without a keychain,
//! and the default store directory. Children re-run this test binary with
//! one test selected (see `support::child`); environment changes stay in them.

#![cfg(target_os = "linux")]

use std::process::Command;

use rctoken::{Backend, Error, SaveOptions, TokenStore};

use crate::ctx::Ctx;
use crate::support::backends::Kind;
use crate::support::{child, ids, keyutils, rerun, secret_service, tokens};

const DIR: &str = "RT_DIR";
const APP: &str = "RT_APP";
const EXPECT: &str = "RT_EXPECT";

fn open_child(backend: Backend) -> TokenStore {
    TokenStore::builder(&child::arg(APP))
        .dir(child::arg(DIR))
        .backend(backend)
        .open()
        .expect("child: open store")
}

fn kind_of(name: &str) -> Backend {
    match name {
        "keyutils" => Backend::Keyutils,
        "secret-service" => Backend::SecretService,
        other => panic!("child: unexpected backend {other}"),
    }
}

/// Child roles shared by the cross-process tests.
fn cross_process_child(role: &str) {
    let (backend, action) = role.split_once(':').expect("role backend:action");
    let store = open_child(kind_of(backend));
    match action {
        "read" => {
            let got = store.load(rctoken::Selector::Active).expect("child: load");
            assert_eq!(tokens::access(&got.token), child::arg(EXPECT));
            child::report("profile", &got.info.profile);
            child::report("pid", &std::process::id().to_string());
        }
        "write" => {
            let tok = tokens::with_refresh("child", &child::arg(EXPECT), "RT-child", 3600, 7200);
            let info = store
                .save(&tok, SaveOptions::new().switch(true))
                .expect("child: save");
            child::report("generation", info.generation());
        }
        other => panic!("child: unknown action {other}"),
    }
}

fn cross_process(kind: Kind, name: &str) {
    let test = test_name!(name);
    let t = Ctx::new(kind, name);
    let dir = t.dir().display().to_string();
    let (tok, s) = tokens::full("parent");
    t.store.save(&tok, SaveOptions::new()).expect("save");
    let env = [
        (DIR, dir.as_str()),
        (APP, t.app.as_str()),
        (EXPECT, s.access.as_str()),
    ];
    let role = format!("{}:read", kind.name());

    // Written here, read by another process.
    let out = child::run(test, &role, &env, &[]);
    assert_eq!(child::reported(&out, "profile"), "parent");
    assert_ne!(child::reported(&out, "pid"), std::process::id().to_string());

    // Read by a process in a brand-new anonymous session keyring.
    let mut cmd = Command::new("keyctl");
    cmd.args(["session", "-"])
        .arg(std::env::current_exe().expect("exe"));
    cmd.args(rerun::child_args(test))
        .env(child::ROLE_ENV, &role)
        .envs(env);
    let out = rerun::check(cmd.output().expect("keyctl session"));
    assert_eq!(child::reported(&out, "profile"), "parent");

    // Written by another process, read here.
    let fresh = ids::unique("AT-from-child");
    let env = [
        (DIR, dir.as_str()),
        (APP, t.app.as_str()),
        (EXPECT, fresh.as_str()),
    ];
    let out = child::run(test, &format!("{}:write", kind.name()), &env, &[]);
    let generation = child::reported(&out, "generation");
    let got = t
        .store
        .load(rctoken::Selector::Active)
        .expect("load what the child wrote");
    assert_eq!(tokens::access(&got.token), fresh);
    assert_eq!(got.info.generation(), generation);
    assert_eq!(t.accounts().len(), 2);
    t.finish();
}

#[test]
fn keyutils_is_shared_across_processes() {
    if let Some(role) = child::role() {
        return cross_process_child(&role);
    }
    needs!(Kind::Keyutils);
    cross_process(Kind::Keyutils, "keyutils_is_shared_across_processes");
}

#[test]
fn secret_service_is_shared_across_processes() {
    if let Some(role) = child::role() {
        return cross_process_child(&role);
    }
    needs!(Kind::SecretService);
    cross_process(
        Kind::SecretService,
        "secret_service_is_shared_across_processes",
    );
}

fn auto_child() {
    let store = open_child(Backend::Auto);
    let (name, reason) = store.backend().expect("child: auto backend");
    child::report("name", &name);
    child::report("reason", &reason);
    let tok = tokens::minimal(Some("auto"), "AT-auto", 60);
    store.save(&tok, SaveOptions::new()).expect("child: save");
    let got = store.load("auto").expect("child: load");
    assert_eq!(tokens::access(&got.token), "AT-auto");
    assert_eq!(got.info.secrets_backend(), name);
    store.remove_all().expect("child: remove_all");
}

fn auto_env(test: &str) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    (tmp, ids::app_id(test, "auto"))
}

#[test]
fn auto_without_session_bus_picks_the_sealed_store_and_says_why() {
    if child::role().is_some() {
        return auto_child();
    }
    needs!(Kind::Keyutils);
    let test = test_name!("auto_without_session_bus_picks_the_sealed_store_and_says_why");
    let (tmp, app) = auto_env(test);
    let _purge = keyutils::Purge(app.clone());
    let dir = tmp.path().join("s").display().to_string();
    let env = [(DIR, dir.as_str()), (APP, app.as_str())];
    let out = child::run(
        test,
        "auto",
        &env,
        &[
            "DBUS_SESSION_BUS_ADDRESS",
            "RCTOKEN_KEY_FILE",
            "CREDENTIALS_DIRECTORY",
        ],
    );
    assert_eq!(child::reported(&out, "name"), "sealed");
    let reason = child::reported(&out, "reason");
    assert!(
        reason.contains("DBUS_SESSION_BUS_ADDRESS is unset"),
        "{reason}"
    );
    assert!(
        reason.contains("keyutils") && reason.contains("reboot"),
        "says the key is in keyutils, cleared at reboot: {reason}"
    );
}

#[test]
fn auto_with_a_dead_session_bus_picks_the_sealed_store_and_says_why() {
    if child::role().is_some() {
        return auto_child();
    }
    needs!(Kind::Keyutils);
    let test = test_name!("auto_with_a_dead_session_bus_picks_the_sealed_store_and_says_why");
    let (tmp, app) = auto_env(test);
    let _purge = keyutils::Purge(app.clone());
    let dir = tmp.path().join("s").display().to_string();
    let bus = format!("unix:path={}/no-such-bus", tmp.path().display());
    let env = [
        (DIR, dir.as_str()),
        (APP, app.as_str()),
        ("DBUS_SESSION_BUS_ADDRESS", bus.as_str()),
    ];
    let out = child::run(
        test,
        "auto",
        &env,
        &["RCTOKEN_KEY_FILE", "CREDENTIALS_DIRECTORY"],
    );
    assert_eq!(child::reported(&out, "name"), "sealed");
    let reason = child::reported(&out, "reason");
    assert!(reason.contains("did not answer"), "{reason}");
}

#[test]
fn auto_with_a_secret_service_picks_it() {
    needs!(Kind::SecretService);
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = ids::app_id("auto_with_a_secret_service_picks_it", "auto");
    let store = TokenStore::builder(&app)
        .dir(tmp.path())
        .open()
        .expect("open");
    assert_eq!(store.requested_backend(), "auto");
    let (name, reason) = store.backend().expect("backend");
    assert_eq!(name, "secret-service");
    assert!(reason.contains("Secret Service"), "{reason}");
    let info = store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    assert_eq!(info.secrets_backend(), "secret-service");
    assert_eq!(secret_service::accounts(&format!("rctoken:{app}")).len(), 1);
    store.remove_all().expect("remove_all");
}

fn no_keychain_child() {
    let store = open_child(Backend::SecretService);
    let list = store.list().expect("child: list without a keychain");
    child::report("count", &list.len().to_string());
    let active = store
        .info(rctoken::Selector::Active)
        .expect("child: info without a keychain");
    child::report("active", &active.profile);
    assert_eq!(store.resolve(Some("second")).expect("child: resolve"), "2");
    store
        .switch("second")
        .expect("child: switch without a keychain");
    store
        .set_label("1", Some("first"))
        .expect("child: set_label without a keychain");
    // The keychain really is unreachable: these need it and fail cleanly.
    match store.load(rctoken::Selector::Active) {
        Err(e @ Error::KeychainUnavailable { .. }) => {
            child::report("load", "unavailable");
            assert_eq!(e.kind(), rctoken::ErrorKind::RetryLater);
        }
        other => panic!("child: expected KeychainUnavailable, got {other:?}"),
    }
    assert!(matches!(
        store.backend(),
        Err(Error::KeychainUnavailable { .. })
    ));
}

#[test]
fn listing_never_touches_the_keychain() {
    if child::role().is_some() {
        return no_keychain_child();
    }
    needs!(Kind::SecretService);
    let test = test_name!("listing_never_touches_the_keychain");
    let t = Ctx::new(Kind::SecretService, "listing_never_touches_the_keychain");
    t.store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save 1");
    t.store
        .save(&tokens::full("2").0, SaveOptions::new().label("second"))
        .expect("save 2");
    let dir = t.dir().display().to_string();
    let bus = format!("unix:path={}/no-such-bus", t.tmp.path().display());
    for (env_bus, remove) in [
        (Some(bus.as_str()), vec![]),
        (None, vec!["DBUS_SESSION_BUS_ADDRESS"]),
    ] {
        let mut env = vec![(DIR, dir.as_str()), (APP, t.app.as_str())];
        if let Some(b) = env_bus {
            env.push(("DBUS_SESSION_BUS_ADDRESS", b));
        }
        let out = child::run(test, "nokeychain", &env, &remove);
        assert_eq!(child::reported(&out, "count"), "2");
        assert_eq!(child::reported(&out, "active"), "1");
        assert_eq!(child::reported(&out, "load"), "unavailable");
        assert_eq!(
            t.store.resolve(rctoken::Selector::Active).expect("active"),
            "2",
            "the child switched"
        );
        t.store.switch("1").expect("switch back");
    }
    assert_eq!(t.store.info(Some("first")).expect("label").profile, "1");
    t.finish();
}

fn default_dir_child() {
    let app = child::arg(APP);
    let store = TokenStore::open(&app).expect("child: open with defaults");
    child::report("dir", &store.dir().display().to_string());
    child::report("requested", store.requested_backend());
    let upper = format!("{}-Upper", app);
    let lower = upper.to_lowercase();
    match (TokenStore::open(&upper), TokenStore::open(&lower)) {
        (Ok(a), Ok(b)) => child::report(
            "case",
            if a.dir() == b.dir() {
                "shared"
            } else {
                "distinct"
            },
        ),
        _ => child::report("case", "refused"),
    }
}

#[test]
fn default_directory_is_the_platform_data_dir() {
    if child::role().is_some() {
        return default_dir_child();
    }
    let test = test_name!("default_directory_is_the_platform_data_dir");
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = ids::app_id("defaultdir", "auto").to_lowercase();
    let data = tmp.path().join("data").display().to_string();
    let env = [
        ("XDG_DATA_HOME", data.as_str()),
        ("HOME", tmp.path().to_str().expect("utf-8")),
        (APP, app.as_str()),
    ];
    let out = child::run(test, "defaultdir", &env, &[]);
    assert_eq!(child::reported(&out, "dir"), format!("{data}/{app}"));
    assert_eq!(child::reported(&out, "requested"), "auto");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(format!("{data}/{app}"))
            .expect("created")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn app_ids_differing_in_case_do_not_share_a_metadata_file() {
    if child::role().is_some() {
        return default_dir_child();
    }
    let test = test_name!("app_ids_differing_in_case_do_not_share_a_metadata_file");
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = ids::app_id("casefold", "auto").to_lowercase();
    let data = tmp.path().join("data").display().to_string();
    let env = [
        ("XDG_DATA_HOME", data.as_str()),
        ("HOME", tmp.path().to_str().expect("utf-8")),
        (APP, app.as_str()),
    ];
    let out = child::run(test, "defaultdir", &env, &[]);
    // Either the ids are refused, or each gets its own directory.
    assert_ne!(child::reported(&out, "case"), "shared");
}
