//! Keep the secrets this process holds out of core dumps, as ssh-agent
//! does: a core limit of 0 (`setrlimit(RLIMIT_CORE, 0)`, soft and hard),
//! and on Linux also `prctl(PR_SET_DUMPABLE, 0)`, which forbids any dump,
//! including one piped to a helper such as systemd-coredump or apport (the
//! kernel ignores the core limit for those and leaves it to the helper),
//! and makes /proc/PID/* root's, so other processes of the same (non-root)
//! user can neither attach with ptrace nor read /proc/PID/mem or environ.
//!
//! Called first thing for every command, before the arguments are parsed
//! (see `cli::main`): `list`, `status` and `switch` read no secret, but one
//! rule for every command is simpler than a list of the commands that do,
//! and no command that later reads a secret can forget it.
//!
//! Other Unix (macOS, the BSDs) get the core limit only. Non-dumpability is
//! not inherited across `exec`: CMD of `--refresh-with` is dumpable again
//! (it inherits the core limit of 0, which only a privileged CMD can raise).
//! On Windows nothing is done (Windows Error Reporting is configured
//! system-wide).
//!
//! Best effort: a call that fails leaves the process as it was, and the
//! command runs on (there is nothing the user could do about it).

/// Make this process non-dumpable and give it a core size limit of 0.
pub fn no_core_dumps() {
    #[cfg(unix)]
    sys::no_core_dumps();
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod sys {
    pub(super) fn no_core_dumps() {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit only reads the rlimit struct, which lives across
        // the call; lowering a limit needs no privilege.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers and
        // touches no memory of ours.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong);
        }
    }
}
