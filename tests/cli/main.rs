//! The `rctoken` binary driven from outside, as a user would, on kernel
//! keyutils and the Secret Service (on Windows: the Credential Manager, run
//! under Wine by .ci/wine-tests.sh): every command, exit codes and two-line
//! errors, unreachable keychains, `--refresh-with` and its processes,
//! regressions found under real conditions, no secret in the output, and
//! zeroization measured with an `LD_PRELOAD` shim.
//!
//! Run under `.ci/with-keyring.sh`; see `support::backends` for a backend
//! that cannot be reached.

#[macro_use]
#[path = "../support"]
mod support {
    #[macro_use]
    pub mod backends;
    #[cfg(windows)]
    pub mod credential_manager;
    #[macro_use]
    pub mod cli;
    pub mod fake_rc;
    pub mod ids;
    pub mod keyutils;
    pub mod refresher;
    pub mod secret_service;
}

mod cli_commands;
mod cli_errors;
mod cli_help;
mod cli_keychain;
mod cli_refresh;
mod no_surprises;
mod oauth;
mod profile_names;
mod real_conditions;
mod recipes;
mod refresher_processes;
#[cfg(target_os = "linux")]
mod sdks;
mod sealed;
mod secrets_cli;
mod transcripts;
mod zeroize_cli;
