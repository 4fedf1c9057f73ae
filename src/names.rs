//! Validation of names (app ids, profile keys, labels) and their escaping
//! into keychain item names and file names. An escaped name never contains
//! a path separator, `.`, or a control character, and escaping is
//! injective, so no two profiles can map to the same item or file.

use crate::error::{Error, NameKind, Result};

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
            kind: NameKind::AppId,
            reason: "use 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.`".into(),
        })
    }
}

/// Profile keys, labels and owner ids: 1–128 printable characters without
/// surrounding whitespace.
pub(crate) fn check_name(kind: NameKind, s: &str) -> Result<()> {
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
        kind,
        reason: reason.into(),
    })
}

/// Check a name a caller would give to a profile, as its key or its label:
/// 1 to [`MAX_NAME_CHARS`] printable characters without surrounding
/// whitespace. What [`TokenStore::save`](crate::TokenStore::save) and
/// [`TokenStore::set_label`](crate::TokenStore::set_label) accept, for a
/// caller that wants to refuse a name before it opens a store.
///
/// # Errors
/// [`Error::InvalidName`] saying why.
pub fn check_profile_name(name: &str) -> Result<()> {
    check_name(NameKind::Profile, name)
}

/// Profile keys: 1–128 printable characters without surrounding whitespace.
pub(crate) fn check_profile_key(key: &str) -> Result<()> {
    check_name(NameKind::Profile, key)
}

/// Labels: same rules as profile keys.
pub(crate) fn check_label(label: &str) -> Result<()> {
    check_name(NameKind::Label, label)
}

/// Whether file names on this platform's usual file systems ignore case
/// (NTFS on Windows, APFS and HFS+ on macOS by default): there, `Work` and
/// `work` would name one file, so upper-case letters are escaped too.
const FOLDS_CASE: bool = cfg!(any(windows, target_os = "macos"));

/// Whether byte `b` stays as it is in an escaped key.
fn is_plain(b: u8) -> bool {
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || b == b'_'
        || b == b'-'
        || (!FOLDS_CASE && b.is_ascii_uppercase())
}

/// Escape a profile key for keychain item names and file names: ASCII letters,
/// digits, `_` and `-` stay (upper-case letters only where file names are
/// case-sensitive); every other byte becomes `%XX` (hex digits upper case,
/// so names that differ only in case never come out of two keys). On
/// Windows a key whose escaped form is a reserved device name (`CON`,
/// `nul`, `com1`: `CON.json` would open the console) has its first byte
/// escaped as well.
pub(crate) fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if cfg!(windows) && is_device_name(&out) {
        out = format!("%{:02X}{}", out.as_bytes()[0], &out[1..]);
    }
    out
}

/// Windows' reserved device names, in any case (a file name with one of
/// them before its first dot names the device).
fn is_device_name(s: &str) -> bool {
    let upper = s.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (upper.len() == 4
            && (upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.as_bytes()[3].is_ascii_digit())
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
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    if cfg!(windows) && is_device_name(s) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// Longest escaped key used verbatim in a stem; longer keys are hashed.
/// Keeps file names under the usual 255-byte limit and keyutils key
/// descriptions (`rctoken:<app id>:<stem>.<generation>.<index>`) under 300
/// bytes.
const MAX_PLAIN_STEM: usize = 200;

/// The name a profile goes by in file names, lock file names and keychain
/// item names: its escaped key, or for keys whose escaped form is longer
/// than 200 bytes, `~` and the SHA-256 of the key in hex (escaping never
/// yields `~`, so the two kinds cannot collide). Bounded: at most 200 bytes.
pub(crate) fn stem(key: &str) -> String {
    let escaped = escape(key);
    if escaped.len() <= MAX_PLAIN_STEM {
        return escaped;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut name = String::with_capacity(65);
    name.push('~');
    for b in digest.iter() {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// Whether `s` is a stem that [`stem`] can produce.
fn is_stem(s: &str) -> bool {
    match s.strip_prefix('~') {
        Some(hex) => hex.len() == 64 && is_lower_hex(hex),
        None => s.len() <= MAX_PLAIN_STEM && unescape(s).is_some(),
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An upper bound on what one item costs besides its payload: its name
/// (`rctoken:<app id>:` up to 73 bytes, a stem up to 200, `.`, 16 hex
/// digits, `.` and an index) and the item header, which keyutils charges to
/// the quota with the payload.
pub(crate) const MAX_ACCOUNT_OVERHEAD: usize = 73 + MAX_PLAIN_STEM + 1 + 16 + 1 + 5 + 17;

/// A generation as saves write it: 16 lower-case hex digits.
pub(crate) fn generation_hex(generation: u64) -> String {
    format!("{generation:016x}")
}

/// Whether `g` is a generation as saves write it: 16 lower-case hex digits.
pub(crate) fn is_generation(g: &str) -> bool {
    g.len() == 16 && is_lower_hex(g)
}

/// The keychain account of item `index` of generation `generation` of a profile:
/// `<stem>.<generation>.<index>`.
pub(crate) fn item_account(key: &str, generation: &str, index: u16) -> String {
    stem_account(&stem(key), generation, index)
}

/// [`item_account`] from a profile's stem.
pub(crate) fn stem_account(stem: &str, generation: &str, index: u16) -> String {
    format!("{stem}.{generation}.{index}")
}

/// Parse an account made by [`item_account`]: (stem, generation, index).
pub(crate) fn parse_account(account: &str) -> Option<(String, String, u16)> {
    let mut parts = account.split('.');
    let stem = parts.next()?;
    let generation = parts.next()?;
    let index: u16 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !is_stem(stem) || !is_generation(generation) {
        return None;
    }
    Some((stem.to_string(), generation.to_string(), index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_never_collide_where_case_is_folded_or_name_a_device() {
        let keys = [
            "Work", "work", "WORK", "a%41", "aA", "con", "CON", "nul", "Com1", "lpt9", "com10",
        ];
        let stems: Vec<String> = keys.iter().map(|k| escape(k)).collect();
        for (k, e) in keys.iter().zip(&stems) {
            assert_eq!(unescape(e).as_deref(), Some(*k), "{k} round-trips");
            if cfg!(windows) {
                assert!(!is_device_name(e), "{k} -> {e} names a device");
            }
        }
        if FOLDS_CASE {
            let mut folded: Vec<String> = stems.iter().map(|s| s.to_ascii_lowercase()).collect();
            folded.sort();
            folded.dedup();
            assert_eq!(folded.len(), keys.len(), "{stems:?}");
            assert_eq!(escape("Work"), "%57ork");
        } else {
            assert_eq!(escape("Work"), "Work", "unchanged where case matters");
        }
        assert_eq!(escape("com10"), "com10", "not a device name");
        assert!(is_device_name("Com1") && is_device_name("nul") && !is_device_name("nul1"));
    }

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
            Some(("a%2Eb".into(), "00000000000000ff".into(), 3))
        );
        let long = "\u{6e2c}".repeat(60);
        let acc = item_account(&long, "00000000000000ff", 0);
        assert!(acc.len() < 100, "{acc}");
        assert_eq!(parse_account(&acc).map(|p| p.0), Some(stem(&long)));
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
