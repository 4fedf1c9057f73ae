//! A store's connection to its keychain: opened lazily on the first call
//! that needs a secret, then shared by every later call; and a second,
//! short-lived connection opened in the background while a refresh waits
//! for a lock (see [`Connection::prefetch_while`]).

use std::sync::{Arc, Mutex};

use super::{Backend, Keychain, OpenConfig};
use crate::error::{Error, Result};

/// The keychain of one store, opened on first use.
pub(crate) struct Connection {
    backend: Backend,
    cfg: OpenConfig,
    slot: Mutex<Option<Open>>,
    /// Plain keyutils, opened on first use for profiles an older rctoken
    /// stored there when this store uses the sealed backend.
    legacy: Mutex<Option<Arc<dyn Keychain>>>,
}

struct Open {
    keychain: Arc<dyn Keychain>,
    reason: String,
}

/// A keychain connection opened while waiting for something else, or why it failed.
pub(crate) type Prefetched = Result<Arc<dyn Keychain>>;

impl Connection {
    pub(crate) fn new(backend: Backend, cfg: OpenConfig) -> Self {
        Connection {
            backend,
            cfg,
            slot: Mutex::new(None),
            legacy: Mutex::new(None),
        }
    }

    /// The keychain that holds a profile whose metadata names `backend`:
    /// this store's, or plain keyutils for a profile stored there before
    /// this store moved to the sealed store (which keeps its key in the
    /// same keyring, so the old items are as reachable as before). Anything
    /// else is this store's keychain, where a read reports the other
    /// backend.
    pub(crate) fn holding(&self, backend: &str) -> Result<Arc<dyn Keychain>> {
        let kc = self.get()?;
        if backend == kc.name()
            || !(kc.name() == super::sealed::SEALED && backend == super::KEYUTILS)
        {
            return Ok(kc);
        }
        let mut slot = self.legacy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(legacy) = slot.as_ref() {
            return Ok(legacy.clone());
        }
        match super::open(&Backend::Keyutils, &self.cfg) {
            Ok(opened) => {
                *slot = Some(opened.keychain.clone());
                Ok(opened.keychain)
            }
            // Unreachable: the read reports the profile's backend.
            Err(_) => Ok(kc),
        }
    }

    /// The backend as requested (possibly `auto`).
    pub(crate) fn requested(&self) -> &Backend {
        &self.backend
    }

    /// The keychain, connecting first if needed.
    pub(crate) fn get(&self) -> Result<Arc<dyn Keychain>> {
        self.with(|kc, _| Ok(kc.clone()))
    }

    /// Run `f` on the keychain and the reason it was chosen, connecting first if needed.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Arc<dyn Keychain>, &str) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let opened = super::open(&self.backend, &self.cfg)?;
            log::debug!(
                "keychain backend {}: {}",
                opened.keychain.name(),
                opened.reason
            );
            *slot = Some(Open {
                keychain: opened.keychain,
                reason: opened.reason,
            });
        }
        match slot.as_ref() {
            Some(o) => f(&o.keychain, &o.reason),
            None => Err(Error::KeychainUnavailable {
                backend: self.backend.name().into(),
                reason: "not opened".into(),
                source: None,
            }),
        }
    }

    /// Open the keychain again allowing the sealed store to rebuild a key
    /// record that does not parse (for `repair`, after opening failed on
    /// one), and use that connection from now on. What was rebuilt, if
    /// anything.
    pub(crate) fn reopen_rebuilding(&self) -> Result<Option<String>> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let cfg = OpenConfig {
            rebuild_key_record: true,
            ..self.cfg.clone()
        };
        let opened = super::open(&self.backend, &cfg)?;
        let rebuilt = opened.keychain.rebuilt();
        *slot = Some(Open {
            keychain: opened.keychain,
            reason: opened.reason,
        });
        Ok(rebuilt)
    }

    fn is_open(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Run `wait` (which blocks, for a lock) and meanwhile, unless already
    /// connected, open a second connection in the background at the lowest
    /// thread priority: a Secret Service session costs a Diffie-Hellman
    /// exchange (~9 ms of CPU), which then overlaps the wait instead of
    /// following it, without taking CPU from whoever is being waited for.
    /// The caller uses that connection for one read and drops it, so its
    /// low-priority threads do not outlive the wait's purpose. `None` when
    /// already connected.
    pub(crate) fn prefetch_while<T>(&self, wait: impl FnOnce() -> T) -> (T, Option<Prefetched>) {
        if self.is_open() {
            return (wait(), None);
        }
        std::thread::scope(|s| {
            let prefetch = std::thread::Builder::new()
                .name("rctoken-prefetch".into())
                .spawn_scoped(s, || {
                    super::open_at_low_priority(&self.backend, &self.cfg).map(|o| o.keychain)
                });
            let waited = wait();
            // A connect is bounded by the keychain timeout; a thread that
            // failed to start or panicked just means no prefetch.
            let prefetched = prefetch.ok().and_then(|h| h.join().ok());
            (waited, prefetched)
        })
    }
}
