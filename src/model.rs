//! The token model: [`TokenInfo`] and [`TokenType`], exactly as the token
//! endpoint sends them.
//!
//! Parsing goes through [`TokenInfo::from_json`] (or serde's `Deserialize`,
//! which uses the same checks). Every error names the field and the problem
//! and never echoes an input value. Nothing here implements `Serialize`:
//! producing JSON with the secrets in it is the explicit call
//! [`TokenInfo::to_json_revealed`].

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;

/// The largest TTL accepted for any `*_expires_in` field: 100 years.
/// Larger values are refused rather than risking overflow in instant arithmetic.
pub const MAX_TTL_SECS: i64 = 100 * 365 * 24 * 3600;

/// The type of an access token. The only value RingCentral issues is `bearer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// `bearer`: put the access token in an `Authorization: Bearer …` header.
    #[default]
    Bearer,
}

impl TokenType {
    /// The wire value, `"bearer"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "bearer",
        }
    }
}

/// A token endpoint response (`POST /restapi/oauth/token`), field for field.
///
/// The three tokens are [`SecretString`]s: they are zeroized on drop, redacted
/// in `Debug`, and reachable only through [`ExposeSecret`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenInfo {
    /// OAuth access token to pass to subsequent API requests.
    pub access_token: SecretString,
    /// Access token TTL in seconds.
    pub expires_in: i64,
    /// Space-separated OAuth scopes.
    pub scope: String,
    /// Type of the token; always `bearer`.
    pub token_type: TokenType,
    /// OAuth refresh token, if issued.
    pub refresh_token: Option<SecretString>,
    /// Refresh token TTL in seconds.
    pub refresh_token_expires_in: Option<i64>,
    /// The token owner's RingCentral extension id; the default profile key.
    pub owner_id: Option<String>,
    /// Client application instance identifier.
    pub endpoint_id: Option<String>,
    /// OpenID Connect ID token, if the OIDC flow was used.
    pub id_token: Option<SecretString>,
    /// Seconds until the session's absolute timeout.
    pub session_expires_in: Option<i64>,
    /// The session's absolute expiry as an RFC 3339 string, kept verbatim.
    pub session_expiration_time: Option<String>,
    /// OAuth session id.
    pub session_id: Option<String>,
    /// Nominal session idle timeout in seconds.
    pub session_idle_timeout: Option<i64>,
}

impl TokenInfo {
    /// A minimal token: an access token, its TTL and scope, bearer type.
    pub fn new(access_token: SecretString, expires_in: i64, scope: impl Into<String>) -> Self {
        TokenInfo {
            access_token,
            expires_in,
            scope: scope.into(),
            token_type: TokenType::Bearer,
            refresh_token: None,
            refresh_token_expires_in: None,
            owner_id: None,
            endpoint_id: None,
            id_token: None,
            session_expires_in: None,
            session_expiration_time: None,
            session_id: None,
            session_idle_timeout: None,
        }
    }

    /// Parse a token endpoint response.
    ///
    /// Unknown fields are ignored; `token_type` accepts `bearer` in any case.
    /// Intermediate copies of the text that this crate controls are zeroized.
    ///
    /// # Errors
    /// [`Error::BadToken`] naming the field and the problem (never its value).
    pub fn from_json(bytes: &[u8]) -> Result<TokenInfo, Error> {
        let value = parse_object(bytes).map_err(|reason| Error::BadToken { reason })?;
        if let Some(refused) = error_response(&value) {
            wipe_value(value);
            return Err(refused);
        }
        Self::from_value(value).map_err(|reason| Error::BadToken { reason })
    }

    fn from_value(value: Value) -> Result<TokenInfo, String> {
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                let kind = kind_of(&other);
                wipe_value(other);
                return Err(format!("expected a JSON object, found {kind}"));
            }
        };
        let result = Self::from_map(&mut map);
        wipe_value(Value::Object(map));
        result
    }

    /// The token in a parsed object, its fields taken out of `map`.
    pub(crate) fn from_map(map: &mut Map<String, Value>) -> Result<TokenInfo, String> {
        let token_type = match take_str(map, "token_type")? {
            None => return Err(missing("token_type")),
            Some(t) => {
                let ok = t.eq_ignore_ascii_case("bearer");
                drop(t);
                if !ok {
                    return Err("field `token_type`: only `bearer` is supported".into());
                }
                TokenType::Bearer
            }
        };
        let access_token =
            take_secret(map, "access_token")?.ok_or_else(|| missing("access_token"))?;
        let expires_in = take_ttl(map, "expires_in")?.ok_or_else(|| missing("expires_in"))?;
        let scope = take_plain(map, "scope")?.ok_or_else(|| missing("scope"))?;
        let session_expiration_time = take_plain(map, "session_expiration_time")?;
        if let Some(s) = &session_expiration_time {
            session_instant(s)?;
        }
        let owner_id = take_plain(map, "owner_id")?;
        if owner_id.as_deref() == Some("") {
            return Err("field `owner_id`: must not be empty".into());
        }
        Ok(TokenInfo {
            access_token,
            expires_in,
            scope,
            token_type,
            refresh_token: take_secret(map, "refresh_token")?,
            refresh_token_expires_in: take_ttl(map, "refresh_token_expires_in")?,
            owner_id,
            endpoint_id: take_plain(map, "endpoint_id")?,
            id_token: take_secret(map, "id_token")?,
            session_expires_in: take_ttl(map, "session_expires_in")?,
            session_expiration_time,
            session_id: take_plain(map, "session_id")?,
            session_idle_timeout: take_ttl(map, "session_idle_timeout")?,
        })
    }

    /// Serialize the token as token endpoint JSON with the seed's wire names,
    /// **secrets included**. This is the only way to get the secrets out as JSON.
    ///
    /// The buffer is allocated once at its final size and zeroized on drop.
    pub fn to_json_revealed(&self) -> Zeroizing<Vec<u8>> {
        #[derive(Serialize)]
        struct Wire<'a> {
            access_token: &'a str,
            token_type: &'static str,
            expires_in: i64,
            scope: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            refresh_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            refresh_token_expires_in: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            owner_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            endpoint_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            id_token: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            session_expires_in: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            session_expiration_time: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            session_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            session_idle_timeout: Option<i64>,
        }
        let wire = Wire {
            access_token: self.access_token.expose_secret(),
            token_type: self.token_type.as_str(),
            expires_in: self.expires_in,
            scope: &self.scope,
            refresh_token: self.refresh_token.as_ref().map(|s| s.expose_secret()),
            refresh_token_expires_in: self.refresh_token_expires_in,
            owner_id: self.owner_id.as_deref(),
            endpoint_id: self.endpoint_id.as_deref(),
            id_token: self.id_token.as_ref().map(|s| s.expose_secret()),
            session_expires_in: self.session_expires_in,
            session_expiration_time: self.session_expiration_time.as_deref(),
            session_id: self.session_id.as_deref(),
            session_idle_timeout: self.session_idle_timeout,
        };
        // Worst case every byte of every string escapes to `\u00XX` (6 bytes),
        // so this capacity is never exceeded and the buffer never reallocates.
        let strings = [
            Some(wire.access_token),
            Some(wire.scope),
            wire.refresh_token,
            wire.owner_id,
            wire.endpoint_id,
            wire.id_token,
            wire.session_expiration_time,
            wire.session_id,
        ];
        let cap = 512 + strings.iter().flatten().map(|s| s.len() * 6).sum::<usize>();
        let mut out = Zeroizing::new(Vec::with_capacity(cap));
        // Writing into a Vec cannot fail, and the struct holds only strings and integers.
        if serde_json::to_writer(&mut *out, &wire).is_err() {
            out.clear();
        }
        out
    }
}

impl<'de> Deserialize<'de> for TokenInfo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        TokenInfo::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Parse token JSON into a `Value` without leaving a copy of any string.
///
/// serde_json unescapes a string that contains escapes (`\/`, `\u0041`) in
/// its deserializer's scratch buffer, which it grows by reallocation and
/// frees without zeroizing. So the top level is parsed into borrowed raw
/// values (serde_json checks syntax and UTF-8 and skips strings without
/// unescaping them), each top-level string is unescaped here into one buffer
/// of its final bound, and a replaced duplicate key's value is wiped. Other
/// values (never a valid secret) are parsed by serde_json, which also
/// applies its nesting limit.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Value, String> {
    use serde_json::value::RawValue;
    // A UTF-8 byte order mark (Notepad and PowerShell's `Out-File` write
    // one) is not JSON, but it is no mistake in the JSON either: skipped.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let top: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| json_syntax_reason(&e, bytes))?;
    if !top.get().starts_with('{') {
        return serde_json::from_str(top.get()).map_err(|e| json_syntax_reason(&e, bytes));
    }
    let entries: RawEntries<'_> =
        serde_json::from_str(top.get()).map_err(|e| json_syntax_reason(&e, bytes))?;
    let mut map = Map::new();
    let mut result = Ok(());
    for (key, raw) in entries.0 {
        let value = if raw.get().starts_with('"') {
            match unescape(raw.get()) {
                Ok(mut s) => Value::String(std::mem::take(&mut *s)),
                Err(why) => {
                    result = result.and(Err(format!("field `{key}`: {why}")));
                    continue;
                }
            }
        } else {
            match serde_json::from_str(raw.get()) {
                Ok(v) => v,
                Err(e) => {
                    result = result.and(Err(format!(
                        "field `{key}`: {}",
                        json_kind_reason(&e, raw.get().as_bytes())
                    )));
                    continue;
                }
            }
        };
        if let Some(old) = map.insert(key, value) {
            wipe_value(old);
        }
    }
    match result {
        Ok(()) => Ok(Value::Object(map)),
        Err(reason) => {
            wipe_value(Value::Object(map));
            Err(reason)
        }
    }
}

/// The members of a JSON object, values left as borrowed raw text.
struct RawEntries<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'de> Deserialize<'de> for RawEntries<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = RawEntries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = access.next_key::<String>()? {
                    out.push((key, access.next_value()?));
                }
                Ok(RawEntries(out))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Unescape a JSON string literal (quotes included; its syntax already
/// checked by serde_json) into one buffer that is never reallocated: the
/// text without escapes is never longer than the literal.
fn unescape(literal: &str) -> Result<Zeroizing<String>, &'static str> {
    let body = &literal[1..literal.len() - 1];
    let mut out = Zeroizing::new(String::with_capacity(body.len()));
    let mut rest = body;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let esc = &rest[at + 1..];
        let (c, used) = match esc.as_bytes().first() {
            Some(b'"') => ('"', 1),
            Some(b'\\') => ('\\', 1),
            Some(b'/') => ('/', 1),
            Some(b'b') => ('\u{8}', 1),
            Some(b'f') => ('\u{c}', 1),
            Some(b'n') => ('\n', 1),
            Some(b'r') => ('\r', 1),
            Some(b't') => ('\t', 1),
            Some(b'u') => {
                let hex = |s: &str| s.get(..4).and_then(|h| u32::from_str_radix(h, 16).ok());
                let hi = hex(&esc[1..]).ok_or("invalid \\u escape")?;
                match hi {
                    0xD800..=0xDBFF => {
                        let lo = esc
                            .get(5..7)
                            .filter(|s| *s == "\\u")
                            .and_then(|_| hex(&esc[7..]))
                            .filter(|lo| (0xDC00..=0xDFFF).contains(lo))
                            .ok_or("invalid \\u escape (unpaired surrogate)")?;
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        (char::from_u32(c).ok_or("invalid \\u escape")?, 11)
                    }
                    0xDC00..=0xDFFF => return Err("invalid \\u escape (unpaired surrogate)"),
                    c => (char::from_u32(c).ok_or("invalid \\u escape")?, 5),
                }
            }
            _ => return Err("invalid escape"),
        };
        out.push(c);
        rest = &esc[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The kind of problem in a nested value, without position (it would be
/// relative to the value) and without content.
fn json_kind_reason(e: &serde_json::Error, input: &[u8]) -> String {
    json_problem(e, input).to_string()
}

/// The UTC instant of a `session_expiration_time`. It must be an RFC 3339
/// date-time whose UTC instant is itself representable in RFC 3339 (years
/// 0000 to 9999): the store keeps it as such, and `0000-01-01T00:00:00+00:01`
/// is year -1 in UTC.
pub(crate) fn session_instant(s: &str) -> Result<OffsetDateTime, String> {
    let t = parse_rfc3339(s)
        .map_err(|_| "field `session_expiration_time`: not an RFC 3339 date-time".to_string())?;
    t.checked_to_offset(time::UtcOffset::UTC)
        .filter(|utc| representable(*utc))
        .ok_or_else(|| {
            "field `session_expiration_time`: its UTC instant is outside the years 0000 to 9999"
                .to_string()
        })
}

/// Whether an instant can be written as RFC 3339 in UTC (years 0000 to 9999).
pub(crate) fn representable(t: OffsetDateTime) -> bool {
    t.checked_to_offset(time::UtcOffset::UTC)
        .is_some_and(|utc| (0..=9999).contains(&utc.year()))
}

/// Parse an RFC 3339 instant (fractional seconds and any offset accepted).
pub(crate) fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339)
}

/// The token endpoint's error response (`{"error": "invalid_grant",
/// "error_description": …, "errors": [{"errorCode": "OAU-213"}]}`), as
/// [`Error::ErrorResponse`]: an object with a string `error` and no
/// `access_token`. The texts are RingCentral's; they hold no secret.
pub(crate) fn error_response(value: &Value) -> Option<Error> {
    let map = value.as_object()?;
    if map.contains_key("access_token") {
        return None;
    }
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| s.chars().take(MAX_ERROR_TEXT).collect::<String>())
    };
    let error = text(map.get("error"))?;
    Some(Error::ErrorResponse {
        error,
        description: text(map.get("error_description")),
        error_code: text(
            map.get("errors")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|e| e.get("errorCode")),
        ),
    })
}

/// Longest text kept from an error response's fields.
const MAX_ERROR_TEXT: usize = 200;

fn missing(field: &str) -> String {
    format!("field `{field}`: required but missing")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A serde_json syntax error without any input echoed: what is wrong and
/// where.
fn json_syntax_reason(e: &serde_json::Error, input: &[u8]) -> String {
    let what = json_problem(e, input);
    if e.line() == 0 {
        what.to_string()
    } else {
        format!("{what} (line {}, column {})", e.line(), e.column())
    }
}

/// What is wrong with `input`, which serde_json refused with `e`: serde_json
/// tells syntax errors apart only in its message text, so the common cases
/// are found in the input itself.
fn json_problem(e: &serde_json::Error, input: &[u8]) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the JSON text is empty or truncated",
        Category::Io => "the input could not be read",
        Category::Data => "the JSON has an unexpected shape",
        Category::Syntax => {
            if std::str::from_utf8(input).is_err() {
                return "the text is not valid UTF-8";
            }
            let scan = scan_json(input);
            if scan.max_depth > JSON_DEPTH_LIMIT {
                "the JSON text is nested too deeply"
            } else if scan.raw_control {
                "a string contains a raw control character"
            } else {
                "the text is not valid JSON"
            }
        }
    }
}

/// serde_json's nesting limit (arrays and objects).
const JSON_DEPTH_LIMIT: usize = 127;

struct JsonScan {
    max_depth: usize,
    raw_control: bool,
}

/// The deepest nesting of arrays and objects in `input`, and whether a
/// string holds a raw control character; strings are skipped by their
/// quotes and escapes, so brackets inside them do not count.
fn scan_json(input: &[u8]) -> JsonScan {
    let mut scan = JsonScan {
        max_depth: 0,
        raw_control: false,
    };
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in input {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                0x00..=0x1f => scan.raw_control = true,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                scan.max_depth = scan.max_depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    scan
}

/// Zeroize every string in a parsed JSON value, keys included, then drop it.
pub(crate) fn wipe_value(value: Value) {
    match value {
        Value::String(mut s) => s.zeroize(),
        Value::Array(items) => items.into_iter().for_each(wipe_value),
        Value::Object(map) => {
            for (mut k, v) in map {
                k.zeroize();
                wipe_value(v);
            }
        }
        _ => {}
    }
}

fn bad_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Take a string field; the returned String is wiped by the caller or kept.
fn take_str(
    map: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<Zeroizing<String>>, String> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = Zeroizing::new(s);
            if bad_chars(&s) {
                return Err(format!("field `{field}`: contains a control character"));
            }
            Ok(Some(s))
        }
        Some(other) => {
            let kind = kind_of(&other);
            wipe_value(other);
            Err(format!("field `{field}`: expected a string, found {kind}"))
        }
    }
}

fn take_plain(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    Ok(take_str(map, field)?.map(|s| s.as_str().to_owned()))
}

fn take_secret(map: &mut Map<String, Value>, field: &str) -> Result<Option<SecretString>, String> {
    match take_str(map, field)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Err(format!("field `{field}`: must not be empty")),
        // `From<&str>` allocates exactly once; the source is zeroized on drop.
        Some(s) => Ok(Some(SecretString::from(s.as_str()))),
    }
}

fn take_ttl(map: &mut Map<String, Value>, field: &str) -> Result<Option<i64>, String> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v < 0 => Err(format!("field `{field}`: must not be negative")),
            Some(v) if v > MAX_TTL_SECS => Err(format!("field `{field}`: out of range")),
            Some(v) => Ok(Some(v)),
            None if n.is_u64() => Err(format!("field `{field}`: out of range")),
            None => Err(format!(
                "field `{field}`: expected an integer number of seconds"
            )),
        },
        Some(other) => {
            let kind = kind_of(&other);
            wipe_value(other);
            Err(format!(
                "field `{field}`: expected an integer number of seconds, found {kind}"
            ))
        }
    }
}
