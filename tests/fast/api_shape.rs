//! The library API as an application holds it: profile selection, error
//! kinds, lifetimes as of now, and forcing a refresh after a 401.

use std::sync::Arc;
use std::time::Duration;

use rctoken::testing::ManualClock;
use rctoken::{
    Backend, Error, ErrorKind, MemoryKeychain, NameKind, SaveOptions, Selector, TokenInfo,
    TokenStore,
};
use secrecy::ExposeSecret;
fn t0() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

fn token(owner: &str, access: &str, refresh: &str, expires_in: i64) -> TokenInfo {
    TokenInfo::from_json(
        format!(
            r#"{{"access_token":"{access}","token_type":"bearer","expires_in":{expires_in},
                "refresh_token":"{refresh}","refresh_token_expires_in":604800,
                "scope":"ReadAccounts","owner_id":"{owner}","session_expires_in":7200}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

fn open(dir: &std::path::Path, clock: Arc<ManualClock>) -> TokenStore {
    TokenStore::builder("rctoken-api-test")
        .dir(dir)
        .backend(Backend::Memory(MemoryKeychain::new()))
        .clock(clock)
        .lock_timeout(Duration::ZERO)
        .open()
        .unwrap()
}

#[test]
fn every_form_of_selector_names_the_same_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Arc::new(ManualClock::new(t0())));
    store
        .save(
            &token("111", "a1", "r1", 3600),
            SaveOptions::new().label("work"),
        )
        .unwrap();
    store
        .save(&token("222", "a2", "r2", 3600), SaveOptions::new())
        .unwrap();
    let key = String::from("222");
    assert_eq!(store.load(Selector::Active).unwrap().info.profile, "111");
    assert_eq!(store.load(None::<&str>).unwrap().info.profile, "111");
    assert_eq!(store.load("work").unwrap().info.profile, "111");
    assert_eq!(store.load(Some("222")).unwrap().info.profile, "222");
    assert_eq!(store.load(&key).unwrap().info.profile, "222");
    assert_eq!(store.load(key.clone()).unwrap().info.profile, "222");
    assert_eq!(store.info(Some(&key)).unwrap().profile, "222");
    assert_eq!(store.switch("222").unwrap().profile, "222");
    assert_eq!(store.resolve(Selector::Active).unwrap(), "222");
    assert!(matches!(store.load("nobody"), Err(Error::NoSuchProfile(_))));
}

#[test]
fn errors_say_what_a_program_can_do() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let store = open(dir.path(), clock.clone());
    // Bad input: nothing changes.
    let e = store.load("nobody").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput);
    let e = store.load(Selector::Active).unwrap_err();
    assert!(matches!(e, Error::NoActiveProfile), "{e}");
    assert_eq!(e.kind(), ErrorKind::BadInput);
    let mut bad_owner = token("x", "a", "r", 3600);
    bad_owner.owner_id = Some("line\nbreak".into());
    let e = store.save(&bad_owner, SaveOptions::new()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidName {
                kind: NameKind::OwnerId,
                ..
            }
        ),
        "{e:?}"
    );
    let e = store
        .save(&bad_owner, SaveOptions::new().profile(" padded"))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidName {
                kind: NameKind::Profile,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(store.list().unwrap().is_empty(), "nothing was saved");

    // Log in again: no refresh token.
    let mut no_refresh = token("333", "a3", "r3", 0);
    no_refresh.refresh_token = None;
    store.save(&no_refresh, SaveOptions::new()).unwrap();
    let e = store
        .refresh(
            "333",
            Duration::from_secs(60),
            |_| -> Result<TokenInfo, std::io::Error> {
                panic!("must not be called without a refresh token")
            },
        )
        .unwrap_err();
    assert!(matches!(e, Error::LoginRequired { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::LoginAgain);

    // Retry later: a refresh function that fails, and a lock held elsewhere.
    store
        .save(&token("444", "a4", "r4", 0), SaveOptions::new())
        .unwrap();
    let e = store
        .refresh("444", Duration::from_secs(60), |_| {
            Err::<TokenInfo, _>(std::io::Error::other("endpoint down"))
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RetryLater);
    assert_eq!(
        std::error::Error::source(&e)
            .map(ToString::to_string)
            .as_deref(),
        Some("endpoint down"),
        "the refresh function's error is the source"
    );
    let other = open(dir.path(), clock.clone());
    let e = store
        .refresh("444", Duration::from_secs(60), |_| {
            // While this refresh holds the profile's lock, another store
            // (lock timeout 0) cannot refresh it.
            let e = other
                .refresh("444", Duration::from_secs(60), |_| {
                    Err::<TokenInfo, _>(std::io::Error::other("unreachable"))
                })
                .unwrap_err();
            assert!(matches!(e, Error::LockTimeout { .. }), "{e}");
            assert_eq!(e.kind(), ErrorKind::RetryLater);
            Err::<TokenInfo, _>(std::io::Error::other("stop"))
        })
        .unwrap_err();
    assert!(matches!(e, Error::RefreshFailed { .. }));

    // Fix the store: a corrupt profile file.
    std::fs::write(store.layout().profile_file("444"), b"{not json").unwrap();
    let e = store.load("444").unwrap_err();
    assert!(matches!(e, Error::CorruptMetadata { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::FixStore);
}

#[test]
fn lifetimes_are_given_as_of_now() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let store = open(dir.path(), clock.clone());
    store
        .save(&token("111", "a1", "r1", 3600), SaveOptions::new())
        .unwrap();
    clock.advance(Duration::from_secs(1000));
    let stored = store.load(Selector::Active).unwrap();
    let now = store.now();
    assert_eq!(stored.token.expires_in, 3600, "the token as saved");
    assert_eq!(
        stored.info.access_token_remaining(now),
        Duration::from_secs(2600)
    );
    assert_eq!(
        stored.info.refresh_token_remaining(now),
        Some(Duration::from_secs(604_800 - 1000))
    );
    assert_eq!(
        stored.info.session_remaining(now),
        Some(Duration::from_secs(6200))
    );
    let rebased = stored.token_at(now);
    assert_eq!(rebased.expires_in, 2600);
    assert_eq!(rebased.refresh_token_expires_in, Some(604_800 - 1000));
    assert_eq!(rebased.session_expires_in, Some(6200));
    assert_eq!(rebased.access_token.expose_secret(), "a1");
    clock.advance(Duration::from_secs(8000));
    let later = store.now();
    assert_eq!(stored.info.access_token_remaining(later), Duration::ZERO);
    assert_eq!(stored.token_at(later).expires_in, 0, "never below zero");
    assert_eq!(stored.token_at(later).session_expires_in, Some(0));
}

#[test]
fn a_rejected_token_is_refreshed_once_even_while_valid() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let store = open(dir.path(), clock.clone());
    store
        .save(&token("111", "a1", "r1", 3600), SaveOptions::new())
        .unwrap();
    let rejected = store.load(Selector::Active).unwrap();
    // A plain refresh does nothing: the token is valid for an hour.
    let same = store
        .refresh(
            Selector::Active,
            Duration::from_secs(60),
            |_| -> Result<TokenInfo, std::io::Error> { panic!("a valid token is not refreshed") },
        )
        .unwrap();
    assert_eq!(same.token.access_token.expose_secret(), "a1");
    let mut calls = 0;
    let fresh = store
        .refresh_rejected(&rejected, |rt| {
            calls += 1;
            assert_eq!(rt.expose_secret(), "r1");
            Ok::<_, std::io::Error>(token("111", "a2", "r2", 3600))
        })
        .unwrap();
    assert_eq!(fresh.token.access_token.expose_secret(), "a2");
    // Another caller still holding the rejected token gets the new one.
    let again = store
        .refresh_rejected(&rejected, |_| -> Result<TokenInfo, std::io::Error> {
            panic!("already refreshed since `rejected` was loaded")
        })
        .unwrap();
    assert_eq!(again.token.access_token.expose_secret(), "a2");
    assert_eq!(calls, 1);
    // The new token rejected in turn: refreshed again, at once (a forced
    // refresh does not wait out MIN_REFRESH_INTERVAL).
    let fresh2 = store
        .refresh_rejected(&again, |rt| {
            assert_eq!(rt.expose_secret(), "r2");
            Ok::<_, std::io::Error>(token("111", "a3", "r3", 3600))
        })
        .unwrap();
    assert_eq!(fresh2.token.access_token.expose_secret(), "a3");
}

#[test]
fn names_are_checked_by_one_rule() {
    assert!(rctoken::check_profile_name("work").is_ok());
    assert!(rctoken::check_profile_name("256440016").is_ok());
    for bad in ["", " work", "work ", "a\nb", &"x".repeat(129)] {
        let e = rctoken::check_profile_name(bad).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidName {
                    kind: NameKind::Profile,
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::BadInput);
    }
    // The CLI's --backend values are the library's names.
    for b in rctoken::Backend::NAMES {
        assert_eq!(
            Backend::from_name(b.name)
                .map(|x| x.name().to_string())
                .as_deref(),
            Some(b.name)
        );
    }
    assert!(Backend::from_name("nope").is_none());
}
