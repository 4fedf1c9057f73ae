//! The sealed store on real files and real kernel keyutils, as the user
//! running the suite (CI: an unprivileged user with the default quotas):
//! round trips of any size, no plaintext in the store, one key for a store
//! that many processes open at once, a lost key, tampered and swapped
//! files, key files with loose modes, profiles left in plain keyutils by an
//! older rctoken, and keyutils blocked by a seccomp filter as in Docker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rctoken::{Backend, Error, KeySource, SaveOptions, Selector, TokenInfo, TokenStore};

use crate::support::backends::Kind;
use crate::support::keyutils;
use secrecy::ExposeSecret;

mod record;
mod rotate;
#[cfg(target_os = "linux")]
mod seccomp;

/// A fresh store directory and app id, and on drop: the store's keyutils
/// key and any keyutils items of the app removed, the directory deleted.
struct Fixture {
    tmp: tempfile::TempDir,
    app: String,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("rctoken-sealed-")
            .tempdir()
            .expect("temp dir");
        let app = format!("rcseal-{tag}-{}-{:x}", std::process::id(), nanos());
        Fixture { tmp, app }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("store")
    }

    fn store(&self, source: KeySource) -> TokenStore {
        self.store_with(Backend::Sealed(source))
    }

    fn store_with(&self, backend: Backend) -> TokenStore {
        TokenStore::builder(&self.app)
            .dir(self.dir())
            .backend(backend)
            .lock_timeout(Duration::from_secs(30))
            .open()
            .expect("open store")
    }

    /// A key file with `mode`, holding a fresh key.
    fn key_file(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.tmp.path().join(name);
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("random");
        write_mode(&path, base64(&key).as_bytes(), mode);
        path
    }

    /// The description of this store's key in keyutils, once it exists.
    fn key_description(&self) -> Option<String> {
        let id = std::fs::read_to_string(self.dir().join("sealed/.store-id")).ok()?;
        Some(format!(
            "{}{}",
            keyutils::sealing_keys(&self.app),
            id.trim()
        ))
    }

    /// Every live key in @u whose description starts with `prefix`.
    fn keys_with_prefix(prefix: &str) -> Vec<String> {
        keyutils::keys(prefix).into_iter().map(|k| k.id).collect()
    }

    fn app_keys(&self) -> Vec<String> {
        let mut keys = Self::keys_with_prefix(&keyutils::sealing_keys(&self.app));
        keys.extend(Self::keys_with_prefix(&keyutils::namespace(&self.app)));
        keys
    }

    /// Simulate a reboot for this store: its key is gone from keyutils.
    fn clear_key(&self) {
        keyutils::purge(&keyutils::sealing_keys(&self.app));
    }

    fn cli(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rctoken"));
        c.env("RCTOKEN_APP", &self.app)
            .env("RCTOKEN_DIR", self.dir())
            .env("RCTOKEN_BACKEND", "sealed")
            .env_remove("RCTOKEN_KEY_FILE")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        c
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        keyutils::purge(&keyutils::sealing_keys(&self.app));
        keyutils::purge(&keyutils::namespace(&self.app));
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Write `bytes` to `path`, then give it `mode` (Unix; elsewhere files
/// have no mode, and `mode` is ignored).
pub(crate) fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = mode;
}

fn base64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

/// A token whose three secrets are `size` characters each, tagged.
fn token(owner: &str, tag: &str, size: usize) -> TokenInfo {
    let secret = |kind: &str| {
        let mut s = format!("SEALTEST{kind}{tag}x");
        while s.len() < size {
            s.push_str(&format!("{:x}", s.len() * 2654435761 % 1_000_003));
        }
        s.truncate(size);
        s
    };
    TokenInfo::from_json(
        format!(
            r#"{{"access_token":"{}","token_type":"bearer","expires_in":3600,
                "refresh_token":"{}","refresh_token_expires_in":604800,
                "id_token":"{}","scope":"ReadAccounts","owner_id":"{owner}"}}"#,
            secret("A"),
            secret("R"),
            secret("I")
        )
        .as_bytes(),
    )
    .expect("token")
}

/// Every file under `dir`, recursively, with its bytes.
/// Every file under `dir`, recursively, with its bytes.
pub(crate) fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

fn assert_no_plaintext(dir: &Path, secrets: &[&str]) {
    for (path, bytes) in files_under(dir) {
        for s in secrets {
            // Any 24-byte run of a secret would be a leak.
            let needle = &s.as_bytes()[..24.min(s.len())];
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext of a secret",
                path.display()
            );
        }
    }
}

fn sealed_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("sealed"))
        .expect("sealed dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

fn run(mut c: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn rctoken");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn sixty_four_kib_tokens_round_trip_in_one_item_with_either_key_holder() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("big");
    let key_file = f.key_file("key", 0o600);
    for (source, owner) in [
        (KeySource::Keyutils, "1001"),
        (KeySource::File(key_file.clone()), "1002"),
    ] {
        // Each holder's key seals its own store directory.
        let sub = Fixture::new(owner);
        let store = sub.store(source);
        let tok = token(owner, owner, 64 * 1024);
        let info = store.save(&tok, SaveOptions::new()).expect("save 64 KiB");
        assert_eq!(info.secrets_backend(), "sealed");
        assert_eq!(info.keychain_items(), 1, "never split");
        let back = store.load(owner).expect("load");
        assert_eq!(
            back.token.access_token.expose_secret(),
            tok.access_token.expose_secret()
        );
        assert_eq!(
            back.token
                .id_token
                .as_ref()
                .map(|s| s.expose_secret().to_string()),
            tok.id_token.as_ref().map(|s| s.expose_secret().to_string())
        );
        assert_eq!(sealed_files(&sub.dir()).len(), 1);
        assert_no_plaintext(
            &sub.dir(),
            &[
                tok.access_token.expose_secret(),
                tok.refresh_token.as_ref().unwrap().expose_secret(),
            ],
        );
        let report = store.verify().expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
    }
    drop(f);
}

#[test]
fn the_store_never_holds_plaintext_through_save_refresh_and_remove() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("plain");
    let store = f.store(KeySource::Keyutils);
    let mut all: Vec<String> = Vec::new();
    for i in 0..5 {
        let t = token(&format!("50{i}"), &format!("p{i}"), 1300);
        all.push(t.access_token.expose_secret().to_string());
        all.push(
            t.refresh_token
                .as_ref()
                .unwrap()
                .expose_secret()
                .to_string(),
        );
        store.save(&t, SaveOptions::new()).expect("save");
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_no_plaintext(&f.dir(), &refs);
    }
    let mut expired = token("599", "exp", 1300);
    expired.expires_in = 0;
    store.save(&expired, SaveOptions::new()).expect("save");
    let fresh = token("599", "fresh", 1300);
    all.push(fresh.access_token.expose_secret().to_string());
    let got = store
        .refresh("599", Duration::from_secs(60), |_| {
            Ok::<_, std::io::Error>(fresh.clone())
        })
        .expect("refresh");
    assert_eq!(
        got.token.access_token.expose_secret(),
        fresh.access_token.expose_secret()
    );
    store.remove("500").expect("remove");
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_no_plaintext(&f.dir(), &refs);
    // One item per profile, the refresh's old generation and the removed
    // profile's file gone.
    assert_eq!(sealed_files(&f.dir()).len(), 5);
    assert!(store.verify().expect("verify").is_clean());
    // One keyutils key for the store, nothing else of the app.
    assert_eq!(f.app_keys().len(), 1, "{:?}", f.app_keys());
}

/// Many processes open the same fresh store at once, each importing its
/// own profile: they must share one key. `add_key` with an existing
/// description replaces the key, so a process that found no key and
/// created one after another process had already sealed its profile would
/// orphan that profile. A failpoint holds every process that found no key
/// at a barrier, then lets them create in a staggered order: with the key
/// lock only one process is ever there.
// Needs the failpoint at the key's creation (feature `failpoints`).
#[test]
#[cfg(feature = "failpoints")]
fn many_processes_opening_a_fresh_store_share_one_key() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("race");
    let n = 12;
    let barrier = f.tmp.path().join("barrier");
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut c = f.cli();
            c.env("RCTOKEN_TEST_KEY_CREATE_BARRIER", &barrier)
                .env("RCTOKEN_TEST_KEY_CREATE_DELAY_MS", ((n - i) * 15).to_string())
                .args(["import", "--profile", &format!("p{i}"), "--no-switch"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().expect("spawn");
            let json = format!(
                r#"{{"access_token":"race-access-{i}","token_type":"bearer","expires_in":3600,"scope":"x"}}"#
            );
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(json.as_bytes()).expect("write");
            child
        })
        .collect();
    // Release the barrier once every child is there, or 1.5 s after the
    // first got there (with the lock, only one can be).
    let markers = || {
        std::fs::read_dir(f.tmp.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("barrier."))
                    .count()
            })
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while markers() == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = std::time::Instant::now();
    while markers() < n && first.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let waiting = markers();
    std::fs::write(&barrier, b"").expect("release");
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(
        waiting, 1,
        "more than one process was about to create the key"
    );
    assert_eq!(markers(), 1, "only the first process found no key");
    let keys = Fixture::keys_with_prefix(&keyutils::sealing_keys(&f.app));
    assert_eq!(keys.len(), 1, "one key for the store: {keys:?}");
    let store = f.store(KeySource::Keyutils);
    for i in 0..n {
        let t = store.load(format!("p{i}")).expect("every profile unseals");
        assert_eq!(
            t.token.access_token.expose_secret(),
            format!("race-access-{i}")
        );
    }
}

#[test]
fn a_cleared_key_means_log_in_again_and_repair_removes_what_cannot_open() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("reboot");
    {
        let store = f.store(KeySource::Keyutils);
        store
            .save(&token("700", "r", 1300), SaveOptions::new())
            .expect("save");
    }
    assert!(f.key_description().is_some());
    f.clear_key();
    let store = f.store(KeySource::Keyutils);
    let e = store.load(Selector::Active).expect_err("the key is gone");
    assert!(matches!(e, Error::SealingKeyLost { .. }), "{e:?}");
    assert_eq!(e.kind(), rctoken::ErrorKind::LoginAgain);
    assert!(e.to_string().contains("cleared"), "{e}");
    // The CLI: exit 4, and the message says why.
    let mut c = f.cli();
    c.arg("token");
    let out = run(c, b"");
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyutils is emptied at reboot"));
    // A read deletes nothing; repair drops the profile and its file.
    assert_eq!(sealed_files(&f.dir()).len(), 1);
    let fixed = store.repair().expect("repair");
    assert!(fixed.is_clean(), "{:?}", fixed.problems);
    assert!(store.list().expect("list").is_empty());
    assert!(sealed_files(&f.dir()).is_empty());
    // And the store works again under its new key.
    store
        .save(&token("701", "new", 100), SaveOptions::new())
        .expect("save again");
    assert!(store.load("701").is_ok());
}

#[test]
fn altered_swapped_and_truncated_files_are_refused_and_kept() {
    let f = Fixture::new("tamper");
    let store = f.store(KeySource::File(f.key_file("key", 0o400)));
    store
        .save(&token("801", "a", 200), SaveOptions::new())
        .expect("save");
    store
        .save(&token("802", "b", 200), SaveOptions::new())
        .expect("save");
    let files = sealed_files(&f.dir());
    assert_eq!(files.len(), 2);
    let (a, b) = (
        std::fs::read(&files[0]).unwrap(),
        std::fs::read(&files[1]).unwrap(),
    );
    let check = |what: &str| {
        for key in ["801", "802"] {
            if let Err(e) = store.load(key) {
                assert!(matches!(e, Error::CorruptSecret { .. }), "{what}: {e:?}");
                assert_eq!(e.kind(), rctoken::ErrorKind::FixStore, "{what}");
            }
        }
    };
    // Swapped: each file under the other's name.
    std::fs::write(&files[0], &b).unwrap();
    std::fs::write(&files[1], &a).unwrap();
    assert!(store.load("801").is_err() && store.load("802").is_err());
    check("swapped");
    // Truncated, and one flipped bit.
    std::fs::write(&files[0], &a[..a.len() - 3]).unwrap();
    let mut flipped = b.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&files[1], &flipped).unwrap();
    check("altered");
    // The CLI: exit 7, and the files are still there.
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", f.tmp.path().join("key"))
        .args(["token", "801"]);
    let out = run(c, b"");
    assert_eq!(code(&out), 7, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sealed_files(&f.dir()).len(), 2, "a read never deletes");
    // Restored, they open again: nothing was lost.
    std::fs::write(&files[0], &a).unwrap();
    std::fs::write(&files[1], &b).unwrap();
    assert!(store.load("801").is_ok() && store.load("802").is_ok());
}

#[cfg(unix)] // file modes
#[test]
fn key_files_with_loose_modes_no_key_or_another_key_are_refused_with_exit_7() {
    let f = Fixture::new("keyfile");
    let good = f.key_file("good", 0o600);
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &good).arg("import");
    let out = run(c, br#"{"access_token":"kf-access","token_type":"bearer","expires_in":3600,"scope":"x","owner_id":"900"}"#);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    for (name, mode, content) in [
        ("group", 0o640, None),
        ("world", 0o604, None),
        ("empty", 0o600, Some("")),
        ("short", 0o600, Some("c2hvcnQ=")),
    ] {
        let path = f.tmp.path().join(name);
        match content {
            Some(text) => write_mode(&path, text.as_bytes(), mode),
            None => {
                std::fs::copy(&good, &path).unwrap();
                write_mode(&path, &std::fs::read(&good).unwrap(), mode);
            }
        }
        let mut c = f.cli();
        c.env("RCTOKEN_KEY_FILE", &path).arg("token");
        let out = run(c, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 7, "{name}: {err}");
        assert!(err.contains("key file"), "{name}: {err}");
        assert!(
            !err.contains(
                &String::from_utf8_lossy(&std::fs::read(&good).unwrap())
                    .trim()
                    .to_string()
            ),
            "the key is never echoed"
        );
        // `doctor` says the same, with that error's hint rather than the
        // keychain's ("unlock or start the keychain").
        let mut c = f.cli();
        c.env("RCTOKEN_KEY_FILE", &path).arg("doctor");
        let out = run(c, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 7, "doctor, {name}: {err}");
        assert!(err.contains("key file"), "doctor, {name}: {err}");
        assert!(!err.contains("unlock"), "doctor, {name}: {err}");
    }
    // Another (valid) key file is not the store's key: exit 7 naming the
    // store's key file, for reads, for saves (nothing is sealed under the
    // wrong key) and for `doctor --fix` (nothing is deleted).
    let other = f.key_file("other", 0o600);
    let contents = |files: Vec<PathBuf>| -> Vec<(PathBuf, Vec<u8>)> {
        files
            .into_iter()
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect()
    };
    let before = contents(sealed_files(&f.dir()));
    for (args, stdin) in [
        (vec!["token"], &b""[..]),
        (vec!["import"], &br#"{"access_token":"kf-other","token_type":"bearer","expires_in":3600,"scope":"x","owner_id":"901"}"#[..]),
        (vec!["doctor", "--fix"], &b""[..]),
    ] {
        let mut c = f.cli();
        c.env("RCTOKEN_KEY_FILE", &other).args(&args);
        let out = run(c, stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 7, "{args:?}: {err}");
        assert!(
            err.contains(&format!("the key file {}", good.display())),
            "{args:?} names the store's key file: {err}"
        );
    }
    assert_eq!(
        before,
        contents(sealed_files(&f.dir())),
        "the sealed items are untouched"
    );
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &good).arg("token");
    let out = run(c, b"");
    assert_eq!(code(&out), 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kf-access");
    // systemd's credential directory holds the key under rctoken-<app id>.
    let creds = f.tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::copy(&good, creds.join(format!("rctoken-{}", f.app))).unwrap();
    let mut c = f.cli();
    c.env("CREDENTIALS_DIRECTORY", &creds).arg("token");
    let out = run(c, b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "kf-access");
}

#[test]
fn profiles_left_in_plain_keyutils_keep_working_and_move_when_saved() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("legacy");
    {
        let old = f.store_with(Backend::Keyutils);
        old.save(&token("601", "l1", 300), SaveOptions::new())
            .expect("save");
        old.save(&token("602", "l2", 300), SaveOptions::new())
            .expect("save");
    }
    let plain_items = || Fixture::keys_with_prefix(&keyutils::namespace(&f.app)).len();
    assert_eq!(plain_items(), 2);
    let store = f.store(KeySource::Keyutils);
    // Readable as before, and verify is clean.
    assert!(
        store
            .load("601")
            .unwrap()
            .token
            .access_token
            .expose_secret()
            .contains("l1")
    );
    assert!(store.verify().expect("verify").is_clean());
    // A save moves the profile: sealed, and its keyutils item gone.
    let info = store
        .save(&token("601", "l1b", 300), SaveOptions::new())
        .expect("resave");
    assert_eq!(info.secrets_backend(), "sealed");
    assert_eq!(plain_items(), 1);
    // migrate() moves the rest.
    assert_eq!(store.migrate().expect("migrate"), 1);
    assert_eq!(plain_items(), 0);
    let moved = store.load("602").expect("moved profile loads");
    assert_eq!(moved.info.secrets_backend(), "sealed");
    assert!(moved.token.access_token.expose_secret().contains("l2"));
    assert!(moved.info.access_token_remaining(store.now()) > Duration::from_secs(3500));
    assert!(store.verify().expect("verify").is_clean());
}

/// keyutils blocked as Docker's default seccomp profile blocks it
/// (`add_key`, `keyctl`, `request_key` fail with EPERM): the sealed store
/// works with a key file, and without one says what to do.
#[cfg(target_os = "linux")]
#[test]
fn under_a_seccomp_filter_that_blocks_keyutils() {
    let f = Fixture::new("seccomp");
    let blocked = |c: &mut Command| seccomp::block_keyutils(c);
    // The filter really blocks keyutils.
    let mut k = Command::new("keyctl");
    k.args(["show", "@u"]);
    blocked(&mut k);
    let out = k.output().expect("keyctl");
    assert!(
        !out.status.success(),
        "keyctl works under the filter: {out:?}"
    );

    let json = br#"{"access_token":"sc-access","token_type":"bearer","expires_in":3600,"scope":"x","owner_id":"42"}"#;
    let mut c = f.cli();
    c.arg("import");
    blocked(&mut c);
    let out = run(c, json);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 5, "{err}");
    assert!(err.contains("keyutils"), "{err}");
    assert!(
        !f.dir().join("profiles").exists()
            || std::fs::read_dir(f.dir().join("profiles"))
                .unwrap()
                .next()
                .is_none()
    );

    let key = f.key_file("key", 0o600);
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &key).arg("import");
    blocked(&mut c);
    let out = run(c, json);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &key).arg("token");
    blocked(&mut c);
    let out = run(c, b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sc-access");
    assert!(f.app_keys().is_empty(), "nothing went to keyutils");

    // A damaged key record is what to fix, whatever holds the key: named
    // even where keyutils cannot be reached and no key file is configured.
    let record = f.dir().join("sealed/.keys");
    std::fs::write(&record, b"damaged\n").unwrap();
    let mut c = f.cli();
    c.arg("token");
    blocked(&mut c);
    let out = run(c, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 7, "{err}");
    assert!(err.contains(&record.display().to_string()), "{err}");
    assert!(err.contains("doctor --fix"), "{err}");
    assert!(!err.contains("cannot be kept in keyutils"), "{err}");
    // Only the key file can rebuild it here, and the message says so.
    assert!(err.contains("RCTOKEN_KEY_FILE"), "{err}");
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &key).args(["doctor", "--fix"]);
    blocked(&mut c);
    let out = run(c, b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &key).arg("token");
    blocked(&mut c);
    assert_eq!(
        String::from_utf8_lossy(&run(c, b"").stdout).trim(),
        "sc-access"
    );
}

/// `rctoken migrate` moves what an older rctoken left in plain keyutils.
#[test]
fn the_migrate_command_moves_plain_keyutils_profiles_into_the_sealed_store() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("migcli");
    let json = br#"{"access_token":"mig-access","token_type":"bearer","expires_in":3600,"scope":"x","owner_id":"77"}"#;
    let mut c = f.cli();
    c.env("RCTOKEN_BACKEND", "keyutils").arg("import");
    let out = run(c, json);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let plain = || Fixture::keys_with_prefix(&keyutils::namespace(&f.app)).len();
    assert_eq!(plain(), 1);
    let mut c = f.cli();
    c.arg("migrate");
    let out = run(c, b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "moved 1 profile into sealed\n"
    );
    assert_eq!(plain(), 0, "the keyutils item is gone");
    let mut c = f.cli();
    c.arg("token");
    let out = run(c, b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mig-access\n");
    // Nothing left to move.
    let mut c = f.cli();
    c.arg("migrate");
    let out = run(c, b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "moved 0 profiles into sealed\n"
    );
}

/// As the user running the suite (CI: non-root, 20,000 bytes of keyutils
/// quota): 1,000 profiles of realistic size (1.3 KB access and refresh
/// tokens, a 3 KB id token) are saved and every one of them refreshed,
/// while keyutils holds one 32-byte key for the store. Plain keyutils
/// holds three such profiles.
#[test]
fn a_thousand_realistic_profiles_fit_and_all_refresh() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("thousand");
    let store = f.store(KeySource::Keyutils);
    let realistic = |owner: &str, tag: &str| {
        let mut t = token(owner, tag, 1300);
        let id = token(owner, &format!("{tag}id"), 3000);
        t.id_token = id.id_token;
        t
    };
    store
        .save(&realistic("100000", "first"), SaveOptions::new())
        .expect("first save");
    let n = 1000;
    for i in 0..n {
        let mut t = realistic(&format!("{}", 100_000 + i), "t");
        t.expires_in = 0; // expired: every one will refresh
        store.save(&t, SaveOptions::new()).expect("save");
    }
    assert_eq!(store.list().expect("list").len(), n);
    for i in 0..n {
        let key = format!("{}", 100_000 + i);
        let got = store
            .refresh(&key, Duration::from_secs(60), |_| {
                Ok::<_, std::io::Error>(realistic(&key, "new"))
            })
            .expect("refresh");
        assert!(got.info.refreshed);
    }
    // Other tests of this binary use keyutils meanwhile, so the quota
    // figures are not this test's alone: count this app's keys instead.
    assert_eq!(
        Fixture::keys_with_prefix(&keyutils::namespace(&f.app)).len(),
        0,
        "no item in keyutils"
    );
    assert_eq!(f.app_keys().len(), 1, "one key for the store");
    assert_eq!(
        sealed_files(&f.dir()).len(),
        n,
        "one file per profile, old generations gone"
    );
}
