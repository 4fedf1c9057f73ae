//! Fault injection through keyring-core's mock store (wrapped to fail chosen
//! calls): every keychain failure during save, load, remove, refresh, verify
//! and repair gives the right error and leaves the store as it was (or, after
//! the commit point, leaves only an orphan that repair removes). Also: the
//! calls that must never reach the keychain don't.

use std::sync::Arc;
use std::time::Duration;

use rctoken::testing::ManualClock;
use rctoken::{Backend, Error, Problem, SaveOptions, TokenStore};

use crate::support::fault_store::{Fault, FaultStore, Op};
use crate::support::{ids, tokens};

struct Mock {
    _tmp: tempfile::TempDir,
    app: String,
    faulty: Arc<FaultStore>,
    clock: Arc<ManualClock>,
    store: TokenStore,
}

impl Mock {
    fn new(test: &str) -> Mock {
        Self::with(test, None)
    }

    fn with(test: &str, max_item: Option<usize>) -> Mock {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = ids::app_id(test, "mock");
        let faulty = FaultStore::new();
        let clock = Arc::new(ManualClock::new(tokens::t0()));
        let mut b = TokenStore::builder(&app)
            .dir(tmp.path().join("store"))
            .backend(faulty.backend())
            .clock(clock.clone())
            .keychain_timeout(Duration::from_secs(20));
        if let Some(n) = max_item {
            b = b.max_item_bytes(n);
        }
        let store = b.open().expect("open");
        Mock {
            _tmp: tmp,
            app,
            faulty,
            clock,
            store,
        }
    }

    /// The accounts of this store's namespace that hold a secret, read
    /// from the mock behind the store's back.
    fn accounts(&self) -> Vec<String> {
        self.faulty.accounts(&format!("rctoken:{}", self.app))
    }

    fn meta(&self) -> Vec<u8> {
        std::fs::read(self.store.layout().index()).unwrap_or_default()
    }

    /// Everything observable about the store's state.
    fn state(&self) -> (Vec<u8>, Vec<String>) {
        (self.meta(), self.accounts())
    }
}

fn unavailable(e: &Error) -> bool {
    matches!(e, Error::KeychainUnavailable { backend, .. } if backend == "mock")
}

fn failure(e: &Error) -> bool {
    matches!(e, Error::Keychain { backend, .. } if backend == "mock")
}

#[test]
fn failed_keychain_write_leaves_the_store_unchanged() {
    for (fault, is) in [
        (Fault::Unavailable, unavailable as fn(&Error) -> bool),
        (Fault::Failure, failure),
    ] {
        let m = Mock::new("failed_keychain_write");
        let (tok, s) = tokens::full("1");
        m.store.save(&tok, SaveOptions::new()).expect("save");
        let before = m.state();
        m.faulty.control.fail_next(Op::Set, fault);
        let e = m
            .store
            .save(&tokens::full("1").0, SaveOptions::new().label("new"))
            .expect_err("save fails");
        assert!(is(&e), "{fault:?}: {e:?}");
        assert_eq!(e.kind(), rctoken::ErrorKind::RetryLater, "{e}");
        assert_eq!(m.state(), before, "store unchanged");
        let l = m.store.load("1").expect("old token loads");
        assert_eq!(tokens::access(&l.token), s.access);
        assert_eq!(l.info.label, None);
        assert!(m.store.verify().expect("verify").is_clean());
    }
}

#[test]
fn failed_first_save_leaves_nothing() {
    let m = Mock::new("failed_first_save");
    m.faulty.control.fail_next(Op::Set, Fault::Unavailable);
    let e = m
        .store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect_err("fails");
    assert!(unavailable(&e), "{e:?}");
    assert!(m.store.list().expect("list").is_empty());
    assert_eq!(m.accounts(), Vec::<String>::new());
    assert!(matches!(
        m.store.load(rctoken::Selector::Active),
        Err(Error::NoActiveProfile)
    ));
    // The next save works and becomes active.
    m.store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    assert_eq!(
        m.store.resolve(rctoken::Selector::Active).expect("active"),
        "1"
    );
}

#[test]
fn failure_midway_through_a_split_save_deletes_the_written_parts() {
    let m = Mock::with("split_save_failure", Some(80));
    let (tok, s) = tokens::full("1");
    let info = m.store.save(&tok, SaveOptions::new()).expect("save");
    assert!(info.keychain_items() > 4, "{} items", info.keychain_items());
    let before = m.state();
    m.faulty.control.fail(Op::Set, 3, 1, Fault::Failure);
    let e = m
        .store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect_err("fails on the 4th item");
    assert!(failure(&e), "{e:?}");
    assert_eq!(m.state(), before, "the three written parts were deleted");
    assert_eq!(
        tokens::access(&m.store.load("1").expect("load").token),
        s.access
    );
}

#[test]
fn failed_delete_of_the_old_generation_leaves_an_orphan_for_repair() {
    let m = Mock::new("old_generation_orphan");
    let old = m
        .store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    let (tok, s) = tokens::full("1");
    m.faulty.control.fail_next(Op::Delete, Fault::Unavailable);
    let new = m
        .store
        .save(&tok, SaveOptions::new())
        .expect("the commit succeeded, so the save did");
    assert_eq!(
        tokens::access(&m.store.load("1").expect("load").token),
        s.access
    );
    let orphan = format!("1.{}.0", old.generation());
    let report = m.store.verify().expect("verify");
    assert_eq!(
        report.problems,
        vec![Problem::Orphan {
            account: orphan.clone()
        }]
    );
    let report = m.store.repair().expect("repair");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(m.accounts(), vec![format!("1.{}.0", new.generation())]);
}

#[test]
fn failed_remove_removes_nothing() {
    let m = Mock::new("failed_remove");
    let (tok, s) = tokens::full("1");
    m.store.save(&tok, SaveOptions::new()).expect("save");
    let before = m.state();
    m.faulty.control.fail_next(Op::Delete, Fault::Unavailable);
    let e = m.store.remove("1").expect_err("remove fails");
    assert!(unavailable(&e), "{e:?}");
    assert_eq!(m.state(), before);
    assert_eq!(
        tokens::access(
            &m.store
                .load(rctoken::Selector::Active)
                .expect("still active")
                .token
        ),
        s.access
    );
    m.store.remove("1").expect("retry works");
    assert!(m.store.list().expect("list").is_empty());
    assert_eq!(m.accounts(), Vec::<String>::new());
}

#[test]
fn failed_remove_all_can_be_retried() {
    let m = Mock::new("failed_remove_all");
    for k in ["1", "2", "3"] {
        m.store
            .save(&tokens::full(k).0, SaveOptions::new())
            .expect("save");
    }
    m.faulty.control.fail(Op::Delete, 1, 1, Fault::Failure);
    let e = m.store.remove_all().expect_err("fails");
    assert!(failure(&e), "{e:?}");
    assert_eq!(m.store.list().expect("list").len(), 3, "metadata unchanged");
    assert_eq!(m.store.remove_all().expect("retry"), 3);
    assert!(m.store.list().expect("list").is_empty());
    assert_eq!(m.accounts(), Vec::<String>::new());
}

#[test]
fn failed_keychain_read_is_an_error_and_changes_nothing() {
    let m = Mock::new("failed_read");
    let (tok, s) = tokens::full("1");
    m.store.save(&tok, SaveOptions::new()).expect("save");
    let before = m.state();
    m.faulty.control.fail_next(Op::Get, Fault::Unavailable);
    assert!(unavailable(
        &m.store.load("1").map(|_| ()).expect_err("load fails")
    ));
    m.faulty.control.fail_next(Op::Get, Fault::Failure);
    assert!(failure(
        &m.store
            .load(rctoken::Selector::Active)
            .map(|_| ())
            .expect_err("load fails")
    ));
    assert_eq!(m.state(), before);
    assert_eq!(
        tokens::access(&m.store.load("1").expect("load").token),
        s.access
    );
}

/// The first keychain write of a refresh is the room it sets aside for its
/// result; when that fails, the refresh function (which would spend the
/// refresh token) is never called.
#[test]
fn a_keychain_that_fails_before_a_refresh_keeps_the_refresh_token_unspent() {
    let m = Mock::new("refresh_save_failure");
    let (tok, s) = tokens::full("1");
    m.store.save(&tok, SaveOptions::new()).expect("save");
    m.clock.advance(Duration::from_secs(7200));
    let before = m.state();
    m.faulty.control.fail_next(Op::Set, Fault::Unavailable);
    let mut calls = 0;
    let e = m
        .store
        .refresh(rctoken::Selector::Active, Duration::from_secs(60), |_| {
            calls += 1;
            Ok::<_, String>(tokens::full("1").0)
        })
        .expect_err("no room can be set aside");
    assert_eq!(calls, 0, "the refresh token is not spent");
    let Error::NotRefreshed { source, .. } = &e else {
        panic!("{e:?}");
    };
    assert!(unavailable(source), "{e:?}");
    assert_eq!(m.state(), before);
    let l = m.store.load("1").expect("load");
    assert_eq!(tokens::wire(&l.token), tokens::wire(&tok));
    assert_eq!(tokens::refresh(&l.token), Some(s.refresh.as_str()));
}

#[test]
fn failed_refresh_read_does_not_call_the_function() {
    let m = Mock::new("refresh_read_failure");
    m.store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    m.clock.advance(Duration::from_secs(7200));
    m.faulty.control.fail_next(Op::Get, Fault::Unavailable);
    let e = m
        .store
        .refresh(
            rctoken::Selector::Active,
            Duration::from_secs(60),
            |_| -> Result<_, String> { panic!("must not be called") },
        )
        .expect_err("fails");
    assert!(unavailable(&e), "{e:?}");
}

#[test]
fn verify_and_repair_report_keychain_failures() {
    let m = Mock::new("verify_failure");
    m.store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    // An orphan of this store: a profile whose file was lost.
    m.store
        .save(&tokens::full("ghost").0, SaveOptions::new())
        .expect("save ghost");
    std::fs::remove_file(m.store.layout().profile_file("ghost")).expect("lose ghost's file");
    m.faulty.control.fail_next(Op::Search, Fault::Unavailable);
    assert!(unavailable(&m.store.verify().expect_err("verify fails")));
    m.faulty.control.fail_next(Op::Get, Fault::Failure);
    assert!(failure(&m.store.verify().expect_err("verify fails")));
    let before = m.state();
    m.faulty.control.fail_next(Op::Delete, Fault::Unavailable);
    assert!(unavailable(&m.store.repair().expect_err("repair fails")));
    assert_eq!(m.state(), before, "the orphan is still there");
    let report = m.store.repair().expect("repair");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(m.accounts().len(), 1);
}

#[test]
fn metadata_operations_never_call_the_keychain() {
    let m = Mock::new("no_keychain_calls");
    m.store
        .save(&tokens::full("1").0, SaveOptions::new().label("a"))
        .expect("save");
    m.store
        .save(&tokens::full("2").0, SaveOptions::new())
        .expect("save");
    let fresh = TokenStore::builder(&m.app)
        .dir(m.store.dir())
        .backend(m.faulty.backend())
        .open()
        .expect("open");
    m.faulty.control.reset_calls();
    for s in [&m.store, &fresh] {
        assert_eq!(s.list().expect("list").len(), 2);
        assert_eq!(
            s.info(rctoken::Selector::Active).expect("info").profile,
            "1"
        );
        assert_eq!(s.resolve(Some("a")).expect("resolve"), "1");
        s.switch("2").expect("switch");
        s.set_label("2", Some("b")).expect("label");
        s.set_label("2", None).expect("unlabel");
        s.switch("a").expect("switch");
    }
    assert_eq!(m.faulty.control.calls(), vec![], "no keychain call at all");
    // A load does call it (the counter works).
    fresh.load("1").expect("load");
    assert_eq!(m.faulty.control.count(Op::Get), 1, "one item, one read");
}

#[test]
fn a_save_writes_one_item_and_a_load_reads_one() {
    let m = Mock::new("one_item_one_read");
    m.faulty.control.reset_calls();
    m.store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    assert_eq!(m.faulty.control.count(Op::Set), 1);
    m.faulty.control.reset_calls();
    m.store.load("1").expect("load");
    assert_eq!(m.faulty.control.count(Op::Get), 1);
    assert_eq!(m.faulty.control.count(Op::Set), 0);
    assert_eq!(m.faulty.control.count(Op::Delete), 0);
}

#[test]
fn mock_store_used_directly_verifies_clean_after_a_resave() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::builder(&ids::app_id("mock_direct", "mock"))
        .dir(tmp.path())
        .backend(Backend::KeyringCore {
            name: "mock".into(),
            store: keyring_core::mock::Store::new().expect("mock"),
        })
        .open()
        .expect("open");
    store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("re-save");
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// A keychain error keeps the platform's error as its `source()`, and
/// sorts as "retry later".
#[test]
fn keychain_errors_keep_the_platform_error_as_their_source() {
    let tmp = tempfile::tempdir().expect("tmp");
    let faulty = FaultStore::new();
    let store = TokenStore::builder("rctoken-source-test")
        .dir(tmp.path().join("store"))
        .backend(faulty.backend())
        .open()
        .expect("open");
    store
        .save(&tokens::full("1").0, SaveOptions::new())
        .expect("save");
    for (fault, want) in [
        (Fault::Unavailable, "injected: keychain unavailable"),
        (Fault::Failure, "injected: keychain failure"),
    ] {
        faulty.control.fail_next(Op::Get, fault);
        let e = store.load("1").expect_err("the read fails");
        assert!(fault.matches(&e), "{fault:?}: {e:?}");
        assert_eq!(e.kind(), rctoken::ErrorKind::RetryLater);
        let source = std::error::Error::source(&e).expect("the platform error is kept");
        assert!(source.to_string().contains(want), "{fault:?}: {source}");
    }
}
