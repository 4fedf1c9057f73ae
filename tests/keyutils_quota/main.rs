//! Tests that need the user's kernel keyutils quota (20,000 bytes and 200
//! keys by default for a non-root uid) to themselves: kernel keyutils as an
//! ordinary user meets it (every kind of session keyring, a full quota),
//! and corrupted envelope items of up to ~12 KB. A binary of their own
//! (CI runs test binaries one after another), and one test at a time
//! ([`serial`]), so no other test eats into the quota they measure.
//!
//! Kernel keyutils exist only on Linux: elsewhere this binary is empty.
#![cfg(target_os = "linux")]

#[macro_use]
#[path = "../support"]
mod support {
    #[macro_use]
    pub mod backends;
    pub mod cli;
    pub mod ids;
    pub mod keyutils;
    pub mod props;
    pub mod secret_service;
}

mod keyutils_user;
mod proptest_envelope;

/// Every test of this binary holds it: the quota is shared by every
/// process of the uid.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}
