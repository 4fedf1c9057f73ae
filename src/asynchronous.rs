//! [`AsyncTokenStore`] (feature `async`): the [`TokenStore`] API for async
//! code. Every call runs the blocking work (file locks, keychain calls) on
//! the `blocking` crate's thread pool, never on the caller's runtime
//! worker, so it works under any executor (tokio, async-std, smol).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::error::Result;
use crate::keychain::Quota;
use crate::metadata::ProfileInfo;
use crate::model::TokenInfo;
use crate::repair::Report;
use crate::store::{Begun, SaveOptions, Selector, StoreBuilder, StoredToken, TokenStore, When};

/// A [`TokenStore`] for async code.
///
/// ```
/// use rctoken::{AsyncTokenStore, Backend, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
/// use secrecy::ExposeSecret;
/// use std::time::Duration;
///
/// async fn run(dir: std::path::PathBuf) -> Result<(), Box<dyn std::error::Error>> {
///     let store = AsyncTokenStore::open(
///         TokenStore::builder("my-app")
///             .dir(dir) // default: the platform data dir
///             .backend(Backend::Memory(MemoryKeychain::new())),
///     )
///     .await?;
///     let token = TokenInfo::from_json(br#"{"access_token":"old","token_type":"bearer",
///         "expires_in":0,"refresh_token":"r1","refresh_token_expires_in":604800,
///         "scope":"ReadAccounts","owner_id":"256440016"}"#)?;
///     store.save(token, SaveOptions::new()).await?;
///
///     // Expired, so the closure runs: its future may await an HTTP client
///     // on this runtime while the profile's refresh lock is held.
///     let fresh = store
///         .refresh(None::<&str>, Duration::from_secs(60), |refresh_token| async move {
///             assert_eq!(refresh_token.expose_secret(), "r1");
///             tokio::time::sleep(Duration::from_millis(1)).await; // the token endpoint
///             TokenInfo::from_json(br#"{"access_token":"new","token_type":"bearer",
///                 "expires_in":3600,"scope":"ReadAccounts"}"#)
///         })
///         .await?;
///     assert_eq!(fresh.token.access_token.expose_secret(), "new");
///     Ok(())
/// }
///
/// // On a real multi-threaded tokio runtime:
/// let tmp = tempfile::tempdir().unwrap();
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// runtime.block_on(run(tmp.path().to_path_buf())).unwrap();
/// ```
///
/// # Thread safety and cost
/// `AsyncTokenStore` is `Send + Sync + Clone`; a clone is an [`Arc`]
/// increment and shares the store (and its keychain connection). Calls
/// from many tasks serialize on the store's file locks exactly as threads
/// and processes do.
///
/// # Cancellation
/// Dropping a call's future does not stop its blocking part, which runs to
/// completion on the pool (a save still commits or rolls back whole). A
/// [`refresh`](Self::refresh) whose future is dropped while the refresh
/// function's future runs releases the lock and the room it set aside and
/// stores nothing: if the token endpoint had already answered, that answer
/// is lost and the refresh token it spent with it, as when a process is
/// killed mid-refresh. Don't put a timeout around `refresh`; bound the HTTP
/// call inside the refresh function instead.
#[derive(Clone, Debug)]
pub struct AsyncTokenStore {
    inner: Arc<TokenStore>,
}

impl From<TokenStore> for AsyncTokenStore {
    fn from(store: TokenStore) -> Self {
        AsyncTokenStore {
            inner: Arc::new(store),
        }
    }
}

impl From<Arc<TokenStore>> for AsyncTokenStore {
    fn from(inner: Arc<TokenStore>) -> Self {
        AsyncTokenStore { inner }
    }
}

impl AsyncTokenStore {
    /// Open a store as [`StoreBuilder::open`] does, off the runtime.
    ///
    /// # Errors
    /// As [`StoreBuilder::open`].
    pub async fn open(builder: StoreBuilder) -> Result<AsyncTokenStore> {
        blocking::unblock(move || builder.open().map(AsyncTokenStore::from)).await
    }

    /// The blocking store underneath, for its accessors that do no I/O
    /// ([`app_id`](TokenStore::app_id), [`layout`](TokenStore::layout),
    /// [`now`](TokenStore::now)), or to share with blocking code.
    pub fn blocking(&self) -> &Arc<TokenStore> {
        &self.inner
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&TokenStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.inner.clone();
        blocking::unblock(move || f(&store)).await
    }

    /// As [`TokenStore::list`].
    ///
    /// # Errors
    /// As [`TokenStore::list`].
    pub async fn list(&self) -> Result<Vec<ProfileInfo>> {
        self.run(TokenStore::list).await
    }

    /// As [`TokenStore::info`].
    ///
    /// # Errors
    /// As [`TokenStore::info`].
    pub async fn info(&self, profile: impl Into<Selector>) -> Result<ProfileInfo> {
        let profile = profile.into();
        self.run(move |s| s.info(profile)).await
    }

    /// As [`TokenStore::save`].
    ///
    /// # Errors
    /// As [`TokenStore::save`].
    pub async fn save(&self, token: TokenInfo, options: SaveOptions) -> Result<ProfileInfo> {
        self.run(move |s| s.save(&token, options)).await
    }

    /// As [`TokenStore::load`].
    ///
    /// # Errors
    /// As [`TokenStore::load`].
    pub async fn load(&self, profile: impl Into<Selector>) -> Result<StoredToken> {
        let profile = profile.into();
        self.run(move |s| s.load(profile)).await
    }

    /// As [`TokenStore::switch`].
    ///
    /// # Errors
    /// As [`TokenStore::switch`].
    pub async fn switch(&self, profile: impl Into<Selector>) -> Result<ProfileInfo> {
        let profile = profile.into();
        self.run(move |s| s.switch(profile)).await
    }

    /// As [`TokenStore::set_label`].
    ///
    /// # Errors
    /// As [`TokenStore::set_label`].
    pub async fn set_label(
        &self,
        profile: impl Into<Selector>,
        label: Option<String>,
    ) -> Result<ProfileInfo> {
        let profile = profile.into();
        self.run(move |s| s.set_label(profile, label.as_deref()))
            .await
    }

    /// As [`TokenStore::remove`].
    ///
    /// # Errors
    /// As [`TokenStore::remove`].
    pub async fn remove(&self, profile: impl Into<Selector>) -> Result<ProfileInfo> {
        let profile = profile.into();
        self.run(move |s| s.remove(profile)).await
    }

    /// As [`TokenStore::remove_all`].
    ///
    /// # Errors
    /// As [`TokenStore::remove_all`].
    pub async fn remove_all(&self) -> Result<usize> {
        self.run(TokenStore::remove_all).await
    }

    /// As [`TokenStore::verify`].
    ///
    /// # Errors
    /// As [`TokenStore::verify`].
    pub async fn verify(&self) -> Result<Report> {
        self.run(TokenStore::verify).await
    }

    /// As [`TokenStore::repair`].
    ///
    /// # Errors
    /// As [`TokenStore::repair`].
    pub async fn repair(&self) -> Result<Report> {
        self.run(TokenStore::repair).await
    }

    /// As [`TokenStore::backend`].
    ///
    /// # Errors
    /// As [`TokenStore::backend`].
    pub async fn backend(&self) -> Result<(String, String)> {
        self.run(TokenStore::backend).await
    }

    /// As [`TokenStore::keychain_quota`].
    ///
    /// # Errors
    /// As [`TokenStore::keychain_quota`].
    pub async fn keychain_quota(&self) -> Result<Option<Quota>> {
        self.run(TokenStore::keychain_quota).await
    }

    /// As [`TokenStore::refresh`], with a refresh function that returns a
    /// future: it gets its own copy of the refresh token, and its future
    /// runs on the caller's runtime while the profile's refresh lock is
    /// held (by a pool thread's file lock, so other processes wait too).
    ///
    /// # Errors
    /// As [`TokenStore::refresh`].
    pub async fn refresh<F, Fut, E>(
        &self,
        profile: impl Into<Selector>,
        min_valid: Duration,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(SecretString) -> Fut,
        Fut: Future<Output = std::result::Result<TokenInfo, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        self.refresh_when(profile.into(), When::ValidFor(min_valid), refresh)
            .await
    }

    /// As [`TokenStore::refresh_rejected`], with a refresh function that
    /// returns a future (see [`refresh`](Self::refresh)).
    ///
    /// # Errors
    /// As [`TokenStore::refresh`].
    pub async fn refresh_rejected<F, Fut, E>(
        &self,
        rejected: &StoredToken,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(SecretString) -> Fut,
        Fut: Future<Output = std::result::Result<TokenInfo, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        let when = When::Rejected(rejected.info.secret.generation.clone());
        self.refresh_when(Selector::from(&rejected.info.profile), when, refresh)
            .await
    }

    async fn refresh_when<F, Fut, E>(
        &self,
        profile: Selector,
        when: When,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(SecretString) -> Fut,
        Fut: Future<Output = std::result::Result<TokenInfo, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        let pending = match self.run(move |s| s.begin_refresh(&profile, &when)).await? {
            Begun::Done(token) => return Ok(token),
            Begun::Refresh(pending) => pending,
        };
        let result = refresh(pending.refresh_token().clone()).await;
        self.run(move |s| s.finish_refresh(pending, result)).await
    }
}
