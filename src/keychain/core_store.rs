//! Backends built on keyring-core credential stores: the Secret Service
//! (Linux), the macOS Keychain, the Windows Credential Manager, and any
//! caller-supplied store such as keyring-core's mock.
//!
//! Every call runs on the keychain's long-lived worker thread and is
//! abandoned after the configured timeout, so a keychain that never answers
//! (a prompt nobody sees, a stalled D-Bus service) yields an "unavailable"
//! error instead of a hang. What the store hands back is wrapped in
//! `Zeroizing` on that thread, and the bytes that keyring-core errors carry
//! are wiped before the error is rendered.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Entry};
use zeroize::{Zeroize, Zeroizing};

use super::{KcError, Keychain, OpenConfig};
use crate::wait::{Patience, WaitFor};

/// Windows Credential Manager's largest credential blob (CRED_MAX_CREDENTIAL_BLOB_SIZE).
pub(crate) const WINDOWS_MAX_BLOB: usize = 5 * 512;

pub(crate) struct CoreKeychain {
    name: String,
    store: Arc<CredentialStore>,
    service: String,
    timeout: Patience,
    max_item: usize,
    worker: Worker,
    search: Search,
}

/// How a store is asked for one service's items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Search {
    /// By the `service` attribute (the Secret Service, the macOS Keychain,
    /// keyring-core's mock).
    Service,
    /// By target name, which is `ACCOUNT.SERVICE`: the Windows Credential
    /// Manager store takes only a `pattern` (a regular expression on target
    /// names), and its specifiers split a name at the *last* `.`, which an
    /// app id with dots (`com.example.app`) puts in the wrong place. So the
    /// pattern names the service exactly and the account is what precedes
    /// `.SERVICE` in the name.
    #[cfg_attr(not(windows), allow(dead_code, reason = "only Windows has this store"))]
    TargetSuffix,
}

/// A regular expression that matches `text` literally: every character
/// but ASCII letters and digits as `\x{HEX}`, which the `regex` syntax
/// reads as that character whatever it is.
fn regex_literal(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\x{{{:X}}}", u32::from(c))
            }
        })
        .collect()
}

impl Search {
    /// The search spec for `service`'s items.
    fn spec(self, service: &str) -> HashMap<&'static str, String> {
        match self {
            Search::Service => HashMap::from([("service", service.to_string())]),
            Search::TargetSuffix => {
                HashMap::from([("pattern", format!("^.*\\.{}$", regex_literal(service)))])
            }
        }
    }

    /// The account of `entry`, if it is one of `service`'s items.
    fn account(self, entry: &Entry, service: &str) -> Option<String> {
        let (s, user) = entry.get_specifiers()?;
        match self {
            Search::Service => (s == service).then_some(user),
            Search::TargetSuffix => {
                // The store parsed `USER.SERVICE` at the last dot: put the
                // name back together and cut at the real service.
                let target = format!("{user}.{s}");
                target
                    .strip_suffix(service)
                    .and_then(|t| t.strip_suffix('.'))
                    .map(str::to_string)
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A long-lived thread that runs one keychain's calls in order. Reusing it
/// matters: the same Secret Service read costs ~0.17 ms (16%) more from a
/// fresh thread than from a reused one (docs/benchmarks.md, part 1). A call
/// that times out or panics abandons the thread, so the next call starts a
/// fresh one and a hung call never blocks later ones.
#[derive(Default)]
pub(crate) struct Worker {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Worker {
    /// Run `f` on the worker thread, giving up after `patience`'s limit
    /// (and saying so when the wait is long) for the keychain `name`.
    fn run<T: Send + 'static>(
        &self,
        name: &str,
        patience: &Patience,
        f: impl FnOnce() -> Result<T, KcError> + Send + 'static,
    ) -> Result<T, KcError> {
        let timeout = patience.limit;
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        let first = patience.until_notice();
        let answer = match rx.recv_timeout(first) {
            Err(mpsc::RecvTimeoutError::Timeout) if first < timeout => {
                patience.tell_if_long(first, &mut false, WaitFor::Keychain(name));
                rx.recv_timeout(timeout - first)
            }
            other => other,
        };
        match answer {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.abandon();
                Err(KcError::unavailable(format!(
                    "no answer within {}s (locked, waiting on a prompt, or stalled)",
                    timeout.as_secs_f64()
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.abandon();
                Err(KcError::bug("the keychain call panicked"))
            }
        }
    }

    fn submit(&self, job: Job) -> Result<(), KcError> {
        let mut slot = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job = match slot.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(job)) => job, // the thread is gone
            },
            None => job,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rctoken-keychain".into())
            .spawn(move || {
                for job in rx {
                    job();
                    scrub_stack();
                }
            })
            .map_err(|e| KcError::other(format!("cannot start keychain thread: {e}")))?;
        tx.send(job)
            .map_err(|_| KcError::other("the keychain thread exited"))?;
        *slot = Some(tx);
        Ok(())
    }

    /// Forget the current thread (it exits once its call returns).
    fn abandon(&self) {
        *self.jobs.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Overwrite the stack below the worker's loop after each call. The
/// backends decrypt on this thread (the Secret Service session is
/// AES-encrypted), and cipher code keeps blocks in stack temporaries that
/// nobody zeroizes; since this thread lives on, those bytes would stay in
/// its stack until exit (measured: tests/zeroize_cli.rs found the tail of an
/// envelope there after `rctoken status`). 64 KiB covers the deepest call
/// the keyring stores make; `zeroize` writes volatilely, so the compiler
/// cannot drop it.
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u8; 64 * 1024];
    area.zeroize();
    std::hint::black_box(&area);
}

/// A platform error in words a user can act on. The Secret Service's are
/// terse ("SS error: result not returned from SS API" is a missing default
/// collection, "SS error: prompt dismissed" a locked one that could not be
/// unlocked); the others are kept as they are.
fn platform_words(e: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    #[cfg(target_os = "linux")]
    if let Some(ss) = e.downcast_ref::<secret_service::Error>() {
        use secret_service::Error as S;
        let words = match ss {
            S::Locked => Some("the login keyring is locked"),
            S::NoResult => {
                Some("the Secret Service has no default keyring (the login keyring does not exist)")
            }
            S::Prompt | S::PromptDisconnected => Some(
                "the login keyring is locked, and the prompt to unlock it was dismissed or could not be shown (no display?)",
            ),
            _ => None,
        };
        if let Some(words) = words {
            return words.to_string();
        }
    }
    e.to_string()
}

/// Map a keyring-core error to text, wiping any secret bytes it carries.
fn map_err(e: keyring_core::Error) -> KcError {
    use keyring_core::Error as E;
    match e {
        // The platform's error carries no secret bytes: keep it as the cause.
        E::NoStorageAccess(p) => KcError::unavailable(platform_words(p.as_ref())).caused_by(p),
        // A platform failure (for the Secret Service: a D-Bus or crypto
        // error) may come after the call took effect; see the doc of
        // `Error::KeychainUnavailable` for what that means for each operation.
        E::PlatformFailure(p) => KcError::unavailable(platform_words(p.as_ref())).caused_by(p),
        E::NoDefaultStore => KcError::unavailable("no credential store"),
        E::BadEncoding(mut bytes) => {
            bytes.zeroize();
            KcError::other("the stored data is not valid UTF-8")
        }
        E::BadDataFormat(mut bytes, err) => {
            bytes.zeroize();
            KcError::other(format!("the stored data is malformed: {err}"))
        }
        other => KcError::other(other.to_string()).caused_by(Box::new(other)),
    }
}

impl CoreKeychain {
    pub(crate) fn new(
        name: String,
        store: Arc<CredentialStore>,
        cfg: &OpenConfig,
        max_item: usize,
    ) -> Self {
        CoreKeychain {
            name,
            store,
            service: cfg.service.clone(),
            timeout: cfg.timeout.clone(),
            max_item,
            worker: Worker::default(),
            search: Search::Service,
        }
    }

    fn entry(&self, account: &str) -> impl FnOnce() -> Result<Entry, KcError> + Send + 'static {
        let store = self.store.clone();
        let service = self.service.clone();
        let account = account.to_string();
        move || store.build(&service, &account, None).map_err(map_err)
    }
}

impl Keychain for CoreKeychain {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_item_bytes(&self) -> usize {
        self.max_item
    }

    fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError> {
        let entry = self.entry(account);
        self.worker.run(&self.name, &self.timeout, move || {
            entry()?.set_secret(&data).map_err(map_err)
        })
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        let entry = self.entry(account);
        self.worker.run(&self.name, &self.timeout, move || {
            match entry()?.get_secret() {
                Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(map_err(e)),
            }
        })
    }

    fn delete(&self, account: &str) -> Result<bool, KcError> {
        let entry = self.entry(account);
        self.worker.run(&self.name, &self.timeout, move || {
            match entry()?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(map_err(e)),
            }
        })
    }

    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        let store = self.store.clone();
        let service = self.service.clone();
        let search = self.search;
        self.worker.run(&self.name, &self.timeout, move || {
            let spec = search.spec(&service);
            let spec: HashMap<&str, &str> = spec.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match store.search(&spec) {
                Ok(entries) => Ok(Some(
                    entries
                        .iter()
                        .filter_map(|e| search.account(e, &service))
                        .collect(),
                )),
                Err(
                    keyring_core::Error::NotSupportedByStore(_) | keyring_core::Error::Invalid(..),
                ) => Ok(None),
                Err(e) => Err(map_err(e)),
            }
        })
    }
}

/// Connect to the Secret Service (within the timeout).
#[cfg(target_os = "linux")]
pub(crate) fn secret_service(
    cfg: &OpenConfig,
    max_item: usize,
) -> Result<Arc<dyn Keychain>, KcError> {
    // Connect on the thread that will make every later call.
    let worker = Worker::default();
    let store = worker.run(super::SECRET_SERVICE, &cfg.timeout, || {
        zbus_secret_service_keyring_store::Store::new()
            .map(|s| s as Arc<CredentialStore>)
            .map_err(map_err)
    })?;
    let mut kc = CoreKeychain::new(super::SECRET_SERVICE.into(), store, cfg, max_item);
    kc.worker = worker;
    Ok(Arc::new(kc))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn secret_service(_: &OpenConfig, _: usize) -> Result<Arc<dyn Keychain>, KcError> {
    Err(KcError::unavailable(
        "the Secret Service backend exists only on Linux",
    ))
}

#[cfg(target_os = "macos")]
pub(crate) fn macos(cfg: &OpenConfig, max_item: usize) -> Result<Arc<dyn Keychain>, KcError> {
    let store = apple_native_keyring_store::keychain::Store::new().map_err(map_err)?;
    Ok(Arc::new(CoreKeychain::new(
        super::MACOS_KEYCHAIN.into(),
        store,
        cfg,
        max_item,
    )))
}

#[cfg(not(target_os = "macos"))]
pub(crate) fn macos(_: &OpenConfig, _: usize) -> Result<Arc<dyn Keychain>, KcError> {
    Err(KcError::unavailable(
        "the macOS Keychain backend exists only on macOS",
    ))
}

#[cfg(target_os = "windows")]
pub(crate) fn windows(cfg: &OpenConfig, max_item: usize) -> Result<Arc<dyn Keychain>, KcError> {
    let store = windows_native_keyring_store::Store::new().map_err(map_err)?;
    let mut kc = CoreKeychain::new(
        super::WINDOWS_CREDENTIAL_MANAGER.into(),
        store,
        cfg,
        max_item,
    );
    kc.search = Search::TargetSuffix;
    Ok(Arc::new(kc))
}

#[cfg(not(target_os = "windows"))]
pub(crate) fn windows(_: &OpenConfig, _: usize) -> Result<Arc<dyn Keychain>, KcError> {
    Err(KcError::unavailable(
        "the Windows Credential Manager backend exists only on Windows",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_core::api::CredentialStoreApi;

    /// A mock entry whose specifiers are (`service`, `user`), as the
    /// Credential Manager store reports `USER.SERVICE` split at its last dot.
    fn entry(service: &str, user: &str) -> Entry {
        let store = keyring_core::mock::Store::new().unwrap();
        store.build(service, user, None).unwrap()
    }

    #[test]
    fn the_target_pattern_matches_exactly_the_service() {
        let service = "rctoken:com.example.app (x)+[y]";
        let spec = Search::TargetSuffix.spec(service);
        let re = regex::Regex::new(&spec["pattern"]).unwrap();
        assert!(re.is_match(&format!("d1.g2.{service}")));
        assert!(re.is_match(&format!("a.b.{service}")));
        for other in [
            format!("d1.{service}x"),
            format!("d1{service}"),
            "d1.rctoken:comXexample.app (x)+[y]".to_string(),
            format!("d1.{service}.other"),
        ] {
            assert!(!re.is_match(&other), "{other}");
        }
    }

    #[test]
    fn the_account_is_what_precedes_the_service_in_the_target_name() {
        // `p.1.rctoken:com.example` split at the last dot.
        let e = entry("example", "p.1.rctoken:com");
        assert_eq!(
            Search::TargetSuffix.account(&e, "rctoken:com.example"),
            Some("p.1".to_string())
        );
        assert_eq!(Search::TargetSuffix.account(&e, "rctoken:other"), None);
        assert_eq!(
            Search::Service.account(&e, "example"),
            Some("p.1.rctoken:com".into())
        );
        assert_eq!(Search::Service.account(&e, "rctoken:com.example"), None);
    }
}
