//! The async facade (feature `async`): it runs the blocking work off the
//! runtime's threads, and its refresh is single-flight across tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rctoken::{
    AsyncTokenStore, Backend, MemoryKeychain, SaveOptions, Selector, TokenInfo, TokenStore,
};
use secrecy::ExposeSecret;

fn expired_token() -> TokenInfo {
    TokenInfo::from_json(
        br#"{"access_token":"old-access","token_type":"bearer","expires_in":0,
            "refresh_token":"old-refresh","refresh_token_expires_in":604800,
            "scope":"ReadAccounts","owner_id":"256440016"}"#,
    )
    .unwrap()
}

fn refreshed_token(n: usize) -> TokenInfo {
    TokenInfo::from_json(
        format!(
            r#"{{"access_token":"new-access-{n}","token_type":"bearer","expires_in":3600,
                "refresh_token":"new-refresh-{n}","refresh_token_expires_in":604800,
                "scope":"ReadAccounts","owner_id":"256440016"}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

async fn open(dir: &std::path::Path) -> AsyncTokenStore {
    AsyncTokenStore::open(
        TokenStore::builder("rctoken-async-test")
            .dir(dir)
            .backend(Backend::Memory(MemoryKeychain::new()))
            .lock_timeout(Duration::from_secs(20)),
    )
    .await
    .unwrap()
}

/// On a runtime with a single thread, a second refresh of the same profile
/// waits for the refresh lock while the first refresh's future is still
/// sleeping on that same thread. If either the lock wait or any store call
/// blocked the thread, the first future could never finish: the second
/// would time out on the lock (an error), and the test fails.
#[test]
fn refreshes_on_one_thread_do_not_block_each_other_and_refresh_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(dir.path()).await;
        store
            .save(expired_token(), SaveOptions::new())
            .await
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let refresh = |store: AsyncTokenStore, calls: Arc<AtomicUsize>| async move {
            store
                .refresh(Selector::Active, Duration::from_secs(60), |rt| async move {
                    assert_eq!(rt.expose_secret(), "old-refresh");
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    // The token endpoint, slow enough that the other task
                    // queues on the lock meanwhile.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::io::Error>(refreshed_token(n))
                })
                .await
        };
        let first = tokio::spawn(refresh(store.clone(), calls.clone()));
        // Let the first take the lock, then start the second.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = tokio::spawn(refresh(store.clone(), calls.clone()));
        // A read meanwhile does not wait for the refresh.
        let listed = store.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        let a = first.await.unwrap().unwrap();
        let b = second.await.unwrap().unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one refresh for two callers"
        );
        assert_eq!(a.token.access_token.expose_secret(), "new-access-0");
        assert_eq!(b.token.access_token.expose_secret(), "new-access-0");
        let stored = store.load(Selector::Active).await.unwrap();
        assert_eq!(
            stored.token.refresh_token.as_ref().unwrap().expose_secret(),
            "new-refresh-0"
        );
    });
}

/// Many tasks on a multi-threaded runtime, each refreshing the same expired
/// profile: the refresh function runs once and every task gets its result.
#[test]
fn many_tasks_share_one_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(dir.path()).await;
        store
            .save(expired_token(), SaveOptions::new())
            .await
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, calls) = (store.clone(), calls.clone());
                tokio::spawn(async move {
                    store
                        .refresh("256440016", Duration::from_secs(60), |_rt| async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Ok::<_, std::io::Error>(refreshed_token(n))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            let got = t.await.unwrap().unwrap();
            assert_eq!(got.token.access_token.expose_secret(), "new-access-0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

/// After a 401, `refresh_rejected` refreshes a token whose lifetime says it
/// is valid; a second caller holding the same rejected token gets the new
/// one without a second refresh.
#[test]
fn a_rejected_token_is_refreshed_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(dir.path()).await;
        let mut valid = refreshed_token(99);
        valid.access_token = "valid-but-rejected".to_string().into();
        store.save(valid, SaveOptions::new()).await.unwrap();
        let rejected = store.load(Selector::Active).await.unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let calls = calls.clone();
            let got = store
                .refresh_rejected(&rejected, |rt| async move {
                    assert_eq!(rt.expose_secret(), "new-refresh-99");
                    Ok::<_, std::io::Error>(refreshed_token(calls.fetch_add(1, Ordering::SeqCst)))
                })
                .await
                .unwrap();
            assert_eq!(got.token.access_token.expose_secret(), "new-access-0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}
