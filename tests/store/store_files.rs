//! The files of a store on each backend: modes, the lock files, no secret
//! bytes ever on disk, and corrupt or too-new metadata that is reported with
//! its path and left byte-for-byte unchanged by reads and refused writes.

#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use rctoken::{Error, SaveOptions};

use crate::ctx::Ctx;
use crate::files::{assert_no_secret_in_files, files_under};
use crate::support::tokens::{self, Secrets};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every store operation, each expected to fail on unreadable metadata.
/// `new_profile`: include saving a profile that does not exist yet (which
/// never reads another profile's file).
fn every_operation(t: &Ctx, new_profile: bool) -> Vec<(&'static str, Error)> {
    let s = &t.store;
    let tok = || tokens::full("1").0;
    let refresh = |_: &rctoken::secrecy::SecretString| -> Result<rctoken::TokenInfo, String> {
        panic!("refresh fn must not run")
    };
    let mut ops = vec![
        ("list", s.list().map(|_| ()).expect_err("list")),
        (
            "info",
            s.info(rctoken::Selector::Active)
                .map(|_| ())
                .expect_err("info"),
        ),
        ("load", s.load("1").map(|_| ()).expect_err("load")),
        (
            "load_active",
            s.load(rctoken::Selector::Active)
                .map(|_| ())
                .expect_err("load_active"),
        ),
        (
            "save",
            s.save(&tok(), SaveOptions::new())
                .map(|_| ())
                .expect_err("save"),
        ),
        ("switch", s.switch("1").map(|_| ()).expect_err("switch")),
        (
            "set_label",
            s.set_label("1", Some("x")).map(|_| ()).expect_err("label"),
        ),
        ("remove", s.remove("1").map(|_| ()).expect_err("remove")),
        (
            "remove_all",
            s.remove_all().map(|_| ()).expect_err("remove_all"),
        ),
        (
            "refresh",
            s.refresh(Some("1"), Duration::from_secs(60), refresh)
                .map(|_| ())
                .expect_err("refresh"),
        ),
    ];
    if new_profile {
        ops.push((
            "save new",
            s.save(&tokens::full("fresh").0, SaveOptions::new().switch(true))
                .map(|_| ())
                .expect_err("save new"),
        ));
    }
    ops
}

/// Replace the index with `bad`, check every operation fails as `expect`
/// says and leaves the metadata and the keychain untouched, then restore.
fn check_unreadable(t: &Ctx, bad: &[u8], expect: fn(&Error) -> bool) {
    check_unreadable_at(t, &t.meta_path(), bad, expect, true);
}

/// Replace profile "1"'s file with `bad`: every operation on profile "1"
/// fails as `expect` says and changes nothing; other profiles still work.
fn check_unreadable_profile(t: &Ctx, bad: &[u8], expect: fn(&Error) -> bool) {
    check_unreadable_at(t, &t.store.layout().profile_file("1"), bad, expect, false);
}

fn check_unreadable_at(
    t: &Ctx,
    file: &std::path::Path,
    bad: &[u8],
    expect: fn(&Error) -> bool,
    new_profile: bool,
) {
    let good = std::fs::read(file).expect("read");
    let accounts = t.accounts();
    std::fs::write(file, bad).expect("corrupt the metadata");
    let before = t.meta_bytes();
    let path = file.display().to_string();
    for (op, e) in every_operation(t, new_profile) {
        assert!(expect(&e), "{op}: unexpected error {e:?}");
        assert!(e.to_string().contains(&path), "{op}: path not named: {e}");
        assert_eq!(e.kind(), rctoken::ErrorKind::FixStore, "{op}: {e}");
        assert!(t.meta_bytes() == before, "{op} changed the metadata");
    }
    assert_eq!(t.accounts(), accounts, "refused writes left keychain items");
    std::fs::write(file, good).expect("restore");
}

fn corrupt(e: &Error) -> bool {
    matches!(e, Error::CorruptMetadata { .. })
}

backend_tests! {
    fn files_are_private_and_hold_no_secrets(t) {
        let mut secrets: Vec<String> = Vec::new();
        let mut keep = |s: Secrets| secrets.extend(s.all().map(str::to_string));
        let (a, sa) = tokens::full("256440016");
        t.store.save(&a, SaveOptions::new().label("work")).expect("save");
        keep(sa);
        let (b, sb) = tokens::full("256440016");
        t.store.save(&b, SaveOptions::new()).expect("re-save");
        keep(sb);
        let (c, sc) = tokens::full("other");
        t.store.save(&c, SaveOptions::new().switch(true)).expect("save other");
        keep(sc);
        t.store.switch("work").expect("switch");
        t.store.set_label("other", Some("second")).expect("label");
        t.clock.advance(Duration::from_secs(7200));
        let (d, sd) = tokens::full("256440016");
        t.store
            .refresh(rctoken::Selector::Active, Duration::from_secs(60), |_| Ok::<_, String>(d))
            .expect("refresh");
        keep(sd);
        t.store.remove("second").expect("remove");

        let dir = t.dir();
        assert_eq!(mode(&dir), 0o700, "store directory");
        assert_eq!(mode(&t.meta_path()), 0o600, "metadata file");
        assert_eq!(mode(&t.store.layout().metadata_lock()), 0o600, "lock file");
        assert!(t.store.layout().metadata_lock().is_file());
        let rl = dir.join("refresh-locks");
        assert_eq!(mode(&rl), 0o700, "refresh lock directory");
        assert_eq!(mode(&t.store.layout().profiles_dir()), 0o700, "profiles directory");
        for f in files_under(&dir) {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            assert!(!name.ends_with(".tmp"), "temp file left behind: {name}");
        }
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secret_in_files(&dir, &refs);
        assert_no_secret_in_files(t.tmp.path(), &refs);
    }

    fn metadata_format(t) {
        let (a, _) = tokens::full("256440016");
        let info = t.store.save(&a, SaveOptions::new().label("work")).expect("save");
        let m = t.meta_json();
        assert_eq!(m["format_version"], 2);
        assert_eq!(m["format_version"], rctoken::FORMAT_VERSION);
        assert_eq!(m["active"], "256440016");
        assert_eq!(m["labels"], serde_json::json!({"work": "256440016"}));
        assert_eq!(m["app_id"], t.app.as_str(), "the store names its app id");
        assert_eq!(m.as_object().expect("object").len(), 4, "the index holds no profile: {m}");
        assert_eq!(
            t.store.layout().profile_file("256440016"),
            t.store.layout().profiles_dir().join("256440016.json")
        );
        let p = &t.profile_json("256440016");
        assert_eq!(p["profile"], "256440016");
        assert!(p.get("label").is_none(), "labels live in the index only");
        assert_eq!(p["owner_id"], "256440016");
        assert_eq!(p["scope"], "ReadAccounts ReadMessages SMS");
        assert_eq!(p["token_type"], "bearer");
        assert_eq!(p["expires_in"], 3600);
        assert_eq!(p["session_expiration_time"], "2025-06-02T12:00:00.250Z");
        assert_eq!(p["obtained_at"], "2025-06-01T12:00:00Z");
        assert_eq!(p["access_token_expires_at"], "2025-06-01T13:00:00Z");
        assert_eq!(p["has_refresh_token"], true);
        assert_eq!(p["secret"]["backend"], t.kind.name());
        assert_eq!(p["secret"]["generation"], info.generation());
        assert_eq!(p["secret"]["items"], 1);
        assert_eq!(p["secret"]["envelope_version"], rctoken::ENVELOPE_VERSION);
        let g = info.generation();
        assert!(g.len() == 16 && g.bytes().all(|b| b.is_ascii_hexdigit()), "{g}");
        for field in ["access_token", "refresh_token", "id_token"] {
            assert!(p.get(field).is_none(), "{field} must not be in the metadata");
        }
        let text = String::from_utf8(t.index_bytes()).expect("UTF-8");
        assert!(text.ends_with('\n'));
        let text = std::fs::read_to_string(t.store.layout().profile_file("256440016")).expect("UTF-8");
        assert!(text.ends_with('\n'));
    }

    fn long_profile_keys_get_hashed_file_names(t) {
        // 128 three-byte characters: 1,152 bytes escaped, far over NAME_MAX.
        let key = "\u{20AC}".repeat(128);
        let (a, _) = tokens::full("1");
        t.store.save(&a, SaveOptions::new().profile(&key)).expect("save");
        let path = t.store.layout().profile_file(&key);
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        assert!(name.starts_with('~') && name.len() == 1 + 64 + 5, "{name}");
        assert!(path.is_file());
        assert_eq!(t.store.load(&key).expect("load").info.profile, key);
        assert_eq!(t.store.list().expect("list")[0].profile, key);
        // A file renamed to another profile's name is refused, not misread.
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("save 2");
        let good = std::fs::read(t.store.layout().profile_file("2")).expect("read");
        std::fs::copy(&path, t.store.layout().profile_file("2")).expect("copy");
        assert!(matches!(t.store.load("2"), Err(Error::CorruptMetadata { .. })));
        assert!(matches!(t.store.list(), Err(Error::CorruptMetadata { .. })));
        std::fs::write(t.store.layout().profile_file("2"), good).expect("restore");
        assert_eq!(t.store.list().expect("list").len(), 2);
    }

    fn corrupt_profile_file_is_reported_and_untouched(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new().label("l")).expect("save");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("save");
        let good = std::fs::read(t.store.layout().profile_file("1")).expect("read");
        for cut in [0, 1, good.len() / 2, good.len() - 3] {
            check_unreadable_profile(t, &good[..cut], corrupt);
        }
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        v["profile"] = serde_json::json!("2");
        check_unreadable_profile(t, v.to_string().as_bytes(), corrupt);
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        v.as_object_mut().expect("object").remove("secret");
        check_unreadable_profile(t, v.to_string().as_bytes(), corrupt);
        // Found by the property test: a generation that is not 16 hex digits
        // parsed, and load then blamed the keychain item.
        for (field, value) in [
            ("generation", serde_json::json!("not-hex")),
            ("generation", serde_json::json!("00000000000000FF")),
            ("items", serde_json::json!(0)),
        ] {
            let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
            v["secret"][field] = value;
            check_unreadable_profile(t, v.to_string().as_bytes(), corrupt);
        }
        // While "1" is corrupt, the other profiles work.
        std::fs::write(t.store.layout().profile_file("1"), b"{").expect("corrupt");
        assert_eq!(t.store.load("2").expect("load 2").info.profile, "2");
        t.store.save(&tokens::full("3").0, SaveOptions::new()).expect("save 3");
        std::fs::write(t.store.layout().profile_file("1"), good).expect("restore");
        assert_eq!(t.store.list().expect("list").len(), 3);
    }

    fn format_1_metadata_is_read_and_converted_by_the_first_write(t) {
        let (a, sa) = tokens::full("1");
        t.store.save(&a, SaveOptions::new().label("work")).expect("1");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let infos = t.store.list().expect("list");
        // The same store as format 1 wrote it: one document, labels inline.
        let mut profiles = serde_json::Map::new();
        for key in ["1", "2"] {
            let mut p = t.profile_json(key);
            p.as_object_mut().expect("object").remove("profile");
            if key == "1" {
                p["label"] = serde_json::json!("work");
            }
            profiles.insert(key.to_string(), p);
        }
        let v1 = serde_json::json!({"format_version": 1, "active": "1", "profiles": profiles});
        std::fs::remove_dir_all(t.store.layout().profiles_dir()).expect("rm profiles");
        std::fs::write(t.meta_path(), v1.to_string()).expect("write v1");
        let before = t.meta_bytes();
        assert_eq!(t.store.list().expect("list v1"), infos);
        assert_eq!(tokens::access(&t.store.load("work").expect("label").token), sa.access);
        assert!(t.store.verify().expect("verify").is_clean());
        assert_eq!(t.meta_bytes(), before, "reads never convert");
        t.store.switch("2").expect("switch converts");
        assert_eq!(t.meta_json()["format_version"], 2);
        assert_eq!(t.meta_json()["labels"], serde_json::json!({"work": "1"}));
        assert!(t.store.layout().profile_file("1").is_file() && t.store.layout().profile_file("2").is_file());
        let mut expect = infos.clone();
        expect[0].active = false;
        expect[1].active = true;
        assert_eq!(t.store.list().expect("list v2"), expect);
        assert_eq!(tokens::access(&t.store.load("work").expect("label").token), sa.access);
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn garbage_metadata_is_reported_and_untouched(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("save");
        check_unreadable(t, b"\x00\x01 this is not JSON {{{", corrupt);
        check_unreadable(t, b"", corrupt);
        check_unreadable(t, b"{\"profiles\": {}}", corrupt);
        check_unreadable(t, b"[1, 2, 3]", corrupt);
        // After restoring, everything works again.
        assert_eq!(t.store.load("1").expect("load").info.profile, "1");
    }

    fn truncated_metadata_is_reported_and_untouched(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new().label("l")).expect("save");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("save");
        let good = t.index_bytes();
        for cut in [1, good.len() / 3, good.len() / 2, good.len() - 3] {
            check_unreadable(t, &good[..cut], corrupt);
        }
    }

    fn inconsistent_metadata_is_corrupt(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new().label("l")).expect("save");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("save");
        let good = t.meta_json();
        let mut bad_active = good.clone();
        bad_active["active"] = serde_json::json!("no\nbody");
        check_unreadable(t, bad_active.to_string().as_bytes(), corrupt);
        let mut twice = good.clone();
        twice["labels"]["m"] = serde_json::json!("1");
        check_unreadable(t, twice.to_string().as_bytes(), corrupt);
        let mut bad_label = good.clone();
        bad_label["labels"][" spaced "] = serde_json::json!("2");
        check_unreadable(t, bad_label.to_string().as_bytes(), corrupt);
        let mut v1_twice = serde_json::json!({"format_version": 1, "profiles": {}});
        v1_twice["active"] = serde_json::json!("nobody");
        check_unreadable(t, v1_twice.to_string().as_bytes(), corrupt);
        let mut no_version = good;
        no_version.as_object_mut().expect("object").remove("format_version");
        check_unreadable(t, no_version.to_string().as_bytes(), corrupt);
    }

    fn future_format_version_is_refused_and_untouched(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("save");
        let mut m = t.meta_json();
        m["format_version"] = serde_json::json!(3);
        m["something_new"] = serde_json::json!({"x": 1});
        check_unreadable(t, m.to_string().as_bytes(), |e| {
            matches!(e, Error::UnsupportedVersion { found: 3, supported: 2, .. })
        });
        // Even a newer file that would not parse as version 2 is "too new".
        check_unreadable(t, br#"{"format_version": 7, "profiles": "changed shape"}"#, |e| {
            matches!(e, Error::UnsupportedVersion { found: 7, .. })
        });
    }

    fn missing_metadata_is_an_empty_store(t) {
        assert!(t.store.list().expect("list").is_empty());
        assert!(matches!(t.store.load("x"), Err(Error::NoSuchProfile(_))));
        assert!(!t.meta_path().exists(), "reads create no metadata file");
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("save");
        assert!(t.meta_path().exists());
    }
}
