//! Property tests of the token JSON parser (`TokenInfo::from_json`):
//! - any bytes, and any JSON object whose seed fields hold values of any
//!   type, are parsed or refused with `Error::BadToken`: never a panic;
//! - every valid token round-trips through `to_json_revealed` → `from_json`
//!   with every field equal, unicode and escapes included.
//!
//! 256 cases per property by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use rctoken::{Error, MAX_TTL_SECS, TokenInfo, TokenType};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::support::props::config;

const FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "scope",
    "refresh_token",
    "refresh_token_expires_in",
    "owner_id",
    "endpoint_id",
    "id_token",
    "session_expires_in",
    "session_expiration_time",
    "session_id",
    "session_idle_timeout",
];

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        Just(Value::String("bearer".into())),
        Just(Value::String("2026-01-01T00:00:00Z".into())),
        (0..=MAX_TTL_SECS + 10).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with each seed field absent or holding any value, plus noise.
fn seed_shaped_object() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(prop::option::of(any_json()), FIELDS.len()),
        prop::collection::btree_map("[a-z_]{1,12}", any_json(), 0..3),
    )
        .prop_map(|(values, extra)| {
            let mut map = Map::new();
            for (k, v) in extra {
                map.insert(k, v);
            }
            for (field, value) in FIELDS.iter().zip(values) {
                if let Some(v) = value {
                    map.insert((*field).to_string(), v);
                }
            }
            serde_json::to_vec(&Value::Object(map)).expect("serializes")
        })
}

fn assert_parsed_or_refused(bytes: &[u8]) {
    match TokenInfo::from_json(bytes) {
        Ok(t) => {
            // What is accepted satisfies the model.
            assert!(!t.access_token.expose_secret().is_empty());
            assert!((0..=MAX_TTL_SECS).contains(&t.expires_in));
            assert_eq!(t.token_type, TokenType::Bearer);
            assert!(!t.scope.chars().any(char::is_control));
            assert!(t.owner_id.as_deref() != Some(""));
        }
        Err(Error::BadToken { reason }) => {
            assert!(!reason.is_empty() && !reason.contains('\n'), "{reason:?}");
        }
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

/// Printable text without control characters (what the model accepts).
fn text(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        any::<char>().prop_filter("no control chars", |c| !c.is_control()),
        min..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn ttl() -> impl Strategy<Value = i64> {
    prop_oneof![0..=MAX_TTL_SECS, Just(0), Just(MAX_TTL_SECS)]
}

fn rfc3339() -> impl Strategy<Value = String> {
    (0i64..4_000_000_000, -12i8..=12, 0u32..1_000_000_000).prop_map(|(secs, off, nanos)| {
        let t = time::OffsetDateTime::from_unix_timestamp(secs)
            .expect("in range")
            .replace_nanosecond(nanos)
            .expect("valid")
            .to_offset(time::UtcOffset::from_hms(off, 0, 0).expect("valid"));
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    })
}

prop_compose! {
    fn valid_token()(
        access in text(1),
        expires_in in ttl(),
        scope in text(0),
        refresh in prop::option::of(text(1)),
        refresh_ttl in prop::option::of(ttl()),
        owner in prop::option::of(text(1)),
        endpoint in prop::option::of(text(0)),
        id in prop::option::of(text(1)),
        session_ttl in prop::option::of(ttl()),
        session_time in prop::option::of(rfc3339()),
        session_id in prop::option::of(text(0)),
        idle in prop::option::of(ttl()),
    ) -> TokenInfo {
        let mut t = TokenInfo::new(SecretString::from(access.as_str()), expires_in, scope);
        t.refresh_token = refresh.map(|s| SecretString::from(s.as_str()));
        t.refresh_token_expires_in = refresh_ttl;
        t.owner_id = owner;
        t.endpoint_id = endpoint;
        t.id_token = id.map(|s| SecretString::from(s.as_str()));
        t.session_expires_in = session_ttl;
        t.session_expiration_time = session_time;
        t.session_id = session_id;
        t.session_idle_timeout = idle;
        t
    }
}

fn secret(s: &Option<SecretString>) -> Option<&str> {
    s.as_ref().map(|s| s.expose_secret())
}

fn assert_same(a: &TokenInfo, b: &TokenInfo) {
    assert_eq!(
        a.access_token.expose_secret(),
        b.access_token.expose_secret()
    );
    assert_eq!(a.expires_in, b.expires_in);
    assert_eq!(a.scope, b.scope);
    assert_eq!(a.token_type, b.token_type);
    assert_eq!(secret(&a.refresh_token), secret(&b.refresh_token));
    assert_eq!(a.refresh_token_expires_in, b.refresh_token_expires_in);
    assert_eq!(a.owner_id, b.owner_id);
    assert_eq!(a.endpoint_id, b.endpoint_id);
    assert_eq!(secret(&a.id_token), secret(&b.id_token));
    assert_eq!(a.session_expires_in, b.session_expires_in);
    assert_eq!(a.session_expiration_time, b.session_expiration_time);
    assert_eq!(a.session_id, b.session_id);
    assert_eq!(a.session_idle_timeout, b.session_idle_timeout);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_parsed_or_refused(&bytes);
    }

    #[test]
    fn seed_fields_of_arbitrary_types_never_panic(json in seed_shaped_object()) {
        assert_parsed_or_refused(&json);
    }

    #[test]
    fn any_json_value_never_panics(v in any_json()) {
        assert_parsed_or_refused(&serde_json::to_vec(&v).expect("serializes"));
    }

    #[test]
    fn valid_tokens_round_trip(t in valid_token()) {
        let json = t.to_json_revealed();
        let back = TokenInfo::from_json(&json).expect("own output parses");
        assert_same(&t, &back);
        // And once more: the output is stable.
        assert_eq!(&*back.to_json_revealed(), &*json);
    }

    #[test]
    fn escaped_secrets_are_unescaped_exactly(plain in text(1), style in 0u8..3) {
        // serde_json escapes only `"`, `\` and control characters; other
        // encoders escape `/` or everything (UTF-16 `\u` units, surrogate
        // pairs included).
        let literal: String = plain
            .chars()
            .map(|c| match (style, c) {
                (_, '"') => "\\\"".to_string(),
                (_, '\\') => "\\\\".to_string(),
                (1, '/') => "\\/".to_string(),
                (2, c) => {
                    let mut units = [0u16; 2];
                    c.encode_utf16(&mut units)
                        .iter()
                        .map(|u| format!("\\u{u:04x}"))
                        .collect()
                }
                (_, c) => c.to_string(),
            })
            .collect();
        let json = format!(
            r#"{{"access_token":"{literal}","token_type":"bearer","expires_in":1,"scope":"{literal}","refresh_token":"{literal}"}}"#
        );
        let t = TokenInfo::from_json(json.as_bytes()).expect("parses");
        prop_assert_eq!(t.access_token.expose_secret(), plain.as_str());
        prop_assert_eq!(t.scope.as_str(), plain.as_str());
        prop_assert_eq!(secret(&t.refresh_token), Some(plain.as_str()));
    }

    #[test]
    fn truncations_of_valid_tokens_are_refused(t in valid_token(), cut in any::<prop::sample::Index>()) {
        let json = t.to_json_revealed();
        let at = cut.index(json.len());
        match TokenInfo::from_json(&json[..at]) {
            Err(Error::BadToken { .. }) => {}
            other => panic!("cut at {at} of {}: {other:?}", json.len()),
        }
    }
}
