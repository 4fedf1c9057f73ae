//! Validation of names (app ids, profile keys, labels) and their escaping
//! into keychain item names and file names. An escaped name never contains
//! a path separator, `.`, or a control character, and escaping is
//! injective, so no two profiles can map to the same item or file.

use crate::error::{Error, Result};

/// Longest accepted profile key or label, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// App ids: 1–64 of `[A-Za-z0-9_.-]`, not starting with `.`.
pub(crate) fn check_app_id(app: &str) -> Result<()> {
    let ok = !app.is_empty()
        && app.len() <= 64
        && !app.starts_with('.')
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "app id",
            reason: "use 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.`".into(),
        })
    }
}

fn check_name(what: &'static str, s: &str) -> Result<()> {
    let reason = if s.is_empty() {
        "must not be empty"
    } else if s.chars().count() > MAX_NAME_CHARS {
        "longer than 128 characters"
    } else if s.chars().any(char::is_control) {
        "contains a control character"
    } else if s.trim() != s {
        "has leading or trailing whitespace"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        what,
        reason: reason.into(),
    })
}

/// Profile keys: 1–128 printable characters without surrounding whitespace.
pub(crate) fn check_profile_key(key: &str) -> Result<()> {
    check_name("profile name", key)
}

/// Labels: same rules as profile keys.
pub(crate) fn check_label(label: &str) -> Result<()> {
    check_name("label", label)
}

/// Escape a profile key for keychain item names and file names: ASCII letters,
/// digits, `_` and `-` stay; every other byte becomes `%XX`.
pub(crate) fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`escape`]; `None` if `s` is not an escaped key.
pub(crate) fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let b = u8::from_str_radix(hex, 16).ok()?;
                if format!("{b:02X}") != hex {
                    return None;
                }
                out.push(b);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The keychain account of item `index` of generation `generation` of a profile:
/// `<escaped key>.<generation>.<index>`.
pub(crate) fn item_account(key: &str, generation: &str, index: u16) -> String {
    format!("{}.{generation}.{index}", escape(key))
}

/// Parse an account made by [`item_account`]: (key, generation, index).
pub(crate) fn parse_account(account: &str) -> Option<(String, String, u16)> {
    let mut parts = account.split('.');
    let key = unescape(parts.next()?)?;
    let generation = parts.next()?;
    let index: u16 = parts.next()?.parse().ok()?;
    if parts.next().is_some()
        || generation.len() != 16
        || !generation
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    Some((key, generation.to_string(), index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_and_hides_separators() {
        for key in ["256440016", "a/b", "..", "x.y", "%41", "ü", "a\\b", "A"] {
            let e = escape(key);
            assert!(
                !e.contains('/') && !e.contains('\\') && !e.contains('.'),
                "{e}"
            );
            assert_eq!(unescape(&e).as_deref(), Some(key));
        }
        assert_ne!(escape("%41"), escape("A"));
        assert_eq!(unescape("%41"), Some("A".into()));
        assert_eq!(unescape("%4a"), None, "lower-case hex is not canonical");
    }

    #[test]
    fn accounts_parse_back() {
        let acc = item_account("a.b", "00000000000000ff", 3);
        assert_eq!(
            parse_account(&acc),
            Some(("a.b".into(), "00000000000000ff".into(), 3))
        );
        assert_eq!(parse_account("foo"), None);
        assert_eq!(parse_account("a.zz.1"), None);
        assert_eq!(
            parse_account("a.00000000000000FF.0"),
            None,
            "saves write lower case"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_profile_key("256440016").is_ok());
        assert!(check_profile_key("").is_err());
        assert!(check_profile_key("a\0b").is_err());
        assert!(check_profile_key("a\nb").is_err());
        assert!(check_profile_key(&"x".repeat(129)).is_err());
        assert!(check_app_id("my-app.1").is_ok());
        assert!(check_app_id("../x").is_err());
        assert!(check_app_id("").is_err());
    }
}
