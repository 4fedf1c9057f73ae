//! How a store is opened ([`StoreBuilder`]), how a save files a token
//! ([`SaveOptions`]), and how a call names a profile ([`Selector`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::files;
use crate::keychain::{Backend, Connection, OpenConfig};
use crate::layout::StoreLayout;
use crate::metadata::MetaFiles;
use crate::names;
use crate::wait::{Notifier, Patience, Waiting};

use super::TokenStore;

/// Default bound on waiting for a lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on one keychain call.
pub const DEFAULT_KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Which profile a call is about: the active one, or one named by its key
/// or label. Every method that takes a profile takes `impl Into<Selector>`,
/// so a `&str` or `String` names one, an `Option<&str>` means "this one, or
/// else the active one", and [`Selector::Active`] says so explicitly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Selector {
    /// The active profile.
    #[default]
    Active,
    /// The profile with this key, or else with this label.
    Name(String),
}

impl Selector {
    /// The name, or `None` for the active profile.
    pub fn name(&self) -> Option<&str> {
        match self {
            Selector::Active => None,
            Selector::Name(n) => Some(n),
        }
    }
}

impl From<&str> for Selector {
    fn from(name: &str) -> Self {
        Selector::Name(name.to_string())
    }
}

impl From<&&str> for Selector {
    fn from(name: &&str) -> Self {
        Selector::Name((*name).to_string())
    }
}

impl From<String> for Selector {
    fn from(name: String) -> Self {
        Selector::Name(name)
    }
}

impl From<&String> for Selector {
    fn from(name: &String) -> Self {
        Selector::Name(name.clone())
    }
}

impl<T: Into<Selector>> From<Option<T>> for Selector {
    fn from(name: Option<T>) -> Self {
        name.map_or(Selector::Active, Into::into)
    }
}

/// How [`TokenStore::save`] files a token.
#[derive(Clone, Debug, Default)]
#[must_use = "options do nothing until passed to `TokenStore::save`"]
pub struct SaveOptions {
    pub(super) profile: Option<String>,
    pub(super) label: Option<String>,
    pub(super) switch: bool,
    pub(super) client: Option<AppClient>,
    pub(super) move_secrets: bool,
}

/// The RingCentral app a profile logged in with: its client id and server
/// (kept in the profile's metadata) and its client secret, if it has one
/// (kept in the keychain with the profile's tokens). With it, later
/// refreshes need nothing from the caller.
#[derive(Clone)]
#[non_exhaustive]
pub struct AppClient {
    /// The app's client id.
    pub client_id: String,
    /// The server's base URL (e.g. `https://platform.ringcentral.com`).
    pub server: String,
    /// The client secret; `None` for a public (PKCE) app.
    pub client_secret: Option<secrecy::SecretString>,
}

impl AppClient {
    /// An app client.
    pub fn new(
        client_id: impl Into<String>,
        server: impl Into<String>,
        client_secret: Option<secrecy::SecretString>,
    ) -> Self {
        AppClient {
            client_id: client_id.into(),
            server: server.into(),
            client_secret,
        }
    }
}

impl std::fmt::Debug for AppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppClient")
            .field("client_id", &self.client_id)
            .field("server", &self.server)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
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
    /// Allow re-saving a profile whose secrets are in a backend this store
    /// cannot reach (the Secret Service, without a session bus): the new
    /// tokens go into this store's backend and the old items stay where
    /// they are, for the user to remove there. Without it such a save is
    /// refused with [`Error::WrongBackend`](crate::Error::WrongBackend), so
    /// nothing moves without being asked. (Profiles in a backend this
    /// store still reads, plain keyutils under the sealed store, move on
    /// any save, their old items deleted.)
    pub fn move_secrets(mut self, yes: bool) -> Self {
        self.move_secrets = yes;
        self
    }
    /// Record the app the token came from (see [`AppClient`]). Without it,
    /// a profile that has one keeps it.
    pub fn client(mut self, client: AppClient) -> Self {
        self.client = Some(client);
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
    notifier: Option<Notifier>,
    database_url: Option<String>,
}

impl StoreBuilder {
    pub(super) fn new(app_id: &str) -> Self {
        StoreBuilder {
            app_id: app_id.to_string(),
            dir: None,
            backend: Backend::Auto,
            clock: Arc::new(SystemClock),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            keychain_timeout: DEFAULT_KEYCHAIN_TIMEOUT,
            max_item_bytes: None,
            notifier: None,
            database_url: None,
        }
    }

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
    /// Use this clock instead of the system's (tests of time-dependent
    /// behaviour; see [`testing::ManualClock`](crate::testing::ManualClock)).
    #[cfg(feature = "testing")]
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
    /// Call `notice` once for each wait (a lock another process holds, a
    /// keychain call) that lasts longer than `after`, with what it waits
    /// for and its limit, so a program can tell its user instead of
    /// hanging silently (the CLI prints one line on stderr after 1.5 s).
    /// It runs on the waiting thread, or on the keychain's worker thread's
    /// waiter; keep it short.
    pub fn wait_notice(
        mut self,
        after: Duration,
        notice: impl Fn(&Waiting<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.notifier = Some(Notifier {
            after,
            f: Arc::new(notice),
        });
        self
    }
    /// Split envelopes into items of at most this many bytes, even where the
    /// backend allows more (backend limits still apply).
    pub fn max_item_bytes(mut self, n: usize) -> Self {
        self.max_item_bytes = Some(n);
        self
    }

    /// Keep the store in a PostgreSQL database instead of the directory
    /// and the keychain: `url` is a `postgresql://` URL or libpq
    /// `key=value` words, completed from the `PG*` variables and the
    /// password file as libpq does. The envelopes are sealed with the key
    /// file's key (`RCTOKEN_KEY_FILE`, or the systemd credential), so the
    /// database never holds a plaintext secret; with
    /// `.backend(Backend::Sealed(KeySource::File(path)))` that file's key
    /// instead. Nothing is contacted, and no directory created, until the
    /// first call.
    #[cfg(feature = "postgres")]
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Open the store: create the directory (0700) if needed and check that
    /// it is safe. The keychain is not contacted until a secret is needed.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a bad app id, [`Error::NoDataDir`],
    /// [`Error::UnsafeStore`], [`Error::Io`].
    pub fn open(self) -> Result<TokenStore> {
        self.open_as(true)
    }

    /// Open a store that exists, creating nothing: for programs that only
    /// read, or that act on profiles saved before (a mistyped app id or
    /// directory is then reported, not silently made into a new store).
    /// The directory must exist; files it lacks are an empty store.
    ///
    /// # Errors
    /// [`Error::NoStore`] if the directory does not exist, and those of
    /// [`open`](Self::open).
    pub fn open_existing(self) -> Result<TokenStore> {
        self.open_as(false)
    }

    fn open_as(self, create: bool) -> Result<TokenStore> {
        names::check_app_id(&self.app_id)?;
        #[cfg(feature = "postgres")]
        let database = self
            .database_url
            .as_deref()
            .map(|url| {
                // The key file named by `Backend::Sealed(KeySource::File)`,
                // else the one the environment configures.
                let key_file = match &self.backend {
                    Backend::Sealed(crate::KeySource::File(path)) => Some(path.clone()),
                    _ => None,
                };
                crate::database::Database::new(&self.app_id, url, key_file, self.lock_timeout)
            })
            .transpose()?;
        #[cfg(feature = "postgres")]
        let on_database = database.is_some();
        #[cfg(not(feature = "postgres"))]
        let on_database = false;
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
        // A store in the database has no directory: nothing is created,
        // and the layout only names where a file store would be.
        let dir = if on_database {
            dir
        } else {
            if create {
                files::ensure_private_dir(&dir)?;
            } else {
                match std::fs::symlink_metadata(&dir) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::NoStore {
                            app: self.app_id,
                            dir,
                        });
                    }
                    _ => files::check_safe(&dir, true)?,
                }
            }
            std::fs::canonicalize(&dir).map_err(|e| Error::io("resolving", &dir, e))?
        };
        let layout = StoreLayout::new(dir);
        Ok(TokenStore {
            meta: MetaFiles::new(&layout, &self.app_id),
            keychain: Connection::new(
                self.backend,
                OpenConfig {
                    service: format!("rctoken:{}", self.app_id),
                    app_id: self.app_id.clone(),
                    dir: layout.dir().to_path_buf(),
                    timeout: Patience::new(self.keychain_timeout, self.notifier.clone()),
                    lock_timeout: Patience::new(self.lock_timeout, self.notifier.clone()),
                    max_item_bytes: self.max_item_bytes,
                    rebuild_key_record: false,
                },
            ),
            app_id: self.app_id,
            layout,
            clock: self.clock,
            lock_timeout: Patience::new(self.lock_timeout, self.notifier),
            #[cfg(feature = "postgres")]
            database,
        })
    }
}
