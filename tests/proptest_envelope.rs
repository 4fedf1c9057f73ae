//! Property tests of the envelope codec, end to end through the store:
//! - tokens with arbitrary secrets (any unicode, 1 byte to 70 KiB) round-trip
//!   through save → load on the memory backend with `.max_item_bytes(2560)`
//!   (so large envelopes are split across many items, as on Windows);
//! - random corruption (byte flips, truncation, extension, replacement) of
//!   one stored item on real keyutils never panics on load or verify: the
//!   result is the token or a `CorruptSecret` error.
//!
//! 256 cases per property by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use rctoken::{Backend, Error, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
use secrecy::{ExposeSecret, SecretString};

const MAX: usize = 70 * 1024;

/// A string of about `len` bytes of pseudo-random unicode from `seed`
/// (mixing 1-, 2-, 3- and 4-byte characters), generated quickly.
fn unicode(seed: u64, len: usize) -> String {
    let mut x = seed | 1;
    let mut s = String::with_capacity(len + 4);
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = match x % 4 {
            0 => char::from(b' ' + (x >> 8) as u8 % 95),
            1 => char::from_u32(0x80 + (x >> 8) as u32 % 0x700).unwrap_or('é'),
            2 => char::from_u32(0x800 + (x >> 8) as u32 % 0xD000).unwrap_or('€'),
            _ => char::from_u32(0x10000 + (x >> 8) as u32 % 0x10000).unwrap_or('😀'),
        };
        s.push(c);
    }
    s
}

fn secret_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ".{1,64}",
        1 => (any::<u64>(), 1..=MAX).prop_map(|(seed, len)| unicode(seed, len)),
        1 => (any::<char>(), 1..=MAX / 4).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

fn store(tmp: &std::path::Path, backend: Backend, app: &str) -> TokenStore {
    TokenStore::builder(app)
        .dir(tmp)
        .backend(backend)
        .max_item_bytes(2560)
        .open()
        .expect("opens")
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256),
    )
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
        let s = store(tmp.path(), Backend::Memory(MemoryKeychain::new()), "prop-env");
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

#[derive(Debug, Clone)]
enum Damage {
    Flip(Vec<(prop::sample::Index, u8)>),
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    Replace(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8).prop_map(Damage::Flip),
        2 => any::<prop::sample::Index>().prop_map(Damage::Truncate),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Damage::Extend),
        1 => prop::collection::vec(any::<u8>(), 0..3000).prop_map(Damage::Replace),
    ]
}

fn read_key(description: &str) -> Vec<u8> {
    let ring =
        linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::User, false)
            .expect("user keyring");
    let key = ring.search(description).expect("item exists");
    let mut buf = vec![0u8; 40_000];
    let n = key.read(&mut buf).expect("reads");
    buf.truncate(n);
    buf
}

fn write_key(description: &str, data: &[u8]) {
    let ring =
        linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::User, false)
            .expect("user keyring");
    ring.add_key(description, data).expect("replaces");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn corrupted_items_never_panic_on_load(
        seed in any::<u64>(),
        // Up to ~12 KB of UTF-8 (several 4 KiB keys): a non-root user's
        // whole keyutils quota is 20,000 bytes.
        len in 1usize..3_000,
        which in any::<prop::sample::Index>(),
        dmg in damage(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = format!("prop-corrupt-{}", std::process::id());
        let s = store(tmp.path(), Backend::Keyutils, &app);
        let secret = unicode(seed, len);
        let mut t = TokenInfo::new(SecretString::from(secret.as_str()), 3600, "s");
        t.refresh_token = Some(SecretString::from("refresh"));
        let info = s.save(&t, SaveOptions::new().profile("p")).expect("saves");
        let index = which.index(info.keychain_items() as usize);
        let description = format!("rctoken:{app}:p.{}.{index}", info.generation());
        let mut item = read_key(&description);
        match &dmg {
            Damage::Flip(flips) => {
                for (at, b) in flips {
                    let i = at.index(item.len());
                    item[i] ^= b | 1;
                }
            }
            Damage::Truncate(at) => item.truncate(at.index(item.len())),
            Damage::Extend(extra) => item.extend_from_slice(extra),
            Damage::Replace(bytes) => item = bytes.clone(),
        }
        if item.is_empty() {
            item.push(0);
        }
        write_key(&description, &item);
        match s.load("p") {
            Ok(back) => {
                // Only a flip inside the secret's bytes can still decode.
                prop_assert!(matches!(dmg, Damage::Flip(_)), "{dmg:?} decoded");
                prop_assert_eq!(back.token.refresh_token.as_ref().map(|s| s.expose_secret().len()), Some(7));
            }
            Err(Error::CorruptSecret { reason, .. }) => prop_assert!(!reason.contains('\n')),
            Err(other) => prop_assert!(false, "unexpected error: {other:?}"),
        }
        let _ = s.verify().expect("verify reports, does not fail");
        s.remove_all().expect("cleans up");
    }
}
