//! Helpers of the property tests: the case count, pseudo-random unicode,
//! and a store that splits envelopes into many items.

use proptest::test_runner::Config as ProptestConfig;
use rctoken::{Backend, TokenStore};

/// 256 cases per property by default; `PROPTEST_CASES` overrides.
pub fn config() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256),
    )
}

/// A string of about `len` bytes of pseudo-random unicode from `seed`
/// (mixing 1-, 2-, 3- and 4-byte characters), generated quickly.
pub fn unicode(seed: u64, len: usize) -> String {
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

/// A store in `dir` on `backend` for `app`, with items of at most 2,560
/// bytes (Windows Credential Manager's limit): large envelopes split.
pub fn split_store(dir: &std::path::Path, backend: Backend, app: &str) -> TokenStore {
    TokenStore::builder(app)
        .dir(dir)
        .backend(backend)
        .max_item_bytes(2560)
        .open()
        .expect("opens")
}
