//! An in-process keychain for tests of code that uses this crate. Items live
//! as long as any clone of the [`MemoryKeychain`] handle; they are zeroized
//! when replaced, deleted or dropped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use super::{KcError, Keychain};

type Items = BTreeMap<(String, String), Zeroizing<Vec<u8>>>;

/// A shareable in-memory keychain. Clones share the same items, so several
/// [`TokenStore`](crate::TokenStore)s in one process can use one keychain.
#[derive(Clone, Default)]
pub struct MemoryKeychain {
    items: Arc<Mutex<Items>>,
}

impl std::fmt::Debug for MemoryKeychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.items.lock().map(|i| i.len()).unwrap_or(0);
        f.debug_struct("MemoryKeychain").field("items", &n).finish()
    }
}

impl MemoryKeychain {
    /// An empty keychain.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many items it holds, across namespaces.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The accounts of every item in the namespace `service` (a store's is
    /// `rctoken:<app id>`), sorted: what a test of code that uses this
    /// crate can check from outside the store.
    pub fn accounts(&self, service: &str) -> Vec<String> {
        self.lock()
            .keys()
            .filter(|(s, _)| s == service)
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn namespace(&self, service: &str, max_item: usize) -> MemoryNamespace {
        MemoryNamespace {
            keychain: self.clone(),
            service: service.to_string(),
            max_item,
        }
    }
}

pub(crate) struct MemoryNamespace {
    keychain: MemoryKeychain,
    service: String,
    max_item: usize,
}

impl Keychain for MemoryNamespace {
    fn name(&self) -> &str {
        "memory"
    }
    fn max_item_bytes(&self) -> usize {
        self.max_item
    }
    fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError> {
        if data.len() > self.max_item {
            return Err(KcError::other(format!(
                "item larger than {} bytes",
                self.max_item
            )));
        }
        self.keychain
            .lock()
            .insert((self.service.clone(), account.to_string()), data);
        Ok(())
    }
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        let items = self.keychain.lock();
        Ok(items
            .get(&(self.service.clone(), account.to_string()))
            .map(|v| Zeroizing::new(v.to_vec())))
    }
    fn delete(&self, account: &str) -> Result<bool, KcError> {
        Ok(self
            .keychain
            .lock()
            .remove(&(self.service.clone(), account.to_string()))
            .is_some())
    }
    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        Ok(Some(
            self.keychain
                .lock()
                .keys()
                .filter(|(s, _)| *s == self.service)
                .map(|(_, a)| a.clone())
                .collect(),
        ))
    }
}
