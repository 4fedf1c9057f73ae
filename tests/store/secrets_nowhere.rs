//! No secret anywhere it does not belong: not in any file of the store
//! directory (metadata, locks, refresh locks, moved-aside copies, temp files),
//! not in log output at any level (`log` records of rctoken and keyring-core
//! and `tracing` events of zbus, all captured at TRACE), not in the `Debug`
//! output of any public type, and not in error messages (Display, hint,
//! Debug and the whole source chain), including errors produced from
//! secret-bearing input. Every check looks for the secrets raw, as hex and
//! as a Rust byte-list (`[78, 79, …]`), the forms a careless `{:?}` of bytes
//! would take.
//!
//! Run under `.ci/with-keyring.sh`: every operation runs on memory,
//! keyutils and the Secret Service.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::Duration;

#[cfg(target_os = "linux")]
use keyring_core::api::CredentialStoreApi;
use rctoken::testing::ManualClock;
use rctoken::{Backend, Error, MemoryKeychain, SaveOptions, StoreBuilder, TokenInfo, TokenStore};
use secrecy::{ExposeSecret, SecretString};

use crate::files::files_under;
use crate::support::backends::{self, Kind};
use crate::support::{keyutils, rerun};

const ACCESS: &str = "NOWHEREACCESS7f3a9c";
const REFRESH: &str = "NOWHEREREFRESH51b2e8";
const ID: &str = "NOWHEREIDTOKEN0d4c61";
const SECRETS: [&str; 3] = [ACCESS, REFRESH, ID];

fn token_json(access: &str, refresh: &str) -> String {
    format!(
        r#"{{"access_token":"{access}","token_type":"bearer","expires_in":3600,
        "refresh_token":"{refresh}","refresh_token_expires_in":604800,"id_token":"{ID}",
        "scope":"ReadAccounts Calls","owner_id":"256440016","endpoint_id":"ep-9",
        "session_id":"sess-9","session_expires_in":86400,"session_idle_timeout":900}}"#
    )
}

fn token() -> TokenInfo {
    TokenInfo::from_json(token_json(ACCESS, REFRESH).as_bytes()).expect("valid token")
}

/// The forms in which a secret could show up in text.
fn encodings(secret: &str) -> Vec<String> {
    let b = secret.as_bytes();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let hex_upper = hex.to_uppercase();
    let list = format!("{}, {}, {}, {}", b[0], b[1], b[2], b[3]);
    // The distinctive tail alone, in case a prefix was cut off.
    let tail = secret[secret.len() - 6..].to_string();
    vec![secret.to_string(), hex, hex_upper, list, tail]
}

/// Panic with context if `text` (from `what`) contains any secret in any form.
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        for form in encodings(secret) {
            assert!(
                !text.contains(&form),
                "{what} contains a secret (as `{form}`):\n{text}"
            );
        }
    }
}

fn assert_clean_bytes(what: &str, bytes: &[u8]) {
    assert_clean(what, &String::from_utf8_lossy(bytes));
}

/// Every text an error yields: Display, hint, Debug, and each source.
fn error_text(e: &Error) -> String {
    let mut s = format!("{e}\n{:?}\n{e:?}\n{e:#?}", e.kind());
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!("\ncaused by: {inner} / {inner:?}"));
        src = inner.source();
    }
    s
}

// ---------------------------------------------------------------------------
// Log capture: `log` records go through tracing-log into one TRACE subscriber
// that also receives zbus's `tracing` events.
// ---------------------------------------------------------------------------

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_ansi(false)
            .with_writer(|| Capture)
            .init();
    });
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn builder(dir: &Path, backend: Backend, tag: &str) -> StoreBuilder {
    TokenStore::builder(&format!("nowhere-{tag}-{}", std::process::id()))
        .dir(dir)
        .backend(backend)
        .keychain_timeout(Duration::from_secs(20))
}

fn assert_dir_clean(dir: &Path) -> usize {
    let files = files_under(dir);
    for f in &files {
        let bytes = std::fs::read(f).expect("readable file");
        assert_clean_bytes(&format!("file {}", f.display()), &bytes);
    }
    files.len()
}

/// One saving test at a time, as ever. (The failpoint is process-global: a
/// save on another test thread would consume it, so
/// `no_secret_after_a_failed_metadata_rename` runs in a process of its own.)
fn saves_serial() -> std::sync::MutexGuard<'static, ()> {
    static SAVES: Mutex<()> = Mutex::new(());
    SAVES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Memory, keyutils and the Secret Service; a real backend the run
/// declares absent is left out (saying so), one that cannot be reached
/// fails the test.
fn backends() -> Vec<(&'static str, Backend)> {
    let mut out = vec![("memory", Backend::Memory(MemoryKeychain::new()))];
    for kind in [Kind::Keyutils, Kind::SecretService] {
        if backends::available(kind) {
            out.push((kind.name(), kind.backend(&MemoryKeychain::new())));
        }
    }
    out
}

/// Every operation, including failing ones, on one backend. Returns the
/// texts it produced (Debug of results, error texts) for the caller to grep.
fn exercise(dir: &Path, name: &str, backend: Backend) -> Vec<(String, String)> {
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut note = |what: &str, text: String| texts.push((format!("[{name}] {what}"), text));
    let clock = std::sync::Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let store = builder(dir, backend.clone(), name)
        .clock(clock.clone())
        .open()
        .expect("opens");
    note("store Debug", format!("{store:?} {store:#?}"));
    note("backend Debug", format!("{backend:?}"));

    let t = token();
    note("TokenInfo Debug", format!("{t:?} {t:#?}"));
    let options = SaveOptions::new().label("work").switch(true);
    note("SaveOptions Debug", format!("{options:?}"));
    let info = store.save(&t, options).expect("saves");
    note("ProfileInfo Debug", format!("{info:?} {info:#?}"));
    note("ProfileInfo generation", info.generation().to_string());

    // A second profile and a re-save (new generation, old items deleted).
    let mut other = t.clone();
    other.owner_id = Some("11111".into());
    store
        .save(&other, SaveOptions::new().label("home"))
        .expect("saves");
    store.save(&t, SaveOptions::new()).expect("re-saves");

    let loaded = store.load("work").expect("loads");
    assert_eq!(loaded.token.access_token.expose_secret(), ACCESS);
    note("StoredToken Debug", format!("{loaded:?} {loaded:#?}"));
    note("list Debug", format!("{:?}", store.list().expect("lists")));
    note(
        "info Debug",
        format!("{:?}", store.info(rctoken::Selector::Active).expect("info")),
    );
    store.switch("home").expect("switches");
    store.set_label("home", Some("house")).expect("labels");
    note(
        "backend()",
        format!("{:?}", store.backend().expect("backend")),
    );

    // Refresh: once through the fn, once failing with the caller's error.
    clock.advance(Duration::from_secs(3600));
    let refreshed = store
        .refresh(Some("work"), Duration::from_secs(60), |rt| {
            assert_eq!(rt.expose_secret(), REFRESH);
            TokenInfo::from_json(token_json(ACCESS, REFRESH).as_bytes())
        })
        .expect("refreshes");
    note("refreshed Debug", format!("{refreshed:?}"));
    clock.advance(Duration::from_secs(3600));
    let e = store
        .refresh(Some("work"), Duration::from_secs(60), |_rt| {
            Err::<TokenInfo, _>(std::io::Error::other("the server said invalid_grant"))
        })
        .expect_err("refresh fn fails");
    assert!(matches!(e, Error::RefreshFailed { .. }), "{e:?}");
    note("RefreshFailed", error_text(&e));
    // A fn that returns a token whose TTL is out of range.
    let e = store
        .refresh(Some("work"), Duration::from_secs(60), |_rt| {
            let mut t = token();
            t.expires_in = i64::MAX;
            Ok::<_, std::io::Error>(t)
        })
        .expect_err("out of range TTL");
    note("refresh out of range", error_text(&e));

    let report = store.verify().expect("verifies");
    note("verify Report", format!("{report:?}"));
    for p in &report.problems {
        note("Problem", format!("{p} {p:?}"));
    }

    // Errors from the store itself.
    for (what, e) in [
        ("NoSuchProfile", store.load("nobody").err()),
        (
            "InvalidName",
            store
                .save(&t, SaveOptions::new().profile("bad\nname"))
                .err(),
        ),
        (
            "label taken",
            store.save(&t, SaveOptions::new().label("house")).err(),
        ),
        (
            "MissingProfileKey",
            store
                .save(
                    &TokenInfo::new(SecretString::from(ACCESS), 60, "s"),
                    SaveOptions::new(),
                )
                .err(),
        ),
    ] {
        let e = e.unwrap_or_else(|| panic!("{what} should fail"));
        note(what, error_text(&e));
    }

    // Corrupt metadata: the error, verify, then repair moves it aside.
    let good = std::fs::read(store.layout().index()).expect("metadata");
    std::fs::write(store.layout().index(), &good[..good.len() / 2]).expect("truncates");
    note(
        "CorruptMetadata",
        error_text(&store.load("work").expect_err("corrupt")),
    );
    let repaired = store.repair().expect("repairs");
    note("repair Report", format!("{repaired:?}"));
    assert!(repaired.is_clean(), "{repaired:?}");
    assert!(
        files_under(dir)
            .iter()
            .any(|p| p.to_string_lossy().contains(".corrupt-")),
        "the corrupt copy is kept"
    );

    // A failed metadata rename (an injected fault) has a test of its own,
    // `no_secret_after_a_failed_metadata_rename`: it needs the `failpoints`
    // feature, and this test must also build and run without it.

    store.remove("256440016").expect("removes");
    note(
        "after remove",
        format!("{:?}", store.list().expect("lists")),
    );
    texts
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Files, logs, Debug and errors after every operation on every backend.
#[test]
fn no_secret_in_files_logs_debug_or_errors() {
    let _serial = saves_serial();
    capture_logs();
    for (name, backend) in backends() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let texts = exercise(&dir, name, backend.clone());
        for (what, text) in &texts {
            assert_clean(what, text);
        }
        let n = assert_dir_clean(&dir);
        assert!(
            n >= 4,
            "metadata, lock, refresh locks and the moved-aside copy: {n}"
        );
        let store = builder(&dir, backend, name).open().expect("opens");
        store.remove_all().expect("cleans up");
    }
    let logs = logs();
    // The capture works: rctoken's own debug lines and zbus's events are in it.
    assert!(logs.contains("saved profile"), "rctoken log lines captured");
    if Kind::SecretService.exists_here() && !backends::declared_absent(Kind::SecretService) {
        assert!(logs.contains("zbus"), "zbus tracing events captured");
    }
    assert_clean("captured logs", &logs);
}

/// A save whose metadata rename fails (an injected fault, feature
/// `failpoints`), on every backend: the error holds no secret, and neither
/// do the files left behind, where the temp file must not survive.
#[cfg(feature = "failpoints")]
#[test]
fn no_secret_after_a_failed_metadata_rename() {
    use rctoken::testing::failpoint::{self, Point};
    if rerun::alone(test_name!("no_secret_after_a_failed_metadata_rename")) {
        return;
    }
    let _serial = saves_serial();
    capture_logs();
    for (name, backend) in backends() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let store = builder(&dir, backend, name).open().expect("opens");
        let t = token();
        store.save(&t, SaveOptions::new()).expect("saves");
        failpoint::clear();
        failpoint::fail_next(Point::MetadataRename);
        let e = store
            .save(&t, SaveOptions::new())
            .expect_err("injected failure");
        failpoint::clear();
        assert_clean(&format!("[{name}] failed save"), &error_text(&e));
        assert_dir_clean(&dir);
        let temps: Vec<PathBuf> = files_under(&dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(temps.is_empty(), "[{name}] temp files survived: {temps:?}");
        store.remove_all().expect("cleans up");
    }
    assert_clean("captured logs", &logs());
}

/// Token JSON that carries secrets next to a problem: the error names the
/// field and the problem, never a value.
#[test]
fn parse_errors_never_echo_secret_input() {
    let cases: Vec<(&str, String)> = vec![
        (
            "secret in a wrong-type field",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"bearer","expires_in":"{REFRESH}","scope":"s"}}"#
            ),
        ),
        (
            "secret as token_type",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"{REFRESH}","expires_in":1,"scope":"s"}}"#
            ),
        ),
        (
            "secret as a number-ish owner_id",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"bearer","expires_in":1,"scope":"s","owner_id":["{REFRESH}"]}}"#
            ),
        ),
        (
            "truncated inside a secret",
            format!(r#"{{"access_token":"{ACCESS}"#),
        ),
        (
            "bad escape inside a secret",
            format!(r#"{{"access_token":"{ACCESS}\q{REFRESH}","token_type":"bearer"}}"#),
        ),
        (
            "raw control character inside a secret",
            format!("{{\"access_token\":\"{ACCESS}\u{1}{REFRESH}\",\"token_type\":\"bearer\"}}"),
        ),
        (
            "escaped NUL inside a secret",
            format!(
                r#"{{"access_token":"{ACCESS}\u0000{REFRESH}","token_type":"bearer","expires_in":1,"scope":"s"}}"#
            ),
        ),
        (
            "secret as an object key after garbage",
            format!(r#"{{"{ACCESS}": 1, "{REFRESH}" 2}}"#),
        ),
        (
            "secret in a nested value",
            format!(
                r#"{{"access_token":{{"{ACCESS}":"{REFRESH}"}},"token_type":"bearer","expires_in":1,"scope":"s"}}"#
            ),
        ),
        (
            "trailing garbage after a secret",
            format!(
                r#"{{"access_token":"{ACCESS}","token_type":"bearer","expires_in":1,"scope":"s"}} {REFRESH}"#
            ),
        ),
        ("a secret instead of JSON", REFRESH.to_string()),
    ];
    for (what, json) in cases {
        let e = TokenInfo::from_json(json.as_bytes()).expect_err(what);
        assert!(matches!(e, Error::BadToken { .. }), "{what}: {e:?}");
        let text = error_text(&e);
        assert_clean(what, &text);
        assert_eq!(e.to_string().lines().count(), 1, "{what}: one line: {e}");
        // Also through serde's Deserialize impl.
        if let Err(e) = serde_json::from_str::<TokenInfo>(&json) {
            assert_clean(&format!("{what} (serde)"), &format!("{e} {e:?}"));
        }
    }
    // Non-UTF-8 bytes right after a secret.
    let mut bytes = format!(r#"{{"access_token":"{ACCESS}"#).into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\",\"token_type\":\"bearer\"}");
    let e = TokenInfo::from_json(&bytes).expect_err("not UTF-8");
    assert_clean("non-UTF-8", &error_text(&e));
}

/// A damaged keychain item that holds secret bytes: the CorruptSecret error
/// and the verify report say what is wrong, not what is there.
#[test]
fn corrupt_keychain_items_are_reported_without_content() {
    let _serial = saves_serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    // keyutils: overwrite the item with secret bytes in a broken frame.
    if backends::available(Kind::Keyutils) {
        let store = builder(tmp.path(), Backend::Keyutils, "corrupt-ku")
            .open()
            .expect("opens");
        let info = store.save(&token(), SaveOptions::new()).expect("saves");
        let description = format!(
            "rctoken:{}:{}.{}.0",
            store.app_id(),
            info.profile,
            info.generation()
        );
        let mut garbage = b"RCTI\x01".to_vec();
        garbage.extend_from_slice(&[0xff; 12]);
        garbage.extend_from_slice(format!("{ACCESS}{REFRESH}").as_bytes());
        keyutils::add(&description, &garbage);
        let e = store
            .load(rctoken::Selector::Active)
            .expect_err("corrupt item");
        assert!(matches!(e, Error::CorruptSecret { .. }), "{e:?}");
        assert_clean("keyutils CorruptSecret", &error_text(&e));
        let report = store.verify().expect("verifies");
        assert!(!report.is_clean());
        assert_clean("keyutils verify", &format!("{report:?}"));
        for p in &report.problems {
            assert_clean("keyutils problem", &p.to_string());
        }
        store.remove_all().expect("cleans up");
    }

    // Secret Service: overwrite with non-UTF-8 bytes around the secrets.
    #[cfg(target_os = "linux")]
    if backends::available(Kind::SecretService) {
        let store = builder(&tmp.path().join("ss"), Backend::SecretService, "corrupt-ss")
            .open()
            .expect("opens");
        let info = store.save(&token(), SaveOptions::new()).expect("saves");
        let ss = zbus_secret_service_keyring_store::Store::new().expect("secret service");
        let entry = ss
            .build(
                &format!("rctoken:{}", store.app_id()),
                &format!("{}.{}.0", info.profile, info.generation()),
                None,
            )
            .expect("entry");
        let mut garbage = ACCESS.as_bytes().to_vec();
        garbage.extend_from_slice(b"\xff\xfe");
        garbage.extend_from_slice(REFRESH.as_bytes());
        entry.set_secret(&garbage).expect("overwrites");
        let e = store
            .load(rctoken::Selector::Active)
            .expect_err("corrupt item");
        assert_clean("secret-service CorruptSecret", &error_text(&e));
        let report = store.verify().expect("verifies");
        assert!(!report.is_clean());
        assert_clean("secret-service verify", &format!("{report:?}"));
        store.remove_all().expect("cleans up");
    }

    // The Credential Manager: the credential overwritten from outside.
    #[cfg(windows)]
    if backends::available(Kind::WindowsCredentialManager) {
        let store = builder(
            &tmp.path().join("wcm"),
            Backend::WindowsCredentialManager,
            "corrupt-wcm",
        )
        .open()
        .expect("opens");
        let info = store.save(&token(), SaveOptions::new()).expect("saves");
        let mut garbage = ACCESS.as_bytes().to_vec();
        garbage.extend_from_slice(b"\xff\xfe");
        garbage.extend_from_slice(REFRESH.as_bytes());
        crate::support::credential_manager::set(
            &format!("rctoken:{}", store.app_id()),
            &format!("{}.{}.0", info.profile, info.generation()),
            &garbage,
        );
        let e = store
            .load(rctoken::Selector::Active)
            .expect_err("corrupt item");
        assert!(matches!(e, Error::CorruptSecret { .. }), "{e:?}");
        assert_clean("credential-manager CorruptSecret", &error_text(&e));
        let report = store.verify().expect("verifies");
        assert!(!report.is_clean());
        assert_clean("credential-manager verify", &format!("{report:?}"));
        store.remove_all().expect("cleans up");
    }
}

/// A metadata file that (by a user's mistake) contains a token: the
/// CorruptMetadata error names the file and the problem, not the content.
#[test]
fn metadata_errors_never_echo_file_content() {
    let _serial = saves_serial();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = builder(
        tmp.path(),
        Backend::Memory(MemoryKeychain::new()),
        "meta-echo",
    )
    .open()
    .expect("opens");
    let cases = [
        format!(r#"{{"format_version":1,"profiles":"{ACCESS}"}}"#),
        format!(r#"{{"format_version":1,"active":["{ACCESS}"]}}"#),
        format!(
            r#"{{"format_version":1,"profiles":{{"p":{{"scope":"{ACCESS}","token_type":"{REFRESH}"}}}}}}"#
        ),
        format!(r#"{{"format_version":1,"access_token":"{ACCESS}" "#),
        token_json(ACCESS, REFRESH),
    ];
    for (i, text) in cases.iter().enumerate() {
        std::fs::write(store.layout().index(), text).expect("writes");
        let e = store.list().expect_err("corrupt metadata");
        assert!(
            matches!(e, Error::CorruptMetadata { .. }),
            "case {i}: {e:?}"
        );
        assert_clean(&format!("metadata case {i}"), &error_text(&e));
        let report = store.verify().expect("verify reports, not fails");
        assert_clean(&format!("metadata case {i} verify"), &format!("{report:?}"));
    }
}
