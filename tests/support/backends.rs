//! The backends tests run on, and one policy for a real backend a test
//! cannot reach: the test FAILS, with a message saying what is missing and
//! how to provide it, unless the run declares that backend absent in
//! `RCTOKEN_TEST_ABSENT_BACKENDS` (comma-separated names: `secret-service`,
//! `keyutils`). A test on a backend declared absent prints a line saying it
//! did not run (on stderr, past the harness's output capture) and returns.
//! CI never sets the variable: there, every test runs or fails.
//!
//! Reachable means: for the Secret Service, a session bus is configured
//! (`DBUS_SESSION_BUS_ADDRESS`; `.ci/with-keyring.sh` provides one with an
//! unlocked gnome-keyring); for keyutils, the kernel answers for the user
//! keyring `@u` (a container's seccomp profile may forbid `keyctl`).

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
}

impl Kind {
    /// The backend's name, as metadata records it and `--backend` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SecretService => "secret-service",
            Kind::Keyutils => "keyutils",
            Kind::Memory => "memory",
        }
    }

    /// The backend value (memory: on `memory`).
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn backend(self, memory: &MemoryKeychain) -> Backend {
        match self {
            Kind::SecretService => Backend::SecretService,
            Kind::Keyutils => Backend::Keyutils,
            Kind::Memory => Backend::Memory(memory.clone()),
        }
    }
}

/// Whether the run declared `kind` absent. Panics on a name that is not a
/// real backend's, so a typo cannot skip anything.
pub fn declared_absent(kind: Kind) -> bool {
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
            matches!(*n, "secret-service" | "keyutils"),
            "{ABSENT_ENV}={list:?}: {n:?} is not a backend (secret-service, keyutils)"
        );
    }
    names.contains(&kind.name())
}

/// Panic with a clear message unless `kind` can be reached.
#[track_caller]
pub fn require(kind: Kind) {
    if let Err(why) = reachable(kind) {
        panic!(
            "the {} backend cannot be reached: {why}. Provide it (CI runs the tests under \
             .ci/with-keyring.sh, which starts a session bus with an unlocked gnome-keyring), \
             or declare it absent: {ABSENT_ENV}={} (the tests on it then do not run)",
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
        Kind::Keyutils => {
            static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
            PROBE.get_or_init(probe_keyutils).clone()
        }
    }
}

/// Ask the kernel for the id of the user keyring (KEYCTL_GET_KEYRING_ID).
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
