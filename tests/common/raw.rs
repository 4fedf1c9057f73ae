//! Raw access to a store's keychain namespace behind the store's back: to
//! observe what the store wrote (with the platform's own tools where there
//! is one: `secret-tool`, `keyctl`) and to inject drift.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use keyring_core::api::CredentialStoreApi;
use keyring_core::{CredentialStore, Entry};

/// One backend's namespace `rctoken:<app>`, seen from outside the store.
pub enum Raw {
    /// Through `secret-tool` (listing) and a separate keyring-core
    /// connection (reading and writing items).
    SecretService {
        service: String,
        store: Arc<CredentialStore>,
    },
    /// Through the `keyctl` command on the user keyring `@u`.
    Keyutils { service: String },
    /// A keyring-core store held by the test (the mock).
    Core {
        service: String,
        store: Arc<CredentialStore>,
    },
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"))
}

impl Raw {
    pub fn secret_service(service: &str) -> Raw {
        let store = zbus_secret_service_keyring_store::Store::new()
            .expect("connect to the Secret Service (run under .ci/with-keyring.sh)");
        Raw::SecretService {
            service: service.to_string(),
            store,
        }
    }

    pub fn keyutils(service: &str) -> Raw {
        Raw::Keyutils {
            service: service.to_string(),
        }
    }

    pub fn core(service: &str, store: Arc<CredentialStore>) -> Raw {
        Raw::Core {
            service: service.to_string(),
            store,
        }
    }

    /// Every account in the namespace, sorted.
    pub fn accounts(&self) -> Vec<String> {
        let mut out = match self {
            Raw::SecretService { service, .. } => secret_tool_accounts(service),
            Raw::Keyutils { service } => keyctl_descriptions()
                .into_iter()
                .filter_map(|d| d.strip_prefix(&format!("{service}:")).map(str::to_string))
                .collect(),
            Raw::Core { service, store } => store
                .search(&HashMap::from([("service", service.as_str())]))
                .expect("mock search")
                .into_iter()
                .filter(|e| e.get_secret().is_ok())
                .filter_map(|e| e.get_specifiers())
                .filter(|(s, _)| s == service)
                .map(|(_, a)| a)
                .collect(),
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
            Raw::SecretService { service, store } | Raw::Core { service, store } => {
                let e = Entry::new_in_store(store, service, account).expect("entry");
                match e.get_secret() {
                    Ok(b) => Some(b),
                    Err(keyring_core::Error::NoEntry) => None,
                    Err(err) => panic!("raw get {account}: {err}"),
                }
            }
            Raw::Keyutils { service } => {
                let id = keyctl_find(&format!("{service}:{account}"))?;
                let out = run(Command::new("keyctl").args(["pipe", &id]));
                assert!(out.status.success(), "keyctl pipe {id} failed");
                Some(out.stdout)
            }
        }
    }

    /// Create or replace an item.
    pub fn set(&self, account: &str, data: &[u8]) {
        match self {
            Raw::SecretService { service, store } | Raw::Core { service, store } => {
                Entry::new_in_store(store, service, account)
                    .expect("entry")
                    .set_secret(data)
                    .expect("raw set");
            }
            Raw::Keyutils { service } => {
                let desc = format!("{service}:{account}");
                let mut child = Command::new("keyctl")
                    .args(["padd", "user", &desc, "@u"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn keyctl padd");
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(data)
                    .expect("write to keyctl");
                let out = child.wait_with_output().expect("keyctl padd");
                assert!(out.status.success(), "keyctl padd failed");
                let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
                let st = run(Command::new("keyctl").args(["setperm", &id, "0x3f3f0000"]));
                assert!(st.status.success(), "keyctl setperm failed");
            }
        }
    }

    /// Delete an item; `false` if it was absent.
    pub fn delete(&self, account: &str) -> bool {
        match self {
            Raw::SecretService { service, store } | Raw::Core { service, store } => {
                let e = Entry::new_in_store(store, service, account).expect("entry");
                match e.delete_credential() {
                    Ok(()) => true,
                    Err(keyring_core::Error::NoEntry) => false,
                    Err(err) => panic!("raw delete {account}: {err}"),
                }
            }
            Raw::Keyutils { service } => match keyctl_find(&format!("{service}:{account}")) {
                None => false,
                Some(id) => {
                    let out = run(Command::new("keyctl").args(["invalidate", &id]));
                    assert!(out.status.success(), "keyctl invalidate failed");
                    true
                }
            },
        }
    }
}

/// Best-effort deletion of everything in a real backend's namespace, for
/// cleanup after a failed test. Never panics (it may run while unwinding).
pub fn try_purge(keyutils: bool, service: &str) {
    if keyutils {
        let prefix = format!("{service}:");
        let Ok(out) = Command::new("keyctl").args(["show", "@u"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((left, desc)) = line.split_once("user: ")
                && desc.trim().starts_with(&prefix)
                && let Some(id) = left.split_whitespace().next()
            {
                let _ = Command::new("keyctl").args(["invalidate", id]).output();
            }
        }
    } else if let Ok(store) = zbus_secret_service_keyring_store::Store::new()
        && let Ok(entries) = store.search(&HashMap::from([("service", service)]))
    {
        for e in entries {
            let _ = e.delete_credential();
        }
    }
}

/// `attribute.username` of every Secret Service item with this `service`
/// attribute, as `secret-tool search --all` prints them.
pub fn secret_tool_accounts(service: &str) -> Vec<String> {
    let out = run(Command::new("secret-tool").args(["search", "--all", "service", service]));
    // secret-tool prints the attributes on stderr and the rest on stdout.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Descriptions of the `user` keys linked in `@u`, as `keyctl show @u` prints them.
pub fn keyctl_descriptions() -> Vec<String> {
    let out = run(Command::new("keyctl").args(["show", "@u"]));
    assert!(out.status.success(), "keyctl show @u failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once("user: ").map(|(_, d)| d.trim().to_string()))
        .collect()
}

/// The id of the `user` key with this description in `@u`, if any.
fn keyctl_find(desc: &str) -> Option<String> {
    let out = run(Command::new("keyctl").args(["search", "@u", "user", desc]));
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
