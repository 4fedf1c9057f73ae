//! The PostgreSQL store, on a real server: the private cluster CI starts
//! as the unprivileged test user (`.ci/lib/postgres.sh`). The `rctoken`
//! binary is driven from outside; "hosts" share nothing but the database
//! (each its own network namespace, HOME and key file); the database is
//! inspected with `psql` and `pg_dump`.

#[macro_use]
#[path = "../support"]
#[allow(dead_code, reason = "the shared support: this crate uses part of it")]
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
    #[macro_use]
    pub mod postgres;
    pub mod refresher;
    pub mod secret_service;
}

#[cfg(target_os = "linux")]
mod failures;
#[cfg(target_os = "linux")]
mod hosts;
#[cfg(target_os = "linux")]
mod library;
#[cfg(target_os = "linux")]
mod recipes;
#[cfg(target_os = "linux")]
mod rotate;
#[cfg(target_os = "linux")]
mod store;
