//! Drift between the metadata and the keychain, on each backend: `verify`
//! finds a missing secret, an orphaned item, an unreadable or other-version
//! envelope, corrupt or too-new metadata, an index naming a missing profile;
//! `repair` fixes what it can, keeps a corrupt index or profile file aside
//! and rebuilds the profiles from the keychain.

#![cfg(target_os = "linux")]

use std::time::Duration;

use rctoken::{Error, Problem, SaveOptions};

use crate::files::files_under;
use crate::support::tokens;

fn item0(info: &rctoken::ProfileInfo) -> String {
    format!("{}.{}.0", info.profile, info.generation())
}

backend_tests! {
    fn missing_secret_is_detected_and_repaired(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new().label("gone")).expect("1");
        let (b, sb) = tokens::full("2");
        t.store.save(&b, SaveOptions::new()).expect("2");
        t.delete_behind_back("1");
        let before = t.meta_bytes();
        match t.store.load("gone") {
            Err(Error::SecretMissing { profile, backend }) => {
                assert_eq!((profile.as_str(), backend.as_str()), ("1", t.kind.name()));
            }
            other => panic!("expected SecretMissing, got {other:?}"),
        }
        let report = t.store.verify().expect("verify");
        assert_eq!(report.problems, vec![Problem::SecretMissing { profile: "1".into() }]);
        assert_eq!(report.profiles_checked, 2);
        assert_eq!(t.meta_bytes(), before, "verify changes nothing");
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.fixed.len(), 1, "{:?}", report.fixed);
        assert!(report.fixed[0].contains("`1`"), "{:?}", report.fixed);
        let keys: Vec<_> = t.store.list().expect("list").into_iter().map(|p| p.profile).collect();
        assert_eq!(keys, ["2"]);
        assert!(matches!(t.store.load(rctoken::Selector::Active), Err(Error::NoActiveProfile)), "was active");
        assert_eq!(tokens::access(&t.store.load("2").expect("load").token), sb.access);
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn orphan_is_detected_and_repaired(t) {
        let (a, sa) = tokens::full("1");
        t.store.save(&a, SaveOptions::new()).expect("1");
        // An item this store wrote that its metadata no longer lists.
        let ghost = t.store.save(&tokens::full("ghost").0, SaveOptions::new()).expect("ghost");
        std::fs::remove_file(t.store.layout().profile_file("ghost")).expect("lose ghost's file");
        let account = item0(&ghost);
        // Another store of the same app (another directory) owns items this
        // store's metadata does not list: not orphans, never touched.
        let other = t.elsewhere("other");
        let theirs = other.save(&tokens::full("theirs").0, SaveOptions::new()).expect("theirs");
        let before = t.meta_bytes();
        let report = t.store.verify().expect("verify");
        assert_eq!(report.problems, vec![Problem::Orphan { account: account.clone() }]);
        assert!(report.orphan_scan);
        assert_eq!(t.meta_bytes(), before);
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(report.fixed.iter().any(|f| f.contains(&account)), "{:?}", report.fixed);
        assert!(!t.accounts().contains(&account), "deleted");
        assert_eq!(tokens::access(&t.store.load("1").expect("load").token), sa.access);
        assert!(other.load("theirs").is_ok(), "the other store's profile is intact");
        let mut expect = vec![item0(&t.store.info(Some("1")).expect("info"))];
        if t.shares_namespace() {
            expect.push(item0(&theirs));
        }
        expect.sort();
        assert_eq!(t.accounts(), expect);
        assert_eq!(t.meta_bytes(), before, "nothing listed changed");
        other.remove_all().expect("clean up the other store");
    }

    fn corrupt_index_is_moved_aside_and_replaced(t) {
        let (a, _) = tokens::full("111");
        let (b, _) = tokens::full("222");
        t.store.save(&a, SaveOptions::new().label("work")).expect("a");
        t.store.save(&b, SaveOptions::new().label("home")).expect("b");
        let infos = t.store.list().expect("list");
        let garbage = b"{\"format_version\": 2, \"active\": tr".to_vec();
        std::fs::write(t.meta_path(), &garbage).expect("corrupt");

        let before = t.meta_bytes();
        let report = t.store.verify().expect("verify");
        assert!(matches!(report.problems.as_slice(), [Problem::MetadataCorrupt { .. }]),
            "{:?}", report.problems);
        assert_eq!(t.meta_bytes(), before, "verify changes nothing");

        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(report.fixed.iter().any(|f| f.contains("moved")), "{:?}", report.fixed);
        let aside: Vec<_> = files_under(&t.dir()).into_iter()
            .filter(|p| p.to_string_lossy().contains("metadata.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the corrupt file is kept aside");
        assert_eq!(std::fs::read(&aside[0]).expect("read"), garbage, "kept unchanged");
        // The profiles' own files survive; what the index held (labels, the
        // active profile) is lost, as documented.
        let after = t.store.list().expect("list");
        assert_eq!(after.len(), 2);
        for (old, new) in infos.iter().zip(&after) {
            let mut expect = old.clone();
            expect.active = false;
            expect.label = None;
            assert_eq!(new, &expect, "profile {} kept", old.profile);
        }
        assert!(matches!(t.store.load(rctoken::Selector::Active), Err(Error::NoActiveProfile)), "none active");
        assert_eq!(tokens::wire(&t.store.load("222").expect("load").token), tokens::wire(&b));
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn corrupt_profile_file_is_moved_aside_and_rebuilt(t) {
        let (a, _) = tokens::full("111");
        let c = tokens::minimal(None, "AT-nameless", 60);
        t.store.save(&a, SaveOptions::new().label("work")).expect("a");
        t.clock.advance(Duration::from_secs(10));
        t.store.save(&c, SaveOptions::new().profile("sandbox/1")).expect("c");
        let infos = t.store.list().expect("list");
        let path = t.store.layout().profile_file("sandbox/1");
        let garbage = b"{\"profile\": \"sandbox/1\", \"scope\": tr".to_vec();
        std::fs::write(&path, &garbage).expect("corrupt");
        assert!(matches!(t.store.list(), Err(Error::CorruptMetadata { path: p, .. }) if p == path));

        let before = t.meta_bytes();
        let report = t.store.verify().expect("verify");
        assert!(matches!(report.problems.as_slice(),
            [Problem::ProfileFileCorrupt { path: p, .. }] if *p == path),
            "its items are not orphans: {:?}", report.problems);
        assert_eq!(t.meta_bytes(), before, "verify changes nothing");

        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(report.fixed.iter().any(|f| f.contains("rebuilt 1 profile")), "{:?}", report.fixed);
        let aside: Vec<_> = files_under(&t.dir()).into_iter()
            .filter(|p| p.to_string_lossy().contains(".json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the corrupt file is kept aside");
        assert_eq!(std::fs::read(&aside[0]).expect("read"), garbage, "kept unchanged");
        assert_eq!(t.store.list().expect("list"), infos, "rebuilt from its envelope");
        let l = t.store.load("sandbox/1").expect("load rebuilt");
        assert_eq!(tokens::wire(&l.token), tokens::wire(&c));
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn corrupt_format_1_metadata_is_rebuilt_from_the_keychain(t) {
        let (a, _) = tokens::full("111");
        let (b, _) = tokens::full("222");
        t.store.save(&a, SaveOptions::new().label("work")).expect("a");
        t.clock.advance(Duration::from_secs(10));
        t.store.save(&b, SaveOptions::new()).expect("b");
        let infos = t.store.list().expect("list");
        // A format-1 store keeps every profile in metadata.json: no profile
        // files. Damage it: only the envelopes remain.
        std::fs::remove_dir_all(t.store.layout().profiles_dir()).expect("rm profiles");
        let garbage = b"{\"format_version\": 1, \"profiles\": {\"111\": tr".to_vec();
        std::fs::write(t.meta_path(), &garbage).expect("corrupt");
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(report.fixed.iter().any(|f| f.contains("rebuilt 2 profile")), "{:?}", report.fixed);
        let rebuilt = t.store.list().expect("list");
        assert_eq!(rebuilt.len(), 2);
        for (old, new) in infos.iter().zip(&rebuilt) {
            let mut expect = old.clone();
            expect.active = false;
            expect.label = None;
            assert_eq!(new, &expect, "profile {} rebuilt from its envelope", old.profile);
        }
        for (key, tok) in [("111", &a), ("222", &b)] {
            let l = t.store.load(key).expect("load rebuilt");
            assert_eq!(tokens::wire(&l.token), tokens::wire(tok), "{key}");
        }
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn dangling_index_entries_are_reported_and_dropped(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new().label("one")).expect("1");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        // What an interrupted remove of "1" or first save of "9" leaves.
        let mut m = t.meta_json();
        m["active"] = serde_json::json!("9");
        m["labels"]["nine"] = serde_json::json!("9");
        std::fs::write(t.meta_path(), m.to_string()).expect("write");
        assert!(matches!(t.store.load(rctoken::Selector::Active), Err(Error::NoActiveProfile)), "ignored");
        assert!(matches!(t.store.load("nine"), Err(Error::NoSuchProfile(_))), "ignored");
        assert_eq!(t.store.info(Some("one")).expect("label").profile, "1");
        let report = t.store.verify().expect("verify");
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(report.problems.iter().all(|p| matches!(p,
            Problem::DanglingReference { profile, .. } if profile == "9")), "{:?}", report.problems);
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        let m = t.meta_json();
        assert_eq!(m["active"], serde_json::Value::Null);
        assert_eq!(m["labels"], serde_json::json!({"one": "1"}));
        // A profile "9" saved later inherits neither.
        let info = t.store.save(&tokens::full("9").0, SaveOptions::new()).expect("9");
        assert_eq!((info.label, info.active), (None, false));
    }

    fn rebuild_keeps_the_newest_save_of_a_profile(t) {
        // Two saves of profile 1 by this store whose older generation was
        // left behind (as by a crash before its deletion): the older
        // store directory moved away, so nobody else can own it.
        let (old, _) = tokens::full("1");
        let (new, _) = tokens::full("1");
        let info = if t.shares_namespace() {
            let older = t.elsewhere("older");
            older.save(&old, SaveOptions::new()).expect("older save");
            std::fs::remove_dir_all(older.dir()).expect("the older store is gone");
            t.clock.advance(Duration::from_secs(60));
            t.store.save(&new, SaveOptions::new()).expect("newer save")
        } else {
            // The sealed store's items live in its directory: leave the
            // older generation behind in this one (put back after the newer
            // save deleted it, as a crash before the deletion would).
            let older = t.store.save(&old, SaveOptions::new()).expect("older save");
            let kept = t.raw().get(&item0(&older)).expect("older item");
            t.clock.advance(Duration::from_secs(60));
            let info = t.store.save(&new, SaveOptions::new()).expect("newer save");
            t.raw().set(&item0(&older), &kept);
            info
        };
        assert_eq!(t.accounts().len(), 2);
        std::fs::write(t.meta_path(), b"not json").expect("corrupt");
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        let l = t.store.load("1").expect("load");
        assert_eq!(tokens::wire(&l.token), tokens::wire(&new));
        assert_eq!(l.info.generation(), info.generation());
        assert_eq!(t.accounts(), vec![item0(&info)], "the older save was deleted");
    }

    fn too_new_metadata_is_left_alone(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("save");
        let good = t.index_bytes();
        let mut m = t.meta_json();
        m["format_version"] = serde_json::json!(3);
        let newer = m.to_string().into_bytes();
        std::fs::write(t.meta_path(), &newer).expect("write");
        let before = t.meta_bytes();
        let expect = vec![Problem::MetadataTooNew { found: 3 }];
        assert_eq!(t.store.verify().expect("verify").problems, expect);
        // Whether repair reports or refuses (see the next test), it never
        // touches a newer file.
        let _ = t.store.repair();
        assert_eq!(t.meta_bytes(), before, "a newer store is never touched");
        assert_eq!(t.accounts().len(), 1, "its secrets are not touched either");
        std::fs::write(t.meta_path(), good).expect("restore");
    }

    fn repair_reports_too_new_metadata_as_remaining(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("save");
        let good = t.index_bytes();
        let mut m = t.meta_json();
        m["format_version"] = serde_json::json!(3);
        std::fs::write(t.meta_path(), m.to_string()).expect("write");
        let result = t.store.repair();
        std::fs::write(t.meta_path(), good).expect("restore");
        // Documented: "A metadata file from a newer version ... left alone",
        // and Report::problems holds "after a repair: those that remain".
        let report = result.expect("repair reports, not fails");
        assert_eq!(report.problems, vec![Problem::MetadataTooNew { found: 3 }]);
        assert!(report.fixed.is_empty(), "{:?}", report.fixed);
    }

    fn clean_store_verifies_clean_and_repair_does_nothing(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let before = (t.meta_bytes(), t.accounts());
        let v = t.store.verify().expect("verify");
        assert!(v.is_clean() && v.orphan_scan && v.profiles_checked == 2, "{v:?}");
        let r = t.store.repair().expect("repair");
        assert!(r.is_clean() && r.fixed.is_empty(), "{r:?}");
        assert_eq!((t.meta_bytes(), t.accounts()), before);
    }

    fn profile_of_another_backend_is_reported_not_touched(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("save");
        let good = t.profile_json("1");
        let mut m = good.clone();
        m["secret"]["backend"] = serde_json::json!("windows-credential-manager");
        t.write_profile_json("1", &m);
        match t.store.load("1") {
            Err(Error::WrongBackend { profile, held_by, backend }) => {
                assert_eq!(profile, "1");
                assert_eq!(held_by, "windows-credential-manager");
                assert_eq!(backend, t.kind.name());
            }
            other => panic!("expected WrongBackend, got {other:?}"),
        }
        let report = t.store.verify().expect("verify");
        assert!(report.problems.contains(&Problem::OtherBackend {
            profile: "1".into(),
            held_by: "windows-credential-manager".into(),
        }), "{:?}", report.problems);
        let before = (t.meta_bytes(), t.accounts());
        assert!(matches!(t.store.remove("1"), Err(Error::WrongBackend { .. })));
        assert!(matches!(t.store.remove_all(), Err(Error::WrongBackend { .. })),
            "remove_all refuses rather than strand secrets in the other backend");
        assert_eq!((t.meta_bytes(), t.accounts()), before, "nothing removed");
        t.write_profile_json("1", &good);
    }
}

real_backend_tests! {
    // Issue 10 case 1: repair once deleted a profile whose file was
    // corrupt when its envelope's own record did not parse (an empty record
    // written by a failed serialization), losing its old and new tokens.
    // The secrets are intact, so repair must keep them.
    fn rebuild_keeps_secrets_whose_record_is_unreadable(t) {
        let (tok, s) = tokens::full("1");
        let info = t.store.save(&tok, SaveOptions::new()).expect("1");
        let raw = t.raw();
        let mut item = raw.get(&item0(&info)).expect("item of 1");
        // item header (17) | "RCTE" ver gen (13) | key len (2) + "1" | record len (4) | record
        let at = 17 + 13 + 2 + 1;
        assert_eq!(&item[17..21], b"RCTE");
        let rlen = u32::from_be_bytes(item[at..at + 4].try_into().unwrap()) as usize;
        for b in &mut item[at + 4..at + 4 + rlen] {
            *b = b' ';
        }
        raw.set(&item0(&info), &item);
        std::fs::write(t.store.layout().profile_file("1"), b"").expect("empty profile file");
        let report = t.store.repair().expect("repair");
        assert!(report.fixed.iter().any(|f| f.contains("rebuilt 1 profile")), "{:?}", report.fixed);
        let l = t.store.load("1").expect("the profile is kept");
        assert_eq!(tokens::access(&l.token), s.access, "with its own secrets");
        assert_eq!(tokens::refresh(&l.token), Some(s.refresh.as_str()));
        assert!(l.info.has_refresh_token);
        assert!(
            !l.info.access_token_valid_for(t.store.now(), Duration::ZERO),
            "its expiry is unknown, so it counts as expired and the next use refreshes it"
        );
    }

    fn damaged_item_is_unreadable_and_repaired(t) {
        let info = t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let raw = t.raw();
        let good = raw.get(&item0(&info)).expect("item");
        // Cut the envelope short: right framing, damaged content.
        raw.set(&item0(&info), &good[..good.len() - 7]);
        match t.store.load("1") {
            Err(Error::CorruptSecret { profile, reason }) => {
                assert_eq!(profile, "1");
                assert!(reason.contains("truncated"), "{reason}");
            }
            other => panic!("expected CorruptSecret, got {other:?}"),
        }
        let report = t.store.verify().expect("verify");
        assert!(matches!(report.problems.as_slice(),
            [Problem::SecretUnreadable { profile, .. }] if profile == "1"), "{:?}", report.problems);
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(raw.get(&item0(&info)), None, "the unreadable item is deleted");
        let keys: Vec<_> = t.store.list().expect("list").into_iter().map(|p| p.profile).collect();
        assert_eq!(keys, ["2"]);
    }

    fn foreign_bytes_in_an_item_are_detected_and_repaired(t) {
        let info = t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        let raw = t.raw();
        let secret_looking = "not-an-item-zz9-content";
        raw.set(&item0(&info), secret_looking.as_bytes());
        match t.store.load("1") {
            Err(e @ Error::CorruptSecret { .. }) => {
                assert!(!e.to_string().contains(secret_looking), "no content in errors: {e}");
            }
            other => panic!("expected CorruptSecret, got {other:?}"),
        }
        // Not our framing at all: reported as unreadable or as another format.
        let report = t.store.verify().expect("verify");
        assert!(matches!(report.problems.as_slice(),
            [Problem::SecretUnreadable { profile, .. } | Problem::VersionMismatch { profile, .. }]
                if profile == "1"), "{:?}", report.problems);
        assert!(!format!("{report:?}").contains(secret_looking));
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(t.store.list().expect("list").is_empty());
        assert_eq!(raw.accounts(), Vec::<String>::new());
    }

    fn other_versions_are_a_version_mismatch(t) {
        let i1 = t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        let i2 = t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let raw = t.raw();
        let mut item = raw.get(&item0(&i1)).expect("item of 1");
        assert_eq!(&item[..4], b"RCTI");
        item[4] = 2; // item framing version
        raw.set(&item0(&i1), &item);
        let mut item = raw.get(&item0(&i2)).expect("item of 2");
        assert_eq!(&item[17..21], b"RCTE");
        item[21] = 9; // envelope version
        raw.set(&item0(&i2), &item);
        // An item framing this build does not know is corrupt; a newer
        // envelope is a newer rctoken's: upgrade, nothing is wrong with it.
        match t.store.load("1") {
            Err(Error::CorruptSecret { reason, .. }) => {
                assert!(reason.contains("version"), "{reason}")
            }
            other => panic!("expected CorruptSecret, got {other:?}"),
        }
        match t.store.load("2") {
            Err(Error::SecretsTooNew {
                found: 9,
                supported: rctoken::ENVELOPE_VERSION,
                ..
            }) => {}
            other => panic!("expected SecretsTooNew, got {other:?}"),
        }
        let report = t.store.verify().expect("verify");
        let mut versions: Vec<_> = report.problems.iter().filter_map(|p| match p {
            Problem::VersionMismatch { profile, .. } => Some(profile.as_str()),
            _ => None,
        }).collect();
        versions.sort();
        assert_eq!(versions, ["1", "2"], "{:?}", report.problems);
        assert_eq!(report.problems.len(), 2);
    }

    fn repair_drops_older_versions_but_keeps_newer_ones(t) {
        let old = t.store.save(&tokens::full("old").0, SaveOptions::new()).expect("old");
        let new = t.store.save(&tokens::full("new").0, SaveOptions::new()).expect("new");
        let raw = t.raw();
        let mut item = raw.get(&item0(&old)).expect("item of old");
        item[21] = 0; // an envelope version older than any this build writes
        raw.set(&item0(&old), &item);
        let mut item = raw.get(&item0(&new)).expect("item of new");
        item[21] = 9; // a newer rctoken's envelope
        raw.set(&item0(&new), &item);
        let report = t.store.repair().expect("repair");
        let keys: Vec<_> = t.store.list().expect("list").into_iter().map(|p| p.profile).collect();
        assert_eq!(keys, ["new"], "the newer envelope is kept, the older dropped");
        assert!(matches!(report.problems.as_slice(),
            [Problem::VersionMismatch { profile, newer: true, .. }] if profile == "new"),
            "{:?}", report.problems);
        assert_eq!(raw.get(&item0(&new)).expect("kept")[21], 9, "a newer item is never rewritten");
        assert!(raw.get(&item0(&old)).is_none(), "the older item is deleted");
    }

    fn item_of_another_save_is_never_returned(t) {
        let i1 = t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        let i2 = t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let raw = t.raw();
        let foreign = raw.get(&item0(&i2)).expect("item of 2");
        raw.set(&item0(&i1), &foreign);
        assert!(matches!(t.store.load("1"), Err(Error::CorruptSecret { .. })),
            "a reader never sees secrets from another save");
        let report = t.store.verify().expect("verify");
        assert!(matches!(report.problems.as_slice(),
            [Problem::SecretUnreadable { profile, .. }] if profile == "1"), "{:?}", report.problems);
    }

    fn stray_items_in_the_namespace_are_reported_and_left(t) {
        let info = t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        let raw = t.raw();
        // Items whose writer cannot be told (not rctoken's, or damaged) may
        // belong to another store of this app id: reported, never deleted.
        let strays = ["1.00000000000000ff.0", "junk"];
        // An extra item of this store's own generation: an orphan.
        let orphan = format!("1.{}.1", info.generation());
        for s in strays.iter().copied().chain([orphan.as_str()]) {
            raw.set(s, b"stray bytes");
        }
        let report = t.store.verify().expect("verify");
        let mut found: Vec<_> = report.problems.iter().map(|p| match p {
            Problem::Orphan { account } => format!("orphan {account}"),
            Problem::StrayItem { account } => format!("stray {account}"),
            other => format!("{other:?}"),
        }).collect();
        found.sort();
        assert_eq!(found, [
            format!("orphan {orphan}"),
            "stray 1.00000000000000ff.0".to_string(),
            "stray junk".to_string(),
        ]);
        let report = t.store.repair().expect("repair");
        assert!(report.fixed.iter().any(|f| f.contains(&orphan)), "{:?}", report.fixed);
        assert_eq!(report.problems.len(), 2, "the strays remain reported: {:?}", report.problems);
        let mut left = vec![item0(&info)];
        left.extend(strays.iter().map(|s| s.to_string()));
        left.sort();
        assert_eq!(raw.accounts(), left);
        assert!(t.store.load("1").is_ok());
        for s in strays {
            raw.delete(s);
        }
    }

    fn one_missing_part_of_a_split_envelope_is_a_missing_secret(t) {
        let small = t.builder().dir(t.dir()).max_item_bytes(64).open().expect("open");
        let (a, sa) = tokens::full("1");
        let info = small.save(&a, SaveOptions::new()).expect("save split");
        assert!(info.keychain_items() > 5, "split into {} items", info.keychain_items());
        let raw = t.raw();
        assert_eq!(raw.accounts_of("1").len(), info.keychain_items() as usize);
        for item in raw.accounts_of("1") {
            assert!(raw.get(&item).expect("item").len() <= 64);
        }
        // Any store reads it back, whatever its own limit.
        assert_eq!(tokens::access(&t.store.load("1").expect("load").token), sa.access);
        let middle = format!("1.{}.3", info.generation());
        assert!(raw.delete(&middle));
        assert!(matches!(t.store.load("1"), Err(Error::SecretMissing { .. })));
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(raw.accounts(), Vec::<String>::new(), "remaining parts deleted");
    }
}
