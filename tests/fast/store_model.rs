//! The token model on its own: parse rules, error texts that never echo a
//! value, redacted Debug, and the one explicit way to reveal the secrets.

use rctoken::secrecy::ExposeSecret;
use rctoken::{Error, TokenInfo, TokenType};
use serde_json::{Value, json};

use crate::support::tokens::{self, Secrets};

fn parse_err(v: &Value) -> String {
    match TokenInfo::from_json(v.to_string().as_bytes()) {
        Ok(_) => panic!("expected a parse error for {v}"),
        Err(e @ Error::BadToken { .. }) => e.to_string(),
        Err(e) => panic!("expected BadToken, got {e:?}"),
    }
}

fn base() -> Value {
    json!({"access_token": "AT-base", "expires_in": 3600, "scope": "A", "token_type": "bearer"})
}

#[test]
fn all_thirteen_fields_parse_and_reveal_unchanged() {
    let s = Secrets::new("model");
    let v = tokens::full_json("256440016", &s);
    let t = tokens::parse(&v);
    assert_eq!(t.access_token.expose_secret(), s.access);
    assert_eq!(t.expires_in, 3600);
    assert_eq!(t.scope, "ReadAccounts ReadMessages SMS");
    assert_eq!(t.token_type, TokenType::Bearer);
    assert_eq!(tokens::refresh(&t), Some(s.refresh.as_str()));
    assert_eq!(t.refresh_token_expires_in, Some(604800));
    assert_eq!(t.owner_id.as_deref(), Some("256440016"));
    assert_eq!(t.endpoint_id.as_deref(), Some("ep-Qz0dxlhLQ"));
    assert_eq!(
        t.id_token.as_ref().map(|s| s.expose_secret()),
        Some(s.id.as_str())
    );
    assert_eq!(t.session_expires_in, Some(86400));
    assert_eq!(
        t.session_expiration_time.as_deref(),
        Some("2025-06-02T12:00:00.250Z")
    );
    assert_eq!(t.session_id.as_deref(), Some("sess-98765"));
    assert_eq!(t.session_idle_timeout, Some(1800));
    assert_eq!(tokens::wire(&t), v, "to_json_revealed gives the input back");
}

#[test]
fn optional_fields_may_be_absent_or_null() {
    let t = tokens::parse(&base());
    assert!(t.refresh_token.is_none() && t.id_token.is_none() && t.owner_id.is_none());
    let mut v = base();
    for f in [
        "refresh_token",
        "owner_id",
        "id_token",
        "session_expires_in",
    ] {
        v[f] = Value::Null;
    }
    let t = tokens::parse(&v);
    assert!(t.refresh_token.is_none() && t.session_expires_in.is_none());
    // Absent optionals are not emitted when revealed.
    assert_eq!(tokens::wire(&t), base());
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = base();
    v["brand_new_field"] = json!({"nested": [1, 2, 3]});
    v["x"] = json!("y");
    let t = tokens::parse(&v);
    assert_eq!(tokens::access(&t), "AT-base");
    assert_eq!(tokens::wire(&t), base());
}

#[test]
fn token_type_bearer_in_any_case() {
    for ty in ["bearer", "Bearer", "BEARER", "bEaReR"] {
        let mut v = base();
        v["token_type"] = json!(ty);
        assert_eq!(tokens::parse(&v).token_type, TokenType::Bearer, "{ty}");
    }
}

#[test]
fn token_type_other_than_bearer_is_an_error_naming_the_field() {
    for ty in ["mac", "MAC-zz9secret", "bearer ", ""] {
        let mut v = base();
        v["token_type"] = json!(ty);
        let msg = parse_err(&v);
        assert!(msg.contains("token_type"), "{msg}");
        if !matches!(ty.trim(), "" | "bearer") {
            assert!(!msg.contains(ty), "echoes the value: {msg}");
        }
    }
}

#[test]
fn missing_required_fields_are_named() {
    for f in ["access_token", "expires_in", "scope", "token_type"] {
        let mut v = base();
        v.as_object_mut().expect("object").remove(f);
        let msg = parse_err(&v);
        assert!(msg.contains(f), "{f}: {msg}");
        assert!(msg.contains("missing"), "{f}: {msg}");
    }
}

#[test]
fn wrong_types_name_the_field_and_never_echo_the_value() {
    let bad = "zz9-SECRET-VALUE-7f3a";
    let cases: Vec<(&str, Value)> = vec![
        ("expires_in", json!(bad)),
        ("expires_in", json!(-5)),
        ("expires_in", json!(1.5)),
        ("refresh_token_expires_in", json!(bad)),
        ("session_expires_in", json!([bad])),
        ("session_idle_timeout", json!({ "v": bad })),
        ("access_token", json!(42)),
        ("access_token", json!([bad])),
        ("refresh_token", json!({ "token": bad })),
        ("id_token", json!(true)),
        ("owner_id", json!(["a", bad])),
        ("session_expiration_time", json!(bad)),
        (
            "session_expiration_time",
            json!(format!("2025-13-01T00:00:00Z{bad}")),
        ),
        ("scope", json!(12345678)),
    ];
    for (field, value) in cases {
        let mut v = base();
        v[field] = value.clone();
        let msg = parse_err(&v);
        assert!(msg.contains(field), "{field}={value}: {msg}");
        assert!(!msg.contains(bad), "{field} echoes its value: {msg}");
        assert!(
            !msg.contains("AT-base"),
            "{field} echoes the access token: {msg}"
        );
    }
}

#[test]
fn empty_secrets_and_control_characters_are_refused() {
    for (field, value) in [
        ("access_token", ""),
        ("refresh_token", ""),
        ("owner_id", ""),
        ("access_token", "abc\u{1}def-SECRET"),
    ] {
        let mut v = base();
        v[field] = json!(value);
        let msg = parse_err(&v);
        assert!(msg.contains(field), "{msg}");
        assert!(value.is_empty() || !msg.contains("SECRET"), "{msg}");
    }
}

#[test]
fn syntax_errors_never_echo_input() {
    let secret = "SECRETzz9-syntax";
    let inputs: Vec<Vec<u8>> = vec![
        format!("{{\"access_token\": \"{secret}\"").into_bytes(),
        format!("{{\"access_token\": {secret}}}").into_bytes(),
        format!("[\"{secret}\"]").into_bytes(),
        format!("\"{secret}\"").into_bytes(),
        b"".to_vec(),
        [b"{\"access_token\": \"".as_slice(), &[0xff, 0xfe], b"\"}"].concat(),
    ];
    for input in inputs {
        let e = TokenInfo::from_json(&input).expect_err("must not parse");
        assert!(matches!(e, Error::BadToken { .. }), "{e:?}");
        let shown = format!("{e} / {e:?}");
        assert!(!shown.contains(secret), "echoes input: {shown}");
    }
}

#[test]
fn serde_deserialize_applies_the_same_rules() {
    let s = Secrets::new("serde");
    let v = tokens::full_json("1", &s);
    let t: TokenInfo = serde_json::from_value(v.clone()).expect("deserializes");
    assert_eq!(tokens::wire(&t), v);
    let mut bad = v;
    bad["token_type"] = json!("mac");
    let e = serde_json::from_value::<TokenInfo>(bad).expect_err("mac is refused");
    assert!(e.to_string().contains("token_type"), "{e}");
}

#[test]
fn debug_of_token_info_never_shows_secrets() {
    let (t, s) = tokens::full("256440016");
    for shown in [format!("{t:?}"), format!("{t:#?}")] {
        for secret in s.all() {
            assert!(!shown.contains(secret), "Debug shows a secret: {shown}");
        }
        assert!(shown.contains("256440016"), "non-secret fields are shown");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}

#[test]
fn session_expiration_time_accepts_rfc3339_variants() {
    for ok in [
        "2025-06-02T12:00:00Z",
        "2025-06-02T12:00:00.123Z",
        "2025-06-02T14:00:00+02:00",
        "2025-06-02T07:30:00.5-04:30",
    ] {
        let mut v = base();
        v["session_expiration_time"] = json!(ok);
        let t = tokens::parse(&v);
        assert_eq!(
            t.session_expiration_time.as_deref(),
            Some(ok),
            "kept verbatim"
        );
    }
    for bad in ["2025-06-02", "tomorrow", "2025-06-02T12:00:00"] {
        let mut v = base();
        v["session_expiration_time"] = json!(bad);
        assert!(parse_err(&v).contains("session_expiration_time"));
    }
}

#[test]
fn a_parse_error_is_one_line_of_bad_input() {
    let e = TokenInfo::from_json(b"{}").expect_err("empty object");
    assert_eq!(e.kind(), rctoken::ErrorKind::BadInput);
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn backend_names_round_trip() {
    for name in [
        "auto",
        "secret-service",
        "keyutils",
        "macos-keychain",
        "windows-credential-manager",
        "memory",
    ] {
        let b = rctoken::Backend::from_name(name).expect("known backend");
        assert_eq!(b.name(), name);
    }
    assert!(rctoken::Backend::from_name("gnome-keyring").is_none());
    assert!(rctoken::Backend::from_name("").is_none());
}

#[test]
fn invalid_app_ids_are_refused_before_touching_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in [
        "",
        ".hidden",
        "../escape",
        "a/b",
        "a:b",
        "sp ace",
        &"x".repeat(65),
    ] {
        let dir = tmp.path().join("never-created");
        let e = rctoken::TokenStore::builder(bad)
            .dir(&dir)
            .open()
            .expect_err("bad app id");
        assert!(
            matches!(
                e,
                Error::InvalidName {
                    kind: rctoken::NameKind::AppId,
                    ..
                }
            ),
            "{bad:?}: {e:?}"
        );
        assert!(!dir.exists(), "{bad:?} created the directory");
    }
}
