//! The one error type of the library.
//!
//! Every variant's documentation says what the caller should do about it,
//! and [`Error::kind`] sorts the variants into the few things a program can
//! act on ([`ErrorKind`]): retry later, log in again, fix the store or its
//! environment, fix the input, or report a bug. What to tell an end user is
//! the application's business (the CLI has its own hints). No variant ever
//! carries secret material: token parse errors name fields, keychain errors
//! are rendered to text with any returned bytes wiped first, and a platform
//! error is kept as [`source`](std::error::Error::source) only where it
//! carries no secret bytes.

use std::path::PathBuf;
use std::time::Duration;

/// Something the store could not do.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The keychain could not be reached, is locked, failed on the platform
    /// side (for the Secret Service: a D-Bus error), or did not answer within
    /// the keychain timeout. Unlock or start the keychain (or choose another
    /// backend) and retry.
    ///
    /// The stored tokens are unchanged: a save or refresh writes a new
    /// generation before anything refers to it, so a call that failed (or
    /// took effect after its timeout) leaves at most unreferenced items,
    /// which [`TokenStore::verify`](crate::TokenStore::verify) reports and
    /// `repair` deletes. A remove is the exception: it deletes the items
    /// first, so a failure part way leaves the profile listed with part of
    /// its secrets gone; repeat the remove, or `repair` drops the profile.
    #[error("the {backend} keychain is unavailable: {reason}")]
    KeychainUnavailable {
        /// Which backend.
        backend: String,
        /// What went wrong, without secrets.
        reason: String,
        /// The platform's error, where it carries no secret bytes.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The keychain answered with an error other than "unavailable" (the
    /// stored tokens are unchanged, as for [`Error::KeychainUnavailable`]).
    /// Retry; if it persists, run `verify`/`rctoken doctor`.
    #[error("the {backend} keychain failed: {reason}")]
    Keychain {
        /// Which backend.
        backend: String,
        /// What went wrong, without secrets.
        reason: String,
        /// The platform's error, where it carries no secret bytes.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// No profile has this key or label. List the profiles and use one of them.
    #[error("no profile `{0}`")]
    NoSuchProfile(String),
    /// No store exists for this app id in this directory (from
    /// [`StoreBuilder::open_existing`](crate::StoreBuilder::open_existing)):
    /// nothing was ever saved there. Check the app id and directory.
    #[error("no store for app `{app}` at {}", dir.display())]
    NoStore {
        /// The app id.
        app: String,
        /// The directory that does not exist.
        dir: PathBuf,
    },
    /// No profile is active. Switch to one, or name it explicitly.
    #[error("no profile is active")]
    NoActiveProfile,
    /// The metadata lists the profile but its secrets are not in the keychain
    /// (deleted by another tool, or a keyutils keyring cleared at reboot).
    /// Log in again and save the new token, or run `repair` to drop the profile.
    #[error("the secrets of profile `{profile}` are missing from the {backend} keychain")]
    SecretMissing {
        /// The profile key.
        profile: String,
        /// Which backend was asked.
        backend: String,
    },
    /// The profile's secrets live in another backend than the one this store
    /// opened. Open the store with that backend.
    #[error("the secrets of profile `{profile}` are in the {held_by} backend, not {backend}")]
    WrongBackend {
        /// The profile key.
        profile: String,
        /// The backend named in the metadata.
        held_by: String,
        /// The backend of this store.
        backend: String,
    },
    /// The keychain item is not a secret envelope this version understands.
    /// Run `repair`, then log in again for this profile.
    #[error("the keychain item of profile `{profile}` is unreadable: {reason}")]
    CorruptSecret {
        /// The profile key.
        profile: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The profile's secrets were written by a newer rctoken (a newer
    /// envelope format). Nothing is wrong with them: upgrade rctoken.
    /// Repair leaves them alone.
    #[error(
        "the secrets of profile `{profile}` have format version {found}; this rctoken reads up to {supported}"
    )]
    SecretsTooNew {
        /// The profile key.
        profile: String,
        /// The version found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// The metadata file does not parse. It has not been touched; fix it by
    /// hand or run `repair` (`rctoken doctor --fix`), which moves it aside.
    #[error("metadata file {} is corrupt: {reason}", path.display())]
    CorruptMetadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The metadata file was written by a newer rctoken. Upgrade rctoken.
    #[error("metadata file {} has format version {found}; this rctoken reads up to {supported}", path.display())]
    UnsupportedVersion {
        /// The metadata file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// A store file or directory is writable by others, owned by another user,
    /// or a symlink. Fix its ownership and mode (0700 directory, 0600 files).
    #[error("refusing to use {}: {reason}", path.display())]
    UnsafeStore {
        /// The file or directory.
        path: PathBuf,
        /// What is unsafe about it.
        reason: String,
        /// The same, for a program.
        kind: UnsafeKind,
    },
    /// The token JSON does not parse or violates the model. Pass the token
    /// endpoint's response unchanged.
    #[error("bad token JSON: {reason}")]
    BadToken {
        /// The field and the problem, never the value.
        reason: String,
    },
    /// The JSON is the token endpoint's error response, not a token: the
    /// request that produced it was refused. `invalid_grant` means the
    /// refresh token (or code) it used is dead: log in again.
    #[error(
        "the JSON is RingCentral's error response, not a token: {error}{}{}",
        error_code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
        description.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    ErrorResponse {
        /// The OAuth `error`, e.g. `invalid_grant`.
        error: String,
        /// `error_description`, if given.
        description: Option<String>,
        /// The first `errors[].errorCode`, e.g. `OAU-213`.
        error_code: Option<String>,
    },
    /// A profile key, label or app id is not acceptable (for
    /// [`NameKind::OwnerId`]: the token's `owner_id` cannot name a profile,
    /// so give the profile a key explicitly). Choose another one.
    #[error("invalid {kind}: {reason}")]
    InvalidName {
        /// Which kind of name.
        kind: NameKind,
        /// Why it is refused.
        reason: String,
    },
    /// The token is too large to store: a field does not fit the envelope
    /// format (16-bit key length, 32-bit secret lengths, 65,535 items).
    /// Nothing was changed; no RingCentral token comes near these limits.
    #[error("the {what} is too large to store")]
    TooLarge {
        /// Which part of the token.
        what: String,
    },
    /// The profile key or label is already another profile's key or label:
    /// a name resolves to one profile, whichever came first. Choose another
    /// name, or first change the other profile's label. Nothing was changed.
    #[error("`{name}` already names profile `{owner}` (as its {})", if *.as_label { "label" } else { "key" })]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The profile it already names.
        owner: String,
        /// Whether it is that profile's label (else its key).
        as_label: bool,
    },
    /// The token has no `owner_id`, so the profile key must be given explicitly.
    #[error("the token has no owner_id, so it needs an explicit profile name")]
    MissingProfileKey,
    /// The refresh token is missing or expired: the user must log in again.
    #[error("login required for profile `{profile}`: {reason}")]
    LoginRequired {
        /// The profile key.
        profile: String,
        /// Why a refresh is impossible.
        reason: String,
    },
    /// The refresh function failed; the stored tokens are unchanged. Retry later.
    #[error("refresh failed for profile `{profile}`: {source}")]
    RefreshFailed {
        /// The profile key.
        profile: String,
        /// The caller's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process held a store lock for longer than the lock timeout.
    /// Retry; if it persists, look for a hung process holding the lock.
    #[error("timed out after {}s waiting for lock {}", waited.as_secs(), path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// An I/O error on a store file. Check the path, permissions and free space.
    #[error("{} failed on {}: {source}", op, path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No data directory could be determined (no home directory). Pass an
    /// explicit directory.
    #[error("no data directory could be determined for the store")]
    NoDataDir,
    /// The store directory belongs to another app id (another keychain
    /// namespace). Open it with that app id, or give this app its own
    /// directory; nothing was changed.
    #[error("{} is the store of app `{owner}`, not of app `{app}`", path.display())]
    ForeignStore {
        /// The metadata index that names the owner.
        path: PathBuf,
        /// The app id recorded in the store.
        owner: String,
        /// The app id this store was opened with.
        app: String,
    },
    /// The keychain has no room for the secrets (for kernel keyutils: the
    /// per-user quota). Nothing was changed. Free room or use another backend.
    #[error("the {backend} keychain is full: {reason}")]
    KeychainFull {
        /// Which backend.
        backend: String,
        /// What is full, with figures where known.
        reason: String,
    },
    /// A refresh was not attempted because room for its result could not be
    /// set aside first. The refresh token was not used and the stored tokens
    /// are unchanged; `source` says why.
    #[error(
        "did not refresh profile `{profile}`: no room for the new tokens could be set aside, so the refresh token was not used: {source}"
    )]
    NotRefreshed {
        /// The profile key.
        profile: String,
        /// Why the room could not be set aside.
        #[source]
        source: Box<Error>,
    },
    /// The refresh succeeded but its result could not be stored. The old
    /// refresh token is spent (RingCentral refresh tokens are single use),
    /// so the stored tokens no longer refresh: use `token` (valid until its
    /// access token expires) and log in again. Retrying the refresh cannot help.
    #[error(
        "refreshed profile `{profile}`, but the new tokens could not be stored, and the old refresh token is now spent: {source}"
    )]
    RefreshNotStored {
        /// The profile key.
        profile: String,
        /// The new token, which only this error holds now.
        token: Box<crate::model::TokenInfo>,
        /// Why it could not be stored.
        #[source]
        source: Box<Error>,
    },
    /// The sealed store's key file cannot be read or holds no key. Fix the
    /// file (32 random bytes in base64, see `docs/cli.md`) or point
    /// `RCTOKEN_KEY_FILE` at the right one; nothing was changed.
    #[error("key file {} {reason}", path.display())]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it (never its content).
        reason: String,
    },
    /// The profile's secrets were sealed under a key the sealed store no
    /// longer has (keyutils is emptied at reboot), or under another key
    /// file's key. Log in again and save the new token (or configure the
    /// key they were sealed with); `repair` drops such profiles.
    #[error("the secrets of profile `{profile}` cannot be unsealed: {reason}")]
    SealingKeyLost {
        /// The profile key.
        profile: String,
        /// Which key is missing.
        reason: String,
    },
    /// The sealed store is sealed under another key than the configured
    /// one (another key file, or a store moved to a key file that this
    /// process was not given). Nothing was read, sealed or deleted:
    /// configure the store's key (the message names it).
    #[error("the sealed store's key is not configured: {reason}")]
    WrongSealingKey {
        /// Which key the store is sealed under, and which one is configured.
        reason: String,
    },
    /// A key rotation was refused before it changed anything (an item that
    /// does not open, a rotation to another key pending, no new key given),
    /// or cannot finish; the reason says what to do.
    #[error("the key rotation cannot go on: {reason}")]
    CannotRotate {
        /// Why, and what to do.
        reason: String,
    },
    /// The PostgreSQL store's server could not be reached, restarted,
    /// timed out, or refused a statement. Every change is one transaction,
    /// so nothing was half-written: retry when the server is back.
    #[error("the database {server} could not {doing}: {reason}")]
    Database {
        /// The server, as `user@host:port/db` (never the password).
        server: String,
        /// What the call was doing.
        doing: String,
        /// The server's or the connection's words.
        reason: String,
        /// Whether it was a row lock that another host held past the lock
        /// timeout.
        lock_timeout: bool,
    },
    /// The database URL or a `PG*` variable cannot be used. Fix it; nothing
    /// was contacted.
    #[error("the database settings cannot be used: {reason}")]
    DatabaseConfig {
        /// What is wrong, without any password.
        reason: String,
    },
    /// A bug: a keychain backend panicked (caught at the keychain boundary)
    /// or an invariant of this crate did not hold. The store is crash-safe,
    /// so nothing is torn; retry, and report it.
    #[error("internal error (a bug): {reason}")]
    Internal {
        /// What failed, without secrets.
        reason: String,
    },
}

/// What is unsafe about a store path or a key file ([`Error::UnsafeStore`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsafeKind {
    /// A symbolic link where a directory or file must be.
    Symlink,
    /// Not a directory where the store's directory must be.
    NotADirectory,
    /// Not a regular file where a store file or key file must be.
    NotAFile,
    /// Owned by another user (for a key file: neither this user nor root).
    OtherOwner,
    /// Writable by group or others (for a key file: any group or other access).
    OpenToOthers,
}

impl Error {
    /// What a program can do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::KeychainUnavailable { .. }
            | Error::Keychain { .. }
            | Error::LockTimeout { .. }
            | Error::RefreshFailed { .. }
            | Error::Database { .. } => ErrorKind::RetryLater,
            Error::LoginRequired { .. }
            | Error::SecretMissing { .. }
            | Error::SealingKeyLost { .. }
            | Error::RefreshNotStored { .. } => ErrorKind::LoginAgain,
            Error::NoSuchProfile(_)
            | Error::NoActiveProfile
            | Error::NoStore { .. }
            | Error::BadToken { .. }
            | Error::InvalidName { .. }
            | Error::TooLarge { .. }
            | Error::NameTaken { .. }
            | Error::MissingProfileKey
            | Error::DatabaseConfig { .. } => ErrorKind::BadInput,
            Error::WrongBackend { .. }
            | Error::CorruptSecret { .. }
            | Error::CorruptMetadata { .. }
            | Error::UnsupportedVersion { .. }
            | Error::SecretsTooNew { .. }
            | Error::UnsafeStore { .. }
            | Error::Io { .. }
            | Error::NoDataDir
            | Error::ForeignStore { .. }
            | Error::BadKeyFile { .. }
            | Error::WrongSealingKey { .. }
            | Error::CannotRotate { .. }
            | Error::KeychainFull { .. } => ErrorKind::FixStore,
            Error::ErrorResponse { error, .. } if error == "invalid_grant" => ErrorKind::LoginAgain,
            Error::ErrorResponse { .. } => ErrorKind::BadInput,
            Error::NotRefreshed { source, .. } => source.kind(),
            Error::Internal { .. } => ErrorKind::Bug,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// What a program can do about an [`Error`] (see [`Error::kind`]): the
/// classification that cargo's credential providers and keyring-core give
/// their callers, for code that cannot show a message to a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A transient failure (a lock held too long, a keychain that did not
    /// answer, a refresh that failed): nothing was changed; retry later,
    /// with backoff.
    RetryLater,
    /// The stored tokens cannot be used or refreshed any more (the refresh
    /// token is gone, expired or spent): the user must log in again, and the
    /// new token be saved.
    LoginAgain,
    /// The store, its files or its keychain need attention before this can
    /// work (corrupt or unsafe files, another app's store, another backend,
    /// a full keychain, an I/O error): [`TokenStore::verify`] and
    /// [`TokenStore::repair`] fix some; the rest need a person.
    ///
    /// [`TokenStore::verify`]: crate::TokenStore::verify
    /// [`TokenStore::repair`]: crate::TokenStore::repair
    FixStore,
    /// The caller's input is refused (a token that does not parse, a bad
    /// name, a profile that does not exist): nothing was changed; fix the
    /// input.
    BadInput,
    /// A bug in rctoken or in a keychain backend (a panic caught at the
    /// keychain boundary, an invariant that did not hold). The store is
    /// crash-safe, so nothing is torn; report it.
    Bug,
}

/// Which kind of name [`Error::InvalidName`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// An application id.
    AppId,
    /// A profile key given explicitly.
    Profile,
    /// A token's `owner_id`, the default profile key.
    OwnerId,
    /// A label.
    Label,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::AppId => "app id",
            NameKind::Profile => "profile name",
            NameKind::OwnerId => "owner_id as a profile name",
            NameKind::Label => "label",
        })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
