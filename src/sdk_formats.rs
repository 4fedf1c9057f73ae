//! The token formats of RingCentral's SDKs, for `import` and `export`:
//!
//! - `rc-js`: ringcentral-js's `localStorage["rc-platform"]`: the wire
//!   fields plus `expire_time` and `refresh_token_expire_time` in epoch
//!   **milliseconds**; `expires_in` may be a string.
//! - `rc-python`: ringcentral-python's `auth.data()`: the wire fields plus
//!   `expire_time` and `refresh_token_expire_time` in epoch **seconds**
//!   (floats), and `remember`.
//! - `token`: the token endpoint's response (13 wire fields), which is also
//!   what the liblab SDK takes.
//!
//! The absolute instants win over the relative `*_expires_in` when both are
//! present (an SDK updates them; `expires_in` is as received at login).

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::model::{self, TokenInfo};

/// A token format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFormat {
    /// The token endpoint's response.
    Token,
    /// ringcentral-js's stored data (times in epoch milliseconds).
    RcJs,
    /// ringcentral-python's `auth.data()` (times in epoch seconds).
    RcPython,
}

impl TokenFormat {
    /// The format's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            TokenFormat::Token => "token",
            TokenFormat::RcJs => "rc-js",
            TokenFormat::RcPython => "rc-python",
        }
    }
}

/// Instants above this many seconds since the epoch (year 5138) are taken
/// as milliseconds.
const MILLIS_ABOVE: f64 = 1e11;

impl TokenInfo {
    /// Parse token JSON in `format`, or detect it (`None`): SDK data carries
    /// `expire_time`; milliseconds mean ringcentral-js, seconds (or a
    /// `remember` field) ringcentral-python. TTLs are counted from `now`.
    ///
    /// # Errors
    /// [`Error::BadToken`], naming the field (never its value).
    pub fn from_sdk_json(
        bytes: &[u8],
        format: Option<TokenFormat>,
        now: OffsetDateTime,
    ) -> Result<(TokenInfo, TokenFormat), Error> {
        let bad = |reason: String| Error::BadToken { reason };
        let value = model::parse_object(bytes).map_err(bad)?;
        if let Some(refused) = model::error_response(&value) {
            model::wipe_value(value);
            return Err(refused);
        }
        let Value::Object(mut map) = value else {
            model::wipe_value(value);
            return Err(bad("expected a JSON object".into()));
        };
        let detected = match format {
            Some(f) => Ok(f),
            None => detect(&map),
        };
        let result = detected.and_then(|f| {
            if f != TokenFormat::Token {
                from_sdk(&mut map, f, now)?;
            }
            Ok(f)
        });
        let result = result.and_then(|f| TokenInfo::from_map(&mut map).map(|t| (t, f)));
        model::wipe_value(Value::Object(map));
        result.map_err(bad)
    }

    /// This token as JSON in `format`, **secrets included**, with the
    /// SDK's absolute instants counted from `now`.
    pub fn to_sdk_json_revealed(
        &self,
        format: TokenFormat,
        now: OffsetDateTime,
    ) -> Zeroizing<Vec<u8>> {
        let wire = self.to_json_revealed();
        if format == TokenFormat::Token {
            return wire;
        }
        let at = |ttl: i64| now.unix_timestamp_nanos() / 1_000_000 + i128::from(ttl) * 1000;
        let mut extra = String::new();
        let mut push = |name: &str, ms: i128| match format {
            TokenFormat::RcJs => extra.push_str(&format!(",\"{name}\":{ms}")),
            _ => extra.push_str(&format!(",\"{name}\":{}.{:03}", ms / 1000, ms % 1000)),
        };
        push("expire_time", at(self.expires_in));
        if let Some(rt) = self.refresh_token_expires_in {
            push("refresh_token_expire_time", at(rt));
        }
        if format == TokenFormat::RcPython {
            extra.push_str(",\"remember\":true");
        }
        let mut out = Zeroizing::new(Vec::with_capacity(wire.len() + extra.len()));
        out.extend_from_slice(&wire[..wire.len().saturating_sub(1)]);
        out.extend_from_slice(extra.as_bytes());
        out.push(b'}');
        out
    }
}

fn detect(map: &Map<String, Value>) -> Result<TokenFormat, String> {
    if map.contains_key("remember") {
        return Ok(TokenFormat::RcPython);
    }
    match map.get("expire_time").map(number) {
        None | Some(Ok(None)) => Ok(TokenFormat::Token),
        Some(Ok(Some(t))) if t > MILLIS_ABOVE => Ok(TokenFormat::RcJs),
        Some(Ok(Some(_))) => Ok(TokenFormat::RcPython),
        Some(Err(e)) => Err(format!("field `expire_time`: {e}")),
    }
}

/// A JSON number, or a string holding one (ringcentral-js stores some as
/// strings); `None` for null.
fn number(v: &Value) -> Result<Option<f64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_f64().map(Some).ok_or_else(|| "not a number".into()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| "expected a number".into()),
        _ => Err("expected a number".into()),
    }
}

/// Rewrite SDK fields into wire fields in place: `expire_time` →
/// `expires_in`, `refresh_token_expire_time` → `refresh_token_expires_in`
/// (seconds left from `now`, at least 0), string TTLs → numbers.
fn from_sdk(
    map: &mut Map<String, Value>,
    f: TokenFormat,
    now: OffsetDateTime,
) -> Result<(), String> {
    let now_s = now.unix_timestamp_nanos() as f64 / 1e9;
    for (abs, rel) in [
        ("expire_time", "expires_in"),
        ("refresh_token_expire_time", "refresh_token_expires_in"),
    ] {
        if let Some(n) = map
            .get(rel)
            .map(number)
            .transpose()
            .map_err(|e| format!("field `{rel}`: {e}"))?
            .flatten()
        {
            map.insert(rel.into(), Value::Number(Number::from(n.max(0.0) as i64)));
        }
        let Some(v) = map.remove(abs) else { continue };
        let Some(t) = number(&v).map_err(|e| format!("field `{abs}`: {e}"))? else {
            continue;
        };
        let secs = if f == TokenFormat::RcJs {
            t / 1000.0
        } else {
            t
        };
        let left = (secs - now_s)
            .floor()
            .clamp(0.0, model::MAX_TTL_SECS as f64) as i64;
        map.insert(rel.into(), Value::Number(Number::from(left)));
    }
    map.remove("remember");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn sdk_formats_are_detected_and_their_instants_counted_from_now() {
        let js = br#"{"access_token":"A","token_type":"bearer","expires_in":"3600","scope":"x",
            "refresh_token":"R","refresh_token_expires_in":604800,
            "expire_time":1700000600000,"refresh_token_expire_time":1700086400000}"#;
        let (t, f) = TokenInfo::from_sdk_json(js, None, now()).unwrap();
        assert_eq!(f, TokenFormat::RcJs);
        assert_eq!(
            (t.expires_in, t.refresh_token_expires_in),
            (600, Some(86400))
        );
        let py = br#"{"access_token":"A","token_type":"bearer","expires_in":3600,"scope":"x",
            "expire_time":1700000100.5,"remember":true}"#;
        let (t, f) = TokenInfo::from_sdk_json(py, None, now()).unwrap();
        assert_eq!((f, t.expires_in), (TokenFormat::RcPython, 100));
        let wire = br#"{"access_token":"A","token_type":"bearer","expires_in":3600,"scope":"x"}"#;
        let (t, f) = TokenInfo::from_sdk_json(wire, None, now()).unwrap();
        assert_eq!((f, t.expires_in), (TokenFormat::Token, 3600));
        // Expired instants are 0 seconds left, not negative.
        let old = br#"{"access_token":"A","token_type":"bearer","expires_in":3600,"scope":"x","expire_time":1600000000000}"#;
        assert_eq!(
            TokenInfo::from_sdk_json(old, None, now())
                .unwrap()
                .0
                .expires_in,
            0
        );
        let bad = br#"{"access_token":"A","token_type":"bearer","expires_in":3600,"scope":"x","expire_time":"soon"}"#;
        assert!(matches!(
            TokenInfo::from_sdk_json(bad, None, now()),
            Err(Error::BadToken { .. })
        ));
    }

    #[test]
    fn exports_round_trip_through_each_format() {
        let (t, _) = TokenInfo::from_sdk_json(
            br#"{"access_token":"A\"x","token_type":"bearer","expires_in":3600,"scope":"x","refresh_token":"R","refresh_token_expires_in":7200}"#,
            None,
            now(),
        )
        .unwrap();
        for f in [TokenFormat::Token, TokenFormat::RcJs, TokenFormat::RcPython] {
            let json = t.to_sdk_json_revealed(f, now());
            let v: Value = serde_json::from_slice(&json).unwrap();
            match f {
                TokenFormat::RcJs => assert_eq!(v["expire_time"], 1_700_003_600_000i64),
                TokenFormat::RcPython => {
                    assert_eq!(v["expire_time"].as_f64(), Some(1_700_003_600.0));
                    assert_eq!(v["remember"], true);
                }
                _ => assert!(v.get("expire_time").is_none()),
            }
            let (back, got) = TokenInfo::from_sdk_json(&json, None, now()).unwrap();
            assert_eq!(got, f);
            assert_eq!(back.access_token.expose_secret(), "A\"x");
            assert_eq!(
                (back.expires_in, back.refresh_token_expires_in),
                (3600, Some(7200))
            );
        }
    }
}
