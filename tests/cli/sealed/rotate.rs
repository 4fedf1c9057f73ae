//! Key rotation (`rctoken rotate-key`) on real files and real keyutils:
//! every profile re-sealed and readable, the old key retired, a process
//! that loaded the old key before the rotation never seals under it, a
//! rotation to a key file, refusals that change nothing, a rotation killed
//! at any instant, and `logout --all` taking the store's key with it.

use std::path::Path;
#[cfg(feature = "failpoints")]
use std::path::PathBuf;
#[cfg(feature = "failpoints")]
use std::process::Stdio;
#[cfg(feature = "failpoints")]
use std::time::Duration;

use rctoken::{KeySource, SaveOptions};
use secrecy::ExposeSecret;

use super::{Fixture, code, run, sealed_files, token};
use crate::support::backends::Kind;

/// The key id in each sealed file's header (bytes 5..13).
fn key_ids(dir: &Path) -> Vec<[u8; 8]> {
    sealed_files(dir)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| b.len() > 13)
        .map(|b| b[5..13].try_into().unwrap())
        .collect()
}

fn distinct(mut ids: Vec<[u8; 8]>) -> Vec<[u8; 8]> {
    ids.sort();
    ids.dedup();
    ids
}

/// Every profile `0..n` opens, in a fresh store with `source`, with its own token.
fn all_open(f: &Fixture, source: KeySource, n: usize, what: &str) {
    let store = f.store(source);
    for i in 0..n {
        let owner = format!("{}", 4000 + i);
        let t = store
            .load(owner.as_str())
            .unwrap_or_else(|e| panic!("{what}: profile {owner} does not open: {e}"));
        assert!(
            t.token
                .access_token
                .expose_secret()
                .starts_with(&format!("SEALTESTArot{i}x")),
            "{what}: profile {owner} has another token"
        );
    }
}

fn save_profiles(f: &Fixture, source: KeySource, n: usize) {
    let store = f.store(source);
    for i in 0..n {
        let owner = format!("{}", 4000 + i);
        store
            .save(&token(&owner, &format!("rot{i}"), 1300), SaveOptions::new())
            .expect("save");
    }
}

#[test]
fn rotating_the_keyutils_key_reseals_every_profile_and_retires_the_old_key() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("rotk");
    save_profiles(&f, KeySource::Keyutils, 5);
    let old = distinct(key_ids(&f.dir()));
    assert_eq!(old.len(), 1);
    // A process that loaded the old key before the rotation.
    let stale = f.store(KeySource::Keyutils);
    assert!(stale.load("4000").is_ok());

    let mut c = f.cli();
    c.arg("rotate-key");
    let out = run(c, b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("re-sealed 5 of 5"), "{stdout}");
    assert!(stdout.contains("keyutils"), "{stdout}");

    let new = distinct(key_ids(&f.dir()));
    assert_eq!(new.len(), 1, "every item under one key");
    assert_ne!(new, old, "under a new key");
    let keys = Fixture::keys_with_prefix(&crate::support::keyutils::sealing_keys(&f.app));
    assert_eq!(keys.len(), 1, "one key, no `.next` left: {keys:?}");
    all_open(&f, KeySource::Keyutils, 5, "after the rotation");

    // The stale process still reads (it reloads the key) and seals under
    // the new key, never the retired one.
    assert!(stale.load("4001").is_ok(), "a stale process reads");
    stale
        .save(&token("4999", "stale", 200), SaveOptions::new())
        .expect("a stale process saves");
    assert_eq!(
        distinct(key_ids(&f.dir())),
        new,
        "nothing under the old key"
    );
    assert!(f.store(KeySource::Keyutils).load("4999").is_ok());
    assert!(f.store(KeySource::Keyutils).verify().unwrap().is_clean());
}

#[test]
fn rotating_to_a_new_key_file_and_the_refusals_that_change_nothing() {
    let f = Fixture::new("rotf");
    let a = f.key_file("a", 0o600);
    let b = f.key_file("b", 0o400);
    save_profiles(&f, KeySource::File(a.clone()), 3);
    let before: Vec<Vec<u8>> = sealed_files(&f.dir())
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let unchanged = |what: &str| {
        let now: Vec<Vec<u8>> = sealed_files(&f.dir())
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert_eq!(now, before, "{what}: nothing changed");
    };
    // Refused, exit 7, nothing changed: no new key file given; the same
    // key; a new key file with loose modes; one with no key.
    let loose = f.key_file("loose", 0o644);
    let empty = f.tmp.path().join("empty");
    super::write_mode(&empty, b"", 0o600);
    let mut refusals = vec![
        (vec!["rotate-key"], "--new-key-file"),
        (
            vec!["rotate-key", "--new-key-file", a.to_str().unwrap()],
            "already sealed",
        ),
        (
            vec!["rotate-key", "--new-key-file", empty.to_str().unwrap()],
            "does not hold a key",
        ),
    ];
    // Files have no Unix modes elsewhere: no key file is loose there.
    if cfg!(unix) {
        refusals.push((
            vec!["rotate-key", "--new-key-file", loose.to_str().unwrap()],
            "mode",
        ));
    }
    for (args, needle) in refusals {
        let mut c = f.cli();
        c.env("RCTOKEN_KEY_FILE", &a).args(&args);
        let out = run(c, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 7, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        unchanged(&format!("{args:?}"));
    }

    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &a)
        .args(["rotate-key", "--new-key-file"])
        .arg(&b);
    let out = run(c, b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("re-sealed 3 of 3"), "{stdout}");
    assert!(
        stdout.contains("RCTOKEN_KEY_FILE"),
        "says what to do next: {stdout}"
    );
    // The old key file no longer opens the store, and says which one does.
    let mut c = f.cli();
    c.env("RCTOKEN_KEY_FILE", &a).args(["token", "4000"]);
    let out = run(c, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 7, "{err}");
    assert!(err.contains(&b.display().to_string()), "{err}");
    all_open(&f, KeySource::File(b.clone()), 3, "under the new key file");
    // With no key file configured at all: refused the same way, and no key
    // is made in keyutils for it (Linux's: elsewhere there is none to make).
    let prefix = crate::support::keyutils::sealing_keys(&f.app);
    let keys = || {
        if cfg!(target_os = "linux") {
            Fixture::keys_with_prefix(&prefix)
        } else {
            Vec::new()
        }
    };
    let before = keys();
    let mut c = f.cli();
    c.args(["token", "4000"]);
    let out = run(c, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 7, "{err}");
    assert!(err.contains("no key file is configured"), "{err}");
    assert!(err.contains(&b.display().to_string()), "{err}");
    assert_eq!(keys(), before, "no key made");
    // No plaintext and no key anywhere in the store.
    let key_text = std::fs::read_to_string(&b).unwrap();
    for (path, bytes) in super::files_under(&f.dir()) {
        assert!(
            !bytes
                .windows(key_text.trim().len())
                .any(|w| w == key_text.trim().as_bytes()),
            "{} holds the key",
            path.display()
        );
    }
}

#[cfg(feature = "failpoints")]
/// Whether the key record (`sealed/.keys`) says a rotation to the key file
/// `target` has committed: `current` names it and no `next` is pending.
fn committed_to(dir: &Path, target: &Path) -> bool {
    let Ok(record) = std::fs::read_to_string(dir.join("sealed").join(".keys")) else {
        return false;
    };
    let target = target.to_string_lossy();
    !record.lines().any(|l| l.starts_with("next "))
        && record
            .lines()
            .any(|l| l.starts_with("current ") && l.ends_with(&format!(" {target}")))
}

#[cfg(feature = "failpoints")]
/// The failpoint's pause after each re-sealed item, in ms.
const DELAY_MS: usize = 3;

#[cfg(feature = "failpoints")]
/// The key record and the key id of each item, to see a rotation begin.
#[derive(PartialEq)]
struct Snapshot(Option<Vec<u8>>, Vec<[u8; 8]>);

#[cfg(feature = "failpoints")]
impl Snapshot {
    fn of(dir: &Path) -> Self {
        Self(
            std::fs::read(dir.join("sealed").join(".keys")).ok(),
            key_ids(dir),
        )
    }
}

#[cfg(feature = "failpoints")]
/// Wait until the rotation `child` has begun: the key record changed (a
/// fresh rotation records its target as `next`, step 3, and re-seals right
/// after), or an item was re-sealed (a run resuming a killed one finds
/// `next` already recorded), or it exited.
fn wait_for_start(dir: &Path, before: &Snapshot, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while Snapshot::of(dir) == *before {
        if child.try_wait().expect("try_wait").is_some() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotate-key changed nothing in 120 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(feature = "failpoints")]
/// Kill `rotate-key` at random instants (a failpoint slows it to a few ms
/// per item): after each kill every profile opens, with the old key's
/// configuration (the rotation's target is found through the key record),
/// and a later run finishes the rotation.
fn killed_rotations(f: &Fixture, source: KeySource, target: Option<&Path>, n: usize) {
    let mut mixed = 0;
    let mut rounds = 0;
    let configured: Option<PathBuf> = match &source {
        KeySource::File(p) => Some(p.clone()),
        _ => None,
    };
    let rotate = || {
        let mut c = f.cli();
        if let Some(p) = &configured {
            c.env("RCTOKEN_KEY_FILE", p);
        }
        c.arg("rotate-key");
        if let Some(t) = target {
            c.arg("--new-key-file").arg(t);
        }
        c
    };
    for round in 0..40 {
        let before = distinct(key_ids(&f.dir()));
        let snapshot = Snapshot::of(&f.dir());
        let mut c = rotate();
        c.env("RCTOKEN_TEST_REKEY_DELAY_MS", DELAY_MS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("spawn");
        if round % 5 == 0 {
            // Early: while the process starts, reads or records the key.
            std::thread::sleep(Duration::from_millis((round * 37 % 40) as u64));
        } else {
            // Midway: measured from the moment the rotation begins, not
            // from the spawn, since starting a process takes from 1 ms
            // (Linux) to over a second (Wine on a loaded CI box).
            wait_for_start(&f.dir(), &snapshot, &mut child);
            std::thread::sleep(Duration::from_millis(
                (round * 37 % 100 * n * DELAY_MS / 100) as u64,
            ));
        }
        let _ = child.kill();
        let status = child.wait().expect("wait");
        rounds += 1;
        let after = distinct(key_ids(&f.dir()));
        if after.len() > 1 {
            mixed += 1;
        }
        if let Some(t) = target.filter(|t| status.success() || committed_to(&f.dir(), t)) {
            // A rotation to a key file finished before the kill (also when
            // the kill landed after its commit but before it exited): the
            // store now opens with the new key file only.
            all_open(
                f,
                KeySource::File(t.to_path_buf()),
                n,
                &format!("finished in round {round}"),
            );
            break;
        }
        all_open(
            f,
            source.clone(),
            n,
            &format!("after kill {round} ({status:?}, keys {before:?} -> {after:?})"),
        );
    }
    assert!(
        mixed >= 1,
        "no kill landed mid-rotation in {rounds} rounds: the test did not test anything"
    );
    // Finish: one more run to completion.
    let out = run(rotate(), b"");
    let err = String::from_utf8_lossy(&out.stderr);
    // Also when a killed run had already finished it: running it again is
    // harmless.
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(
        distinct(key_ids(&f.dir())).len(),
        1,
        "one key after finishing"
    );
}

// Needs the failpoint that slows each re-seal (feature `failpoints`).
#[test]
#[cfg(feature = "failpoints")]
fn a_keyutils_rotation_killed_at_any_instant_leaves_every_profile_readable() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("rotkill");
    save_profiles(&f, KeySource::Keyutils, 30);
    killed_rotations(&f, KeySource::Keyutils, None, 30);
    all_open(&f, KeySource::Keyutils, 30, "after finishing");
    let keys = Fixture::keys_with_prefix(&crate::support::keyutils::sealing_keys(&f.app));
    assert_eq!(keys.len(), 1, "{keys:?}");
}

// Needs the failpoint that slows each re-seal (feature `failpoints`).
#[test]
#[cfg(feature = "failpoints")]
fn a_key_file_rotation_killed_at_any_instant_leaves_every_profile_readable() {
    let f = Fixture::new("rotfkill");
    let a = f.key_file("a", 0o600);
    let b = f.key_file("b", 0o600);
    save_profiles(&f, KeySource::File(a.clone()), 30);
    killed_rotations(&f, KeySource::File(a.clone()), Some(&b), 30);
    all_open(&f, KeySource::File(b), 30, "under the new key file");
}

#[test]
fn logout_all_takes_the_stores_keyutils_key_with_it() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("forget");
    save_profiles(&f, KeySource::Keyutils, 2);
    let prefix = crate::support::keyutils::sealing_keys(&f.app);
    assert_eq!(Fixture::keys_with_prefix(&prefix).len(), 1);
    let mut c = f.cli();
    c.args(["logout", "--all"]);
    let out = run(c, b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        Fixture::keys_with_prefix(&prefix).is_empty(),
        "the store's key is gone with its last profile"
    );
    assert!(sealed_files(&f.dir()).is_empty());
    // Commands that only read do not make a key for the empty store.
    for args in [&["doctor"][..], &["status"], &["list"]] {
        let mut c = f.cli();
        c.args(args);
        let _ = run(c, b"");
        assert!(
            Fixture::keys_with_prefix(&prefix).is_empty(),
            "{args:?} made a key"
        );
    }
    // The next save starts with a fresh key.
    save_profiles(&f, KeySource::Keyutils, 1);
    all_open(&f, KeySource::Keyutils, 1, "after a new save");
    assert_eq!(Fixture::keys_with_prefix(&prefix).len(), 1);
    // Logging out the last profile one by one does the same.
    let mut c = f.cli();
    c.args(["logout", "4000"]);
    assert_eq!(code(&run(c, b"")), 0);
    assert!(Fixture::keys_with_prefix(&prefix).is_empty());
}
