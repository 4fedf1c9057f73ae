//! Keychain drift on real kernel keyutils: an item deleted behind the
//! store's back. A deleted (invalidated) key stays linked until the kernel's
//! garbage collector runs, and a revoked key lingers for `key_gc_delay`
//! (5 minutes); meanwhile the kernel answers a search for it with
//! EKEYREVOKED instead of ENOKEY. That is an absent item, not an unavailable
//! keychain: load must say `SecretMissing`, `verify` must report it, `repair`
//! must drop the profile, and logout must still work. The same window opens
//! after a SIGKILL between a logout's item deletion and its metadata update.
#![cfg(target_os = "linux")]

use rctoken::{Error, Problem, SaveOptions, TokenStore};

use crate::rel::{cleanup, open};
use crate::support::backends::Kind;
use crate::support::ids;
use crate::support::keyutils::{self, keyctl};
use crate::support::tagged::{loaded_tag, tagged};

const P: &str = "drift";

fn setup(
    test: &str,
) -> (
    keyutils::Purge,
    tempfile::TempDir,
    TokenStore,
    String,
    String,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let app = ids::app_id(test, "keyutils");
    let purge = keyutils::Purge(app.clone());
    let store = open(tmp.path(), &app, "keyutils");
    let info = store
        .save(&tagged("old", 3600), SaveOptions::new().profile(P))
        .expect("save");
    assert_eq!(info.keychain_items(), 1);
    let account = format!("{P}.{}.0", info.generation());
    let id = keyutils::key_id(&app, &account).expect("the key is in /proc/keys");
    (purge, tmp, store, app, id)
}

fn assert_missing_then_repaired(store: &TokenStore, app: &str) {
    match store.load(P) {
        Err(Error::SecretMissing { .. }) => {}
        other => panic!(
            "an item deleted from outside must read as SecretMissing, got {:?}",
            other.map(|t| loaded_tag(&t))
        ),
    }
    let report = store.verify().expect("verify works after outside deletion");
    assert_eq!(
        report.problems,
        vec![Problem::SecretMissing {
            profile: P.to_string()
        }]
    );
    let repaired = store.repair().expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.problems);
    assert!(matches!(store.load(P), Err(Error::NoSuchProfile(_))));
    cleanup(store, app, "keyutils");
}

#[test]
fn an_item_revoked_from_outside_reads_as_missing_and_repair_drops_it() {
    needs!(Kind::Keyutils);
    let (_purge, _tmp, store, app, id) = setup("revoked");
    keyctl(&["revoke", &id]);
    assert_missing_then_repaired(&store, &app);
}

#[test]
fn an_item_invalidated_from_outside_reads_as_missing_and_repair_drops_it() {
    needs!(Kind::Keyutils);
    let (_purge, _tmp, store, app, id) = setup("invalidated");
    keyctl(&["invalidate", &id]);
    assert_missing_then_repaired(&store, &app);
}

#[test]
fn logout_and_resave_work_after_an_item_was_revoked_from_outside() {
    needs!(Kind::Keyutils);
    let (_purge, _tmp, store, app, id) = setup("revoked-logout");
    keyctl(&["revoke", &id]);
    store
        .remove(P)
        .expect("logout of a profile whose item is already gone");
    assert!(store.list().expect("list").is_empty());

    let info = store
        .save(&tagged("a", 3600), SaveOptions::new().profile(P))
        .expect("save");
    let account = format!("{P}.{}.0", info.generation());
    keyctl(&["revoke", &keyutils::key_id(&app, &account).expect("key")]);
    store
        .save(&tagged("b", 3600), SaveOptions::new().profile(P))
        .expect("save over a revoked item");
    assert_eq!(loaded_tag(&store.load(P).expect("load")), "b");
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
    cleanup(&store, &app, "keyutils");
}
