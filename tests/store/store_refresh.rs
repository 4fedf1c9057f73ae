//! `TokenStore::refresh` on each backend: no call while valid, one call when
//! expired, login required without calling, unchanged tokens on failure,
//! profiles that refresh independently, and a bounded wait for the lock.

#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rctoken::secrecy::{ExposeSecret, SecretString};
use rctoken::{Error, SaveOptions, TokenInfo};

use crate::support::tokens;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A refresh function that counts its calls, checks the refresh token it
/// gets and returns `next`.
fn refresher<'a>(
    calls: &'a AtomicUsize,
    expect_rt: &'a str,
    next: TokenInfo,
) -> impl FnOnce(&SecretString) -> Result<TokenInfo, String> + 'a {
    move |rt| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            rt.expose_secret(),
            expect_rt,
            "the stored refresh token is passed"
        );
        Ok(next)
    }
}

fn never(_: &SecretString) -> Result<TokenInfo, String> {
    panic!("the refresh function must not be called")
}

backend_tests! {
    fn valid_token_is_returned_without_calling(t) {
        t.store.save(&tokens::with_refresh("1", "AT-1", "RT-1", 3600, 86400), SaveOptions::new())
            .expect("save");
        let before = t.meta_bytes();
        let got = t.store.refresh(Some("1"), secs(60), never).expect("refresh");
        assert_eq!(tokens::access(&got.token), "AT-1");
        assert_eq!(t.meta_bytes(), before, "nothing saved");
        // Valid for exactly min_valid: still no call.
        t.clock.advance(secs(3540));
        let got = t.store.refresh(rctoken::Selector::Active, secs(60), never).expect("refresh at boundary");
        assert_eq!(tokens::access(&got.token), "AT-1");
    }

    fn expired_token_is_refreshed_once_and_saved(t) {
        let first = t.store
            .save(&tokens::with_refresh("1", "AT-1", "RT-1", 3600, 86400), SaveOptions::new().label("me"))
            .expect("save");
        t.clock.advance(secs(3541));
        let calls = AtomicUsize::new(0);
        let next = tokens::with_refresh("1", "AT-2", "RT-2", 3600, 86400);
        let got = t.store.refresh(Some("me"), secs(60), refresher(&calls, "RT-1", next))
            .expect("refresh");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(tokens::access(&got.token), "AT-2");
        assert_eq!(got.info.obtained_at, tokens::t0() + secs(3541));
        assert_eq!(got.info.label.as_deref(), Some("me"), "label kept");
        assert!(got.info.active, "still active");
        assert_ne!(got.info.generation(), first.generation());
        let loaded = t.reopen().load("1").expect("load");
        assert_eq!(tokens::access(&loaded.token), "AT-2");
        assert_eq!(tokens::refresh(&loaded.token), Some("RT-2"));
        assert_eq!(loaded.info, got.info);
        assert_eq!(t.accounts().len(), 1, "the old generation is deleted");
        // Now valid again: a second refresh does not call.
        let again = t.store.refresh(Some("1"), secs(60), never).expect("again");
        assert_eq!(tokens::access(&again.token), "AT-2");
    }

    fn expired_refresh_token_requires_login_without_calling(t) {
        t.store.save(&tokens::with_refresh("1", "AT-1", "RT-1", 60, 3600), SaveOptions::new())
            .expect("save");
        t.clock.advance(secs(3601));
        let before = t.meta_bytes();
        match t.store.refresh(Some("1"), secs(60), never) {
            Err(e @ Error::LoginRequired { .. }) => {
                assert!(e.to_string().contains("expired"), "{e}");
                assert!(!e.to_string().contains("RT-1"));
            }
            other => panic!("expected LoginRequired, got {other:?}"),
        }
        assert_eq!(t.meta_bytes(), before);
        assert_eq!(tokens::access(&t.store.load("1").expect("load").token), "AT-1");
    }

    fn missing_refresh_token_requires_login_without_calling(t) {
        t.store.save(&tokens::minimal(Some("1"), "AT-1", 60), SaveOptions::new()).expect("save");
        t.clock.advance(secs(120));
        match t.store.refresh(rctoken::Selector::Active, secs(60), never) {
            Err(Error::LoginRequired { profile, reason }) => {
                assert_eq!(profile, "1");
                assert!(reason.contains("no refresh token"), "{reason}");
            }
            other => panic!("expected LoginRequired, got {other:?}"),
        }
    }

    fn failed_refresh_leaves_tokens_exactly_unchanged(t) {
        let (tok, s) = tokens::full("1");
        t.store.save(&tok, SaveOptions::new()).expect("save");
        t.clock.advance(secs(4000));
        let before = (t.meta_bytes(), t.accounts());
        let calls = AtomicUsize::new(0);
        let e = t.store
            .refresh(Some("1"), secs(60), |rt: &SecretString| {
                calls.fetch_add(1, Ordering::SeqCst);
                assert_eq!(rt.expose_secret(), s.refresh);
                Err::<TokenInfo, _>("invalid_grant from the server".to_string())
            })
            .expect_err("refresh fails");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        match &e {
            Error::RefreshFailed { profile, source } => {
                assert_eq!(profile, "1");
                assert!(source.to_string().contains("invalid_grant"));
            }
            other => panic!("expected RefreshFailed, got {other:?}"),
        }
        assert_eq!(e.kind(), rctoken::ErrorKind::RetryLater);
        assert_eq!((t.meta_bytes(), t.accounts()), before, "nothing changed");
        let loaded = t.store.load("1").expect("load");
        assert_eq!(tokens::wire(&loaded.token), tokens::wire(&tok));
    }

    fn response_without_refresh_token_keeps_the_old_one(t) {
        let saved = t.store
            .save(&tokens::with_refresh("1", "AT-1", "RT-1", 3600, 86400), SaveOptions::new())
            .expect("save");
        t.clock.advance(secs(3600));
        let calls = AtomicUsize::new(0);
        let next = tokens::minimal(Some("1"), "AT-2", 3600);
        let got = t.store.refresh(rctoken::Selector::Active, secs(60), refresher(&calls, "RT-1", next))
            .expect("refresh");
        assert_eq!(tokens::refresh(&got.token), Some("RT-1"));
        assert!(got.info.has_refresh_token);
        assert_eq!(got.info.refresh_token_expires_at, saved.refresh_token_expires_at,
            "its expiry instant is kept too");
        let loaded = t.store.load("1").expect("load");
        assert_eq!((tokens::access(&loaded.token), tokens::refresh(&loaded.token)),
            ("AT-2", Some("RT-1")));
    }

    fn unknown_or_no_active_profile(t) {
        assert!(matches!(t.store.refresh(Some("nope"), secs(1), never), Err(Error::NoSuchProfile(_))));
        assert!(matches!(t.store.refresh(rctoken::Selector::Active, secs(1), never), Err(Error::NoActiveProfile)));
    }

    fn profiles_refresh_independently(t) {
        for k in ["A", "B"] {
            let tok = tokens::with_refresh(k, &format!("AT-{k}1"), &format!("RT-{k}1"), 60, 86400);
            t.store.save(&tok, SaveOptions::new().profile(k)).expect("save");
        }
        t.clock.advance(secs(120));
        let (inside_tx, inside_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let other = t.reopen();
        std::thread::scope(|scope| {
            let a = scope.spawn(|| {
                t.store.refresh(Some("A"), secs(60), move |_: &SecretString| {
                    inside_tx.send(()).expect("signal");
                    release_rx.recv().expect("wait for release");
                    Ok::<_, String>(tokens::with_refresh("A", "AT-A2", "RT-A2", 3600, 86400))
                })
            });
            inside_rx.recv().expect("A is inside its refresh");
            // A holds its refresh lock now; B must not wait for it.
            let b = other.refresh(Some("B"), secs(60), |_: &SecretString| {
                Ok::<_, String>(tokens::with_refresh("B", "AT-B2", "RT-B2", 3600, 86400))
            });
            release_tx.send(()).expect("release A");
            let a = a.join().expect("thread A");
            assert_eq!(tokens::access(&b.expect("B refreshed while A held its lock").token), "AT-B2");
            assert_eq!(tokens::access(&a.expect("A refreshed").token), "AT-A2");
        });
        assert_eq!(tokens::access(&t.store.load("A").expect("A").token), "AT-A2");
        assert_eq!(tokens::access(&t.store.load("B").expect("B").token), "AT-B2");
        assert!(t.store.verify().expect("verify").is_clean());
    }

    fn concurrent_refreshes_of_one_profile_call_once(t) {
        t.store.save(&tokens::with_refresh("1", "AT-1", "RT-1", 60, 86400), SaveOptions::new())
            .expect("save");
        t.clock.advance(secs(120));
        let calls = AtomicUsize::new(0);
        let stores: Vec<_> = (0..4).map(|_| t.reopen()).collect();
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores.iter().enumerate().map(|(i, s)| {
                let calls = &calls;
                scope.spawn(move || {
                    s.refresh(Some("1"), secs(60), move |rt: &SecretString| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(rt.expose_secret(), "RT-1", "single use: never the same twice");
                        Ok::<_, String>(tokens::with_refresh("1", &format!("AT-new-{i}"), "RT-2", 3600, 86400))
                    })
                })
            }).collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1, "exactly one refresh");
        let tokens: Vec<String> = results.into_iter()
            .map(|r| tokens::access(&r.expect("refresh").token).to_string())
            .collect();
        assert!(tokens.iter().all(|a| a == &tokens[0]), "all see the same token: {tokens:?}");
        assert_eq!(tokens::access(&t.store.load("1").expect("load").token), tokens[0]);
    }

    fn a_waiter_connects_while_waiting_and_returns_the_new_token(t) {
        t.store.save(&tokens::with_refresh("1", "AT-1", "RT-1", 60, 86400), SaveOptions::new())
            .expect("save");
        t.clock.advance(secs(120));
        // A store of its own that has not connected to the keychain yet:
        // waiting for the held lock, it connects in the background.
        let waiter = t.reopen();
        let (inside_tx, inside_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let holder = scope.spawn(|| {
                t.store.refresh(Some("1"), secs(60), move |_: &SecretString| {
                    inside_tx.send(()).expect("signal");
                    release_rx.recv().expect("wait");
                    Ok::<_, String>(tokens::with_refresh("1", "AT-2", "RT-2", 3600, 86400))
                })
            });
            inside_rx.recv().expect("holder inside");
            let waiting = scope.spawn(|| waiter.refresh(Some("1"), secs(60), never));
            std::thread::sleep(Duration::from_millis(300));
            assert!(!waiting.is_finished(), "the waiter waits for the holder");
            release_tx.send(()).expect("release");
            holder.join().expect("holder").expect("holder refreshed");
            let got = waiting.join().expect("waiter").expect("waiter gets the new token");
            assert_eq!(tokens::access(&got.token), "AT-2");
            assert_eq!(got.token.refresh_token.as_ref().map(|r| r.expose_secret().to_string()),
                Some("RT-2".to_string()));
        });
        // The background connection was for that one read; the store's own
        // connection works as before.
        assert_eq!(tokens::access(&waiter.load("1").expect("load").token), "AT-2");
        assert_eq!(waiter.backend().expect("backend").0, t.kind.name());
    }

    fn waiting_for_a_held_refresh_lock_is_bounded(t) {
        t.store.save(&tokens::with_refresh("1", "AT-1", "RT-1", 60, 86400), SaveOptions::new())
            .expect("save");
        t.clock.advance(secs(120));
        let impatient = t.builder().dir(t.dir()).lock_timeout(Duration::from_millis(200))
            .open().expect("open");
        let (inside_tx, inside_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let holder = scope.spawn(|| {
                t.store.refresh(Some("1"), secs(60), move |_: &SecretString| {
                    inside_tx.send(()).expect("signal");
                    release_rx.recv().expect("wait");
                    Ok::<_, String>(tokens::with_refresh("1", "AT-2", "RT-2", 3600, 86400))
                })
            });
            inside_rx.recv().expect("holder inside");
            let e = impatient.refresh(Some("1"), secs(60), never);
            release_tx.send(()).expect("release");
            holder.join().expect("holder").expect("holder refreshed");
            match e {
                Err(Error::LockTimeout { path, .. }) => {
                    assert!(path.starts_with(t.dir().join("refresh-locks")), "{path:?}");
                }
                other => panic!("expected LockTimeout, got {other:?}"),
            }
        });
        assert_eq!(tokens::access(&t.store.load("1").expect("load").token), "AT-2");
    }
}
