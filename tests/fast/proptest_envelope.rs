//! Property test of the envelope codec, end to end through the store:
//! tokens with arbitrary secrets (any unicode, 1 byte to 70 KiB) round-trip
//! through save → load on the memory backend with `.max_item_bytes(2560)`
//! (so large envelopes are split across many items, as on Windows). Its
//! sibling on real keyutils, random corruption of one stored item, is
//! `tests/keyutils_quota/proptest_envelope.rs` (it needs much of the
//! user's keyutils quota).
//!
//! 256 cases per property by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use rctoken::{Backend, MemoryKeychain, SaveOptions, TokenInfo};
use secrecy::{ExposeSecret, SecretString};

use crate::support::props::{config, split_store, unicode};

const MAX: usize = 70 * 1024;

fn secret_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ".{1,64}",
        1 => (any::<u64>(), 1..=MAX).prop_map(|(seed, len)| unicode(seed, len)),
        1 => (any::<char>(), 1..=MAX / 4).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn secrets_round_trip_through_split_envelopes(
        access in secret_text(),
        refresh in prop::option::of(secret_text()),
        id in prop::option::of(secret_text()),
        key in "[^\\p{Cc}]{1,20}".prop_filter("trimmed", |k| k.trim() == k),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = split_store(tmp.path(), Backend::Memory(MemoryKeychain::new()), "prop-env");
        let mut t = TokenInfo::new(SecretString::from(access.as_str()), 3600, "s");
        t.refresh_token = refresh.as_deref().map(SecretString::from);
        t.id_token = id.as_deref().map(SecretString::from);
        let info = s.save(&t, SaveOptions::new().profile(key.clone())).expect("saves");
        let total = access.len() + refresh.as_ref().map_or(0, String::len) + id.as_ref().map_or(0, String::len);
        prop_assert!(info.keychain_items() as usize >= total / 2560, "split: {} items for {total} bytes", info.keychain_items());
        let back = s.load(&key).expect("loads");
        prop_assert_eq!(back.token.access_token.expose_secret(), access.as_str());
        prop_assert_eq!(back.token.refresh_token.as_ref().map(|s| s.expose_secret()), refresh.as_deref());
        prop_assert_eq!(back.token.id_token.as_ref().map(|s| s.expose_secret()), id.as_deref());
        prop_assert!(s.verify().expect("verifies").is_clean());
    }
}
