//! Fault injection: a keyring-core credential store that delegates to
//! keyring-core's mock store, logs every call, and fails (or stalls) the
//! calls a test asks it to. Generations are random, so a test cannot arm a
//! fault for a particular account in advance: faults are chosen by kind of
//! call and ordinal ("the 2nd set from now").
//!
//! Like a real store, its search finds only items that hold a secret (the
//! mock also keeps credentials that were built or deleted but hold none).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, CredentialStore, Entry, mock};

/// A kind of keychain call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Making an entry (no keychain access yet).
    Build,
    Set,
    Get,
    Delete,
    Search,
}

/// The calls that reach the keychain: every step of a save, load or logout.
pub const OPS: [Op; 4] = [Op::Set, Op::Get, Op::Delete, Op::Search];

/// How an injected fault looks to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `NoStorageAccess`: the store maps it to `Error::KeychainUnavailable`.
    Unavailable,
    /// `BadStoreFormat`: the store maps it to `Error::Keychain`.
    Failure,
    /// The call stalls this many milliseconds, then succeeds: past the
    /// store's keychain timeout it completes after the store gave up.
    Stall(u64),
}

/// The faults that fail a call.
pub const FAULTS: [Fault; 2] = [Fault::Unavailable, Fault::Failure];

impl Fault {
    fn error(self) -> keyring_core::Error {
        match self {
            Fault::Unavailable => {
                keyring_core::Error::NoStorageAccess("injected: keychain unavailable".into())
            }
            Fault::Failure | Fault::Stall(_) => {
                keyring_core::Error::BadStoreFormat("injected: keychain failure".into())
            }
        }
    }

    /// Does the store's error match this fault?
    pub fn matches(self, e: &rctoken::Error) -> bool {
        match self {
            Fault::Unavailable | Fault::Stall(_) => {
                matches!(e, rctoken::Error::KeychainUnavailable { .. })
            }
            Fault::Failure => matches!(e, rctoken::Error::Keychain { .. }),
        }
    }
}

/// One armed fault: let `skip` more calls of `op` pass, then hit the next `times`.
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
    fired: Vec<(Op, usize, Fault)>,
}

/// The shared control of a [`FaultStore`]: arm faults, read the call log.
#[derive(Clone, Default)]
pub struct Control(Arc<Mutex<State>>);

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Let `skip` calls of `op` pass, then hit the next `times` of them.
    pub fn fail(&self, op: Op, skip: usize, times: usize, fault: Fault) {
        self.lock().rules.push(Rule {
            op,
            skip,
            times,
            fault,
        });
    }

    /// Hit the next call of `op` once.
    pub fn fail_next(&self, op: Op, fault: Fault) {
        self.fail(op, 0, 1, fault);
    }

    /// Disarm everything, forget the call log and the faults that fired,
    /// then hit the `k`th (1-based) call of each listed kind from now.
    pub fn arm(&self, faults: &[(Op, usize, Fault)]) {
        let mut st = self.lock();
        st.rules.clear();
        st.calls.clear();
        st.fired.clear();
        for &(op, k, fault) in faults {
            assert!(k >= 1, "calls are counted from 1");
            st.rules.push(Rule {
                op,
                skip: k - 1,
                times: 1,
                fault,
            });
        }
    }

    /// All calls since the log was last reset, with their accounts.
    pub fn calls(&self) -> Vec<(Op, String)> {
        self.lock().calls.clone()
    }

    /// How many calls of `op` since the log was last reset.
    pub fn count(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|(o, _)| *o == op).count()
    }

    /// Forget the call log.
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// The faults that hit since the last [`Control::arm`]: the kind of
    /// call, its ordinal in the log, the fault.
    pub fn fired(&self) -> Vec<(Op, usize, Fault)> {
        self.lock().fired.clone()
    }

    /// Log a call and apply the armed faults: every rule of this kind of
    /// call counts it, the first one due hits it.
    fn hit(&self, op: Op, account: &str) -> keyring_core::Result<()> {
        let stall = {
            let mut st = self.lock();
            st.calls.push((op, account.to_string()));
            let n = st.calls.iter().filter(|(o, _)| *o == op).count();
            let mut hit = None;
            for rule in st.rules.iter_mut().filter(|r| r.op == op && r.times > 0) {
                if rule.skip > 0 {
                    rule.skip -= 1;
                } else if hit.is_none() {
                    rule.times -= 1;
                    hit = Some(rule.fault);
                }
            }
            let Some(fault) = hit else {
                return Ok(());
            };
            st.fired.push((op, n, fault));
            match fault {
                Fault::Stall(ms) => ms,
                _ => return Err(fault.error()),
            }
        };
        std::thread::sleep(std::time::Duration::from_millis(stall));
        Ok(())
    }
}

/// The fault-injecting store.
pub struct FaultStore {
    mock: Arc<mock::Store>,
    /// Arms faults and reads the call log.
    pub control: Control,
}

impl FaultStore {
    pub fn new() -> Arc<FaultStore> {
        Arc::new(FaultStore {
            mock: mock::Store::new().expect("mock store"),
            control: Control::default(),
        })
    }

    /// Accounts that hold a secret in the mock, sorted (read from the mock
    /// directly: no fault, no log entry).
    pub fn live_accounts(&self) -> Vec<String> {
        self.accounts_where(|_| true)
    }

    /// The accounts of `service` that hold a secret, sorted (as
    /// [`FaultStore::live_accounts`]).
    pub fn accounts(&self, service: &str) -> Vec<String> {
        self.accounts_where(|s| s == service)
    }

    fn accounts_where(&self, service: impl Fn(&str) -> bool) -> Vec<String> {
        let creds = self.mock.inner.lock().expect("mock lock");
        let creds = creds.borrow();
        let mut out: Vec<String> = creds
            .iter()
            .filter(|c| service(&c.specifiers.0) && has_secret(c))
            .map(|c| c.specifiers.1.clone())
            .collect();
        out.sort();
        out
    }

    /// The backend for a store on this fault store (named `mock`).
    pub fn backend(self: &Arc<Self>) -> rctoken::Backend {
        let store: Arc<CredentialStore> = self.clone();
        rctoken::Backend::KeyringCore {
            name: "mock".into(),
            store,
        }
    }

    fn wrap(&self, inner: Entry) -> Entry {
        let account = inner.get_specifiers().map(|(_, a)| a).unwrap_or_default();
        Entry::new_with_credential(Arc::new(FaultCred {
            inner,
            account,
            control: self.control.clone(),
        }))
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
        "rctoken tests: fault-injecting wrapper of the keyring-core mock".into()
    }

    fn id(&self) -> String {
        format!("faulty {}", self.mock.id())
    }

    fn build(
        &self,
        service: &str,
        user: &str,
        modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        self.control.hit(Op::Build, user)?;
        Ok(self.wrap(self.mock.build(service, user, modifiers)?))
    }

    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        self.control.hit(Op::Search, "")?;
        Ok(self
            .mock
            .search(spec)?
            .into_iter()
            .filter(|e| {
                e.as_any()
                    .downcast_ref::<mock::Cred>()
                    .is_some_and(has_secret)
            })
            .map(|e| self.wrap(e))
            .collect())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn debug_fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultStore")
    }
}

struct FaultCred {
    inner: Entry,
    account: String,
    control: Control,
}

impl CredentialApi for FaultCred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        self.control.hit(Op::Set, &self.account)?;
        self.inner.set_secret(secret)
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.control.hit(Op::Get, &self.account)?;
        self.inner.get_secret()
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.control.hit(Op::Delete, &self.account)?;
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
        write!(f, "FaultCred({})", self.account)
    }
}
