//! Raw access to a store's keychain namespace behind the store's back: to
//! observe what the store wrote (with the platform's own tools where there
//! is one: `secret-tool`, `keyctl`) and to inject drift.

#[cfg(target_os = "linux")]
use std::collections::HashMap;
use std::sync::Arc;

#[cfg(target_os = "linux")]
use keyring_core::api::CredentialStoreApi;
use keyring_core::{CredentialStore, Entry};

use crate::support::{keyutils, secret_service};

/// One backend's namespace `rctoken:<app>`, seen from outside the store.
pub enum Raw {
    /// Through `secret-tool` (listing) and a separate keyring-core
    /// connection (reading and writing items).
    SecretService {
        service: String,
        store: Arc<CredentialStore>,
    },
    /// Through `/proc/keys` and `keyctl` on the user keyring `@u`.
    Keyutils { service: String },
    /// The sealed store's files in `<store>/sealed/` (their bytes are
    /// ciphertext: `get` and `set` move sealed bytes).
    Sealed { dir: std::path::PathBuf },
}

impl Raw {
    #[cfg(target_os = "linux")]
    pub fn secret_service(service: &str) -> Raw {
        let store = zbus_secret_service_keyring_store::Store::new()
            .expect("connect to the Secret Service (run under .ci/with-keyring.sh)");
        Raw::SecretService {
            service: service.to_string(),
            store,
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn secret_service(_: &str) -> Raw {
        panic!("the Secret Service exists only on Linux")
    }

    pub fn keyutils(service: &str) -> Raw {
        Raw::Keyutils {
            service: service.to_string(),
        }
    }

    pub fn sealed(store_dir: &std::path::Path) -> Raw {
        Raw::Sealed {
            dir: store_dir.join("sealed"),
        }
    }

    /// Every account in the namespace, sorted.
    pub fn accounts(&self) -> Vec<String> {
        let mut out = match self {
            Raw::SecretService { service, .. } => secret_service::accounts(service),
            Raw::Keyutils { service } => {
                let prefix = format!("{service}:");
                keyutils::keys(&prefix)
                    .into_iter()
                    .map(|k| k.description[prefix.len()..].to_string())
                    .collect()
            }
            Raw::Sealed { dir } => std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.starts_with('.'))
                        .collect()
                })
                .unwrap_or_default(),
        };
        out.sort();
        out
    }

    /// Accounts of one profile key (unescaped keys of `[A-Za-z0-9_-]` only).
    pub fn accounts_of(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}.");
        self.accounts()
            .into_iter()
            .filter(|a| a.starts_with(&prefix))
            .collect()
    }

    /// The bytes of one item, if present.
    pub fn get(&self, account: &str) -> Option<Vec<u8>> {
        match self {
            Raw::SecretService { service, store } => {
                let e = Entry::new_in_store(store, service, account).expect("entry");
                match e.get_secret() {
                    Ok(b) => Some(b),
                    Err(keyring_core::Error::NoEntry) => None,
                    Err(err) => panic!("raw get {account}: {err}"),
                }
            }
            Raw::Keyutils { service } => {
                keyutils::find(&format!("{service}:{account}")).map(|id| keyutils::read(&id))
            }
            Raw::Sealed { dir } => std::fs::read(dir.join(account)).ok(),
        }
    }

    /// Create or replace an item.
    pub fn set(&self, account: &str, data: &[u8]) {
        match self {
            Raw::SecretService { service, store } => {
                Entry::new_in_store(store, service, account)
                    .expect("entry")
                    .set_secret(data)
                    .expect("raw set");
            }
            Raw::Keyutils { service } => {
                keyutils::add(&format!("{service}:{account}"), data);
            }
            Raw::Sealed { dir } => std::fs::write(dir.join(account), data).expect("raw set"),
        }
    }

    /// Delete an item; `false` if it was absent.
    pub fn delete(&self, account: &str) -> bool {
        match self {
            Raw::SecretService { service, store } => {
                let e = Entry::new_in_store(store, service, account).expect("entry");
                match e.delete_credential() {
                    Ok(()) => true,
                    Err(keyring_core::Error::NoEntry) => false,
                    Err(err) => panic!("raw delete {account}: {err}"),
                }
            }
            Raw::Keyutils { service } => match keyutils::find(&format!("{service}:{account}")) {
                None => false,
                Some(id) => {
                    keyutils::invalidate(&id);
                    true
                }
            },
            Raw::Sealed { dir } => std::fs::remove_file(dir.join(account)).is_ok(),
        }
    }
}

/// Best-effort deletion of everything in a real backend's namespace, for
/// cleanup after a failed test. Never panics (it may run while unwinding).
pub fn try_purge(keyutils: bool, service: &str) {
    if keyutils {
        keyutils::purge(&format!("{service}:"));
    } else {
        try_purge_secret_service(service);
    }
}

#[cfg(target_os = "linux")]
fn try_purge_secret_service(service: &str) {
    if let Ok(store) = zbus_secret_service_keyring_store::Store::new()
        && let Ok(entries) = store.search(&HashMap::from([("service", service)]))
    {
        for e in entries {
            let _ = e.delete_credential();
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn try_purge_secret_service(_: &str) {}
