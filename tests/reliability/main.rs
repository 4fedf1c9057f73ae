//! Reliability on the real keychains, mostly with many processes: 16
//! processes on one store, single-flight refresh, writers SIGKILLed
//! hundreds of times, a keychain that never answers, 64 KiB secrets, and
//! items deleted behind the store's back.
//!
//! The tests that start many processes or bound how long something may
//! take hold [`heavy`]: one of them runs at a time, as when each file was a
//! test binary of its own.

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
    pub mod tagged;
}

mod rel;

mod concurrency;
mod crash;
mod faults_keyutils;
mod hang;
mod large;

/// Held by the tests that start many processes (16 at once, or hundreds
/// one after another) and by those with a bound on how long a child may
/// take: with two of them at once on a small machine, a bound meant to
/// catch a hang could catch a slow machine instead.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}
