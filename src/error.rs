//! The one error type of the library.
//!
//! Every variant's documentation says what the caller should do about it, and
//! [`Error::hint`] gives the same advice as one line for end users. No variant
//! ever carries secret material: token parse errors name fields, keychain
//! errors are rendered to text with any returned bytes wiped first.

use std::path::PathBuf;
use std::time::Duration;

/// Something the store could not do.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The keychain could not be reached, is locked, or did not answer within
    /// the keychain timeout. Unlock or start the keychain (or choose another
    /// backend) and retry; nothing was changed.
    #[error("the {backend} keychain is unavailable: {reason}")]
    KeychainUnavailable {
        /// Which backend.
        backend: String,
        /// What went wrong, without secrets.
        reason: String,
    },
    /// The keychain answered with an error other than "unavailable". Retry; if
    /// it persists, run `verify`/`rctoken doctor`.
    #[error("the {backend} keychain failed: {reason}")]
    Keychain {
        /// Which backend.
        backend: String,
        /// What went wrong, without secrets.
        reason: String,
    },
    /// No profile has this key or label. List the profiles and use one of them.
    #[error("no profile `{0}`")]
    NoSuchProfile(String),
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
    },
    /// The token JSON does not parse or violates the model. Pass the token
    /// endpoint's response unchanged.
    #[error("bad token JSON: {reason}")]
    BadToken {
        /// The field and the problem, never the value.
        reason: String,
    },
    /// A profile key, label or app id is not acceptable. Choose another one.
    #[error("invalid {what}: {reason}")]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// Why it is refused.
        reason: String,
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
}

impl Error {
    /// One line for an end user: what to do about this error.
    pub fn hint(&self) -> String {
        match self {
            Error::KeychainUnavailable { backend, .. } => format!(
                "unlock or start the {backend} keychain (or pick another with --backend), then retry"
            ),
            Error::Keychain { .. } => "retry; if it persists run `rctoken doctor`".into(),
            Error::NoSuchProfile(_) => "run `rctoken list` to see the profiles".into(),
            Error::NoActiveProfile => {
                "name a profile, or make one active with `rctoken switch PROFILE`".into()
            }
            Error::SecretMissing { .. } => {
                "log in again and import the new token, or run `rctoken doctor --fix` to drop the profile".into()
            }
            Error::WrongBackend { held_by, .. } => {
                format!("run again with --backend {held_by}")
            }
            Error::CorruptSecret { .. } => {
                "run `rctoken doctor --fix`, then log in again for this profile".into()
            }
            Error::CorruptMetadata { .. } => {
                "fix the file by hand, or run `rctoken doctor --fix` to move it aside and rebuild".into()
            }
            Error::UnsupportedVersion { .. } => "upgrade rctoken to read this store".into(),
            Error::UnsafeStore { .. } => {
                "make it yours and private (chown; chmod 700 for the directory, 600 for files; no symlink)".into()
            }
            Error::BadToken { .. } => {
                "pass the token endpoint's JSON response unchanged".into()
            }
            Error::InvalidName { what: "app id", .. } => {
                "use 1 to 64 of A-Z a-z 0-9 _ - . (not starting with .)".into()
            }
            Error::NameTaken { .. } => {
                "choose another name; profile keys and labels share one namespace, so first relabel the other profile if this name must stay".into()
            }
            Error::InvalidName { .. } => {
                "use printable characters only, at most 128 of them".into()
            }
            Error::MissingProfileKey => "name the profile explicitly (--profile NAME)".into(),
            Error::LoginRequired { .. } => {
                "log in again and import the new token".into()
            }
            Error::RefreshFailed { .. } => "the stored tokens are unchanged; retry later".into(),
            Error::LockTimeout { .. } => {
                "retry; if it persists, look for a hung process holding the lock".into()
            }
            Error::Io { .. } => "check the path, its permissions and free space".into(),
            Error::NoDataDir => "pass an explicit directory (--dir)".into(),
            Error::ForeignStore { owner, .. } => format!(
                "pass --app {owner} to use this store, or give this app a directory of its own with --dir"
            ),
            Error::KeychainFull { .. } => {
                "remove profiles you no longer need (`rctoken logout PROFILE`), or use a keychain with more room (--backend secret-service)".into()
            }
            Error::NotRefreshed { source, .. } => source.hint(),
            Error::RefreshNotStored { .. } => {
                "log in again and import the new token: the old refresh token no longer works, so retrying the refresh cannot help".into()
            }
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

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
