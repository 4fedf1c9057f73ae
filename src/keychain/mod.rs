//! Keychain backends. Each stores opaque byte items under an account name in
//! the store's namespace (`rctoken:<app id>`). The store never sees more than
//! this small interface.

use crate::wait::Patience;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::Error;

mod connection;
mod core_store;
mod keyutils;
mod memory;
pub(crate) mod sealed;
pub(crate) mod sealing_key;

pub(crate) use connection::{Connection, Prefetched};
pub use memory::MemoryKeychain;
pub(crate) use sealed::{RekeyReport, RekeyTo};

/// Which keychain a store uses.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Backend {
    /// macOS Keychain on macOS, Credential Manager on Windows; on Linux the
    /// Secret Service when a session bus and the service answer, else keyutils.
    #[default]
    Auto,
    /// The freedesktop Secret Service over D-Bus (GNOME Keyring, KWallet…). Linux.
    SecretService,
    /// Kernel keyutils, the user keyring (`@u`). Linux; cleared at reboot.
    Keyutils,
    /// The sealed store: each item an encrypted file in the store
    /// directory, under one key that [`KeySource`] names. Any size, any
    /// number of profiles, one small key in the keychain.
    Sealed(KeySource),
    /// The macOS Keychain.
    MacosKeychain,
    /// The Windows Credential Manager.
    WindowsCredentialManager,
    /// An in-process keychain, for tests of code that uses this crate.
    Memory(MemoryKeychain),
    /// Any keyring-core credential store (for example its mock store, for
    /// fault injection). `name` is what metadata records as the backend.
    KeyringCore {
        /// The name recorded in metadata.
        name: String,
        /// The store.
        store: Arc<keyring_core::CredentialStore>,
    },
}

impl Backend {
    /// Parse a backend name as the CLI spells it (see [`Backend::NAMES`]).
    pub fn from_name(name: &str) -> Option<Backend> {
        Some(match name {
            AUTO => Backend::Auto,
            SECRET_SERVICE => Backend::SecretService,
            KEYUTILS => Backend::Keyutils,
            sealed::SEALED => Backend::Sealed(KeySource::Auto),
            MACOS_KEYCHAIN => Backend::MacosKeychain,
            WINDOWS_CREDENTIAL_MANAGER => Backend::WindowsCredentialManager,
            MEMORY => Backend::Memory(MemoryKeychain::new()),
            _ => return None,
        })
    }

    /// The name as the CLI and the metadata spell it.
    pub fn name(&self) -> &str {
        match self {
            Backend::Auto => AUTO,
            Backend::SecretService => SECRET_SERVICE,
            Backend::Keyutils => KEYUTILS,
            Backend::Sealed(_) => sealed::SEALED,
            Backend::MacosKeychain => MACOS_KEYCHAIN,
            Backend::WindowsCredentialManager => WINDOWS_CREDENTIAL_MANAGER,
            Backend::Memory(_) => MEMORY,
            Backend::KeyringCore { name, .. } => name,
        }
    }

    /// Every name [`from_name`](Self::from_name) accepts, with a one-line
    /// description, for a command line's help.
    pub const NAMES: &'static [BackendName] = &[
        BackendName {
            name: AUTO,
            help: "macOS Keychain / Windows Credential Manager; on Linux the Secret Service if it answers, else the sealed store (key file if configured, else keyutils)",
            tests_only: false,
        },
        BackendName {
            name: SECRET_SERVICE,
            help: "freedesktop Secret Service over D-Bus (GNOME Keyring, KWallet)",
            tests_only: false,
        },
        BackendName {
            name: KEYUTILS,
            help: "Linux kernel keyutils, user keyring (cleared at reboot)",
            tests_only: false,
        },
        BackendName {
            name: sealed::SEALED,
            help: "Encrypted files in the store directory; the key in keyutils, or in a key file (RCTOKEN_KEY_FILE)",
            tests_only: false,
        },
        BackendName {
            name: MACOS_KEYCHAIN,
            help: "macOS Keychain",
            tests_only: false,
        },
        BackendName {
            name: WINDOWS_CREDENTIAL_MANAGER,
            help: "Windows Credential Manager",
            tests_only: false,
        },
        BackendName {
            name: MEMORY,
            help: "In-process keychain for tests; forgotten when the process exits",
            tests_only: true,
        },
    ];
}

/// Where the sealed store's key is kept ([`Backend::Sealed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// The key file the environment names (`RCTOKEN_KEY_FILE`, or the
    /// systemd credential `rctoken-<app id>` in `$CREDENTIALS_DIRECTORY`),
    /// else a key in kernel keyutils.
    #[default]
    Auto,
    /// A key in kernel keyutils (user keyring), created on first use;
    /// cleared at reboot.
    Keyutils,
    /// This key file: 32 bytes in base64, private to the user.
    File(std::path::PathBuf),
}

/// A backend's name as [`Backend::from_name`] accepts it (see [`Backend::NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendName {
    /// The name.
    pub name: &'static str,
    /// One line on what it is.
    pub help: &'static str,
    /// Whether it is only for tests (the in-memory keychain, which lives as
    /// long as the process).
    pub tests_only: bool,
}

const AUTO: &str = "auto";
pub(crate) const MACOS_KEYCHAIN: &str = "macos-keychain";
pub(crate) const WINDOWS_CREDENTIAL_MANAGER: &str = "windows-credential-manager";
const MEMORY: &str = "memory";
pub(crate) const SECRET_SERVICE: &str = "secret-service";
pub(crate) const KEYUTILS: &str = "keyutils";

/// A keychain error, already free of secret bytes: what kind of failure,
/// a message, and the platform's own error where it carries none.
#[derive(Debug)]
pub(crate) struct KcError {
    pub kind: KcKind,
    pub message: String,
    pub source: Option<BoxError>,
}

/// A platform error kept as the `source()` of a keychain error.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of keychain failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KcKind {
    /// Unreachable, locked, or not answering in time.
    Unavailable,
    /// No room for the item (a quota), with figures where known.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Full,
    /// Any other failure.
    Other,
    /// A panic in the backend, caught at its boundary.
    Bug,
    /// The item is there but does not authenticate (sealed store: altered,
    /// truncated, or moved from elsewhere).
    Corrupt,
    /// The item was sealed under a key the store no longer has.
    KeyLost,
    /// The store is sealed under another key than the one configured (a
    /// key file that is not the store's): nothing is read or sealed.
    WrongKey,
}

impl KcError {
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(KcKind::Unavailable, message)
    }
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn full(message: impl Into<String>) -> Self {
        Self::new(KcKind::Full, message)
    }
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self::new(KcKind::Other, message)
    }
    pub(crate) fn bug(message: impl Into<String>) -> Self {
        Self::new(KcKind::Bug, message)
    }
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Self::new(KcKind::Corrupt, message)
    }
    pub(crate) fn key_lost(message: impl Into<String>) -> Self {
        Self::new(KcKind::KeyLost, message)
    }
    pub(crate) fn wrong_key(message: impl Into<String>) -> Self {
        Self::new(KcKind::WrongKey, message)
    }
    fn new(kind: KcKind, message: impl Into<String>) -> Self {
        KcError {
            kind,
            message: message.into(),
            source: None,
        }
    }
    /// This failure of the backend `backend` as a library error.
    pub(crate) fn into_error(self, backend: &str) -> Error {
        let backend = backend.to_string();
        let (reason, source) = (self.message, self.source);
        match self.kind {
            KcKind::Unavailable => Error::KeychainUnavailable {
                backend,
                reason,
                source,
            },
            KcKind::Full => Error::KeychainFull { backend, reason },
            // Outside a read (which reports them per profile), an unreadable
            // item is the keychain failing.
            KcKind::Other | KcKind::Corrupt | KcKind::KeyLost => Error::Keychain {
                backend,
                reason,
                source,
            },
            KcKind::WrongKey => Error::WrongSealingKey { reason },
            KcKind::Bug => Error::Internal {
                reason: format!("{backend}: {reason}"),
            },
        }
    }
    /// Keep `source` as the cause (only an error that carries no secret bytes).
    pub(crate) fn caused_by(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }
}

/// How much of a keychain's quota one user has used (kernel keyutils).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Bytes used (payloads and descriptions of every key of the user).
    pub used_bytes: u64,
    /// The user's byte limit.
    pub max_bytes: u64,
    /// Keys owned.
    pub used_keys: u64,
    /// The user's key limit.
    pub max_keys: u64,
}

/// The interface the store uses.
pub(crate) trait Keychain: Send + Sync {
    /// The backend name recorded in metadata.
    fn name(&self) -> &str;
    /// The largest item this backend stores.
    fn max_item_bytes(&self) -> usize;
    /// Create or replace an item.
    fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError>;
    /// Read an item; `None` if absent.
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError>;
    /// Delete an item; `false` if it was absent.
    fn delete(&self, account: &str) -> Result<bool, KcError>;
    /// All accounts in the namespace, or `None` if the backend cannot enumerate.
    fn list(&self) -> Result<Option<Vec<String>>, KcError>;
    /// The quota this user is held to, if the backend has one.
    fn quota(&self) -> Option<Quota> {
        None
    }
    /// Re-seal every item under a new key: the sealed store only.
    fn rekey(&self, _to: &RekeyTo) -> Result<RekeyReport, Error> {
        Err(Error::CannotRotate {
            reason: format!(
                "this store keeps its secrets in {}, which has no key of rctoken's to rotate; \
                 only the sealed store does",
                self.name()
            ),
        })
    }
    /// Called after the last profile is gone: drop the backend's own key,
    /// if it has one (the sealed store's keyutils key).
    fn forget_key(&self) -> Result<(), KcError> {
        Ok(())
    }
    /// What opening it for repair did to its own records (the sealed
    /// store's key record), if anything.
    fn rebuilt(&self) -> Option<String> {
        None
    }
}

/// A backend whose panics become errors: no panic crosses the keychain
/// boundary (a backend crate's bug must not abort a half-done operation).
struct Guarded(Arc<dyn Keychain>);

fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, KcError>) -> Result<T, KcError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(KcError::bug(format!(
            "the keychain backend failed ({what} panicked)"
        )))
    })
}

impl Keychain for Guarded {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn max_item_bytes(&self) -> usize {
        self.0.max_item_bytes()
    }
    fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError> {
        guard("set", || self.0.set(account, data))
    }
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        guard("get", || self.0.get(account))
    }
    fn delete(&self, account: &str) -> Result<bool, KcError> {
        guard("delete", || self.0.delete(account))
    }
    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        guard("list", || self.0.list())
    }
    fn quota(&self) -> Option<Quota> {
        guard("quota", || Ok(self.0.quota())).ok().flatten()
    }
    fn rekey(&self, to: &RekeyTo) -> Result<RekeyReport, Error> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.0.rekey(to))).unwrap_or_else(
            |_| {
                Err(Error::Internal {
                    reason: "the keychain backend failed (rekey panicked)".into(),
                })
            },
        )
    }
    fn forget_key(&self) -> Result<(), KcError> {
        guard("forget_key", || self.0.forget_key())
    }
    fn rebuilt(&self) -> Option<String> {
        self.0.rebuilt()
    }
}

/// Settings a backend is opened with.
#[derive(Clone, Debug)]
pub(crate) struct OpenConfig {
    pub service: String,
    pub app_id: String,
    /// The store directory (the sealed store keeps its items there).
    pub dir: std::path::PathBuf,
    pub timeout: Patience,
    /// Bound on waiting for the sealed store's key lock.
    pub lock_timeout: Patience,
    pub max_item_bytes: Option<usize>,
    /// Rebuild the sealed store's key record if it does not parse and the
    /// configured key is provably the store's (`repair` only).
    pub rebuild_key_record: bool,
}

/// An opened backend and why it was chosen.
pub(crate) struct Opened {
    pub keychain: Arc<dyn Keychain>,
    pub reason: String,
}

/// Open the backend `choice` as [`open`] does, on the calling thread after
/// lowering that thread's scheduling priority to the lowest (nice 19 on
/// Linux; elsewhere the priority is left alone). For a connection opened in
/// the background while the caller waits for something else: the threads
/// the backend starts inherit the low priority for their whole life (an
/// unprivileged process cannot raise it back), so the caller must run this
/// on a thread of its own and drop the keychain after the one use it was
/// opened for.
pub(crate) fn open_at_low_priority(choice: &Backend, cfg: &OpenConfig) -> Result<Opened, Error> {
    lower_thread_priority();
    open(choice, cfg)
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_thread_priority() {
    // SAFETY: setpriority takes no pointers; `who` 0 with PRIO_PROCESS is the
    // calling thread on Linux (nice values are per thread there).
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    if rc != 0 {
        log::debug!(
            "could not lower the thread priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

/// Open the backend `choice` (resolving `Auto`), its panics turned into errors.
pub(crate) fn open(choice: &Backend, cfg: &OpenConfig) -> Result<Opened, Error> {
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_raw(choice, cfg)))
        .unwrap_or_else(|_| {
        Err(Error::Internal {
            reason: format!(
                "the {} keychain backend failed (opening it panicked)",
                choice.name()
            ),
        })
    })?;
    Ok(Opened {
        keychain: Arc::new(Guarded(opened.keychain)),
        reason: opened.reason,
    })
}

fn open_raw(choice: &Backend, cfg: &OpenConfig) -> Result<Opened, Error> {
    let unavailable = |backend: &str, e: KcError| Error::KeychainUnavailable {
        backend: backend.to_string(),
        reason: e.message,
        source: e.source,
    };
    let limit = |default: usize| {
        cfg.max_item_bytes
            .unwrap_or(default)
            .max(crate::envelope::ITEM_HEADER + 1)
    };
    Ok(match choice {
        Backend::Auto => return open_auto(cfg),
        Backend::SecretService => Opened {
            keychain: core_store::secret_service(cfg, limit(usize::MAX))
                .map_err(|e| unavailable(SECRET_SERVICE, e))?,
            reason: "chosen explicitly".into(),
        },
        Backend::Keyutils => Opened {
            keychain: keyutils::open(cfg, limit(keyutils::MAX_PAYLOAD))
                .map_err(|e| unavailable(KEYUTILS, KcError::unavailable(e)))?,
            reason: "chosen explicitly; keyutils keys are cleared at reboot".into(),
        },
        Backend::Sealed(source) => open_sealed(source, cfg, limit(sealed::MAX_ITEM))?,
        Backend::MacosKeychain => Opened {
            keychain: core_store::macos(cfg, limit(usize::MAX))
                .map_err(|e| unavailable(MACOS_KEYCHAIN, e))?,
            reason: "chosen explicitly".into(),
        },
        Backend::WindowsCredentialManager => Opened {
            keychain: core_store::windows(cfg, limit(core_store::WINDOWS_MAX_BLOB))
                .map_err(|e| unavailable(WINDOWS_CREDENTIAL_MANAGER, e))?,
            reason: "chosen explicitly".into(),
        },
        Backend::Memory(m) => Opened {
            keychain: Arc::new(m.namespace(&cfg.service, limit(usize::MAX))),
            reason: "in-memory keychain (process lifetime only)".into(),
        },
        Backend::KeyringCore { name, store } => Opened {
            keychain: Arc::new(core_store::CoreKeychain::new(
                name.clone(),
                store.clone(),
                cfg,
                limit(usize::MAX),
            )),
            reason: "caller-supplied keyring-core store".into(),
        },
    })
}

/// The sealed store with the key `source` names. A store that has none
/// yet is opened lazily (`sealed::LazySealed`): nothing is created until
/// the first write, but what would fail then (a bad key file, keyutils
/// that does not work) fails now, as for an existing store.
fn open_sealed(source: &KeySource, cfg: &OpenConfig, _limit: usize) -> Result<Opened, Error> {
    let file = match source {
        KeySource::File(path) => Some(path.clone()),
        KeySource::Auto => sealing_key::configured_key_file(&cfg.app_id),
        KeySource::Keyutils => None,
    };
    let sealed_dir = cfg.dir.join(sealed::SEALED_DIR);
    if sealed::is_fresh(&sealed_dir) {
        let holder = match &file {
            Some(path) => {
                sealing_key::from_file(path)?;
                format!("its key in the key file {}", path.display())
            }
            None => {
                let holder_cfg = OpenConfig {
                    service: format!("rctoken-key:{}", cfg.app_id),
                    ..cfg.clone()
                };
                keyutils::open(&holder_cfg, keyutils::MAX_PAYLOAD).map_err(|reason| {
                    Error::KeychainUnavailable {
                        backend: sealed::SEALED.into(),
                        reason: format!("its key cannot be kept in keyutils: {reason}"),
                        source: None,
                    }
                })?;
                "its key in kernel keyutils (cleared at reboot)".to_string()
            }
        };
        let (file, cfg2, dir) = (file.clone(), cfg.clone(), sealed_dir.clone());
        let open: sealed::Opener =
            Box::new(move || Ok(open_sealed_now(file.clone(), &cfg2, &dir)?.keychain));
        return Ok(Opened {
            keychain: Arc::new(sealed::LazySealed::new(sealed_dir, open)),
            reason: format!("the sealed store, with {holder}"),
        });
    }
    open_sealed_now(file, cfg, &sealed_dir)
}

/// Open (creating what it lacks) the sealed store in `sealed_dir`, with
/// its key in `file` or else in keyutils.
fn open_sealed_now(
    file: Option<std::path::PathBuf>,
    cfg: &OpenConfig,
    sealed_dir: &std::path::Path,
) -> Result<Opened, Error> {
    crate::files::ensure_private_dir(sealed_dir)?;
    let holder = match file {
        Some(path) => sealing_key::KeyHolder::File(path),
        None => {
            let keyutils_unavailable = |reason: String| Error::KeychainUnavailable {
                backend: sealed::SEALED.into(),
                reason: format!("its key cannot be kept in keyutils: {reason}"),
                source: None,
            };
            // The store id is created under the key lock; released before
            // `Sealed::open` takes it again (a second flock of the same file
            // in one process would wait for the first).
            let slot = {
                let _lock = sealing_key::key_lock(sealed_dir, &cfg.lock_timeout)?;
                sealing_key::KeyutilsSlot::open(cfg, &cfg.app_id, sealed_dir).map_err(|reason| {
                    sealed::key_file_required(sealed_dir, &reason)
                        .unwrap_or_else(|| keyutils_unavailable(reason))
                })?
            };
            sealing_key::KeyHolder::Keyutils(slot)
        }
    };
    let reason = format!("the sealed store, with {}", holder.describe());
    Ok(Opened {
        keychain: Arc::new(sealed::Sealed::open(
            &cfg.dir,
            &cfg.service,
            holder,
            cfg.lock_timeout.clone(),
            cfg.rebuild_key_record,
        )?),
        reason,
    })
}

fn open_auto(cfg: &OpenConfig) -> Result<Opened, Error> {
    if cfg!(target_os = "macos") {
        let mut o = open_raw(&Backend::MacosKeychain, cfg)?;
        o.reason = "auto: the native keychain of macOS".into();
        return Ok(o);
    }
    if cfg!(target_os = "windows") {
        let mut o = open_raw(&Backend::WindowsCredentialManager, cfg)?;
        o.reason = "auto: the native credential store of Windows".into();
        return Ok(o);
    }
    if cfg!(target_os = "linux") {
        let no_ss = match std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
            None => "no session bus (DBUS_SESSION_BUS_ADDRESS is unset)".to_string(),
            // Connecting opens a session with the service, so success means
            // the service answered.
            Some(_) => match open_raw(&Backend::SecretService, cfg) {
                Ok(mut o) => {
                    o.reason = "auto: the Secret Service answered on the session bus".into();
                    return Ok(o);
                }
                Err(Error::KeychainUnavailable { reason, .. }) => {
                    format!("the Secret Service did not answer ({reason})")
                }
                Err(e) => format!("the Secret Service did not answer ({e})"),
            },
        };
        // A key file the environment names wins over keyutils: whoever
        // configured one wants tokens that survive a reboot.
        if let Some(path) = sealing_key::configured_key_file(&cfg.app_id) {
            let mut o = open_sealed(&KeySource::File(path), cfg, sealed::MAX_ITEM)?;
            o.reason = format!("auto: {no_ss}; {}", o.reason);
            return Ok(o);
        }
        let no_keyutils = match open_sealed(&KeySource::Keyutils, cfg, sealed::MAX_ITEM) {
            Ok(mut o) => {
                o.reason = format!("auto: {no_ss}; {}", o.reason);
                return Ok(o);
            }
            Err(Error::KeychainUnavailable { reason, .. }) => reason,
            Err(e) => return Err(e),
        };
        return Err(Error::KeychainUnavailable {
            backend: "auto".into(),
            reason: format!(
                "no keychain can hold the secrets: {no_ss}; the sealed store {no_keyutils}; \
                 and no key file is configured ({} or the systemd credential {})",
                sealing_key::KEY_FILE_ENV,
                sealing_key::credential_name(&cfg.app_id)
            ),
            source: None,
        });
    }
    Err(Error::KeychainUnavailable {
        backend: "auto".into(),
        reason: "no keychain backend exists for this platform".into(),
        source: None,
    })
}
