//! The store on each real backend (Secret Service, keyutils) and the memory
//! backend: round trips of every field, derived instants, expiry queries,
//! profiles (active, switch, labels, remove), Debug redaction.

#![cfg(target_os = "linux")]

use std::time::Duration;

use rctoken::secrecy::ExposeSecret;
use rctoken::{Error, SaveOptions};
use serde_json::json;

use crate::support::backends::Kind;
use crate::support::tokens::{self, Secrets, at, t0};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

backend_tests! {
    fn every_seed_field_round_trips(t) {
        let s = Secrets::new("rt");
        let v = tokens::full_json("256440016", &s);
        let saved = t.store.save(&tokens::parse(&v), SaveOptions::new()).expect("save");
        assert_eq!(saved.profile, "256440016");
        assert_eq!(saved.secrets_backend(), t.kind.name());
        // Through a fresh store object, as another run of the program would.
        let loaded = t.reopen().load("256440016").expect("load");
        assert_eq!(tokens::wire(&loaded.token), v, "load gives back exactly what was saved");
        assert_eq!(loaded.info, saved, "metadata round trips too");
        assert_eq!(loaded.info.obtained_at, t0());
        assert_eq!(loaded.info.access_token_expires_at, at("2025-06-01T13:00:00Z"));
        assert_eq!(loaded.info.refresh_token_expires_at, Some(at("2025-06-08T12:00:00Z")));
        assert_eq!(loaded.info.session_expires_at, Some(at("2025-06-02T12:00:00.25Z")));
        assert!(loaded.info.has_refresh_token && loaded.info.has_id_token);
    }

    fn minimal_token_round_trips(t) {
        let tok = tokens::minimal(Some("42"), "AT-minimal-only", 60);
        t.store.save(&tok, SaveOptions::new()).expect("save");
        let loaded = t.store.load("42").expect("load");
        assert_eq!(tokens::wire(&loaded.token), tokens::wire(&tok));
        assert!(loaded.token.refresh_token.is_none() && loaded.token.id_token.is_none());
        assert!(!loaded.info.has_refresh_token && !loaded.info.has_id_token);
        assert_eq!(loaded.info.refresh_token_expires_at, None);
        assert_eq!(loaded.info.session_expires_at, None);
    }

    fn session_expiration_time_variants(t) {
        let cases = [
            ("a", Some("2025-06-01T14:30:00Z"), None, "2025-06-01T14:30:00Z"),
            ("b", Some("2025-06-01T14:30:00.123456Z"), None, "2025-06-01T14:30:00.123456Z"),
            ("c", Some("2025-06-01T16:30:00+02:00"), None, "2025-06-01T14:30:00Z"),
            ("d", Some("2025-06-01T09:00:00.5-05:30"), Some(60), "2025-06-01T14:30:00.5Z"),
            ("e", None, Some(9000), "2025-06-01T14:30:00Z"),
        ];
        for (key, time, secs_in, expect) in cases {
            let mut v = json!({"access_token": format!("AT-{key}"), "expires_in": 60,
                "scope": "A", "token_type": "bearer"});
            if let Some(s) = time {
                v["session_expiration_time"] = json!(s);
            }
            if let Some(n) = secs_in {
                v["session_expires_in"] = json!(n);
            }
            t.store.save(&tokens::parse(&v), SaveOptions::new().profile(key)).expect("save");
            let loaded = t.reopen().load(key).expect("load");
            assert_eq!(loaded.info.session_expires_at, Some(at(expect)), "case {key}");
            assert_eq!(loaded.token.session_expiration_time.as_deref(), time, "verbatim");
            assert_eq!(loaded.token.session_expires_in, secs_in);
            assert_eq!(tokens::wire(&loaded.token), v, "case {key}");
        }
    }

    fn expiry_queries_follow_the_clock(t) {
        let tok = tokens::with_refresh("7", "AT-exp", "RT-exp", 3600, 7200);
        let info = t.store.save(&tok, SaveOptions::new()).expect("save");
        let now = t.store.now();
        assert!(info.access_token_valid_for(now, secs(3599)));
        assert!(info.access_token_valid_for(now, secs(3600)), "boundary: exactly N left");
        assert!(!info.access_token_valid_for(now, secs(3601)));
        assert!(info.refresh_token_valid_for(now, secs(7200)));
        assert!(!info.refresh_token_valid_for(now, secs(7201)));
        t.clock.advance(secs(3000));
        let info = t.store.info(Some("7")).expect("info");
        let now = t.store.now();
        assert!(info.access_token_valid_for(now, secs(600)));
        assert!(!info.access_token_valid_for(now, secs(601)));
        t.clock.advance(secs(601));
        let now = t.store.now();
        assert!(!info.access_token_valid_for(now, Duration::ZERO), "expired");
        assert!(info.refresh_token_valid_for(now, secs(3599)));
        t.clock.advance(secs(4000));
        assert!(!info.refresh_token_valid_for(t.store.now(), Duration::ZERO));
        // Sub-second precision of the clock is dropped when saving.
        t.clock.set(at("2025-06-01T12:00:00.900Z"));
        let info = t.store.save(&tokens::minimal(Some("8"), "AT-8", 10), SaveOptions::new())
            .expect("save");
        assert_eq!(info.obtained_at, t0());
        assert_eq!(info.access_token_expires_at, at("2025-06-01T12:00:10Z"));
    }

    fn refresh_token_without_ttl_counts_as_valid_and_none_as_invalid(t) {
        let mut tok = tokens::with_refresh("9", "AT-9", "RT-9", 60, 60);
        tok.refresh_token_expires_in = None;
        let info = t.store.save(&tok, SaveOptions::new()).expect("save");
        assert!(info.refresh_token_valid_for(t.store.now() + secs(10_000_000), secs(1)));
        let info = t.store.save(&tokens::minimal(Some("10"), "AT-10", 60), SaveOptions::new())
            .expect("save");
        assert!(!info.refresh_token_valid_for(t.store.now(), Duration::ZERO));
    }

    fn first_profile_becomes_active_later_ones_do_not(t) {
        assert!(matches!(t.store.load(rctoken::Selector::Active), Err(Error::NoActiveProfile)));
        t.store.save(&tokens::full("100").0, SaveOptions::new()).expect("save 100");
        t.store.save(&tokens::full("200").0, SaveOptions::new()).expect("save 200");
        assert_eq!(t.store.load(rctoken::Selector::Active).expect("active").info.profile, "100");
        t.store.save(&tokens::full("200").0, SaveOptions::new()).expect("re-save 200");
        assert_eq!(t.store.resolve(rctoken::Selector::Active).expect("active"), "100");
        t.store.save(&tokens::full("300").0, SaveOptions::new().switch(true)).expect("300");
        assert_eq!(t.store.resolve(rctoken::Selector::Active).expect("active"), "300");
        let list = t.store.list().expect("list");
        let keys: Vec<_> = list.iter().map(|p| (p.profile.as_str(), p.active)).collect();
        assert_eq!(keys, [("100", false), ("200", false), ("300", true)]);
        assert_eq!(t.meta_json()["active"], "300");
    }

    fn switch_by_key_and_by_label(t) {
        let (a, sa) = tokens::full("111");
        let (b, sb) = tokens::full("222");
        t.store.save(&a, SaveOptions::new().label("work")).expect("save a");
        t.store.save(&b, SaveOptions::new().label("home")).expect("save b");
        let p = t.store.switch("home").expect("switch by label");
        assert_eq!(p.profile, "222");
        assert!(p.active);
        assert_eq!(tokens::access(&t.store.load(rctoken::Selector::Active).expect("load").token), sb.access);
        t.store.switch("111").expect("switch by key");
        assert_eq!(tokens::access(&t.reopen().load(rctoken::Selector::Active).expect("load").token), sa.access);
        assert_eq!(tokens::access(&t.store.load("home").expect("by label").token), sb.access);
        let before = t.meta_bytes();
        assert!(matches!(t.store.switch("nobody"), Err(Error::NoSuchProfile(ref k)) if k == "nobody"));
        assert_eq!(t.meta_bytes(), before, "a failed switch changes nothing");
    }

    fn labels_are_unique(t) {
        t.store.save(&tokens::full("111").0, SaveOptions::new().label("work")).expect("a");
        t.store.save(&tokens::full("222").0, SaveOptions::new()).expect("b");
        let before = t.meta_bytes();
        for (bad, as_label) in [("work", true), ("111", false)] {
            let e = t.store.set_label("222", Some(bad)).expect_err("taken");
            assert!(matches!(&e, Error::NameTaken { name, owner, as_label: l }
                if name == bad && owner == "111" && *l == as_label), "{e:?}");
        }
        let e = t.store.save(&tokens::full("222").0, SaveOptions::new().label("work"))
            .expect_err("taken at save");
        assert!(matches!(e, Error::NameTaken { as_label: true, .. }), "{e:?}");
        // A new profile named like another's label: taken too.
        let e = t.store.save(&tokens::full("333").0, SaveOptions::new().profile("work"))
            .expect_err("key taken by a label");
        assert!(matches!(&e, Error::NameTaken { name, owner, as_label: true }
            if name == "work" && owner == "111"), "{e:?}");
        assert_eq!(t.meta_bytes(), before, "refused label changes nothing");
        for bad in ["", " lead", "tab\there", &"x".repeat(129)] {
            assert!(matches!(t.store.set_label("222", Some(bad)), Err(Error::InvalidName { .. })));
        }
        // Re-setting a profile's own label is fine; clearing frees it.
        t.store.set_label("work", Some("work")).expect("same label");
        let p = t.store.set_label("work", None).expect("clear");
        assert_eq!(p.label, None);
        let p = t.store.set_label("222", Some("work")).expect("now free");
        assert_eq!((p.profile.as_str(), p.label.as_deref()), ("222", Some("work")));
        assert_eq!(t.store.resolve(Some("work")).expect("resolve"), "222");
        assert!(matches!(t.store.set_label("nobody", Some("x")), Err(Error::NoSuchProfile(_))));
    }

    fn resave_keeps_label_and_replaces_tokens(t) {
        let (a1, s1) = tokens::full("500");
        let first = t.store.save(&a1, SaveOptions::new().label("main")).expect("save");
        let (a2, s2) = tokens::full("500");
        t.clock.advance(secs(60));
        let second = t.store.save(&a2, SaveOptions::new()).expect("re-save");
        assert_eq!(second.label.as_deref(), Some("main"), "label kept");
        assert_ne!(second.generation(), first.generation());
        assert_eq!(second.obtained_at, t0() + secs(60));
        let loaded = t.store.load("main").expect("load");
        assert_eq!(tokens::access(&loaded.token), s2.access);
        assert_eq!(tokens::refresh(&loaded.token), Some(s2.refresh.as_str()));
        assert_ne!(s1.access, s2.access);
        let third = t.store.save(&a2, SaveOptions::new().label("renamed")).expect("relabel");
        assert_eq!(third.label.as_deref(), Some("renamed"));
        assert!(matches!(t.store.load("main"), Err(Error::NoSuchProfile(_))));
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn old_generation_is_deleted_and_one_item_per_profile(t) {
        let g1 = t.store.save(&tokens::full("600").0, SaveOptions::new()).expect("save");
        let acc1 = format!("600.{}.0", g1.generation());
        assert_eq!(g1.keychain_items(), 1, "a normal token is one item");
        assert_eq!(t.accounts(), vec![acc1.clone()]);
        let g2 = t.store.save(&tokens::full("600").0, SaveOptions::new()).expect("re-save");
        let acc2 = format!("600.{}.0", g2.generation());
        assert_eq!(t.accounts(), vec![acc2], "old generation deleted");
        t.store.save(&tokens::full("601").0, SaveOptions::new()).expect("save 601");
        assert_eq!(t.accounts().len(), 2, "one item per profile");
        let report = t.store.verify().expect("verify");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.profiles_checked, 2);
        assert!(report.orphan_scan);
    }

    fn remove_active_leaves_none_active(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new().label("one")).expect("1");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let removed = t.store.remove("one").expect("remove by label");
        assert_eq!(removed.profile, "1");
        assert!(matches!(t.store.load(rctoken::Selector::Active), Err(Error::NoActiveProfile)));
        assert!(matches!(t.store.info(rctoken::Selector::Active), Err(Error::NoActiveProfile)));
        assert_eq!(t.meta_json()["active"], serde_json::Value::Null);
        let list = t.store.list().expect("list");
        assert_eq!(list.len(), 1);
        assert!(!list[0].active, "no profile was picked silently");
        assert!(matches!(t.store.load("1"), Err(Error::NoSuchProfile(_))));
        assert!(t.accounts().iter().all(|a| !a.starts_with("1.")), "secrets gone");
        assert!(matches!(t.store.remove("1"), Err(Error::NoSuchProfile(_))));
    }

    fn remove_inactive_keeps_active(t) {
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        let (b, _) = tokens::full("2");
        t.store.save(&b, SaveOptions::new()).expect("2");
        t.store.remove("2").expect("remove");
        assert_eq!(t.store.resolve(rctoken::Selector::Active).expect("active"), "1");
        assert_eq!(t.accounts().len(), 1);
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn remove_all_removes_every_profile_and_item(t) {
        for k in ["a1", "a2", "a3"] {
            t.store.save(&tokens::full(k).0, SaveOptions::new()).expect("save");
        }
        // An item of this store that no profile owns (its profile file was
        // lost) goes too; another store's of the same app id stays.
        let ghost = t.store.save(&tokens::full("ghost").0, SaveOptions::new()).expect("ghost");
        std::fs::remove_file(t.store.layout().profile_file("ghost")).expect("lose ghost's file");
        let other = t.elsewhere("other");
        let kept = other.save(&tokens::full("kept").0, SaveOptions::new()).expect("kept");
        // The other directory's item is in this namespace only where the
        // namespace is shared (not in the sealed store: files per directory).
        let theirs = usize::from(t.shares_namespace());
        assert_eq!(t.accounts().len(), 4 + theirs);
        assert_eq!(t.store.remove_all().expect("remove_all"), 3);
        assert!(t.store.list().expect("list").is_empty());
        assert!(!t.accounts().iter().any(|a| a.starts_with(&format!("ghost.{}", ghost.generation()))));
        assert_eq!(t.accounts().len(), theirs, "only the other store's item is left");
        assert!(other.load("kept").is_ok(), "another store's profile is never touched");
        assert_eq!(other.remove_all().expect("other remove_all"), 1);
        let _ = kept;
        assert_eq!(t.accounts(), Vec::<String>::new());
        assert!(matches!(t.store.load(rctoken::Selector::Active), Err(Error::NoActiveProfile)));
        assert_eq!(t.store.remove_all().expect("again"), 0);
    }

    fn token_without_owner_needs_a_profile(t) {
        let tok = tokens::minimal(None, "AT-anon", 60);
        assert!(matches!(t.store.save(&tok, SaveOptions::new()), Err(Error::MissingProfileKey)));
        assert!(!t.meta_path().exists(), "nothing written");
        let info = t.store.save(&tok, SaveOptions::new().profile("sandbox")).expect("save");
        assert_eq!((info.profile.as_str(), info.owner_id.as_deref()), ("sandbox", None));
        assert_eq!(tokens::access(&t.store.load("sandbox").expect("load").token), "AT-anon");
        // An explicit profile also overrides an owner_id.
        let info = t.store.save(&tokens::full("999").0, SaveOptions::new().profile("alias"))
            .expect("save");
        assert_eq!((info.profile.as_str(), info.owner_id.as_deref()), ("alias", Some("999")));
    }

    fn profile_keys_with_any_printable_characters(t) {
        for key in ["a/b", "x.y", "ü-ñ", "%41", "A", "with space"] {
            let tok = tokens::minimal(None, &format!("AT-{key}"), 60);
            t.store.save(&tok, SaveOptions::new().profile(key)).expect("save");
        }
        for key in ["a/b", "x.y", "ü-ñ", "%41", "A", "with space"] {
            let l = t.store.load(key).expect("load");
            assert_eq!(tokens::access(&l.token), format!("AT-{key}"), "{key}");
        }
        assert_eq!(t.accounts().len(), 6, "distinct items for %41 and A");
        for bad in ["", " x", "a\nb"] {
            let tok = tokens::minimal(None, "AT", 60);
            let e = t.store.save(&tok, SaveOptions::new().profile(bad)).expect_err("bad key");
            assert!(matches!(e, Error::InvalidName { .. }), "{e:?}");
        }
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn list_and_info_show_metadata_only(t) {
        let (tok, s) = tokens::full("321");
        t.store.save(&tok, SaveOptions::new().label("lbl")).expect("save");
        let info = t.store.info(Some("lbl")).expect("info");
        assert_eq!(info.scope, "ReadAccounts ReadMessages SMS");
        assert_eq!(info.endpoint_id.as_deref(), Some("ep-Qz0dxlhLQ"));
        assert_eq!(info.session_id.as_deref(), Some("sess-98765"));
        assert_eq!(info.session_idle_timeout, Some(1800));
        assert_eq!(t.store.list().expect("list"), vec![info.clone()]);
        let shown = format!("{info:?}");
        for secret in s.all() {
            assert!(!shown.contains(secret));
        }
    }

    fn debug_never_shows_secrets(t) {
        let (tok, s) = tokens::full("77");
        t.store.save(&tok, SaveOptions::new()).expect("save");
        let loaded = t.store.load("77").expect("load");
        assert_eq!(loaded.token.access_token.expose_secret(), s.access);
        for shown in [
            format!("{loaded:?}"),
            format!("{loaded:#?}"),
            format!("{:?}", t.store),
            format!("{:#?}", loaded.token),
            format!("{:?}", t.store.verify().expect("verify")),
        ] {
            for secret in s.all() {
                assert!(!shown.contains(secret), "Debug shows a secret: {shown}");
            }
        }
        assert!(format!("{:?}", t.store).contains(&t.app));
    }

    fn two_store_objects_share_one_store(t) {
        let other = t.reopen();
        let (a, sa) = tokens::full("1");
        t.store.save(&a, SaveOptions::new()).expect("save");
        assert_eq!(tokens::access(&other.load("1").expect("load").token), sa.access);
        let (a2, sa2) = tokens::full("1");
        other.save(&a2, SaveOptions::new().label("x")).expect("save from other");
        let l = t.store.load("x").expect("load");
        assert_eq!(tokens::access(&l.token), sa2.access);
        assert_eq!(t.accounts().len(), 1);
    }

    fn backend_reports_name_and_reason(t) {
        let (name, reason) = t.store.backend().expect("backend");
        assert_eq!(name, t.kind.name());
        assert!(!reason.is_empty());
        if t.kind == Kind::Keyutils {
            assert!(reason.contains("reboot"), "{reason}");
        }
        assert_eq!(t.store.requested_backend(), t.kind.name());
    }
}

/// An item limit so small that the envelope would need more than 65,535
/// items is refused before anything is written, not wrapped around.
#[test]
fn an_envelope_needing_more_than_u16_items_is_refused() {
    use rctoken::{Backend, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
    let tmp = tempfile::tempdir().expect("tempdir");
    let keychain = MemoryKeychain::new();
    let store = TokenStore::builder("too-many-items")
        .dir(tmp.path())
        .backend(Backend::Memory(keychain.clone()))
        .max_item_bytes(18)
        .open()
        .expect("open");
    let big = "a".repeat(70_000);
    let token = TokenInfo::new(big.as_str().into(), 3600, "x");
    let err = store
        .save(&token, SaveOptions::new().profile("p"))
        .expect_err("too many items");
    assert!(
        matches!(err, rctoken::Error::KeychainFull { .. }),
        "{err:?}"
    );
    assert!(keychain.is_empty(), "nothing was written");
    assert!(store.list().expect("list").is_empty());
}
