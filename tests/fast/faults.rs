//! Fault injection at every step of save, refresh and logout (issue 4 §3):
//! each keychain call (set, get, delete, search) fails in turn, with an
//! "unavailable" and an "other" error, on a keyring-core mock wrapped in a
//! call-counting store, and the metadata rename fails through the
//! `failpoints` feature. After each injected fault: the right error
//! variant, exactly the old tokens (or, for logout, the secret gone and the
//! profile either listed with a missing secret that `repair` drops, or
//! removed), and after `repair` a clean `verify` and no item in the keychain
//! that the metadata does not reference.
#![cfg(feature = "failpoints")]

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rctoken::secrecy::ExposeSecret;
use rctoken::testing::ManualClock;
use rctoken::testing::failpoint::{self, Point};
use rctoken::{Error, Problem, SaveOptions, TokenInfo, TokenStore};
use time::OffsetDateTime;

use crate::support::fault_store::{FAULTS, Fault, FaultStore, OPS, Op};
use crate::support::ids;
use crate::support::rerun;
use crate::support::tagged::{loaded_tag, tag_of, tagged};

const P: &str = "faulty";

/// One test at a time, each starting with every failpoint disarmed.
/// Failpoints are process-global and tests run on threads, so the tests
/// that arm one also run in a process of their own (`rerun::alone`): a
/// save of another test of this binary would consume it.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    failpoint::clear();
    g
}

struct Fx {
    _tmp: tempfile::TempDir,
    store: TokenStore,
    kc: Arc<FaultStore>,
    clock: Arc<ManualClock>,
}

impl Fx {
    /// A store on a fresh fault store holding profile `P` with the "old"
    /// token. `max_item` splits envelopes into several items.
    fn new(max_item: Option<usize>) -> Fx {
        Fx::build(max_item, Duration::from_secs(30))
    }

    fn build(max_item: Option<usize>, keychain_timeout: Duration) -> Fx {
        let tmp = tempfile::tempdir().expect("tempdir");
        let kc = FaultStore::new();
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let mut b = TokenStore::builder(&ids::app_id("faults", "mock"))
            .dir(tmp.path())
            .backend(kc.backend())
            .clock(clock.clone())
            .keychain_timeout(keychain_timeout)
            .lock_timeout(Duration::from_secs(30));
        if let Some(n) = max_item {
            b = b.max_item_bytes(n);
        }
        let store = b.open().expect("open");
        store
            .save(&old_token(), SaveOptions::new().profile(P).switch(true))
            .expect("seed save");
        kc.control.arm(&[]);
        Fx {
            _tmp: tmp,
            store,
            kc,
            clock,
        }
    }

    fn tag(&self) -> Result<String, Error> {
        self.store.load(P).map(|t| loaded_tag(&t))
    }

    fn items(&self) -> usize {
        self.store
            .info(Some(P))
            .map(|i| i.keychain_items() as usize)
            .unwrap_or(0)
    }

    /// After `verify` reported only what `allowed` accepts, `repair` must
    /// leave `verify` clean and the keychain holding exactly the items the
    /// metadata references. Returns the problems found before repair.
    fn repair_is_complete(&self, ctx: &str, allowed: impl Fn(&Problem) -> bool) -> Vec<Problem> {
        self.kc.control.arm(&[]);
        let before = self.store.verify().expect("verify");
        assert!(before.orphan_scan, "{ctx}: the mock can list items");
        for p in &before.problems {
            assert!(allowed(p), "{ctx}: unexpected problem {p:?}");
        }
        let repaired = self.store.repair().expect("repair");
        assert!(
            repaired.is_clean(),
            "{ctx}: after repair {:?}",
            repaired.problems
        );
        let after = self.store.verify().expect("verify after repair");
        assert!(
            after.is_clean(),
            "{ctx}: verify after repair {:?}",
            after.problems
        );
        let referenced: usize = self
            .store
            .list()
            .expect("list")
            .iter()
            .map(|p| p.keychain_items() as usize)
            .sum();
        assert_eq!(
            self.kc.live_accounts().len(),
            referenced,
            "{ctx}: a secret was left behind: {:?}",
            self.kc.live_accounts()
        );
        before.problems
    }
}

fn old_token() -> TokenInfo {
    tagged("old", 3600)
}

fn new_token() -> TokenInfo {
    tagged("new", 3600)
}

fn is_orphan(p: &Problem) -> bool {
    matches!(p, Problem::Orphan { .. })
}

/// Count the keychain calls of each kind an operation makes on a clean run.
fn dry_run(max_item: Option<usize>, op: impl Fn(&Fx) -> Result<(), Error>) -> Vec<(Op, usize)> {
    let fx = Fx::new(max_item);
    op(&fx).expect("dry run succeeds");
    OPS.iter().map(|o| (*o, fx.kc.control.count(*o))).collect()
}

const SHAPES: [Option<usize>; 2] = [None, Some(200)];

#[test]
fn every_keychain_step_of_save_fails_cleanly() {
    let _g = serial();
    let save = |fx: &Fx| {
        fx.store
            .save(&new_token(), SaveOptions::new().profile(P))
            .map(|_| ())
    };
    let mut injected = 0;
    for shape in SHAPES {
        let calls = dry_run(shape, save);
        let sets = calls.iter().find(|c| c.0 == Op::Set).map_or(0, |c| c.1);
        assert!(sets >= 1, "a save writes items");
        if shape.is_some() {
            assert!(sets > 2, "small items split the envelope: {calls:?}");
        }
        for (op, n) in calls {
            for k in 1..=n {
                for fault in FAULTS {
                    let ctx = format!("save, items {shape:?}, {op:?} #{k} {fault:?}");
                    let fx = Fx::new(shape);
                    fx.kc.control.arm(&[(op, k, fault)]);
                    let r = save(&fx);
                    assert_eq!(fx.kc.control.fired().len(), 1, "{ctx}: fault fired");
                    injected += 1;
                    match (op, r) {
                        (Op::Set, Err(e)) => {
                            assert!(fault.matches(&e), "{ctx}: wrong error {e:?}");
                            assert_eq!(fx.tag().expect("load"), "old", "{ctx}");
                            // The partial new generation was cleaned up at
                            // once, except item 0 after a write that did not
                            // answer (a late item must stay attributable).
                            let late = matches!(fault, Fault::Unavailable) && k > 1;
                            let problems = fx.repair_is_complete(&ctx, is_orphan);
                            assert_eq!(problems.len(), usize::from(late), "{ctx}: {problems:?}");
                        }
                        (Op::Delete, Ok(())) => {
                            // Step 3: the commit happened; the old generation
                            // is left whole (item 0 last), as orphans.
                            assert_eq!(fx.tag().expect("load"), "new", "{ctx}");
                            let problems = fx.repair_is_complete(&ctx, is_orphan);
                            assert!(!problems.is_empty(), "{ctx}: orphans: {problems:?}");
                        }
                        (_, r) => panic!("{ctx}: unexpected outcome {r:?}"),
                    }
                }
            }
        }
    }
    eprintln!("save: {injected} faults injected");
}

#[test]
fn a_failed_save_whose_cleanup_also_fails_leaves_only_orphans_repair_deletes() {
    let _g = serial();
    for shape in SHAPES {
        let fx = Fx::new(shape);
        let items = fx.items();
        fx.store
            .save(&new_token(), SaveOptions::new().profile(P))
            .expect("probe save");
        let sets = fx.items();
        fx.store
            .save(&old_token(), SaveOptions::new().profile(P))
            .expect("back to old");
        assert_eq!(items, sets);
        for k in 1..=sets {
            let ctx = format!("save, items {shape:?}, set #{k} and cleanup delete #1 fail");
            let fx = Fx::new(shape);
            fx.kc.control.arm(&[
                (Op::Set, k, Fault::Failure),
                (Op::Delete, 1, Fault::Failure),
            ]);
            let e = fx
                .store
                .save(&new_token(), SaveOptions::new().profile(P))
                .expect_err("save fails");
            assert!(matches!(e, Error::Keychain { .. }), "{ctx}: {e:?}");
            assert_eq!(fx.tag().expect("load"), "old", "{ctx}");
            let problems = fx.repair_is_complete(&ctx, is_orphan);
            // The cleanup stops at its first failure (the highest item), so
            // the items written before set #k stay, item 0 among them.
            assert_eq!(problems.len(), k - 1, "{ctx}: {problems:?}");
        }
    }
}

#[test]
fn a_failed_metadata_rename_during_save_keeps_the_old_tokens() {
    if rerun::alone(test_name!(
        "a_failed_metadata_rename_during_save_keeps_the_old_tokens"
    )) {
        return;
    }
    let _g = serial();
    for shape in SHAPES {
        let fx = Fx::new(shape);
        failpoint::fail_next(Point::MetadataRename);
        let e = fx
            .store
            .save(&new_token(), SaveOptions::new().profile(P).label("renamed"))
            .expect_err("rename fails");
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert_eq!(fx.tag().expect("load"), "old");
        assert_eq!(fx.store.info(Some(P)).expect("info").label, None);
        // The new generation's items were deleted right away.
        let problems = fx.repair_is_complete("save rename", |_| false);
        assert!(problems.is_empty());
    }
}

#[test]
fn every_keychain_step_of_refresh_fails_cleanly() {
    let _g = serial();
    let mut injected = 0;
    for shape in SHAPES {
        let calls = dry_run(shape, |fx| refresh(fx, &Cell::new(false)).map(|_| ()));
        for (op, n) in calls {
            for k in 1..=n {
                for fault in FAULTS {
                    let ctx = format!("refresh, items {shape:?}, {op:?} #{k} {fault:?}");
                    let fx = Fx::new(shape);
                    let called = Cell::new(false);
                    fx.kc.control.arm(&[(op, k, fault)]);
                    let r = refresh(&fx, &called);
                    assert_eq!(fx.kc.control.fired().len(), 1, "{ctx}: fault fired");
                    injected += 1;
                    match (op, r) {
                        (Op::Get, Err(e)) => {
                            assert!(fault.matches(&e), "{ctx}: wrong error {e:?}");
                            assert!(!called.get(), "{ctx}: refreshed without reading");
                            assert_eq!(fx.tag().expect("load"), "old", "{ctx}");
                            fx.repair_is_complete(&ctx, |_| false);
                        }
                        (Op::Set, Err(e)) => {
                            // A write before the refresh function (the
                            // reservation) means it is never called; a write
                            // after it means its result was not stored.
                            let (inner, spent) = match e {
                                Error::NotRefreshed { source, .. } => (*source, false),
                                Error::RefreshNotStored { source, token, .. } => {
                                    assert_eq!(
                                        tag_of(&token),
                                        "new",
                                        "{ctx}: the new token is handed back"
                                    );
                                    (*source, true)
                                }
                                other => panic!("{ctx}: wrong error {other:?}"),
                            };
                            assert!(fault.matches(&inner), "{ctx}: wrong error {inner:?}");
                            assert_eq!(called.get(), spent, "{ctx}");
                            assert_eq!(fx.tag().expect("load"), "old", "{ctx}");
                            fx.repair_is_complete(&ctx, is_orphan);
                        }
                        (Op::Delete, Ok(t)) => {
                            assert_eq!(loaded_tag(&t), "new");
                            assert_eq!(fx.tag().expect("load"), "new", "{ctx}");
                            let problems = fx.repair_is_complete(&ctx, is_orphan);
                            assert!(
                                !problems.is_empty(),
                                "{ctx}: the undeleted items are orphans"
                            );
                        }
                        (_, r) => panic!("{ctx}: unexpected outcome {:?}", r.map(|_| ())),
                    }
                }
            }
        }
    }
    eprintln!("refresh: {injected} faults injected");
}

/// Refresh `P` after its access token expired; the function checks it got
/// the stored refresh token and returns the "new" token.
fn refresh(fx: &Fx, called: &Cell<bool>) -> Result<rctoken::StoredToken, Error> {
    fx.clock.advance(Duration::from_secs(7200));
    fx.store.refresh(Some(P), Duration::from_secs(60), |rt| {
        called.set(true);
        assert_eq!(rt.expose_secret(), "ref-old");
        Ok::<_, std::io::Error>(new_token())
    })
}

#[test]
fn a_failed_metadata_rename_during_refresh_keeps_the_old_tokens() {
    if rerun::alone(test_name!(
        "a_failed_metadata_rename_during_refresh_keeps_the_old_tokens"
    )) {
        return;
    }
    let _g = serial();
    for shape in SHAPES {
        let fx = Fx::new(shape);
        let called = Cell::new(false);
        failpoint::fail_next(Point::MetadataRename);
        let e = refresh(&fx, &called).expect_err("rename fails");
        // The refresh token is spent: the error hands the new token back.
        match e {
            Error::RefreshNotStored { source, token, .. } => {
                assert!(matches!(*source, Error::Io { .. }), "{source:?}");
                assert_eq!(tag_of(&token), "new");
            }
            other => panic!("{other:?}"),
        }
        assert!(called.get());
        assert_eq!(fx.tag().expect("load"), "old");
        fx.repair_is_complete("refresh rename", |_| false);
    }
}

#[test]
fn a_failing_refresh_function_changes_nothing() {
    let _g = serial();
    let fx = Fx::new(None);
    fx.clock.advance(Duration::from_secs(7200));
    let before = fx.store.info(Some(P)).expect("info");
    let e = fx
        .store
        .refresh(Some(P), Duration::from_secs(60), |_| {
            Err::<TokenInfo, _>(std::io::Error::other("token endpoint said no"))
        })
        .expect_err("refresh fails");
    assert!(matches!(e, Error::RefreshFailed { .. }), "{e:?}");
    // Room was set aside before the call and given back after it.
    let reserved = fx.kc.control.count(Op::Set);
    assert!(
        reserved > 0,
        "room is reserved before the refresh function runs"
    );
    assert_eq!(fx.kc.control.count(Op::Delete), reserved, "and given back");
    assert_eq!(fx.tag().expect("load"), "old");
    assert_eq!(fx.store.info(Some(P)).expect("info"), before);
    fx.repair_is_complete("failing refresh fn", |_| false);
}

#[test]
fn an_expired_refresh_token_requires_login_without_calling_the_function() {
    let _g = serial();
    let fx = Fx::new(None);
    // The refresh token lives 604800 s.
    fx.clock.advance(Duration::from_secs(604_800 + 1));
    let called = Cell::new(false);
    let e = fx
        .store
        .refresh(Some(P), Duration::from_secs(60), |_| {
            called.set(true);
            Ok::<_, std::io::Error>(new_token())
        })
        .expect_err("login required");
    assert!(matches!(e, Error::LoginRequired { .. }), "{e:?}");
    assert!(
        !called.get(),
        "the function ran with an expired refresh token"
    );
    assert_eq!(fx.tag().expect("load"), "old");

    // No refresh token at all: the same, and the function is not called.
    let mut bare = old_token();
    bare.refresh_token = None;
    bare.refresh_token_expires_in = None;
    bare.id_token = None;
    fx.store
        .save(&bare, SaveOptions::new().profile("bare"))
        .expect("save");
    fx.clock.advance(Duration::from_secs(7200));
    let e = fx
        .store
        .refresh(Some("bare"), Duration::from_secs(60), |_| {
            called.set(true);
            Ok::<_, std::io::Error>(new_token())
        })
        .expect_err("login required");
    assert!(matches!(e, Error::LoginRequired { .. }), "{e:?}");
    assert!(!called.get());
}

#[test]
fn every_keychain_step_of_logout_fails_cleanly() {
    let _g = serial();
    let mut injected = 0;
    for shape in SHAPES {
        let calls = dry_run(shape, |fx| fx.store.remove(P).map(|_| ()));
        let deletes = calls.iter().find(|c| c.0 == Op::Delete).map_or(0, |c| c.1);
        assert!(deletes >= 1, "logout deletes items");
        for (op, n) in calls {
            for k in 1..=n {
                for fault in FAULTS {
                    let ctx = format!("logout, items {shape:?}, {op:?} #{k} {fault:?}");
                    let fx = Fx::new(shape);
                    fx.kc.control.arm(&[(op, k, fault)]);
                    let r = fx.store.remove(P);
                    assert_eq!(fx.kc.control.fired().len(), 1, "{ctx}: fault fired");
                    injected += 1;
                    let e = r.expect_err("logout reports the fault");
                    assert!(fault.matches(&e), "{ctx}: wrong error {e:?}");
                    // The metadata still lists the profile: its secret is
                    // either untouched or (some items deleted) missing.
                    match fx.tag() {
                        Ok(tag) => {
                            assert_eq!(tag, "old", "{ctx}");
                            assert_eq!(k, 1, "{ctx}: items were deleted, yet it loads");
                            fx.repair_is_complete(&ctx, |_| false);
                            assert_eq!(fx.tag().expect("load"), "old");
                        }
                        Err(Error::SecretMissing { .. }) => {
                            assert!(k > 1, "{ctx}");
                            let problems = fx.repair_is_complete(
                                &ctx,
                                |p| matches!(p, Problem::SecretMissing { profile } if profile == P),
                            );
                            assert_eq!(problems.len(), 1);
                            assert!(matches!(fx.tag(), Err(Error::NoSuchProfile(_))), "{ctx}");
                        }
                        Err(e) => panic!("{ctx}: after a failed logout: {e:?}"),
                    }
                    // Logging out again works.
                    if fx.store.info(Some(P)).is_ok() {
                        fx.store.remove(P).expect("second logout");
                    }
                    assert!(fx.kc.live_accounts().is_empty(), "{ctx}: secret left");
                }
            }
        }
    }
    eprintln!("logout: {injected} faults injected");
}

#[test]
fn a_failed_metadata_rename_during_logout_leaves_no_secret() {
    if rerun::alone(test_name!(
        "a_failed_metadata_rename_during_logout_leaves_no_secret"
    )) {
        return;
    }
    let _g = serial();
    for shape in SHAPES {
        let fx = Fx::new(shape);
        failpoint::fail_next(Point::MetadataRename);
        let e = fx.store.remove(P).expect_err("rename fails");
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        // The secret is gone already, although the metadata still lists it.
        assert!(fx.kc.live_accounts().is_empty(), "secret left behind");
        assert!(fx.store.info(Some(P)).is_ok(), "still listed");
        assert!(
            matches!(fx.tag(), Err(Error::SecretMissing { .. })),
            "{:?}",
            fx.tag()
        );
        let problems = fx.repair_is_complete(
            "logout rename",
            |p| matches!(p, Problem::SecretMissing { profile } if profile == P),
        );
        assert_eq!(problems.len(), 1);
        assert!(matches!(
            fx.store.info(Some(P)),
            Err(Error::NoSuchProfile(_))
        ));
        assert!(fx.store.list().expect("list").is_empty());
    }
}

#[test]
fn failed_renames_of_switch_and_label_change_nothing() {
    if rerun::alone(test_name!(
        "failed_renames_of_switch_and_label_change_nothing"
    )) {
        return;
    }
    let _g = serial();
    let fx = Fx::new(None);
    fx.store
        .save(&new_token(), SaveOptions::new().profile("other"))
        .expect("save other");
    assert_eq!(
        fx.store.resolve(rctoken::Selector::Active).expect("active"),
        P
    );
    failpoint::fail_next(Point::MetadataRename);
    let e = fx.store.switch("other").expect_err("rename fails");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(
        fx.store.resolve(rctoken::Selector::Active).expect("active"),
        P
    );
    failpoint::fail_next(Point::MetadataRename);
    let e = fx
        .store
        .set_label(P, Some("work"))
        .expect_err("rename fails");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(fx.store.info(Some(P)).expect("info").label, None);
    assert_eq!(fx.tag().expect("load"), "old");
    fx.repair_is_complete("switch/label rename", |_| false);
}

#[test]
fn a_load_whose_keychain_read_fails_reports_it_and_changes_nothing() {
    let _g = serial();
    for shape in SHAPES {
        for fault in FAULTS {
            let fx = Fx::new(shape);
            fx.kc.control.arm(&[(Op::Get, fx.items(), fault)]);
            let e = fx.store.load(P).expect_err("read fails");
            assert!(fault.matches(&e), "{e:?}");
            assert_eq!(fx.tag().expect("load"), "old");
            fx.repair_is_complete("load", |_| false);
        }
    }
}

/// Wait (bounded) until the keychain holds `n` items: a stalled call
/// completes on the store's abandoned worker thread.
fn wait_for_items(fx: &Fx, n: usize) {
    let start = std::time::Instant::now();
    while fx.kc.live_accounts().len() != n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the stalled call never completed: {:?}",
            fx.kc.live_accounts()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_keychain_write_that_stalls_past_the_timeout_leaves_only_an_orphan() {
    let _g = serial();
    let fx = Fx::build(Some(200), Duration::from_secs(1));
    let items = fx.items();
    assert!(items > 2);
    fx.kc.control.arm(&[(Op::Set, 2, Fault::Stall(3000))]);
    let e = fx
        .store
        .save(&new_token(), SaveOptions::new().profile(P))
        .expect_err("the keychain stalls");
    assert!(matches!(e, Error::KeychainUnavailable { .. }), "{e:?}");
    assert_eq!(fx.tag().expect("load"), "old");
    // Item 1 of the abandoned generation lands after the store gave up.
    wait_for_items(&fx, items + 1);
    assert_eq!(fx.tag().expect("load"), "old");
    let problems = fx.repair_is_complete("stalled set", is_orphan);
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn a_keychain_delete_that_stalls_during_logout_leaves_no_secret_after_repair() {
    let _g = serial();
    let fx = Fx::build(None, Duration::from_secs(1));
    fx.kc.control.arm(&[(Op::Delete, 1, Fault::Stall(3000))]);
    let e = fx.store.remove(P).expect_err("the keychain stalls");
    assert!(matches!(e, Error::KeychainUnavailable { .. }), "{e:?}");
    assert!(fx.store.info(Some(P)).is_ok(), "metadata untouched");
    // The deletion completes after the store gave up.
    wait_for_items(&fx, 0);
    assert!(
        matches!(fx.tag(), Err(Error::SecretMissing { .. })),
        "{:?}",
        fx.tag()
    );
    let problems = fx.repair_is_complete(
        "stalled delete",
        |p| matches!(p, Problem::SecretMissing { profile } if profile == P),
    );
    assert_eq!(problems.len(), 1);
    assert!(matches!(
        fx.store.info(Some(P)),
        Err(Error::NoSuchProfile(_))
    ));
}
