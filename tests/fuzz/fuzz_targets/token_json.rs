//! `TokenInfo::from_json` on arbitrary bytes: never panics; what it accepts
//! satisfies the model and round-trips through `to_json_revealed`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rctoken::secrecy::ExposeSecret;
use rctoken::{Error, MAX_TTL_SECS, TokenInfo};

fuzz_target!(|data: &[u8]| {
    match TokenInfo::from_json(data) {
        Ok(t) => {
            assert!(!t.access_token.expose_secret().is_empty());
            assert!((0..=MAX_TTL_SECS).contains(&t.expires_in));
            let again = TokenInfo::from_json(&t.to_json_revealed()).expect("own output parses");
            assert_eq!(
                again.access_token.expose_secret(),
                t.access_token.expose_secret()
            );
            assert_eq!(again.scope, t.scope);
            assert_eq!(again.owner_id, t.owner_id);
        }
        Err(Error::BadToken { reason }) => assert!(!reason.contains('\n')),
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
});
