//! Property test of the envelope codec on real kernel keyutils: random
//! corruption (byte flips, truncation, extension, replacement) of one
//! stored item never panics on load or verify: the result is the token or
//! a `CorruptSecret` error. (Its sibling, the round trip of arbitrary
//! secrets on the memory backend, is `tests/fast/proptest_envelope.rs`.)
//!
//! 256 cases per property by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use rctoken::{Backend, Error, SaveOptions, TokenInfo};
use secrecy::{ExposeSecret, SecretString};

use crate::support::backends::Kind;
use crate::support::keyutils;
use crate::support::props::{config, split_store, unicode};

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

/// One test at a time in this binary (the quota), and only on keyutils.
#[test]
fn corrupted_items_never_panic_on_load() {
    needs!(Kind::Keyutils);
    let _serial = crate::serial();
    // The quota the test before filled is freed by the kernel a moment
    // after its keys were deleted.
    crate::support::keyutils::settle();
    // A failing case leaves its items: remove them, pass or fail.
    let _purge = keyutils::Purge(app());
    corrupted_items_never_panic_on_load_cases();
}

fn app() -> String {
    format!("prop-corrupt-{}", std::process::id())
}

proptest! {
    #![proptest_config(config())]

    fn corrupted_items_never_panic_on_load_cases(
        seed in any::<u64>(),
        // Up to ~12 KB of UTF-8 (several 4 KiB keys): a non-root user's
        // whole keyutils quota is 20,000 bytes.
        len in 1usize..3_000,
        which in any::<prop::sample::Index>(),
        dmg in damage(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = app();
        let s = split_store(tmp.path(), Backend::Keyutils, &app);
        let secret = unicode(seed, len);
        let mut t = TokenInfo::new(SecretString::from(secret.as_str()), 3600, "s");
        t.refresh_token = Some(SecretString::from("refresh"));
        let info = s.save(&t, SaveOptions::new().profile("p")).expect("saves");
        let index = which.index(info.keychain_items() as usize);
        let description = format!("rctoken:{app}:p.{}.{index}", info.generation());
        let id = keyutils::find(&description).expect("item exists");
        let mut item = keyutils::read(&id);
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
        keyutils::add(&description, &item);
        match s.load("p") {
            Ok(back) => {
                // Only a flip inside the secret's bytes can still decode.
                prop_assert!(matches!(dmg, Damage::Flip(_)), "{dmg:?} decoded");
                prop_assert_eq!(back.token.refresh_token.as_ref().map(|s| s.expose_secret().len()), Some(7));
            }
            Err(Error::CorruptSecret { reason, .. }) => prop_assert!(!reason.contains('\n')),
            // Damage to the version byte can claim a newer envelope format.
            Err(Error::SecretsTooNew { found, supported, .. }) => prop_assert!(found > supported),
            Err(other) => prop_assert!(false, "unexpected error: {other:?}"),
        }
        let _ = s.verify().expect("verify reports, does not fail");
        s.remove_all().expect("cleans up");
    }
}
