//! One test body, four backends: [`backend_tests!`] turns each
//! `fn name(t: &Ctx) { … }` into a module with one `#[test]` per backend:
//! the real Secret Service (`secret_service`), real kernel keyutils
//! (`keyutils`), the in-memory backend (`memory`) and the sealed store with
//! its key in real keyutils (`sealed`). All but `memory` are Linux's: on
//! other platforms only the `memory` instance exists.
//! Each [`Ctx`] has its own app id, its own temp directory and a
//! [`ManualClock`]; [`Ctx::finish`] calls `remove_all` and checks the
//! namespace is empty, and `Drop` cleans up after a failure.
//!
//! A real backend the test cannot reach fails the test, unless the run
//! declares it absent (see `support::backends`).

use std::path::PathBuf;
use std::sync::Arc;

use rctoken::testing::ManualClock;
use rctoken::{MemoryKeychain, StoreBuilder, TokenStore};

use crate::raw::{self, Raw};
use crate::support::backends::{self, Kind};
use crate::support::ids;
use crate::support::tokens::t0;

/// One test's store, directory, clock and keychain.
pub struct Ctx {
    pub kind: Kind,
    pub app: String,
    pub tmp: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    /// The keychain of the memory backend (shared by every store of the test).
    pub memory: MemoryKeychain,
    pub store: TokenStore,
    finished: bool,
}

impl Ctx {
    pub fn new(kind: Kind, test: &str) -> Ctx {
        backends::require(kind);
        let app = ids::app_id(test, kind.name());
        let tmp = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(t0()));
        let memory = MemoryKeychain::new();
        let store = builder(&app, kind, &memory, &clock)
            .dir(tmp.path().join("store"))
            .open()
            .expect("open store");
        Ctx {
            kind,
            app,
            tmp,
            clock,
            memory,
            store,
            finished: false,
        }
    }

    /// Whether two store directories of one app id share this backend's
    /// namespace (the keychains do; the sealed store's items are files in
    /// each directory).
    pub fn shares_namespace(&self) -> bool {
        self.kind != Kind::Sealed
    }

    /// Whether the test can see and change its items from outside the store.
    pub fn has_raw(&self) -> bool {
        self.kind != Kind::Memory
    }

    /// A builder for another store of this test: same app id, clock and keychain.
    pub fn builder(&self) -> StoreBuilder {
        builder(&self.app, self.kind, &self.memory, &self.clock)
    }

    /// Another store object on the same directory (as another process would open it).
    pub fn reopen(&self) -> TokenStore {
        self.builder().dir(self.dir()).open().expect("reopen store")
    }

    /// A store of the same app and keychain but another directory.
    pub fn elsewhere(&self, name: &str) -> TokenStore {
        self.builder()
            .dir(self.tmp.path().join(name))
            .open()
            .expect("open second store")
    }

    pub fn dir(&self) -> PathBuf {
        self.store.dir().to_path_buf()
    }

    pub fn meta_path(&self) -> PathBuf {
        self.store.layout().index().to_path_buf()
    }

    /// Every metadata file's bytes: the index (empty if absent), then each
    /// profile file in name order, each preceded by its name. Equal
    /// snapshots mean nothing in the metadata changed.
    pub fn meta_bytes(&self) -> Vec<u8> {
        let mut out = self.index_bytes();
        let mut names: Vec<_> = std::fs::read_dir(self.store.layout().profiles_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        names.sort();
        for name in names {
            out.extend_from_slice(b"\n== ");
            out.extend_from_slice(name.to_string_lossy().as_bytes());
            out.extend_from_slice(b"\n");
            out.extend(
                std::fs::read(self.store.layout().profiles_dir().join(name)).unwrap_or_default(),
            );
        }
        out
    }

    /// The index file's bytes (empty if absent).
    pub fn index_bytes(&self) -> Vec<u8> {
        std::fs::read(self.store.layout().index()).unwrap_or_default()
    }

    /// The index file as JSON.
    pub fn meta_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.index_bytes()).expect("metadata is JSON")
    }

    /// A profile's metadata file as JSON.
    pub fn profile_json(&self, key: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.store.layout().profile_file(key)).expect("profile file");
        serde_json::from_slice(&bytes).expect("profile file is JSON")
    }

    /// Replace a profile's metadata file with this JSON.
    pub fn write_profile_json(&self, key: &str, v: &serde_json::Value) {
        std::fs::write(self.store.layout().profile_file(key), v.to_string())
            .expect("write profile file");
    }

    /// The keychain service name of this test's namespace.
    pub fn service(&self) -> String {
        format!("rctoken:{}", self.app)
    }

    /// The description prefix of the sealed store's keys in keyutils.
    fn sealing_keys(&self) -> String {
        crate::support::keyutils::sealing_keys(&self.app)
    }

    /// Raw access to this test's namespace (not for the memory backend).
    pub fn raw(&self) -> Raw {
        match self.kind {
            Kind::SecretService => Raw::secret_service(&self.service()),
            Kind::Keyutils => Raw::keyutils(&self.service()),
            Kind::Sealed => Raw::sealed(&self.dir()),
            Kind::Memory => panic!("the memory backend has no raw access"),
            #[cfg(windows)]
            Kind::WindowsCredentialManager => {
                panic!("the store tests have no Credential Manager instance")
            }
        }
    }

    /// The accounts of this namespace, observed from outside the store:
    /// `secret-tool`/`keyctl` for the real backends, `verify`'s orphan list
    /// from a store with empty metadata for the memory backend.
    pub fn accounts(&self) -> Vec<String> {
        if self.has_raw() {
            return self.raw().accounts();
        }
        self.memory.accounts(&self.service())
    }

    /// Delete a profile's items behind the store's back.
    pub fn delete_behind_back(&self, key: &str) {
        if self.has_raw() {
            let raw = self.raw();
            let accounts = raw.accounts_of(key);
            assert!(!accounts.is_empty(), "no items for {key}");
            for a in accounts {
                assert!(raw.delete(&a));
            }
        } else {
            // Another store that believes it owns the profile removes it.
            let other = self.tmp.path().join(ids::unique("copy"));
            std::fs::create_dir(&other).expect("mkdir");
            #[cfg(unix)]
            {
                let mut perms = std::fs::metadata(&other).expect("stat").permissions();
                std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
                std::fs::set_permissions(&other, perms).expect("chmod");
            }
            std::fs::copy(self.meta_path(), other.join("metadata.json")).expect("copy");
            let s = self.builder().dir(&other).open().expect("open copy");
            let profiles = s.layout().profiles_dir().to_path_buf();
            std::fs::create_dir(&profiles).expect("mkdir profiles");
            std::fs::set_permissions(
                &profiles,
                std::fs::metadata(&other).expect("stat").permissions(),
            )
            .expect("chmod");
            std::fs::copy(
                self.store.layout().profile_file(key),
                s.layout().profile_file(key),
            )
            .expect("copy profile");
            s.remove(key).expect("remove through the copy");
        }
    }

    /// Remove everything and check that nothing of this test is left in the keychain.
    /// On failure `Drop` still purges the namespace.
    pub fn finish(mut self) {
        let n = self.store.remove_all();
        assert!(n.is_ok(), "remove_all failed: {n:?}");
        assert!(self.store.list().expect("list").is_empty());
        assert_eq!(self.accounts(), Vec::<String>::new(), "items left behind");
        if self.kind == Kind::Sealed {
            let keys = crate::support::keyutils::keys(&self.sealing_keys());
            assert!(
                keys.is_empty(),
                "the sealed store's key is left behind: {keys:?}"
            );
        }
        self.finished = true;
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let _ = self.store.remove_all();
        if self.kind == Kind::Sealed {
            crate::support::keyutils::purge(&self.sealing_keys());
        } else if self.has_raw() && !(self.kind == Kind::SecretService && missing_bus()) {
            raw::try_purge(self.kind == Kind::Keyutils, &self.service());
        }
    }
}

fn missing_bus() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
}

fn builder(
    app: &str,
    kind: Kind,
    memory: &MemoryKeychain,
    clock: &Arc<ManualClock>,
) -> StoreBuilder {
    TokenStore::builder(app)
        .backend(kind.backend(memory))
        .clock(clock.clone())
        .lock_timeout(std::time::Duration::from_secs(20))
        .keychain_timeout(std::time::Duration::from_secs(20))
}

/// Instantiate each test body once per backend. A body may be preceded by
/// `@bug("bug: …")` to ignore all its instances, or `@keyutils_bug("bug: …")`
/// to ignore its keyutils instance, until a known bug in the library is fixed.
/// A leading `serial;` runs each instance (setup, body, cleanup) in a
/// process of its own (`support::rerun::alone`), for tests that arm
/// process-global failpoints: another test's save would consume them.
#[macro_export]
macro_rules! backend_tests {
    (serial; $($rest:tt)*) => {
        $crate::backend_tests!(@impl alone $($rest)*);
    };
    (@impl $how:ident $( $(#[$meta:meta])* $(@bug($bug:literal))? $(@keyutils_bug($why:literal))? fn $name:ident($t:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($t: &$crate::ctx::Ctx) $body
            #[cfg(target_os = "linux")]
            #[test]
            $(#[ignore = $bug])?
            fn secret_service() {
                $crate::backend_test!($how, SecretService, secret_service, $name)
            }
            #[cfg(target_os = "linux")]
            #[test]
            $(#[ignore = $bug])?
            $(#[ignore = $why])?
            fn keyutils() {
                $crate::backend_test!($how, Keyutils, keyutils, $name)
            }
            #[test]
            $(#[ignore = $bug])?
            fn memory() {
                $crate::backend_test!($how, Memory, memory, $name)
            }
            #[cfg(target_os = "linux")]
            #[test]
            $(#[ignore = $bug])?
            fn sealed() {
                $crate::backend_test!($how, Sealed, sealed, $name)
            }
        }
    )*};
    ($($rest:tt)*) => {
        $crate::backend_tests!(@impl together $($rest)*);
    };
}

/// Instantiate each test body on the two real backends only (the tests
/// that change keychain items behind the store's back). Both are Linux's:
/// elsewhere these tests do not exist.
#[macro_export]
macro_rules! real_backend_tests {
    ($( $(#[$meta:meta])* $(@bug($bug:literal))? $(@keyutils_bug($why:literal))? fn $name:ident($t:ident) $body:block )*) => {$(
        $(#[$meta])*
        #[cfg(target_os = "linux")]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($t: &$crate::ctx::Ctx) $body
            #[test]
            $(#[ignore = $bug])?
            fn secret_service() {
                $crate::backend_test!(together, SecretService, secret_service, $name)
            }
            #[test]
            $(#[ignore = $bug])?
            $(#[ignore = $why])?
            fn keyutils() {
                $crate::backend_test!(together, Keyutils, keyutils, $name)
            }
        }
    )*};
}

/// The body of one generated test: skip a backend declared absent, then
/// (`alone`: in a process of its own) set up, run `body`, check and clean up.
#[doc(hidden)]
#[macro_export]
macro_rules! backend_test {
    ($how:ident, $kind:ident, $test:ident, $name:ident) => {{
        let kind = $crate::support::backends::Kind::$kind;
        $crate::needs!(kind);
        if $crate::backend_test!(@$how $test) {
            return;
        }
        let t = $crate::ctx::Ctx::new(kind, stringify!($name));
        body(&t);
        t.finish();
    }};
    (@together $test:ident) => {
        false
    };
    (@alone $test:ident) => {
        $crate::support::rerun::alone($crate::test_name!(stringify!($test)))
    };
}
