//! The commit point failing: the metadata rename of a save, refresh, switch,
//! label change or logout fails (feature `failpoints`). Before the commit the
//! store stays exactly as it was; a logout has already deleted the secrets
//! (invariant (c)), so only a listing without secrets remains, which verify
//! reports and repair drops.
//!
//! The failpoint is process-global: a save of any other test of this binary
//! would consume it. So each test runs in a process of its own, setup and
//! cleanup included (`serial;`).

#![cfg(all(target_os = "linux", feature = "failpoints"))]

use std::time::Duration;

use rctoken::testing::failpoint::{self, Point};
use rctoken::{Error, Problem, SaveOptions};

use crate::ctx::Ctx;
use crate::files::files_under;
use crate::support::tokens;

/// Start from a disarmed failpoint (a failed test may have left one armed).
fn disarmed() {
    failpoint::clear();
}

fn rename_failed(e: &Error) -> bool {
    matches!(e, Error::Io { op: "renaming", .. })
}

fn state(t: &Ctx) -> (Vec<u8>, Vec<String>) {
    (t.meta_bytes(), t.accounts())
}

fn no_temp_files(t: &Ctx) {
    for f in files_under(&t.dir()) {
        assert!(!f.to_string_lossy().ends_with(".tmp"), "{}", f.display());
    }
}

backend_tests! {
    serial;

    fn failed_commit_of_a_save_changes_nothing(t) {
        disarmed();
        let (tok, s) = tokens::full("1");
        t.store.save(&tok, SaveOptions::new()).expect("save");
        let before = state(t);
        failpoint::fail_next(Point::MetadataRename);
        let e = t.store.save(&tokens::full("1").0, SaveOptions::new().label("x"))
            .expect_err("commit fails");
        assert!(rename_failed(&e), "{e:?}");
        assert_eq!(state(t), before, "new items deleted, metadata untouched");
        no_temp_files(t);
        let l = t.store.load("1").expect("old state loads");
        assert_eq!(tokens::wire(&l.token), tokens::wire(&tok));
        assert_eq!(tokens::access(&l.token), s.access);
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn failed_commit_of_a_first_save_leaves_nothing(t) {
        disarmed();
        failpoint::fail_next(Point::MetadataRename);
        let e = t.store.save(&tokens::full("1").0, SaveOptions::new()).expect_err("fails");
        assert!(rename_failed(&e), "{e:?}");
        assert!(!t.meta_path().exists());
        assert_eq!(t.accounts(), Vec::<String>::new());
        no_temp_files(t);
    }

    fn failed_commit_of_a_refresh_keeps_the_old_tokens(t) {
        disarmed();
        let (tok, _) = tokens::full("1");
        t.store.save(&tok, SaveOptions::new()).expect("save");
        t.clock.advance(Duration::from_secs(7200));
        let before = state(t);
        failpoint::fail_next(Point::MetadataRename);
        let mut calls = 0;
        let (next, _) = tokens::full("1");
        let e = t.store
            .refresh(rctoken::Selector::Active, Duration::from_secs(60), |_| {
                calls += 1;
                Ok::<_, String>(next.clone())
            })
            .expect_err("commit fails");
        assert_eq!(calls, 1);
        // The refresh token is spent, so the error says so and hands the
        // new token back; the stored tokens are the old ones.
        match &e {
            Error::RefreshNotStored { source, token, .. } => {
                assert!(rename_failed(source), "{source:?}");
                assert_eq!(tokens::wire(token), tokens::wire(&next));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(state(t), before);
        let l = t.store.load("1").expect("load");
        assert_eq!(tokens::wire(&l.token), tokens::wire(&tok));
    }

    fn failed_commit_of_switch_and_label_changes_nothing(t) {
        disarmed();
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        t.store.save(&tokens::full("2").0, SaveOptions::new()).expect("2");
        let before = state(t);
        failpoint::fail_next(Point::MetadataRename);
        assert!(rename_failed(&t.store.switch("2").expect_err("switch fails")));
        failpoint::fail_next(Point::MetadataRename);
        assert!(rename_failed(&t.store.set_label("2", Some("l")).expect_err("label fails")));
        assert_eq!(state(t), before);
        assert_eq!(t.store.resolve(rctoken::Selector::Active).expect("active"), "1");
        no_temp_files(t);
    }

    fn failed_commit_of_a_logout_never_leaves_the_secret(t) {
        disarmed();
        t.store.save(&tokens::full("1").0, SaveOptions::new()).expect("1");
        let (b, sb) = tokens::full("2");
        t.store.save(&b, SaveOptions::new()).expect("2");
        let before = t.meta_bytes();
        failpoint::fail_next(Point::MetadataRename);
        let e = t.store.remove("1").expect_err("metadata update fails");
        assert!(rename_failed(&e), "{e:?}");
        // (c): the secret is gone although the metadata update failed.
        assert!(t.accounts().iter().all(|a| !a.starts_with("1.")), "{:?}", t.accounts());
        assert_eq!(t.meta_bytes(), before, "the listing remains");
        assert!(matches!(t.store.load("1"), Err(Error::SecretMissing { .. })));
        let report = t.store.verify().expect("verify");
        assert_eq!(report.problems, vec![Problem::SecretMissing { profile: "1".into() }]);
        let report = t.store.repair().expect("repair");
        assert!(report.is_clean(), "{:?}", report.problems);
        let keys: Vec<_> = t.store.list().expect("list").into_iter().map(|p| p.profile).collect();
        assert_eq!(keys, ["2"]);
        assert_eq!(tokens::access(&t.store.load("2").expect("2").token), sb.access);
    }

    fn failed_commit_of_remove_all_never_leaves_secrets(t) {
        disarmed();
        for k in ["1", "2"] {
            t.store.save(&tokens::full(k).0, SaveOptions::new()).expect("save");
        }
        failpoint::fail_next(Point::MetadataRename);
        let e = t.store.remove_all().expect_err("metadata update fails");
        assert!(rename_failed(&e), "{e:?}");
        assert_eq!(t.accounts(), Vec::<String>::new(), "secrets are gone first");
        assert_eq!(t.store.list().expect("list").len(), 2);
        assert_eq!(t.store.remove_all().expect("retry"), 2);
    }
}
