//! A damaged key record (`sealed/.keys`): every command names the file and
//! says to run `doctor --fix`, which rebuilds the record only when the
//! configured key is provably the store's (every item is sealed under it)
//! and otherwise changes nothing and says which key to configure.

use super::*;

const DAMAGED: &[u8] = b"rctoken sealed-store keys v1\ncurrent not-a-key-id\n";

/// The files of the sealed directory, dot files included, with their bytes.
fn sealed_dir_contents(f: &Fixture) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = files_under(&f.dir().join("sealed"));
    v.sort();
    v
}

/// Run `rctoken ARGS` with `key` as the key file (or none).
fn cli(f: &Fixture, key: Option<&Path>, args: &[&str]) -> Output {
    let mut c = f.cli();
    if let Some(key) = key {
        c.env("RCTOKEN_KEY_FILE", key);
    }
    c.args(args);
    run(c, b"")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The moved-aside copies of the record.
fn kept_records(f: &Fixture) -> Vec<Vec<u8>> {
    std::fs::read_dir(f.dir().join("sealed"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".keys.corrupt-")
        })
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect()
}

#[test]
fn a_damaged_key_record_is_named_and_doctor_fix_rebuilds_it_only_under_the_stores_key() {
    let f = Fixture::new("record");
    let key = f.key_file("key", 0o600);
    let other = f.key_file("other", 0o600);
    {
        let store = f.store(KeySource::File(key.clone()));
        for owner in ["1001", "1002"] {
            store
                .save(&token(owner, owner, 300), SaveOptions::new())
                .expect("save");
        }
    }
    let record = f.dir().join("sealed/.keys");
    std::fs::write(&record, DAMAGED).unwrap();
    let before = sealed_dir_contents(&f);
    // The store names its canonical directory (on Windows a verbatim
    // `\\?\` path).
    let record_name = std::fs::canonicalize(&record)
        .unwrap()
        .display()
        .to_string();

    // The library: a store file to fix (CorruptMetadata naming the record).
    let store = f.store(KeySource::File(key.clone()));
    let e = store.load("1001").expect_err("damaged record");
    assert!(
        matches!(&e, Error::CorruptMetadata { path, .. } if path.ends_with("sealed/.keys")),
        "{e:?}"
    );
    assert_eq!(e.kind(), rctoken::ErrorKind::FixStore);
    drop(store);

    // The CLI: exit 7 naming the record, with the hint that fixes it.
    for args in [&["token", "1001"][..], &["doctor"]] {
        let out = cli(&f, Some(&key), args);
        let err = stderr(&out);
        assert_eq!(code(&out), 7, "{args:?}: {err}");
        assert!(err.contains(&record_name), "{args:?}: {err}");
        assert!(err.contains("doctor --fix"), "{args:?}: {err}");
        assert!(
            !err.contains("retry"),
            "{args:?}: not a passing failure: {err}"
        );
    }

    // With another key file, `doctor --fix` cannot know the record was the
    // store's: it refuses, says what to configure, and changes nothing.
    let out = cli(&f, Some(&other), &["doctor", "--fix"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 7, "{err}");
    assert!(err.contains("cannot be rebuilt"), "{err}");
    assert!(
        err.contains("2 of its 2 items are sealed under another key"),
        "{err}"
    );
    assert!(err.contains("RCTOKEN_KEY_FILE"), "{err}");
    assert_eq!(sealed_dir_contents(&f), before, "nothing changed");

    // With the store's key: rebuilt, the damaged record kept, and every
    // profile reads again.
    let out = cli(&f, Some(&key), &["doctor", "--fix"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(
        text.contains("rebuilt the sealed store's key record")
            && text.contains(&key.display().to_string())
            && text.contains("2 items"),
        "{text}"
    );
    assert_eq!(kept_records(&f), vec![DAMAGED.to_vec()]);
    for owner in ["1001", "1002"] {
        let out = cli(&f, Some(&key), &["token", owner]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("SEALTESTA{owner}x")));
    }
    // The rebuilt record is the store's again: another key file is the
    // wrong key (exit 7, nothing sealed under it), not a lost one.
    let out = cli(&f, Some(&other), &["token", "1001"]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("the key file {}", key.display())));
    let out = cli(&f, Some(&key), &["doctor"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// A store with no item: the record names no key anything depends on, so
/// any configured key may take its place.
#[test]
fn a_damaged_key_record_of_an_empty_store_is_rebuilt_for_any_key() {
    let f = Fixture::new("recempty");
    let key = f.key_file("key", 0o600);
    {
        let store = f.store(KeySource::File(key.clone()));
        store
            .save(&token("1101", "e", 100), SaveOptions::new())
            .expect("save");
        // Keep the record: a logout of the last profile would remove it.
        std::fs::remove_file(&sealed_files(&f.dir())[0]).unwrap();
    }
    std::fs::write(f.dir().join("sealed/.keys"), DAMAGED).unwrap();
    let other = f.key_file("other", 0o600);
    let out = cli(&f, Some(&other), &["doctor", "--fix"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rebuilt the sealed store's key record"),
        "{text}"
    );
    assert!(text.contains("0 items"), "{text}");
    // The profile whose item was deleted is dropped by the same repair.
    assert!(text.contains("1101"), "{text}");
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    let store = f.store(KeySource::File(other));
    store
        .save(&token("1102", "e2", 100), SaveOptions::new())
        .expect("save under the new key");
    assert!(store.load("1102").is_ok());
}

/// The key in keyutils: rebuilt for it while it exists; once it is gone
/// (a reboot), refused, and no key is created in its place.
#[test]
fn a_damaged_key_record_with_the_key_in_keyutils() {
    needs!(Kind::Keyutils);
    let f = Fixture::new("reckeyutils");
    {
        let store = f.store(KeySource::Keyutils);
        store
            .save(&token("1201", "k", 300), SaveOptions::new())
            .expect("save");
    }
    let record = f.dir().join("sealed/.keys");
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, DAMAGED).unwrap();
    let out = cli(&f, None, &["doctor", "--fix"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(text.contains("for the key in kernel keyutils"), "{text}");
    assert_eq!(
        std::fs::read(&record).unwrap(),
        good,
        "the same record as before"
    );
    let out = cli(&f, None, &["token"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // After a reboot, nothing vouches for any key.
    f.clear_key();
    std::fs::write(&record, DAMAGED).unwrap();
    let before = sealed_dir_contents(&f);
    let out = cli(&f, None, &["doctor", "--fix"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 7, "{err}");
    assert!(
        err.contains("keyutils holds no key for this store"),
        "{err}"
    );
    assert!(f.app_keys().is_empty(), "no key was created");
    assert_eq!(sealed_dir_contents(&f), before, "nothing changed");
}

/// Nothing is adopted on partial evidence: an item that cannot be read
/// (here, a mode the store refuses) might be under another key, and a
/// rebuild whose write fails leaves the damaged record in place (a store
/// with no record would adopt any key without looking).
#[cfg(unix)] // file modes, a line break in a file name
#[test]
fn a_rebuild_adopts_no_key_on_partial_evidence_and_never_leaves_no_record() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new("recpartial");
    let key = f.key_file("key", 0o600);
    {
        let store = f.store(KeySource::File(key.clone()));
        store
            .save(&token("1301", "p", 200), SaveOptions::new())
            .expect("save");
    }
    let record = f.dir().join("sealed/.keys");
    std::fs::write(&record, DAMAGED).unwrap();
    let item = sealed_files(&f.dir()).remove(0);
    // Writable by the group: the store refuses to read it.
    std::fs::set_permissions(&item, std::fs::Permissions::from_mode(0o620)).unwrap();
    let before = sealed_dir_contents(&f);
    let other = f.key_file("other", 0o600);
    let out = cli(&f, Some(&other), &["doctor", "--fix"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 7, "{err}");
    assert!(err.contains("cannot be read"), "{err}");
    assert_eq!(sealed_dir_contents(&f), before, "nothing changed");
    std::fs::set_permissions(&item, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The right key, at a path the record cannot hold (a line break): the
    // damaged record is copied aside, the new one cannot be written, and
    // the damaged one is still there.
    let odd = f.tmp.path().join("odd\nname");
    std::fs::copy(&key, &odd).unwrap();
    std::fs::set_permissions(&odd, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = cli(&f, Some(&odd), &["doctor", "--fix"]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&record).unwrap(),
        DAMAGED,
        "the record is still there"
    );
    // So another key is still not adopted; the store's key still rebuilds.
    let out = cli(&f, Some(&other), &["token"]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let out = cli(&f, Some(&key), &["doctor", "--fix"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = cli(&f, Some(&key), &["token"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
