//! Rendering: relative times ("in 43m", "expired 2h ago"), RFC 3339
//! instants, the JSON form of a profile, and writing to stdout — secrets
//! straight from their zeroized buffer, bypassing stdout's buffer.

use std::io::Write;

use rctoken::ProfileInfo;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::exit::{Failure, OTHER};

/// An instant as an RFC 3339 UTC string.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A span of seconds, at most two units: "45s", "43m", "1h 12m", "6d 23h".
pub fn span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{m}m"),
        3600..86_400 if m == 0 => format!("{h}h"),
        3600..86_400 => format!("{h}h {m}m"),
        _ if h == 0 => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// "in 43m", or "expired 2h ago".
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = at - now;
    match (left.is_positive(), left.whole_seconds()) {
        (true, 0) => "in less than 1s".into(),
        (true, secs) => format!("in {}", span(secs)),
        (false, 0) => "expired just now".into(),
        (false, secs) => format!("expired {} ago", span(secs)),
    }
}

/// Seconds from `now` until `at` (negative once past).
pub fn remaining(at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (at - now).whole_seconds()
}

/// The refresh token's state in words.
pub fn refresh_state(p: &ProfileInfo, now: OffsetDateTime) -> String {
    match (p.has_refresh_token, p.refresh_token_expires_at) {
        (false, _) => "none".into(),
        (true, None) => "no expiry given".into(),
        (true, Some(at)) => relative(at, now),
    }
}

/// The fields `list --json` prints for each profile (never a secret).
pub fn profile_json(p: &ProfileInfo) -> Value {
    json!({
        "profile": p.profile,
        "owner_id": p.owner_id,
        "label": p.label,
        "active": p.active,
        "scope": p.scope,
        "endpoint_id": p.endpoint_id,
        "client_id": p.client_id,
        "server": p.server,
        "access_token_expires_at": rfc3339(p.access_token_expires_at),
        "refresh_token_expires_at": p.refresh_token_expires_at.map(rfc3339),
        "session_expires_at": p.session_expires_at.map(rfc3339),
        "obtained_at": rfc3339(p.obtained_at),
        "has_refresh_token": p.has_refresh_token,
        "has_id_token": p.has_id_token,
        "secrets_backend": p.secrets_backend(),
    })
}

/// Pretty JSON plus a newline. Characters that could repaint a terminal
/// or reorder a line (see [`is_unsafe_char`]) are `\uXXXX` escapes, as
/// serde_json already writes the C0 controls; the JSON means the same.
pub fn json_text(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    let mut s = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if is_unsafe_char(c) && c != '\n' {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                s.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            s.push(c);
        }
    }
    s.push('\n');
    s
}

/// Whether `c` must not reach a terminal raw: control characters (C0,
/// DEL, C1: ANSI escape sequences start with ESC or CSI), bidirectional
/// overrides and isolates (U+202E turns a line around), and invisible
/// format characters. Owner ids, labels, scopes and other fields come from
/// token responses and files, so a hostile one could otherwise repaint the
/// terminal or disguise what it says.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `text` with every unsafe character (see [`is_unsafe_char`]) except line
/// breaks and tabs written as a visible `\u{…}` escape: for human output.
pub fn safe(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe_char(c) && c != '\n' && c != '\t' {
            s.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            s.push(c);
        }
    }
    s
}

fn stdout_failure(e: std::io::Error) -> Failure {
    Failure::new(
        OTHER,
        format!("could not write to stdout: {e}"),
        "check where the output goes (a closed pipe, a full disk)",
    )
}

/// Write non-secret text to stdout, with unsafe characters escaped (see
/// [`safe`]; JSON from [`json_text`] has none left).
pub fn print(text: &str) -> Result<(), Failure> {
    let text = safe(text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(stdout_failure)
}

/// Write secret bytes to stdout with one `write_all` on a duplicate of the
/// stdout descriptor, so they never pass through stdout's (never freed,
/// never zeroized) buffer.
pub fn print_secret(bytes: &[u8]) -> Result<(), Failure> {
    std::io::stdout().flush().map_err(stdout_failure)?;
    raw_stdout()
        .and_then(|mut f| f.write_all(bytes))
        .map_err(stdout_failure)
}

#[cfg(unix)]
fn raw_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(
        std::io::stdout().as_fd().try_clone_to_owned()?,
    ))
}

#[cfg(windows)]
fn raw_stdout() -> std::io::Result<std::fs::File> {
    use std::os::windows::io::AsHandle;
    Ok(std::fs::File::from(
        std::io::stdout().as_handle().try_clone_to_owned()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_are_escaped_for_terminals_and_json_stays_equal() {
        let hostile = "a\u{1b}[2Jb\u{202e}c\u{9b}d\u{7f}e\u{feff}f\u{2067}g";
        assert_eq!(
            safe(hostile),
            "a\\u{1b}[2Jb\\u{202e}c\\u{9b}d\\u{7f}e\\u{feff}f\\u{2067}g"
        );
        assert_eq!(
            safe("line 1\n\tline 2 é ü 日本"),
            "line 1\n\tline 2 é ü 日本"
        );
        let v = json!({ "label": hostile });
        let text = json_text(&v);
        assert!(
            !text.chars().any(|c| is_unsafe_char(c) && c != '\n'),
            "{text}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v, "the escaped JSON means the same");
    }

    #[test]
    fn spans_use_at_most_two_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(43 * 60 + 59), "43m");
        assert_eq!(span(7200), "2h");
        assert_eq!(span(7200 + 300), "2h 5m");
        assert_eq!(span(604_800), "7d");
        assert_eq!(span(604_799), "6d 23h");
        assert_eq!(span(-7200), "2h");
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(relative(now + time::Duration::minutes(43), now), "in 43m");
        assert_eq!(
            relative(now - time::Duration::hours(2), now),
            "expired 2h ago"
        );
        assert_eq!(relative(now, now), "expired just now");
        assert_eq!(rfc3339(now), "2023-11-14T22:13:20Z");
    }
}
