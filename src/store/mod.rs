//! [`TokenStore`]: profiles of tokens, secrets in the keychain, metadata in
//! locked JSON files (one per profile, plus an index), and the commit
//! protocol that keeps the two consistent: save, switch, set_label, remove
//! and remove_all here, refresh in [`refresh`].
//!
//! Lock order, everywhere: a profile's refresh lock, then the metadata lock.
//! Several refresh locks (only `remove_all`) are taken in key order.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::clock::{self, Clock};
use crate::envelope;
use crate::error::{Error, Result};
use crate::files;
use crate::keychain::{Connection, KeySource, Keychain, Prefetched, Quota, RekeyTo};
use crate::layout::StoreLayout;
use crate::lock::FileLock;
use crate::metadata::{Index, MetaFiles, ProfileInfo, Snapshot, token_from};
use crate::model::TokenInfo;
use crate::names;
use crate::repair::{self, Ownership, Report};
use crate::secrets;
use crate::wait::Patience;

#[cfg(feature = "postgres")]
mod on_database;
mod options;
mod refresh;

pub use options::{
    AppClient, DEFAULT_KEYCHAIN_TIMEOUT, DEFAULT_LOCK_TIMEOUT, SaveOptions, Selector, StoreBuilder,
};
use refresh::Reserved;
#[cfg(feature = "async")]
pub(crate) use refresh::{Begun, When};
pub use refresh::{MIN_REFRESH_INTERVAL, RefreshLock};

/// What [`TokenStore::rotate_key`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRotation {
    /// Sealed items in the store (a profile has one per generation it
    /// keeps; on a PostgreSQL store, one per profile).
    pub items: usize,
    /// Items this call re-sealed (fewer than `items` when it finished a
    /// rotation that was interrupted).
    pub resealed: usize,
    /// Where the new key is, in words.
    pub key: String,
}

/// What [`TokenStore::list_readable`] found: the profiles that read, and
/// the profile files that do not.
#[derive(Debug)]
#[non_exhaustive]
pub struct Listing {
    /// Every readable profile, sorted by key.
    pub profiles: Vec<ProfileInfo>,
    /// Profile files that could not be read: the file and why.
    pub unreadable: Vec<(std::path::PathBuf, Error)>,
}

/// Where a save puts a profile: its label, whether it becomes active, and
/// whether its secrets may leave a backend this store cannot reach.
#[derive(Clone, Copy, Default)]
struct Placement<'a> {
    label: Option<&'a str>,
    switch: bool,
    move_secrets: bool,
}

/// A token and everything non-secret known about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoredToken {
    /// The token as saved: its TTLs are as received at `info.obtained_at`
    /// (see [`token_at`](Self::token_at) for TTLs as of now).
    pub token: TokenInfo,
    /// The profile's metadata, with the instants the TTLs end.
    pub info: ProfileInfo,
    /// The app's client secret, if the profile logged in with one.
    pub client_secret: Option<SecretString>,
}

impl StoredToken {
    /// The app this profile logged in with, if its metadata names one.
    pub fn client(&self) -> Option<AppClient> {
        Some(AppClient {
            client_id: self.info.client_id.clone()?,
            server: self.info.server.clone()?,
            client_secret: self.client_secret.clone(),
        })
    }

    /// The token with its TTLs (`expires_in`, `refresh_token_expires_in`,
    /// `session_expires_in`) counted from `now` instead of from when it was
    /// saved, never below zero: what a caller hands on (an export, another
    /// SDK) so that the receiver sees the lifetimes that remain.
    pub fn token_at(&self, now: OffsetDateTime) -> TokenInfo {
        let left = |at: OffsetDateTime| clock::remaining_secs(at, now);
        let mut token = self.token.clone();
        token.expires_in = left(self.info.access_token_expires_at);
        if let Some(at) = self.info.refresh_token_expires_at {
            token.refresh_token_expires_in = Some(left(at));
        }
        if let (Some(at), Some(_)) = (self.info.session_expires_at, token.session_expires_in) {
            token.session_expires_in = Some(left(at));
        }
        token
    }
}

/// A token store for one application.
///
/// # Thread safety
/// A `TokenStore` is `Send + Sync`: share one between threads with an
/// [`Arc`]. It is not `Clone`; opening a second `TokenStore` on the same
/// directory is also safe (every operation takes the store's file locks, so
/// threads, stores and processes all serialize the same way), but costs a
/// second keychain connection. Each call blocks its thread for at most the
/// lock timeout plus the keychain timeout (30 s each by default), and a
/// refresh also for as long as the refresh function runs. Async code uses
/// the `async` feature's `AsyncTokenStore` instead of blocking a runtime
/// worker.
pub struct TokenStore {
    app_id: String,
    layout: StoreLayout,
    meta: MetaFiles,
    keychain: Connection,
    clock: Arc<dyn Clock>,
    lock_timeout: Patience,
    /// The PostgreSQL engine, when the store lives in a database: every
    /// operation goes there instead of to the files and the keychain.
    #[cfg(feature = "postgres")]
    database: Option<crate::database::Database>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("app_id", &self.app_id)
            .field("dir", &self.layout.dir())
            .field("backend", &self.keychain.requested().name())
            .finish_non_exhaustive()
    }
}

impl TokenStore {
    /// Open the store of `app_id` in the platform's local data directory with
    /// the automatic backend.
    ///
    /// # Errors
    /// As [`StoreBuilder::open`].
    pub fn open(app_id: &str) -> Result<TokenStore> {
        Self::builder(app_id).open()
    }

    /// Start configuring a store for `app_id`.
    pub fn builder(app_id: &str) -> StoreBuilder {
        StoreBuilder::new(app_id)
    }

    /// The application id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
    /// The store directory.
    pub fn dir(&self) -> &std::path::Path {
        self.layout.dir()
    }
    /// Where the store keeps its files (for diagnostics).
    pub fn layout(&self) -> &StoreLayout {
        &self.layout
    }
    /// The PostgreSQL server this store lives on (`user@host:port/db`, no
    /// password), or `None` for a store in a directory.
    pub fn database(&self) -> Option<&str> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return Some(db.server());
        }
        None
    }
    /// The backend as requested (possibly `auto`).
    pub fn requested_backend(&self) -> &str {
        self.keychain.requested().name()
    }
    /// The current time by this store's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Connect to the keychain if not yet done, and say which backend is in
    /// use and why.
    ///
    /// # Errors
    /// [`Error::KeychainUnavailable`].
    pub fn backend(&self) -> Result<(String, String)> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return Ok((
                crate::database::BACKEND.to_string(),
                format!(
                    "the store is in the PostgreSQL database {} (--database-url), sealed with the key file",
                    db.server()
                ),
            ));
        }
        self.keychain
            .with(|kc, reason| Ok((kc.name().to_string(), reason.to_string())))
    }

    /// How much of the keychain's per-user quota is in use, for backends
    /// that have one (kernel keyutils), connecting first if needed.
    ///
    /// # Errors
    /// [`Error::KeychainUnavailable`].
    pub fn keychain_quota(&self) -> Result<Option<Quota>> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            let _ = db;
            return Ok(None);
        }
        self.keychain.with(|kc, _| Ok(kc.quota()))
    }

    /// The metadata lock, exclusively: for every change.
    fn lock_meta(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.layout.metadata_lock(), &self.lock_timeout)
    }

    /// The metadata lock, shared: for reads. `None` when the store has no
    /// lock file: nothing was ever written to it, so the files read (if a
    /// first save is under way meanwhile, what it has written so far) are
    /// an empty store or a consistent part of that first save.
    fn lock_meta_shared(&self) -> Result<Option<FileLock>> {
        FileLock::shared(&self.layout.metadata_lock(), &self.lock_timeout)
    }

    fn lock_refresh(&self, key: &str) -> Result<FileLock> {
        self.lock_refresh_within(key, self.lock_timeout.limit)
    }

    fn lock_refresh_within(&self, key: &str, timeout: Duration) -> Result<FileLock> {
        files::ensure_private_dir(&self.layout.refresh_locks_dir())?;
        FileLock::exclusive(
            &self.layout.refresh_lock(key),
            &self.lock_timeout.within(timeout),
        )
    }

    /// Take the refresh lock of `key` for a refresh. If another process
    /// holds it, this one will read the keychain next either way (the new
    /// token, or the refresh token if the holder gave up), so the wait
    /// overlaps a background keychain connect (see
    /// `Connection::prefetch_while`). `None` when the lock was free or this
    /// store is already connected.
    fn lock_refresh_prefetching(&self, key: &str) -> Result<(FileLock, Option<Prefetched>)> {
        match self.lock_refresh_within(key, Duration::ZERO) {
            Ok(lock) => return Ok((lock, None)),
            Err(Error::LockTimeout { .. }) => {}
            Err(e) => return Err(e),
        }
        let (lock, prefetched) = self.keychain.prefetch_while(|| self.lock_refresh(key));
        lock.map(|l| (l, prefetched))
    }

    /// What verify and repair work on.
    fn repair_parts(&self) -> repair::Parts<'_> {
        repair::Parts {
            layout: &self.layout,
            meta: &self.meta,
            keychain: &self.keychain,
            now: self.clock.now(),
        }
    }

    /// List every profile, sorted by key. Reads only the metadata files: no
    /// keychain access, so no prompts.
    ///
    /// # Errors
    /// [`Error::CorruptMetadata`], [`Error::UnsupportedVersion`],
    /// [`Error::UnsafeStore`], [`Error::LockTimeout`], [`Error::Io`].
    pub fn list(&self) -> Result<Vec<ProfileInfo>> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_list(db);
        }
        let _lock = self.lock_meta_shared()?;
        let snap = self.meta.read()?;
        self.meta.all(&snap)
    }

    /// [`list`](Self::list), but a profile file that cannot be read (corrupt,
    /// unsafe) is reported in [`Listing::unreadable`] instead of failing the
    /// whole listing. A damaged index still fails it.
    ///
    /// # Errors
    /// As [`list`](Self::list), for the index and the store directory.
    pub fn list_readable(&self) -> Result<Listing> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return Ok(Listing {
                profiles: self.db_list(db)?,
                unreadable: Vec::new(),
            });
        }
        let _lock = self.lock_meta_shared()?;
        let snap = self.meta.read()?;
        let (profiles, unreadable) = self.meta.all_lenient(&snap)?;
        Ok(Listing {
            profiles,
            unreadable,
        })
    }

    /// The metadata of one profile. No keychain access.
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], [`Error::NoActiveProfile`], and those of [`list`](Self::list).
    pub fn info(&self, profile: impl Into<Selector>) -> Result<ProfileInfo> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_info(db, &profile.into());
        }
        Ok(self.locked_lookup(&profile.into())?.1)
    }

    /// The key of a profile.
    ///
    /// # Errors
    /// As [`info`](Self::info).
    pub fn resolve(&self, profile: impl Into<Selector>) -> Result<String> {
        Ok(self.info(profile)?.profile)
    }

    /// Save a token. The profile key is `options.profile` or else the token's
    /// `owner_id`. Re-saving a profile replaces its tokens and keeps its label
    /// unless a new one is given. The first profile of a store becomes active.
    ///
    /// # Errors
    /// [`Error::MissingProfileKey`], [`Error::InvalidName`],
    /// [`Error::NameTaken`], [`Error::TooLarge`], [`Error::KeychainFull`],
    /// [`Error::KeychainUnavailable`], [`Error::Keychain`], and the metadata
    /// errors of [`list`](Self::list). On error the store is unchanged.
    pub fn save(&self, token: &TokenInfo, options: SaveOptions) -> Result<ProfileInfo> {
        let key = match (&options.profile, &token.owner_id) {
            (Some(k), _) => {
                names::check_profile_key(k)?;
                k.clone()
            }
            (None, Some(owner)) => {
                names::check_name(crate::error::NameKind::OwnerId, owner)?;
                owner.clone()
            }
            (None, None) => return Err(Error::MissingProfileKey),
        };
        if let Some(label) = &options.label {
            names::check_label(label)?;
        }
        let place = Placement {
            label: options.label.as_deref(),
            switch: options.switch,
            move_secrets: options.move_secrets,
        };
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_save(db, token, &key, place, options.client.as_ref());
        }
        let refresh = self.lock_refresh(&key)?;
        let saved = self.save_locked(token, &key, place, None, options.client.as_ref());
        if saved.is_err() {
            self.drop_refresh_lock_if_unused(refresh, &key);
        }
        saved
    }

    /// Delete the refresh lock file of `key` (held) if no such profile
    /// exists, so failed saves and removed profiles leave no lock files
    /// behind. Best effort: a lock file left is harmless.
    fn drop_refresh_lock_if_unused(&self, lock: FileLock, key: &str) {
        // Without waiting: a save that failed on a held metadata lock must
        // not wait for it a second time.
        let listed = FileLock::shared(
            &self.layout.metadata_lock(),
            &self.lock_timeout.within(Duration::ZERO),
        )
        .and_then(|_meta| self.meta.profile(&self.meta.read()?, key));
        if let Ok(None) = listed
            && let Err(e) = lock.remove()
        {
            log::warn!("{e}");
        }
    }

    /// The commit protocol of a save; the caller holds the profile's refresh
    /// lock. With `reserved` (a refresh), the new generation goes into the
    /// keychain items and the metadata file set aside before the refresh.
    fn save_locked(
        &self,
        token: &TokenInfo,
        key: &str,
        place: Placement<'_>,
        reserved: Option<Reserved>,
        client: Option<&AppClient>,
    ) -> Result<ProfileInfo> {
        let Placement {
            label,
            switch,
            move_secrets,
        } = place;
        let kc = self.keychain.get()?;
        let now = clock::truncate(self.clock.now());
        let generation = match &reserved {
            Some(r) => r.keychain.generation,
            None => fresh_generation(),
        };
        let gen_hex = names::generation_hex(generation);
        let mut info = ProfileInfo::from_token(token, key, now, kc.name(), &gen_hex)?;
        info.refreshed = reserved.is_some();

        let _lock = self.lock_meta()?;
        let snap = self.meta.read_for_write()?;
        let old = self.meta.profile(&snap, key)?;
        if old.is_none() {
            self.check_key_free(&snap, key)?;
        }
        // Secrets never move out of a backend this store cannot reach
        // (their old items would be stranded there) unless asked.
        if let Some(o) = &old
            && o.secret.backend != kc.name()
            && !move_secrets
            && !self
                .keychain
                .holding(&o.secret.backend)
                .is_ok_and(|h| h.name() == o.secret.backend)
        {
            return Err(secrets::wrong_backend(kc.as_ref(), key, &o.secret));
        }
        // A label naming `key` while it has no file is left over from an
        // interrupted remove: a new profile does not inherit it.
        info.label = match label {
            Some(l) => Some(l.to_string()),
            None => old.as_ref().and_then(|o| o.label.clone()),
        };
        if let Some(l) = &info.label {
            self.check_label_free(&snap, key, l)?;
        }
        let first = old.is_none() && !self.meta.any(&snap)?;
        // The app the profile logged in with: as given, else kept (its
        // secret read from the old generation).
        let kept;
        let client = match (client, &old) {
            (Some(c), _) => Some(c),
            (None, Some(o)) if o.client_id.is_some() => {
                let holder = self.keychain.holding(&o.secret.backend)?;
                let secret = secrets::read(holder.as_ref(), key, &o.secret)
                    .ok()
                    .and_then(|d| d.client);
                kept = o
                    .client_id
                    .clone()
                    .zip(o.server.clone())
                    .map(|(id, server)| AppClient {
                        client_id: id,
                        server,
                        client_secret: secret,
                    });
                kept.as_ref()
            }
            _ => None,
        };
        info.client_id = client.map(|c| c.client_id.clone());
        info.server = client.map(|c| c.server.clone());

        // 1. Write the new generation's items. Nothing refers to them yet.
        let record = self.record(&info)?;
        let envelope = envelope::encode(
            key,
            generation,
            &record,
            &token.access_token,
            token.refresh_token.as_ref(),
            token.id_token.as_ref(),
            client.and_then(|c| c.client_secret.as_ref()),
        )
        .map_err(secrets::too_large)?;
        let (count, reserved_file) = match reserved {
            Some(r) => (
                secrets::fill(kc.as_ref(), key, &r.keychain, &envelope)?,
                Some(r.file),
            ),
            None => (
                secrets::write(kc.as_ref(), key, generation, &envelope)?,
                None,
            ),
        };
        drop(envelope);
        info.secret.items = count;

        // 2. The index, if the active profile or a label changes (or it does
        //    not yet name its app id). Written before the profile's file: a
        //    crash in between leaves the old profile with its new label or
        //    active flag, or, for a new profile, an index naming a profile
        //    that does not exist yet, which readers treat as absent. Never a
        //    torn profile.
        let mut index = snap.index.clone();
        index.app_id = Some(self.app_id.clone());
        index.set_label(key, info.label.as_deref());
        if switch || first {
            index.active = Some(key.to_string());
        }
        let index_changed = index != snap.index;
        if index_changed && let Err(e) = self.meta.write_index(&index) {
            secrets::delete(kc.as_ref(), key, &gen_hex, count);
            return Err(e);
        }
        // 3. Commit: atomically point the profile's file at the new generation.
        let committed = match reserved_file {
            Some(file) => self.meta.commit_profile(&info, file),
            None => self.meta.write_profile(&info),
        };
        if let Err(e) = committed {
            secrets::delete(kc.as_ref(), key, &gen_hex, count);
            if index_changed && let Err(e) = self.meta.write_index(&snap.index) {
                log::warn!("could not restore the metadata index: {e}");
            }
            return Err(e);
        }
        info.active = index.active.as_deref() == Some(key);
        log::debug!("saved profile `{key}` generation {gen_hex} in {count} item(s)");

        // 4. Drop the old generation (from plain keyutils, for a profile
        //    moving to the sealed store). A failure leaves an orphan for
        //    `repair`.
        //    The save has committed: nothing here may fail it.
        if let Some(old) = old
            && let Ok(old_kc) = self.keychain.holding(&old.secret.backend)
            && old.secret.backend == old_kc.name()
        {
            secrets::delete(
                old_kc.as_ref(),
                key,
                &old.secret.generation,
                old.secret.items,
            );
        }
        Ok(info)
    }

    /// The record an envelope carries: the profile's metadata and which
    /// store wrote it (see `secrets::Owner`).
    fn record(&self, info: &ProfileInfo) -> Result<Vec<u8>> {
        #[derive(serde::Serialize)]
        struct Record<'a> {
            #[serde(flatten)]
            owner: secrets::Owner,
            #[serde(flatten)]
            info: &'a ProfileInfo,
        }
        serde_json::to_vec(&Record {
            owner: secrets::Owner {
                store_dir: Some(self.layout.dir().to_string_lossy().into_owned()),
                reservation: false,
            },
            info,
        })
        .map_err(|e| Error::Internal {
            reason: format!("the token's metadata does not serialize: {e}"),
        })
    }

    /// Load a profile with its secrets: one metadata read and one keychain
    /// read per item (one item unless the backend limits size).
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], [`Error::NoActiveProfile`],
    /// [`Error::SecretMissing`], [`Error::WrongBackend`],
    /// [`Error::CorruptSecret`], [`Error::KeychainUnavailable`], and those
    /// of [`list`](Self::list).
    pub fn load(&self, profile: impl Into<Selector>) -> Result<StoredToken> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_load(db, &profile.into());
        }
        self.load_via(&profile.into(), None)
    }

    /// [`load`](Self::load) through `kc` if given, else this store's keychain.
    fn load_via(&self, profile: &Selector, kc: Option<Arc<dyn Keychain>>) -> Result<StoredToken> {
        let (_lock, info) = self.locked_lookup(profile)?;
        self.token_of(info, kc)
    }

    /// Take the shared metadata lock and look a profile up. The lock is
    /// returned held, for a keychain read under it.
    fn locked_lookup(&self, profile: &Selector) -> Result<(Option<FileLock>, ProfileInfo)> {
        let lock = self.lock_meta_shared()?;
        let snap = self.meta.read()?;
        Ok((lock, self.meta.lookup(&snap, profile.name())?))
    }

    /// Read a profile's secrets (through `kc` if given, else this store's
    /// keychain) and assemble its token.
    fn token_of(&self, info: ProfileInfo, kc: Option<Arc<dyn Keychain>>) -> Result<StoredToken> {
        let kc = match kc {
            Some(kc) => kc,
            None => self.keychain.holding(&info.secret.backend)?,
        };
        let mut secrets = secrets::read(kc.as_ref(), &info.profile, &info.secret)
            .map_err(|fail| secrets::read_error(kc.as_ref(), &info.profile, &info.secret, fail))?;
        let client_secret = secrets.client.take();
        Ok(StoredToken {
            token: token_from(&info, secrets),
            info,
            client_secret,
        })
    }

    /// Make a profile the active one.
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], and the metadata errors of [`list`](Self::list).
    pub fn switch(&self, profile: impl Into<Selector>) -> Result<ProfileInfo> {
        let profile = profile.into();
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_switch(db, &profile);
        }
        let _lock = self.lock_meta()?;
        let snap = self.meta.read_for_write()?;
        let mut info = self.meta.lookup(&snap, profile.name())?;
        let mut index = snap.index.clone();
        index.active = Some(info.profile.clone());
        if index != snap.index {
            self.meta.write_index(&index)?;
        }
        info.active = true;
        Ok(info)
    }

    /// Set or clear a profile's label. Labels are unique and may not equal
    /// another profile's key.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NameTaken`], [`Error::NoSuchProfile`],
    /// metadata errors.
    pub fn set_label(
        &self,
        profile: impl Into<Selector>,
        label: Option<&str>,
    ) -> Result<ProfileInfo> {
        let profile = profile.into();
        if let Some(l) = label {
            names::check_label(l)?;
        }
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_set_label(db, &profile, label);
        }
        let _lock = self.lock_meta()?;
        let snap = self.meta.read_for_write()?;
        let mut info = self.meta.lookup(&snap, profile.name())?;
        if let Some(l) = label {
            self.check_label_free(&snap, &info.profile, l)?;
        }
        let mut index = snap.index.clone();
        index.set_label(&info.profile, label);
        if index != snap.index {
            self.meta.write_index(&index)?;
        }
        info.label = label.map(str::to_string);
        Ok(info)
    }

    /// Remove a profile: its secrets from the keychain first, then its
    /// metadata. If it was active, none is active afterwards.
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], [`Error::WrongBackend`],
    /// [`Error::KeychainUnavailable`] (nothing removed), metadata errors (the
    /// secrets are already gone; `repair` drops the listing).
    pub fn remove(&self, profile: impl Into<Selector>) -> Result<ProfileInfo> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_remove(db, &profile.into());
        }
        let key = self.resolve(profile)?;
        let refresh = self.lock_refresh(&key)?;
        let lock = self.lock_meta()?;
        let snap = self.meta.read_for_write()?;
        let info = self
            .meta
            .profile(&snap, &key)?
            .ok_or_else(|| Error::NoSuchProfile(key.clone()))?;
        let kc = self.keychain.holding(&info.secret.backend)?;
        secrets::delete_all(kc.as_ref(), &info.profile, &info.secret)?;
        // The index before the file: a crash in between leaves a profile
        // without label or active flag, whose missing secrets `repair` drops.
        let mut index = snap.index.clone();
        index.forget(&key);
        if index != snap.index {
            self.meta.write_index(&index)?;
        }
        self.meta.remove_profile(&key)?;
        log::debug!("removed profile `{key}`");
        drop(lock);
        self.drop_refresh_lock_if_unused(refresh, &key);
        self.forget_key_if_empty();
        Ok(info)
    }

    /// After the last profile's secrets are gone: the sealed store deletes
    /// its keyutils key (the next save makes a new one). Best effort: a key
    /// left behind is harmless, and the caller's removal has committed.
    fn forget_key_if_empty(&self) {
        match self.keychain.get().map(|kc| kc.forget_key()) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("could not delete the sealed store's key: {}", e.message),
            Err(e) => log::warn!("could not delete the sealed store's key: {e}"),
        }
    }

    /// Re-seal every profile of a sealed store under a new key: a new
    /// random key in keyutils ([`KeySource::Keyutils`], or
    /// [`KeySource::Auto`] for a store whose key is in keyutils), or the key
    /// in a key file the caller made ([`KeySource::File`]). Crash-safe: at
    /// any instant every profile opens with the old key or the new one, and
    /// running it again after an interruption finishes it. Saves and
    /// refreshes wait for it (it holds the metadata lock).
    ///
    /// After a rotation to a key file, configure that file
    /// (`RCTOKEN_KEY_FILE`, or [`KeySource::File`]); the old one is no
    /// longer used.
    ///
    /// On a PostgreSQL store only [`KeySource::File`] is taken (every host
    /// must hold the key); every row is re-sealed in one transaction, which
    /// waits for refreshes under way, and this store uses the new key
    /// afterwards.
    ///
    /// # Errors
    /// [`Error::CannotRotate`] when nothing was changed (the store is not
    /// sealed, an item does not open, a rotation to another key is
    /// pending); [`Error::BadKeyFile`] / [`Error::UnsafeStore`] for the new
    /// key file; keychain and I/O errors.
    pub fn rotate_key(&self, to: KeySource) -> Result<KeyRotation> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_rotate_key(db, to);
        }
        let _lock = self.lock_meta()?;
        let kc = self.keychain.get()?;
        let to = match to {
            KeySource::File(path) => RekeyTo::File(path),
            _ => RekeyTo::Keyutils,
        };
        let done = kc.rekey(&to)?;
        log::debug!(
            "re-sealed {} of {} items under {}",
            done.resealed,
            done.items,
            done.key
        );
        Ok(KeyRotation {
            items: done.items,
            resealed: done.resealed,
            key: done.key,
        })
    }

    /// Remove every profile, and every other item of this store's keychain
    /// namespace that this store wrote (see [`verify`](Self::verify) on
    /// items it cannot place). Returns how many profiles were removed. If any profile's
    /// secrets are in another backend, nothing is removed
    /// ([`Error::WrongBackend`]).
    ///
    /// # Errors
    /// As [`remove`](Self::remove).
    pub fn remove_all(&self) -> Result<usize> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_remove_all(db);
        }
        let keys: Vec<String> = self.list()?.into_iter().map(|p| p.profile).collect();
        // A directory with nothing in it (no metadata ever written) has
        // nothing to remove: nothing is written into it, not even a lock.
        if keys.is_empty() && !self.layout.metadata_lock().exists() {
            return Ok(0);
        }
        let refresh: Vec<FileLock> = keys
            .iter()
            .map(|k| self.lock_refresh(k))
            .collect::<Result<_>>()?;
        let lock = self.lock_meta()?;
        let snap = self.meta.read_for_write()?;
        let profiles = self.meta.all(&snap)?;
        let kc = self.keychain.get()?;
        // Refuse before deleting anything if some secrets live in another
        // backend: clearing their metadata would strand them there.
        let mut holders = Vec::with_capacity(profiles.len());
        for info in &profiles {
            let holder = self.keychain.holding(&info.secret.backend)?;
            if info.secret.backend != holder.name() {
                return Err(secrets::wrong_backend(
                    holder.as_ref(),
                    &info.profile,
                    &info.secret,
                ));
            }
            holders.push(holder);
        }
        let removed = profiles.len();
        for (info, holder) in profiles.iter().zip(&holders) {
            secrets::delete_all(holder.as_ref(), &info.profile, &info.secret)?;
        }
        // Other items of the namespace, if this store wrote them (another
        // store of the same app id may own the rest).
        if let Ok(Some(accounts)) = kc.list() {
            for account in accounts {
                if !matches!(
                    repair::ownership(kc.as_ref(), &account, self.layout.dir()),
                    Ownership::Ours
                ) {
                    continue;
                }
                if let Err(e) = kc.delete(&account) {
                    log::warn!("could not delete keychain item `{account}`: {e:?}");
                }
            }
        }
        // An empty directory stays empty (`logout --all` on a directory
        // that is not a store yet writes nothing into it).
        if !profiles.is_empty() || snap.index != Index::new() {
            self.meta.write_index(&Index::new())?;
        }
        for info in &profiles {
            self.meta.remove_profile(&info.profile)?;
        }
        drop(lock);
        for (lock, key) in refresh.into_iter().zip(&keys) {
            self.drop_refresh_lock_if_unused(lock, key);
        }
        self.forget_key_if_empty();
        Ok(removed)
    }

    /// Move every profile whose secrets are in another backend this store
    /// can still read (plain keyutils, under a sealed store) into this
    /// store's backend, as its next save would: each one under its refresh
    /// lock, the new generation written and committed before the old items
    /// are deleted, so a crash leaves it readable where it was or where it
    /// goes. The lifetimes carry over (counted from now). Returns how many
    /// moved.
    ///
    /// # Errors
    /// As [`save`](Self::save) and [`load`](Self::load); profiles moved
    /// before the error stay moved.
    pub fn migrate(&self) -> Result<usize> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            let _ = db;
            return Ok(0);
        }
        let primary = self.keychain.get()?;
        let mut moved = 0;
        for info in self.list()? {
            if info.secret.backend == primary.name()
                || self.keychain.holding(&info.secret.backend)?.name() == primary.name()
            {
                continue;
            }
            let key = info.profile.clone();
            let _refresh = self.lock_refresh(&key)?;
            let stored = self.load(&key)?;
            let token = stored.token_at(self.clock.now());
            self.save_locked(
                &token,
                &key,
                Placement::default(),
                None,
                stored.client().as_ref(),
            )?;
            log::debug!(
                "moved profile `{key}` from {} to {}",
                info.secret.backend,
                primary.name()
            );
            moved += 1;
        }
        Ok(moved)
    }

    /// Check the store: metadata parses and is safe, each profile's secret is
    /// present and decodes, and no item of this store's namespace is orphaned.
    /// Changes nothing.
    ///
    /// # Errors
    /// [`Error::KeychainUnavailable`], [`Error::LockTimeout`]; everything else
    /// is reported as a [`Problem`](crate::Problem).
    pub fn verify(&self) -> Result<Report> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_verify(db);
        }
        let _lock = self.lock_meta_shared()?;
        self.repair_parts().check()
    }

    /// Fix what [`verify`](Self::verify) finds: delete orphaned items, drop
    /// profiles whose secrets are missing or unreadable, drop index entries
    /// naming missing profiles, and move a corrupt index or profile file
    /// aside (kept as `<name>.corrupt-<time>`), and replace the sealed
    /// store's damaged key record (keeping a copy likewise) when the
    /// configured key is provably the store's (every sealed item names
    /// it). A corrupt profile file is rebuilt from its newest envelope in
    /// the keychain; a corrupt index is
    /// replaced by one with no labels and no active profile (the only active
    /// candidate is a single profile, which becomes active), and if there
    /// are no profile files (a format-1 store) every profile is rebuilt from
    /// the keychain. An index from a newer version, unsafe files and
    /// profiles of other backends are left alone.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), plus I/O errors writing the metadata.
    pub fn repair(&self) -> Result<Report> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_verify(db);
        }
        let _lock = self.lock_meta()?;
        // The only file a keychain keeps in the store is the sealed store's
        // key record: rebuilt when the configured key is provably the one.
        let rebuilt = match self.keychain.get() {
            Err(Error::CorruptMetadata { .. }) => self.keychain.reopen_rebuilding()?,
            _ => None,
        };
        let mut report = self.repair_parts().repair()?;
        report.fixed.splice(0..0, rebuilt);
        Ok(report)
    }

    /// A new profile's key may not be another profile's label: a name
    /// resolves to one profile, whichever came first.
    fn check_key_free(&self, snap: &Snapshot, key: &str) -> Result<()> {
        match snap.index.labels.get(key) {
            Some(owner) if owner != key && self.meta.profile(snap, owner)?.is_some() => {
                Err(Error::NameTaken {
                    name: key.to_string(),
                    owner: owner.clone(),
                    as_label: true,
                })
            }
            _ => Ok(()),
        }
    }

    /// Labels are unique and may not equal another profile's key.
    fn check_label_free(&self, snap: &Snapshot, key: &str, label: &str) -> Result<()> {
        let taken = |owner: &str, as_label| Error::NameTaken {
            name: label.to_string(),
            owner: owner.to_string(),
            as_label,
        };
        if let Some(owner) = snap.index.labels.get(label)
            && owner != key
            && self.meta.profile(snap, owner)?.is_some()
        {
            return Err(taken(owner, true));
        }
        if label != key && self.meta.profile(snap, label)?.is_some() {
            return Err(taken(label, false));
        }
        Ok(())
    }
}

/// A fresh, non-zero random generation.
fn fresh_generation() -> u64 {
    loop {
        let g = files::random_u64();
        if g != 0 {
            return g;
        }
    }
}
