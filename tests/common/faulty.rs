//! Fault injection: a keyring-core credential store that delegates to
//! keyring-core's mock store, records every call, and fails the calls a test
//! asks it to fail. Generations are random, so faults are chosen by
//! operation and ordinal ("the 2nd set from now"), not by account name.
//!
//! Its search returns only entries that hold a secret, as a real store's
//! does (the mock keeps a deleted credential's specifier around).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, CredentialStore, Entry, Error};

/// A keychain operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Build,
    Set,
    Get,
    Delete,
    Search,
}

/// How an injected fault looks to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `NoStorageAccess`: the store maps it to `Error::KeychainUnavailable`.
    Unavailable,
    /// `BadStoreFormat`: the store maps it to `Error::Keychain`.
    Failure,
}

impl Fault {
    fn error(self) -> Error {
        match self {
            Fault::Unavailable => Error::NoStorageAccess("injected: keychain is locked".into()),
            Fault::Failure => Error::BadStoreFormat("injected: keychain failure".into()),
        }
    }
}

struct Rule {
    op: Op,
    skip: usize,
    times: usize,
    fault: Fault,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    calls: Vec<(Op, String)>,
}

/// The shared control of a [`FaultyStore`]: arm faults, read the call log.
#[derive(Clone, Default)]
pub struct Control(Arc<Mutex<State>>);

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Let `skip` calls of `op` pass, then fail the next `times` of them.
    pub fn fail(&self, op: Op, skip: usize, times: usize, fault: Fault) {
        self.lock().rules.push(Rule {
            op,
            skip,
            times,
            fault,
        });
    }

    /// Fail the next call of `op` once.
    pub fn fail_next(&self, op: Op, fault: Fault) {
        self.fail(op, 0, 1, fault);
    }

    /// Disarm every fault.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// All calls so far.
    pub fn calls(&self) -> Vec<(Op, String)> {
        self.lock().calls.clone()
    }

    /// How many calls of `op` so far.
    pub fn count(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|(o, _)| *o == op).count()
    }

    /// Forget the call log.
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    fn check(&self, op: Op, account: &str) -> Result<(), Error> {
        let mut st = self.lock();
        st.calls.push((op, account.to_string()));
        for rule in st.rules.iter_mut().filter(|r| r.op == op && r.times > 0) {
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.times -= 1;
            return Err(rule.fault.error());
        }
        Ok(())
    }
}

/// The wrapping store.
pub struct FaultyStore {
    inner: Arc<keyring_core::mock::Store>,
    control: Control,
}

impl FaultyStore {
    /// A fresh mock store wrapped.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Faulty {
        let control = Control::default();
        let inner = keyring_core::mock::Store::new().expect("mock store");
        let store = FaultyStore {
            inner: inner.clone(),
            control: control.clone(),
        };
        Faulty {
            store: Arc::new(store),
            control,
            inner,
        }
    }
}

/// A [`FaultyStore`] ready to hand to `Backend::KeyringCore`.
pub struct Faulty {
    /// The wrapper, for the store under test.
    pub store: Arc<CredentialStore>,
    /// Arms faults and reads the call log.
    pub control: Control,
    /// The mock underneath, for raw access that bypasses faults and the log.
    pub inner: Arc<CredentialStore>,
}

struct FaultyCred {
    inner: Entry,
    account: String,
    control: Control,
}

impl CredentialApi for FaultyCred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        self.control.check(Op::Set, &self.account)?;
        self.inner.set_secret(secret)
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.control.check(Op::Get, &self.account)?;
        self.inner.get_secret()
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.control.check(Op::Delete, &self.account)?;
        self.inner.delete_credential()
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        self.inner.get_credential().map(|_| None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        self.inner.get_specifiers()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn debug_fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyCred({})", self.account)
    }
}

impl FaultyStore {
    fn wrap(&self, inner: Entry) -> Entry {
        let account = inner.get_specifiers().map(|(_, a)| a).unwrap_or_default();
        Entry::new_with_credential(Arc::new(FaultyCred {
            inner,
            account,
            control: self.control.clone(),
        }))
    }
}

impl CredentialStoreApi for FaultyStore {
    fn vendor(&self) -> String {
        "rctoken tests: faulty wrapper of the keyring-core mock".into()
    }
    fn id(&self) -> String {
        format!("faulty {}", self.inner.id())
    }
    fn build(
        &self,
        service: &str,
        user: &str,
        modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        self.control.check(Op::Build, user)?;
        Ok(self.wrap(self.inner.build(service, user, modifiers)?))
    }
    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        self.control.check(Op::Search, "")?;
        Ok(self
            .inner
            .search(spec)?
            .into_iter()
            .filter(|e| e.get_secret().is_ok())
            .map(|e| self.wrap(e))
            .collect())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn debug_fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore")
    }
}
