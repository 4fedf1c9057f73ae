//! # rctoken
//!
//! A secure on-disk store for RingCentral OAuth tokens ([`TokenInfo`]), for
//! desktop apps and command-line tools that must keep a login between runs.
//!
//! - The secrets (access, refresh and id token) live in the OS keychain, all
//!   three in one versioned envelope per profile, so a pair can never be
//!   half-updated: the Secret Service or kernel keyutils on Linux, the
//!   Keychain on macOS, the Credential Manager on Windows ([`Backend`]).
//! - Everything else lives in JSON metadata files in the platform's local
//!   data directory: one per profile plus a small index (mode 0600 in 0700
//!   directories), each replaced atomically under a file lock, so a save
//!   costs the same at 10 profiles and at 10,000. Listing profiles never
//!   touches the keychain.
//! - Profiles are keyed by `owner_id` (one RingCentral extension each); one is
//!   active; each may carry a label.
//! - [`TokenStore::refresh`] refreshes once across processes: RingCentral
//!   refresh tokens are single use. [`TokenStore::refresh_rejected`] forces
//!   one after a 401.
//! - Errors say what a program can do about them ([`Error::kind`]).
//! - Feature `async`: `AsyncTokenStore`, the same API for async code, under
//!   any runtime.
//! - Secrets are [`secrecy::SecretString`]s: redacted in `Debug`, never
//!   serialized except by [`TokenInfo::to_json_revealed`], zeroized on drop.
//!
//! ```
//! use rctoken::{Backend, MemoryKeychain, SaveOptions, Selector, TokenInfo, TokenStore};
//! use secrecy::ExposeSecret;
//!
//! # fn main() -> Result<(), rctoken::Error> {
//! # let tmp = tempfile::tempdir().unwrap();
//! let store = TokenStore::builder("my-app")
//!     .dir(tmp.path())                               // default: the platform data dir
//!     .backend(Backend::Memory(MemoryKeychain::new())) // default: Backend::Auto
//!     .open()?;
//!
//! let json = br#"{"access_token":"U1BCMDFU-access","token_type":"bearer","expires_in":3600,
//!   "refresh_token":"U1BCMDFU-refresh","refresh_token_expires_in":604800,
//!   "scope":"ReadAccounts","owner_id":"256440016"}"#;
//! let token = TokenInfo::from_json(json)?;
//! store.save(&token, SaveOptions::new().label("work"))?;   // first profile: active
//!
//! let loaded = store.load(Selector::Active)?;
//! assert_eq!(loaded.token.access_token.expose_secret(), "U1BCMDFU-access");
//! assert!(loaded.info.access_token_valid_for(store.now(), std::time::Duration::from_secs(60)));
//! assert!(loaded.info.access_token_remaining(store.now()).as_secs() > 3500);
//!
//! let mut second = TokenInfo::from_json(json)?;
//! second.owner_id = Some("11111".into());
//! store.save(&second, SaveOptions::new())?;
//! store.switch("11111")?;                                   // by key or label
//! assert_eq!(store.load(Selector::Active)?.info.profile, "11111");
//!
//! store.remove("work")?;                                    // secrets first, then metadata
//! assert_eq!(store.list()?.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "async")]
mod asynchronous;
mod clock;
#[cfg(feature = "postgres")]
mod database;
mod envelope;
mod error;
mod failpoint;
mod files;
mod keychain;
mod layout;
mod lock;
mod metadata;
mod model;
mod names;
mod repair;
#[cfg(feature = "ringcentral")]
pub mod ringcentral;
mod sdk_formats;
mod secrets;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod wait;

#[cfg(feature = "async")]
pub use asynchronous::AsyncTokenStore;
pub use envelope::ENVELOPE_VERSION;
pub use error::{Error, ErrorKind, NameKind, Result, UnsafeKind};
pub use keychain::{Backend, BackendName, KeySource, MemoryKeychain, Quota};
pub use layout::StoreLayout;
pub use metadata::{FORMAT_VERSION, ProfileInfo};
pub use model::{MAX_TTL_SECS, TokenInfo, TokenType};
pub use names::{MAX_NAME_CHARS, check_profile_name};
pub use repair::{Problem, Report};
pub use sdk_formats::TokenFormat;
pub use store::{
    AppClient, DEFAULT_KEYCHAIN_TIMEOUT, DEFAULT_LOCK_TIMEOUT, KeyRotation, Listing,
    MIN_REFRESH_INTERVAL, RefreshLock, SaveOptions, Selector, StoreBuilder, StoredToken,
    TokenStore,
};
pub use wait::{WaitFor, Waiting};

/// Re-exported so callers name the same secret type.
pub use secrecy;
