//! The backends tests run on, and one policy for a real backend a test
//! cannot reach: the test FAILS, with a message saying what is missing and
//! how to provide it, unless the run declares that backend absent in
//! `RCTOKEN_TEST_ABSENT_BACKENDS` (comma-separated names: `secret-service`,
//! `keyutils`, `windows-credential-manager`). A test on a backend declared
//! absent prints a line saying it did not run (on stderr, past the
//! harness's output capture) and returns.
//! CI never sets the variable: there, every test runs or fails.
//!
//! Reachable means: for the Secret Service, a session bus is configured
//! (`DBUS_SESSION_BUS_ADDRESS`; `.ci/with-keyring.sh` provides one with an
//! unlocked gnome-keyring); for keyutils, the kernel answers for the user
//! keyring `@u` (a container's seccomp profile may forbid `keyctl`); for the
//! Windows Credential Manager, `CredReadW` answers (also under Wine).
//!
//! A backend that does not exist on this platform at all (keyutils, the
//! Secret Service and the sealed store on its keyutils key exist only on
//! Linux; the Credential Manager only on Windows, where
//! [`Kind::WindowsCredentialManager`] is the only real backend) is neither:
//! a test on it prints that it did not run and returns, on every run. The
//! macros that instantiate a test on each real backend
//! (`on_both_backends!`, `backend_tests!`) generate only the instances of
//! the platform's backends.

use std::io::Write;
use std::sync::OnceLock;

use rctoken::{Backend, MemoryKeychain};

/// Names the backends the run declares absent.
pub const ABSENT_ENV: &str = "RCTOKEN_TEST_ABSENT_BACKENDS";

/// A backend tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    #[allow(dead_code, reason = "not every test crate uses it")]
    SecretService,
    Keyutils,
    #[allow(dead_code, reason = "not every test crate uses it")]
    Memory,
    /// The sealed store, its key in real kernel keyutils (so it is
    /// reachable, and declared absent, with keyutils).
    #[allow(dead_code, reason = "not every test crate uses it")]
    Sealed,
    /// The Windows Credential Manager (Windows only; Wine's in CI).
    #[cfg(windows)]
    #[allow(dead_code, reason = "not every test crate uses it")]
    WindowsCredentialManager,
}

impl Kind {
    /// The backend's name, as metadata records it and `--backend` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SecretService => "secret-service",
            Kind::Keyutils => "keyutils",
            Kind::Memory => "memory",
            Kind::Sealed => "sealed",
            #[cfg(windows)]
            Kind::WindowsCredentialManager => "windows-credential-manager",
        }
    }

    /// Whether this backend exists on this platform at all (see the module doc).
    pub fn exists_here(self) -> bool {
        match self {
            Kind::Memory => true,
            Kind::SecretService | Kind::Keyutils | Kind::Sealed => cfg!(target_os = "linux"),
            #[cfg(windows)]
            Kind::WindowsCredentialManager => true,
        }
    }

    /// The backend value (memory: on `memory`).
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn backend(self, memory: &MemoryKeychain) -> Backend {
        match self {
            Kind::SecretService => Backend::SecretService,
            Kind::Keyutils => Backend::Keyutils,
            Kind::Memory => Backend::Memory(memory.clone()),
            Kind::Sealed => Backend::Sealed(rctoken::KeySource::Keyutils),
            #[cfg(windows)]
            Kind::WindowsCredentialManager => Backend::WindowsCredentialManager,
        }
    }
}

/// Whether the run declared `kind` absent. Panics on a name that is not a
/// real backend's, so a typo cannot skip anything.
pub fn declared_absent(kind: Kind) -> bool {
    let name = match kind {
        Kind::Sealed => Kind::Keyutils.name(),
        other => other.name(),
    };
    declared_absent_name(name)
}

/// Whether the run declared the backend `name` absent (also `postgres`,
/// the database the PostgreSQL store's tests need).
pub fn declared_absent_name(name: &str) -> bool {
    let Ok(list) = std::env::var(ABSENT_ENV) else {
        return false;
    };
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for n in &names {
        assert!(
            matches!(
                *n,
                "secret-service" | "keyutils" | "windows-credential-manager" | "postgres"
            ),
            "{ABSENT_ENV}={list:?}: {n:?} is not a backend (secret-service, keyutils, \
             windows-credential-manager, postgres)"
        );
    }
    names.contains(&name)
}

/// Panic with a clear message unless `kind` can be reached.
#[track_caller]
pub fn require(kind: Kind) {
    if !kind.exists_here() {
        panic!(
            "the {} backend does not exist on this platform (`needs!` skips tests on it)",
            kind.name()
        );
    }
    if let Err(why) = reachable(kind) {
        panic!(
            "the {} backend cannot be reached: {why}. Provide it (CI runs the tests under \
             .ci/with-keyring.sh, which starts a session bus with an unlocked gnome-keyring, \
             and the Windows build under Wine with .ci/wine-tests.sh), or declare it absent: \
             {ABSENT_ENV}={} (the tests on it then do not run)",
            kind.name(),
            kind.name()
        );
    }
}

fn reachable(kind: Kind) -> Result<(), String> {
    match kind {
        Kind::Memory => Ok(()),
        Kind::SecretService => match std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
            Some(_) => Ok(()),
            None => Err("DBUS_SESSION_BUS_ADDRESS is unset (no session bus)".into()),
        },
        Kind::Keyutils | Kind::Sealed => {
            static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
            PROBE.get_or_init(probe_keyutils).clone()
        }
        #[cfg(windows)]
        Kind::WindowsCredentialManager => {
            static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
            PROBE.get_or_init(super::credential_manager::probe).clone()
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn probe_keyutils() -> Result<(), String> {
    Err("kernel keyutils exist only on Linux".into())
}

/// Ask the kernel for the id of the user keyring (KEYCTL_GET_KEYRING_ID).
#[cfg(target_os = "linux")]
fn probe_keyutils() -> Result<(), String> {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
    // SAFETY: KEYCTL_GET_KEYRING_ID takes two integers and touches no memory.
    #[allow(unsafe_code)]
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_USER_KEYRING,
            0 as libc::c_long,
        )
    };
    if id < 0 {
        return Err(format!(
            "keyctl(KEYCTL_GET_KEYRING_ID, @u) failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// At the start of a test on `kind`: `true` if the test should run (the
/// backend is reachable); `false` if the run declared it absent, after
/// printing a line saying this test did not run; panics if it is neither
/// declared absent nor reachable. See [`needs!`](crate::needs).
#[track_caller]
pub fn available(kind: Kind) -> bool {
    if !kind.exists_here() {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("a test");
        let _ = writeln!(
            std::io::stderr(),
            "{test}: NOT RUN on {} (it does not exist on this platform)",
            kind.name()
        );
        return false;
    }
    if declared_absent(kind) {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("a test");
        // Straight to stderr: the harness captures print! output of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "{test}: NOT RUN on {} (declared absent in {ABSENT_ENV})",
            kind.name()
        );
        return false;
    }
    require(kind);
    true
}

/// `needs!(Kind::Keyutils, ...)` at the start of a test: return (the test
/// did not run, and says so) if the run declared one of these backends
/// absent; fail if one cannot be reached. See [`available`].
#[macro_export]
macro_rules! needs {
    ($($kind:expr),+ $(,)?) => {
        if !($($crate::support::backends::available($kind))&&+) {
            return;
        }
    };
}
