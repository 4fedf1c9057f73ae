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
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};
use zeroize::{Zeroize, Zeroizing};

use super::{KcError, Keychain, OpenConfig};

/// Windows Credential Manager's largest credential blob (CRED_MAX_CREDENTIAL_BLOB_SIZE).
pub(crate) const WINDOWS_MAX_BLOB: usize = 5 * 512;

pub(crate) struct CoreKeychain {
    name: String,
    store: Arc<CredentialStore>,
    service: String,
    timeout: Duration,
    max_item: usize,
    worker: Worker,
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
    /// Run `f` on the worker thread, giving up after `timeout`.
    fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce() -> Result<T, KcError> + Send + 'static,
    ) -> Result<T, KcError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        match rx.recv_timeout(timeout) {
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

/// Map a keyring-core error to text, wiping any secret bytes it carries.
fn map_err(e: keyring_core::Error) -> KcError {
    use keyring_core::Error as E;
    match e {
        // The platform's error carries no secret bytes: keep it as the cause.
        E::NoStorageAccess(p) => KcError::unavailable(p.to_string()).caused_by(p),
        // A platform failure (for the Secret Service: a D-Bus or crypto
        // error) may come after the call took effect; see the doc of
        // `Error::KeychainUnavailable` for what that means for each operation.
        E::PlatformFailure(p) => KcError::unavailable(p.to_string()).caused_by(p),
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
            timeout: cfg.timeout,
            max_item,
            worker: Worker::default(),
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
        self.worker.run(self.timeout, move || {
            entry()?.set_secret(&data).map_err(map_err)
        })
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        let entry = self.entry(account);
        self.worker
            .run(self.timeout, move || match entry()?.get_secret() {
                Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(map_err(e)),
            })
    }

    fn delete(&self, account: &str) -> Result<bool, KcError> {
        let entry = self.entry(account);
        self.worker
            .run(self.timeout, move || match entry()?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(map_err(e)),
            })
    }

    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        let store = self.store.clone();
        let service = self.service.clone();
        self.worker.run(self.timeout, move || {
            let spec = HashMap::from([("service", service.as_str())]);
            match store.search(&spec) {
                Ok(entries) => Ok(Some(
                    entries
                        .iter()
                        .filter_map(Entry::get_specifiers)
                        .filter(|(s, _)| *s == service)
                        .map(|(_, account)| account)
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
    let store = worker.run(cfg.timeout, || {
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
    Ok(Arc::new(CoreKeychain::new(
        super::WINDOWS_CREDENTIAL_MANAGER.into(),
        store,
        cfg,
        max_item,
    )))
}

#[cfg(not(target_os = "windows"))]
pub(crate) fn windows(_: &OpenConfig, _: usize) -> Result<Arc<dyn Keychain>, KcError> {
    Err(KcError::unavailable(
        "the Windows Credential Manager backend exists only on Windows",
    ))
}
