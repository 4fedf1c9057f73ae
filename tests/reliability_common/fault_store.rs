//! A keyring-core credential store that delegates to keyring-core's mock
//! store and fails the Nth call of a given kind (set, get, delete, search)
//! after being armed. Generations are random, so a test cannot pre-arm a
//! particular mock credential; counting calls by kind reaches every step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, CredentialStore, Entry, mock};

/// A kind of keychain call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Set,
    Get,
    Delete,
    Search,
}

pub const OPS: [Op; 4] = [Op::Set, Op::Get, Op::Delete, Op::Search];

/// Which keyring-core error an injected fault returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `PlatformFailure`: the store maps it to `Error::KeychainUnavailable`.
    Unavailable,
    /// `BadStoreFormat`: the store maps it to `Error::Keychain`.
    Failed,
    /// The call stalls this many milliseconds, then succeeds: past the
    /// store's keychain timeout it completes after the store gave up.
    Stall(u64),
}

pub const FAULTS: [Fault; 2] = [Fault::Unavailable, Fault::Failed];

impl Fault {
    fn error(self) -> keyring_core::Error {
        match self {
            Fault::Unavailable => keyring_core::Error::PlatformFailure(Box::new(
                std::io::Error::other("injected: keychain unreachable"),
            )),
            Fault::Failed | Fault::Stall(_) => {
                keyring_core::Error::BadStoreFormat("injected: store failure".into())
            }
        }
    }

    /// Does the store's error match this fault?
    pub fn matches(self, e: &rctoken::Error) -> bool {
        match self {
            Fault::Unavailable | Fault::Stall(_) => {
                matches!(e, rctoken::Error::KeychainUnavailable { .. })
            }
            Fault::Failed => matches!(e, rctoken::Error::Keychain { .. }),
        }
    }
}

#[derive(Default)]
struct Plan {
    counts: HashMap<Op, usize>,
    armed: Vec<(Op, usize, Fault)>,
    fired: Vec<(Op, usize, Fault)>,
}

/// The shared call counter and fault plan.
#[derive(Default)]
pub struct Faults(Mutex<Plan>);

impl Faults {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hit(&self, op: Op) -> keyring_core::Result<()> {
        let stall = self.hit_planned(op)?;
        if let Some(ms) = stall {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        Ok(())
    }

    fn hit_planned(&self, op: Op) -> keyring_core::Result<Option<u64>> {
        let mut plan = self.plan();
        let n = {
            let c = plan.counts.entry(op).or_default();
            *c += 1;
            *c
        };
        if let Some(i) = plan.armed.iter().position(|(o, k, _)| *o == op && *k == n) {
            let fault = plan.armed.remove(i);
            plan.fired.push(fault);
            if let Fault::Stall(ms) = fault.2 {
                return Ok(Some(ms));
            }
            return Err(fault.2.error());
        }
        Ok(None)
    }

    /// Reset the counters and fail the `k`th (1-based) call of each listed kind.
    pub fn arm(&self, faults: &[(Op, usize, Fault)]) {
        let mut plan = self.plan();
        plan.counts.clear();
        plan.fired.clear();
        plan.armed = faults.to_vec();
    }

    /// Calls of this kind since the last `arm`.
    pub fn count(&self, op: Op) -> usize {
        self.plan().counts.get(&op).copied().unwrap_or(0)
    }

    /// Faults that fired since the last `arm`.
    pub fn fired(&self) -> Vec<(Op, usize, Fault)> {
        self.plan().fired.clone()
    }
}

/// The fault-injecting store.
pub struct FaultStore {
    pub mock: Arc<mock::Store>,
    pub faults: Arc<Faults>,
}

impl FaultStore {
    pub fn new() -> Arc<FaultStore> {
        Arc::new(FaultStore {
            mock: mock::Store::new().expect("mock store"),
            faults: Arc::new(Faults::default()),
        })
    }

    /// Accounts that hold a secret in the mock (independent of the library).
    pub fn live_accounts(&self) -> Vec<String> {
        let creds = self.mock.inner.lock().expect("mock lock");
        let creds = creds.borrow();
        let mut out: Vec<String> = creds
            .iter()
            .filter(|c| has_secret(c))
            .map(|c| c.specifiers.1.clone())
            .collect();
        out.sort();
        out
    }
}

fn has_secret(c: &mock::Cred) -> bool {
    c.inner
        .lock()
        .map(|d| d.borrow().secret.is_some())
        .unwrap_or(false)
}

impl CredentialStoreApi for FaultStore {
    fn vendor(&self) -> String {
        "rctoken reliability tests: fault-injecting mock".into()
    }

    fn id(&self) -> String {
        self.mock.id()
    }

    fn build(
        &self,
        service: &str,
        user: &str,
        modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        let inner = self.mock.build(service, user, modifiers)?;
        Ok(wrap(inner, &self.faults))
    }

    /// Like a real store, finds only items that exist (the mock also returns
    /// credentials that were built or deleted but hold no secret).
    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        self.faults.hit(Op::Search)?;
        let found = self.mock.search(spec)?;
        Ok(found
            .into_iter()
            .filter(|e| {
                e.as_any()
                    .downcast_ref::<mock::Cred>()
                    .is_some_and(has_secret)
            })
            .map(|e| wrap(e, &self.faults))
            .collect())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn wrap(inner: Entry, faults: &Arc<Faults>) -> Entry {
    Entry::new_with_credential(Arc::new(FaultCred {
        inner,
        faults: faults.clone(),
    }))
}

struct FaultCred {
    inner: Entry,
    faults: Arc<Faults>,
}

impl CredentialApi for FaultCred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        self.faults.hit(Op::Set)?;
        self.inner.set_secret(secret)
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.faults.hit(Op::Get)?;
        self.inner.get_secret()
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.faults.hit(Op::Delete)?;
        self.inner.delete_credential()
    }

    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        self.inner.get_credential().map(|_| None)
    }

    fn get_specifiers(&self) -> Option<(String, String)> {
        self.inner.get_specifiers()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self.inner.as_any()
    }
}

/// The backend for a store on this fault store.
pub fn backend(store: &Arc<FaultStore>) -> rctoken::Backend {
    let store: Arc<CredentialStore> = store.clone();
    rctoken::Backend::KeyringCore {
        name: "mock".into(),
        store,
    }
}
