//! The library on the real keychains (the Secret Service, kernel keyutils)
//! and the memory backend: round trips, profiles, drift and repair, the
//! files of a store, refresh, failpoints at the commit point (feature
//! `failpoints`), cross-process use, filesystem hardening, hostile input,
//! and no secret anywhere it does not belong.
//!
//! Run under `.ci/with-keyring.sh` (a session bus with an unlocked
//! gnome-keyring); a backend the run declares absent in
//! `RCTOKEN_TEST_ABSENT_BACKENDS` is skipped, any other that cannot be
//! reached fails (see `support::backends`).

// Elsewhere most of the tests (on Linux's backends) do not exist, and the
// helpers they share go unused.
#![cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "the tests that use them are Linux's")
)]

#[macro_use]
#[path = "../support"]
mod support {
    #[macro_use]
    pub mod backends;
    pub mod child;
    #[cfg(windows)]
    pub mod credential_manager;
    pub mod ids;
    pub mod keyutils;
    #[macro_use]
    pub mod rerun;
    pub mod secret_service;
    pub mod tokens;
}

#[macro_use]
mod ctx;
mod files;
mod raw;

mod fs_hardening;
mod hostile_input;
mod secrets_nowhere;
mod store_backends;
mod store_drift;
mod store_failpoints;
mod store_files;
mod store_processes;
mod store_refresh;
