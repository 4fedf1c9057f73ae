//! The fast tier: tests that need no keychain, no session bus and no
//! built binary, and run in seconds. The token model, the store on
//! keyring-core's mock wrapped to fail chosen calls, the failpoint-driven
//! fault injection of save, refresh and logout (feature `failpoints`), and
//! the property tests of the parsers and the envelope codec (memory backend).
//!
//! `cargo test --features failpoints --lib --bins --test fast`

#[macro_use]
#[path = "../support"]
mod support {
    pub mod fault_store;
    pub mod ids;
    pub mod props;
    #[macro_use]
    pub mod rerun;
    pub mod tagged;
    pub mod tokens;
}

mod api_shape;
#[cfg(feature = "async")]
mod async_facade;
mod faults;
mod proptest_envelope;
mod proptest_metadata;
mod proptest_session_time;
mod proptest_token;
mod store_mock_faults;
mod store_model;
