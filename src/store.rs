//! [`TokenStore`]: profiles of tokens, secrets in the keychain, metadata in
//! locked JSON files (one per profile, plus an index), and the commit
//! protocol that keeps the two consistent.
//!
//! Lock order, everywhere: a profile's refresh lock, then the metadata lock.
//! Several refresh locks (only `remove_all`) are taken in key order.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::clock::{self, Clock, SystemClock};
use crate::envelope::{self, ENVELOPE_VERSION};
use crate::error::{Error, Result};
use crate::files;
use crate::keychain::{self, Backend, Keychain, OpenConfig, Quota};
use crate::lock::{FileLock, Mode};
use crate::metadata::{Index, MetaFiles, ProfileInfo, SecretRef, Snapshot};
use crate::model::{TokenInfo, representable, session_instant};
use crate::names;
pub use crate::repair::{Problem, Report};
use crate::secrets;

/// A token saved or refreshed less than this long ago is not refreshed
/// again just because it falls short of a caller's `min_valid`: the result
/// of a refresh is what the token endpoint gives, and asking again within a
/// minute only spends the endpoint's rate limit (about 5 requests a minute
/// per app). It is refreshed again once its access token has expired.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The metadata index file's name inside the store directory.
pub const METADATA_FILE: &str = crate::metadata::INDEX_FILE;
/// The directory of per-profile metadata files inside the store directory.
pub const PROFILES_DIR: &str = crate::metadata::PROFILES_DIR;
/// The metadata lock file's name inside the store directory.
pub const LOCK_FILE: &str = "metadata.lock";
/// The directory of per-profile refresh locks inside the store directory.
pub const REFRESH_LOCK_DIR: &str = "refresh-locks";

/// Default bound on waiting for a lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on one keychain call.
pub const DEFAULT_KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The refresh lock of one profile, held while a refresh function runs
/// (see [`TokenStore::refresh_holding`]).
#[derive(Debug)]
pub struct RefreshLock<'a>(&'a FileLock);

impl RefreshLock<'_> {
    /// Make the processes `cmd` starts hold this lock too, until the last of
    /// them exits: a refresher process that outlives its caller (killed
    /// mid-refresh) then still blocks every other refresh of the profile,
    /// so no second process spends the same refresh token while the first
    /// refresher can still reach the token endpoint. Unix only; elsewhere a
    /// no-op.
    pub fn hold_in_children_of(&self, cmd: &mut std::process::Command) {
        self.0.inherit_into(cmd);
    }
}

/// A token and everything non-secret known about it.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// The token as saved (TTLs as received at `info.obtained_at`).
    pub token: TokenInfo,
    /// The profile's metadata.
    pub info: ProfileInfo,
}

impl ProfileInfo {
    /// Is the access token valid for at least `min` more at `now`?
    pub fn access_token_valid_for(&self, now: OffsetDateTime, min: Duration) -> bool {
        clock::valid_for(Some(self.access_token_expires_at), now, min)
    }

    /// Is there a refresh token, valid for at least `min` more at `now`?
    /// A refresh token without a TTL counts as valid.
    pub fn refresh_token_valid_for(&self, now: OffsetDateTime, min: Duration) -> bool {
        self.has_refresh_token && clock::valid_for(self.refresh_token_expires_at, now, min)
    }
}

/// How [`TokenStore::save`] files a token.
#[derive(Clone, Debug, Default)]
#[must_use = "options do nothing until passed to `TokenStore::save`"]
pub struct SaveOptions {
    profile: Option<String>,
    label: Option<String>,
    switch: bool,
}

impl SaveOptions {
    /// Defaults: profile key from `owner_id`, label kept, no switch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Use this profile key instead of the token's `owner_id`.
    pub fn profile(mut self, key: impl Into<String>) -> Self {
        self.profile = Some(key.into());
        self
    }
    /// Set the profile's label (otherwise an existing label is kept).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    /// Make the profile active. The first profile of a store is made active regardless.
    pub fn switch(mut self, yes: bool) -> Self {
        self.switch = yes;
        self
    }
}

/// Opens a [`TokenStore`] with non-default settings.
#[derive(Debug)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct StoreBuilder {
    app_id: String,
    dir: Option<PathBuf>,
    backend: Backend,
    clock: Arc<dyn Clock>,
    lock_timeout: Duration,
    keychain_timeout: Duration,
    max_item_bytes: Option<usize>,
}

impl StoreBuilder {
    /// Keep the metadata in `dir` instead of `<local data dir>/<app id>`
    /// (`~/.local/share/<app id>` on Linux, `~/Library/Application Support/<app id>`
    /// on macOS, `%LOCALAPPDATA%\\<app id>` on Windows).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Use this keychain backend (default [`Backend::Auto`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// Use this clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Bound on waiting for a lock (default 30 s).
    pub fn lock_timeout(mut self, t: Duration) -> Self {
        self.lock_timeout = t;
        self
    }
    /// Bound on one keychain call (default 30 s).
    pub fn keychain_timeout(mut self, t: Duration) -> Self {
        self.keychain_timeout = t;
        self
    }
    /// Split envelopes into items of at most this many bytes, even where the
    /// backend allows more (backend limits still apply).
    pub fn max_item_bytes(mut self, n: usize) -> Self {
        self.max_item_bytes = Some(n);
        self
    }

    /// Open the store: create the directory (0700) if needed and check that
    /// it is safe. The keychain is not contacted until a secret is needed.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad app id, [`Error::NoDataDir`],
    /// [`Error::UnsafeStore`], [`Error::Io`].
    pub fn open(self) -> Result<TokenStore> {
        names::check_app_id(&self.app_id)?;
        let dir = match self.dir {
            Some(d) => d,
            // The app id is used verbatim (ProjectDirs would lowercase it on
            // Linux, so ids differing in case would share one metadata file
            // while their keychain namespaces differ).
            None => directories::BaseDirs::new()
                .ok_or(Error::NoDataDir)?
                .data_local_dir()
                .join(&self.app_id),
        };
        // One store, one place: a relative directory would name another
        // store from another working directory.
        let dir = if dir.is_relative() {
            std::env::current_dir()
                .map_err(|e| Error::io("resolving the current directory for", &dir, e))?
                .join(dir)
        } else {
            dir
        };
        files::ensure_private_dir(&dir)?;
        let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io("resolving", &dir, e))?;
        Ok(TokenStore {
            meta: MetaFiles::new(&dir, &self.app_id),
            lock_path: dir.join(LOCK_FILE),
            kc_cfg: OpenConfig {
                service: format!("rctoken:{}", self.app_id),
                timeout: self.keychain_timeout,
                max_item_bytes: self.max_item_bytes,
            },
            app_id: self.app_id,
            dir,
            backend: self.backend,
            keychain: Mutex::new(None),
            clock: self.clock,
            lock_timeout: self.lock_timeout,
        })
    }
}

struct OpenedKeychain {
    keychain: Arc<dyn Keychain>,
    reason: String,
}

/// A token store for one application.
pub struct TokenStore {
    app_id: String,
    dir: PathBuf,
    meta: MetaFiles,
    lock_path: PathBuf,
    backend: Backend,
    kc_cfg: OpenConfig,
    keychain: Mutex<Option<OpenedKeychain>>,
    clock: Arc<dyn Clock>,
    lock_timeout: Duration,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("app_id", &self.app_id)
            .field("dir", &self.dir)
            .field("backend", &self.backend.name())
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
        StoreBuilder {
            app_id: app_id.to_string(),
            dir: None,
            backend: Backend::Auto,
            clock: Arc::new(SystemClock),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            keychain_timeout: DEFAULT_KEYCHAIN_TIMEOUT,
            max_item_bytes: None,
        }
    }

    /// The application id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }
    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The metadata index file (format version, active profile, labels).
    pub fn metadata_path(&self) -> &Path {
        &self.meta.index_path
    }
    /// The directory of per-profile metadata files.
    pub fn profiles_dir(&self) -> &Path {
        &self.meta.profiles_dir
    }
    /// The metadata file of profile `key` (whether or not it exists).
    pub fn profile_path(&self, key: &str) -> PathBuf {
        self.meta.profile_path(key)
    }
    /// The metadata lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }
    /// The backend as requested (possibly `auto`).
    pub fn requested_backend(&self) -> &str {
        self.backend.name()
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
        self.with_keychain(|kc, reason| Ok((kc.name().to_string(), reason.to_string())))
    }

    /// How much of the keychain's per-user quota is in use, for backends
    /// that have one (kernel keyutils), connecting first if needed.
    ///
    /// # Errors
    /// [`Error::KeychainUnavailable`].
    pub fn keychain_quota(&self) -> Result<Option<Quota>> {
        self.with_keychain(|kc, _| Ok(kc.quota()))
    }

    pub(crate) fn keychain(&self) -> Result<Arc<dyn Keychain>> {
        self.with_keychain(|kc, _| Ok(kc.clone()))
    }

    fn with_keychain<T>(&self, f: impl FnOnce(&Arc<dyn Keychain>, &str) -> Result<T>) -> Result<T> {
        let mut slot = self.keychain.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let opened = keychain::open(&self.backend, &self.kc_cfg)?;
            log::debug!(
                "keychain backend {}: {}",
                opened.keychain.name(),
                opened.reason
            );
            *slot = Some(OpenedKeychain {
                keychain: opened.keychain,
                reason: opened.reason,
            });
        }
        match slot.as_ref() {
            Some(o) => f(&o.keychain, &o.reason),
            None => Err(Error::KeychainUnavailable {
                backend: self.backend.name().into(),
                reason: "not opened".into(),
            }),
        }
    }

    pub(crate) fn lock_meta(&self, mode: Mode) -> Result<FileLock> {
        FileLock::acquire(&self.lock_path, mode, self.lock_timeout)
    }

    fn lock_refresh(&self, key: &str) -> Result<FileLock> {
        self.lock_refresh_within(key, self.lock_timeout)
    }

    fn lock_refresh_within(&self, key: &str, timeout: Duration) -> Result<FileLock> {
        let dir = self.dir.join(REFRESH_LOCK_DIR);
        files::ensure_private_dir(&dir)?;
        let path = dir.join(format!("{}.lock", names::stem(key)));
        FileLock::acquire(&path, Mode::Exclusive, timeout)
    }

    /// Take the refresh lock of `key` for a refresh. If another process
    /// holds it, this one will read the keychain next either way (the new
    /// token, or the refresh token if the holder gave up), so while waiting
    /// open a keychain connection in the background, at the lowest thread
    /// priority: a Secret Service session costs a Diffie-Hellman exchange
    /// (~9 ms of CPU), which then overlaps the holder's token endpoint call
    /// instead of following it, without taking CPU from the holder. That
    /// connection is returned for one read and then dropped, so its
    /// low-priority threads do not outlive this refresh. `None` when the lock
    /// was free or this store is already connected.
    fn lock_refresh_prefetching(&self, key: &str) -> Result<(FileLock, Option<Prefetched>)> {
        match self.lock_refresh_within(key, Duration::ZERO) {
            Ok(lock) => return Ok((lock, None)),
            Err(Error::LockTimeout { .. }) => {}
            Err(e) => return Err(e),
        }
        let connected = self
            .keychain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if connected {
            return Ok((self.lock_refresh(key)?, None));
        }
        std::thread::scope(|s| {
            let prefetch = std::thread::Builder::new()
                .name("rctoken-prefetch".into())
                .spawn_scoped(s, || {
                    keychain::open_at_low_priority(&self.backend, &self.kc_cfg).map(|o| o.keychain)
                });
            let lock = self.lock_refresh(key);
            // A connect is bounded by the keychain timeout; a thread that
            // failed to start or panicked just means no prefetch.
            let prefetched = prefetch.ok().and_then(|h| h.join().ok());
            lock.map(|l| (l, prefetched))
        })
    }

    pub(crate) fn meta_files(&self) -> &MetaFiles {
        &self.meta
    }

    /// Read the metadata index (caller holds the metadata lock).
    pub(crate) fn read_meta(&self) -> Result<Snapshot> {
        self.meta.read()
    }

    /// Read the metadata index for a write (caller holds the exclusive
    /// metadata lock), converting a format-1 store first.
    pub(crate) fn read_meta_for_write(&self) -> Result<Snapshot> {
        let snap = self.meta.read()?;
        if snap.is_v1() {
            return self.meta.convert_v1(snap);
        }
        Ok(snap)
    }

    /// List every profile, sorted by key. Reads only the metadata files: no
    /// keychain access, so no prompts.
    ///
    /// # Errors
    /// [`Error::CorruptMetadata`], [`Error::UnsupportedVersion`],
    /// [`Error::UnsafeStore`], [`Error::LockTimeout`], [`Error::Io`].
    pub fn list(&self) -> Result<Vec<ProfileInfo>> {
        let _lock = self.lock_meta(Mode::Shared)?;
        let snap = self.read_meta()?;
        self.meta.all(&snap)
    }

    /// The metadata of one profile (by key or label), or of the active one
    /// with `None`. No keychain access.
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], [`Error::NoActiveProfile`], and those of [`list`](Self::list).
    pub fn info(&self, key_or_label: Option<&str>) -> Result<ProfileInfo> {
        Ok(self.locked_lookup(key_or_label)?.1)
    }

    /// Resolve a profile key or label (or the active profile for `None`) to a key.
    ///
    /// # Errors
    /// As [`info`](Self::info).
    pub fn resolve(&self, key_or_label: Option<&str>) -> Result<String> {
        Ok(self.info(key_or_label)?.profile)
    }

    /// Save a token. The profile key is `options.profile` or else the token's
    /// `owner_id`. Re-saving a profile replaces its tokens and keeps its label
    /// unless a new one is given. The first profile of a store becomes active.
    ///
    /// # Errors
    /// [`Error::MissingProfileKey`], [`Error::InvalidName`],
    /// [`Error::KeychainUnavailable`], [`Error::Keychain`], and the metadata
    /// errors of [`list`](Self::list). On error the store is unchanged.
    pub fn save(&self, token: &TokenInfo, options: SaveOptions) -> Result<ProfileInfo> {
        let key = match options.profile.as_deref().or(token.owner_id.as_deref()) {
            Some(k) => k.to_string(),
            None => return Err(Error::MissingProfileKey),
        };
        names::check_profile_key(&key)?;
        if let Some(label) = &options.label {
            names::check_label(label)?;
        }
        let _refresh = self.lock_refresh(&key)?;
        self.save_locked(token, &key, options.label.as_deref(), options.switch, None)
    }

    /// The commit protocol of a save; the caller holds the profile's refresh
    /// lock. With `reserved` (a refresh), the new generation goes into the
    /// keychain items and the metadata file set aside before the refresh.
    fn save_locked(
        &self,
        token: &TokenInfo,
        key: &str,
        label: Option<&str>,
        switch: bool,
        reserved: Option<Reserved>,
    ) -> Result<ProfileInfo> {
        let kc = self.keychain()?;
        let now = clock::truncate(self.clock.now());
        let generation = match &reserved {
            Some(r) => r.keychain.generation,
            None => fresh_generation(),
        };
        let gen_hex = format!("{generation:016x}");
        let mut info = profile_info(token, key, now, kc.name(), &gen_hex)?;
        info.refreshed = reserved.is_some();

        let _lock = self.lock_meta(Mode::Exclusive)?;
        let snap = self.read_meta_for_write()?;
        let old = self.meta.profile(&snap, key)?;
        if old.is_none() {
            self.check_key_free(&snap, key)?;
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

        // 1. Write the new generation's items. Nothing refers to them yet.
        let record = self.record(&info)?;
        let envelope = envelope::encode(
            key,
            generation,
            &record,
            &token.access_token,
            token.refresh_token.as_ref(),
            token.id_token.as_ref(),
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

        // 4. Drop the old generation. A failure leaves an orphan for `repair`.
        if let Some(old) = old
            && old.secret.backend == kc.name()
        {
            secrets::delete(kc.as_ref(), key, &old.secret.generation, old.secret.items);
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
                store_dir: Some(self.dir.to_string_lossy().into_owned()),
                reservation: false,
            },
            info,
        })
        .map_err(|e| Error::BadToken {
            reason: format!("the token's metadata cannot be stored: {e}"),
        })
    }

    /// Set aside room for the result of refreshing `current` (caller holds
    /// its refresh lock): keychain items of a fresh generation and the
    /// profile's next metadata file, each as large as now plus a margin.
    fn reserve_for(&self, kc: &dyn Keychain, current: &StoredToken) -> Result<Reserved> {
        let key = &current.info.profile;
        let record = self.record(&current.info)?;
        let now_len = envelope::encode(
            key,
            0,
            &record,
            &current.token.access_token,
            current.token.refresh_token.as_ref(),
            current.token.id_token.as_ref(),
        )
        .map_err(secrets::too_large)?
        .len();
        let file_len = MetaFiles::profile_bytes(&current.info)?.len();
        let dir = self.dir.join(REFRESH_LOCK_DIR);
        let file = files::reserve(
            &dir.join(format!("{}.reserve", names::stem(key))),
            secrets::reserve_bytes(file_len),
        )?;
        let keychain = secrets::reserve(
            kc,
            key,
            fresh_generation(),
            secrets::reserve_bytes(now_len),
            &self.dir.to_string_lossy(),
        )?;
        Ok(Reserved { keychain, file })
    }

    /// Load a profile (by key or label) with its secrets: one metadata read
    /// and one keychain read per item (one item unless the backend limits size).
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], [`Error::SecretMissing`],
    /// [`Error::WrongBackend`], [`Error::CorruptSecret`],
    /// [`Error::KeychainUnavailable`], and those of [`list`](Self::list).
    pub fn load(&self, key_or_label: &str) -> Result<StoredToken> {
        self.load_opt(Some(key_or_label))
    }

    /// Load the active profile.
    ///
    /// # Errors
    /// [`Error::NoActiveProfile`], and those of [`load`](Self::load).
    pub fn load_active(&self) -> Result<StoredToken> {
        self.load_opt(None)
    }

    /// Load a profile by key or label, or the active one for `None`.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn load_opt(&self, key_or_label: Option<&str>) -> Result<StoredToken> {
        self.load_via(key_or_label, None)
    }

    /// [`load_opt`](Self::load_opt) through `kc` if given, else this store's keychain.
    fn load_via(
        &self,
        key_or_label: Option<&str>,
        kc: Option<Arc<dyn Keychain>>,
    ) -> Result<StoredToken> {
        let (_lock, info) = self.locked_lookup(key_or_label)?;
        self.token_of(info, kc)
    }

    /// Take the shared metadata lock and look a profile up (`None`: the
    /// active one). The lock is returned held, for a keychain read under it.
    fn locked_lookup(&self, key_or_label: Option<&str>) -> Result<(FileLock, ProfileInfo)> {
        let lock = self.lock_meta(Mode::Shared)?;
        let snap = self.read_meta()?;
        Ok((lock, self.meta.lookup(&snap, key_or_label)?))
    }

    /// Read a profile's secrets (through `kc` if given, else this store's
    /// keychain) and assemble its token.
    fn token_of(&self, info: ProfileInfo, kc: Option<Arc<dyn Keychain>>) -> Result<StoredToken> {
        let kc = match kc {
            Some(kc) => kc,
            None => self.keychain()?,
        };
        let secrets = self.read_secrets(kc.as_ref(), &info)?;
        Ok(StoredToken {
            token: token_from(&info, secrets),
            info,
        })
    }

    pub(crate) fn read_secrets(
        &self,
        kc: &dyn Keychain,
        info: &ProfileInfo,
    ) -> Result<envelope::Decoded> {
        secrets::read(kc, &info.profile, &info.secret)
            .map_err(|fail| secrets::read_error(kc, &info.profile, &info.secret, fail))
    }

    /// Make a profile (by key or label) the active one.
    ///
    /// # Errors
    /// [`Error::NoSuchProfile`], and the metadata errors of [`list`](Self::list).
    pub fn switch(&self, key_or_label: &str) -> Result<ProfileInfo> {
        let _lock = self.lock_meta(Mode::Exclusive)?;
        let snap = self.read_meta_for_write()?;
        let mut info = self.meta.lookup(&snap, Some(key_or_label))?;
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
    /// [`Error::InvalidName`], [`Error::NoSuchProfile`], metadata errors.
    pub fn set_label(&self, key_or_label: &str, label: Option<&str>) -> Result<ProfileInfo> {
        if let Some(l) = label {
            names::check_label(l)?;
        }
        let _lock = self.lock_meta(Mode::Exclusive)?;
        let snap = self.read_meta_for_write()?;
        let mut info = self.meta.lookup(&snap, Some(key_or_label))?;
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
    pub fn remove(&self, key_or_label: &str) -> Result<ProfileInfo> {
        let key = self.resolve(Some(key_or_label))?;
        let _refresh = self.lock_refresh(&key)?;
        let _lock = self.lock_meta(Mode::Exclusive)?;
        let snap = self.read_meta_for_write()?;
        let info = self
            .meta
            .profile(&snap, &key)?
            .ok_or_else(|| Error::NoSuchProfile(key.clone()))?;
        let kc = self.keychain()?;
        secrets::delete_all(kc.as_ref(), &info.profile, &info.secret)?;
        // The index before the file: a crash in between leaves a profile
        // without label or active flag, whose missing secrets `repair` drops.
        let mut index = snap.index.clone();
        index.set_label(&key, None);
        if index.active.as_deref() == Some(key.as_str()) {
            index.active = None;
        }
        if index != snap.index {
            self.meta.write_index(&index)?;
        }
        self.meta.remove_profile(&key)?;
        log::debug!("removed profile `{key}`");
        Ok(info)
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
        let keys: Vec<String> = self.list()?.into_iter().map(|p| p.profile).collect();
        let _refresh: Vec<FileLock> = keys
            .iter()
            .map(|k| self.lock_refresh(k))
            .collect::<Result<_>>()?;
        let _lock = self.lock_meta(Mode::Exclusive)?;
        let snap = self.read_meta_for_write()?;
        let profiles = self.meta.all(&snap)?;
        let kc = self.keychain()?;
        // Refuse before deleting anything if some secrets live in another
        // backend: clearing their metadata would strand them there.
        if let Some(info) = profiles.iter().find(|p| p.secret.backend != kc.name()) {
            return Err(secrets::wrong_backend(
                kc.as_ref(),
                &info.profile,
                &info.secret,
            ));
        }
        let removed = profiles.len();
        for info in &profiles {
            secrets::delete_all(kc.as_ref(), &info.profile, &info.secret)?;
        }
        // Other items of the namespace, if this store wrote them (another
        // store of the same app id may own the rest).
        if let Ok(Some(accounts)) = kc.list() {
            for account in accounts {
                if !matches!(self.ownership(kc.as_ref(), &account), Ownership::Ours) {
                    continue;
                }
                if let Err(e) = kc.delete(&account) {
                    log::warn!("could not delete keychain item `{account}`: {e:?}");
                }
            }
        }
        self.meta.write_index(&Index::new())?;
        for info in &profiles {
            self.meta.remove_profile(&info.profile)?;
        }
        Ok(removed)
    }

    /// Single-flight refresh across processes.
    ///
    /// If the metadata shows the access token valid for at least
    /// `min_valid` (or it is the still-valid result of a refresh less than
    /// [`MIN_REFRESH_INTERVAL`] ago), load and return it without taking any
    /// refresh lock. Otherwise, under the profile's refresh lock, re-read
    /// the metadata; if another process refreshed meanwhile (a new
    /// generation), release the lock and return that token, whatever its
    /// lifetime, without calling `refresh`. Otherwise set aside room for
    /// the result in the keychain and on disk, call `refresh` once with the
    /// refresh token, and save its result atomically into that room. If the
    /// new token carries no refresh token, the old one (and its expiry) is
    /// kept; if it carries no `owner_id`, the stored one is kept.
    ///
    /// # Errors
    /// [`Error::LoginRequired`] (no refresh token, or it expired; `refresh`
    /// is not called), [`Error::NotRefreshed`] (no room could be set aside;
    /// `refresh` is not called), [`Error::RefreshFailed`] (stored tokens
    /// unchanged), [`Error::BadToken`] (the result names another `owner_id`,
    /// or cannot be stored; stored tokens unchanged),
    /// [`Error::RefreshNotStored`] (the refresh token is spent, the result
    /// could not be saved; the error carries it), [`Error::LockTimeout`],
    /// and those of [`load`](Self::load).
    pub fn refresh<F, E>(
        &self,
        key_or_label: Option<&str>,
        min_valid: Duration,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(&SecretString) -> std::result::Result<TokenInfo, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.refresh_holding(key_or_label, min_valid, |rt, _| refresh(rt))
    }

    /// [`refresh`](Self::refresh), handing `refresh` the profile's refresh
    /// lock as well, for a refresh function that starts a process
    /// ([`RefreshLock::hold_in_children_of`]).
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    pub fn refresh_holding<F, E>(
        &self,
        key_or_label: Option<&str>,
        min_valid: Duration,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(&SecretString, &RefreshLock<'_>) -> std::result::Result<TokenInfo, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Fast path without the refresh lock: when the metadata says the
        // token needs no refresh, no single flight is needed; the secrets
        // are read under the same metadata lock and lookup.
        let (meta_lock, seen) = self.locked_lookup(key_or_label)?;
        if !self.needs_refresh(&seen, min_valid) {
            return self.token_of(seen, None);
        }
        drop(meta_lock);
        let key = seen.profile.clone();
        let (refresh_lock, prefetched) = self.lock_refresh_prefetching(&key)?;
        // Whoever held the lock may have refreshed already (a new
        // generation): use that result, whether or not it meets `min_valid`,
        // since refreshing again would only get the same kind of token.
        // Check the metadata (no keychain call) and read the secrets after
        // unlocking, so waiters do not queue on the lock for a keychain
        // round trip each.
        let now_info = self.info(Some(&key))?;
        if now_info.secret.generation != seen.secret.generation
            || !self.needs_refresh(&now_info, min_valid)
        {
            drop(refresh_lock);
            return match prefetched {
                Some(Ok(kc)) => self.load_via(Some(&key), Some(kc)),
                // The same error this store's own connect would meet now.
                Some(Err(e)) => Err(e),
                None => self.load(&key),
            };
        }
        // This process refreshes after all (the holder gave up): through
        // this store's own connection, at normal priority.
        drop(prefetched);
        let current = self.load(&key)?;
        let now = self.clock.now();
        let login = |reason: &str| Error::LoginRequired {
            profile: key.clone(),
            reason: reason.to_string(),
        };
        let Some(refresh_token) = current.token.refresh_token.as_ref() else {
            return Err(login("no refresh token is stored"));
        };
        if !current.info.refresh_token_valid_for(now, Duration::ZERO) {
            return Err(login("the refresh token has expired"));
        }
        // Never spend a refresh token whose result cannot be stored: set
        // the room aside first (keychain quota, a live keychain, disk).
        let kc = self.keychain()?;
        let reserved =
            self.reserve_for(kc.as_ref(), &current)
                .map_err(|e| Error::NotRefreshed {
                    profile: key.clone(),
                    source: Box::new(e),
                })?;
        let release = |reserved: Reserved| secrets::release(kc.as_ref(), &key, &reserved.keychain);
        let mut new = match refresh(refresh_token, &RefreshLock(&refresh_lock)) {
            Ok(t) => t,
            Err(e) => {
                release(reserved);
                return Err(Error::RefreshFailed {
                    profile: key.clone(),
                    source: e.into(),
                });
            }
        };
        // A refresh cannot change whose token it is.
        match (&current.token.owner_id, &new.owner_id) {
            (Some(old), Some(got)) if old != got => {
                release(reserved);
                return Err(Error::BadToken {
                    reason: format!(
                        "field `owner_id`: the refreshed token belongs to `{got}`, not to `{old}`; the stored tokens are unchanged"
                    ),
                });
            }
            (_, None) => new.owner_id = current.token.owner_id.clone(),
            _ => {}
        }
        if new.refresh_token.is_none() {
            new.refresh_token = current.token.refresh_token.clone();
            let saved_at = clock::truncate(self.clock.now());
            new.refresh_token_expires_in = current
                .info
                .refresh_token_expires_at
                .map(|at| clock::remaining_secs(at, saved_at));
        }
        let room = reserved.keychain;
        match self.save_locked(&new, &key, None, false, Some(reserved)) {
            Ok(info) => Ok(StoredToken { token: new, info }),
            Err(e) => {
                secrets::release(kc.as_ref(), &key, &room);
                // Bad input (an instant that cannot be stored) is refused
                // by the save before it writes anything: the stored tokens
                // are unchanged, as for another owner_id.
                if matches!(e, Error::BadToken { .. }) {
                    return Err(e);
                }
                Err(Error::RefreshNotStored {
                    profile: key.clone(),
                    token: Box::new(new),
                    source: Box::new(e),
                })
            }
        }
    }

    /// Whether `info` calls for a refresh for a caller that needs
    /// `min_valid`: its access token is not valid that long, and it is not
    /// the still-valid result of a refresh less than
    /// [`MIN_REFRESH_INTERVAL`] ago.
    fn needs_refresh(&self, info: &ProfileInfo, min_valid: Duration) -> bool {
        let now = self.clock.now();
        if info.access_token_valid_for(now, min_valid) {
            return false;
        }
        let recent = info.refreshed && now - info.obtained_at < MIN_REFRESH_INTERVAL;
        !(recent && info.access_token_valid_for(now, Duration::from_secs(1)))
    }
}

impl TokenStore {
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

/// The non-secret record of a token saved at `now`.
fn profile_info(
    token: &TokenInfo,
    key: &str,
    now: OffsetDateTime,
    backend: &str,
    generation: &str,
) -> Result<ProfileInfo> {
    let range = |field: &str| Error::BadToken {
        reason: format!("field `{field}`: out of range"),
    };
    let access_token_expires_at =
        clock::after(now, Some(token.expires_in)).ok_or_else(|| range("expires_in"))?;
    if token.expires_in < 0 {
        return Err(Error::BadToken {
            reason: "field `expires_in`: must not be negative".into(),
        });
    }
    let refresh_token_expires_at = match token.refresh_token_expires_in {
        Some(s) => {
            Some(clock::after(now, Some(s)).ok_or_else(|| range("refresh_token_expires_in"))?)
        }
        None => None,
    };
    let session_expires_at = match (&token.session_expiration_time, token.session_expires_in) {
        (Some(t), _) => Some(session_instant(t).map_err(|reason| Error::BadToken { reason })?),
        (None, Some(s)) => {
            Some(clock::after(now, Some(s)).ok_or_else(|| range("session_expires_in"))?)
        }
        (None, None) => None,
    };
    // Every instant the store derives must be writable as RFC 3339 (and so
    // round-trip); refuse the token otherwise, before anything is written.
    for (field, at) in [
        ("expires_in", Some(access_token_expires_at)),
        ("refresh_token_expires_in", refresh_token_expires_at),
        ("session_expires_in", session_expires_at),
    ] {
        if at.is_some_and(|t| !representable(t)) {
            return Err(range(field));
        }
    }
    Ok(ProfileInfo {
        profile: key.to_string(),
        active: false,
        label: None,
        owner_id: token.owner_id.clone(),
        endpoint_id: token.endpoint_id.clone(),
        scope: token.scope.clone(),
        token_type: token.token_type,
        expires_in: token.expires_in,
        refresh_token_expires_in: token.refresh_token_expires_in,
        session_expires_in: token.session_expires_in,
        session_expiration_time: token.session_expiration_time.clone(),
        session_id: token.session_id.clone(),
        session_idle_timeout: token.session_idle_timeout,
        obtained_at: now,
        access_token_expires_at,
        refresh_token_expires_at,
        session_expires_at,
        has_refresh_token: token.refresh_token.is_some(),
        has_id_token: token.id_token.is_some(),
        refreshed: false,
        secret: SecretRef {
            backend: backend.to_string(),
            generation: generation.to_string(),
            items: 0,
            envelope_version: ENVELOPE_VERSION,
        },
    })
}

/// Reassemble a token from its metadata and its decoded secrets.
fn token_from(info: &ProfileInfo, s: envelope::Decoded) -> TokenInfo {
    TokenInfo {
        access_token: s.access,
        expires_in: info.expires_in,
        scope: info.scope.clone(),
        token_type: info.token_type,
        refresh_token: s.refresh,
        refresh_token_expires_in: info.refresh_token_expires_in,
        owner_id: info.owner_id.clone(),
        endpoint_id: info.endpoint_id.clone(),
        id_token: s.id,
        session_expires_in: info.session_expires_in,
        session_expiration_time: info.session_expiration_time.clone(),
        session_id: info.session_id.clone(),
        session_idle_timeout: info.session_idle_timeout,
    }
}

/// A keychain connection opened while waiting for a lock, or why it failed.
type Prefetched = Result<Arc<dyn Keychain>>;

/// Which store an item in this store's keychain namespace belongs to.
pub(crate) enum Ownership {
    /// This store wrote it, or the store that wrote it no longer exists.
    Ours,
    /// Another store of the same app id (another directory) wrote it.
    OtherStore,
    /// Cannot be told: no readable item 0, an older rctoken's record, or a
    /// store directory that cannot be inspected.
    Unknown,
}

impl TokenStore {
    /// Who owns the generation that `account` belongs to, from the store
    /// directory its item 0 records.
    pub(crate) fn ownership(&self, kc: &dyn Keychain, account: &str) -> Ownership {
        let Some(dir) = secrets::owner_of(kc, account).and_then(|o| o.store_dir) else {
            return Ownership::Unknown;
        };
        let dir = PathBuf::from(dir);
        if dir == self.dir {
            return Ownership::Ours;
        }
        match (files::exists(&dir), files::exists(&dir.join(METADATA_FILE))) {
            (Some(false), _) => Ownership::Ours,
            (Some(true), Some(true)) => Ownership::OtherStore,
            _ => Ownership::Unknown,
        }
    }
}

/// Room set aside for a refresh's result (see `TokenStore::reserve_for`).
struct Reserved {
    keychain: secrets::Reservation,
    file: files::ReservedFile,
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
