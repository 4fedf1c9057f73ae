//! Test tokens for the library (`TokenInfo`):
//! - [`full`] and [`Secrets`]: every seed field filled, with secrets unique
//!   per call, so a test can grep files and messages for them;
//! - [`minimal`], [`with_refresh`]: the fewest fields.
//!
//! (Tokens whose secrets carry one tag are `support::tagged`; token JSON for
//! the CLI's `import` is `support::cli::Tok`.)

use rctoken::TokenInfo;
use rctoken::secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ids::unique;

/// The clock every test store starts at: 2025-06-01T12:00:00Z.
pub fn t0() -> OffsetDateTime {
    at("2025-06-01T12:00:00Z")
}

/// Parse an RFC 3339 instant.
pub fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).expect("RFC 3339 instant")
}

/// The three secrets of a token made by [`full_json`] with this `tag`.
pub struct Secrets {
    pub access: String,
    pub refresh: String,
    pub id: String,
}

impl Secrets {
    pub fn new(tag: &str) -> Secrets {
        let u = unique(tag);
        Secrets {
            access: format!("U1BCMDFU-AT-{u}"),
            refresh: format!("U1BCMDFU-RT-{u}"),
            id: format!("eyJhbGciOi-ID-{u}"),
        }
    }
    pub fn all(&self) -> [&str; 3] {
        [&self.access, &self.refresh, &self.id]
    }
}

/// A token endpoint response with all 13 seed fields.
pub fn full_json(owner: &str, s: &Secrets) -> Value {
    json!({
        "access_token": s.access,
        "expires_in": 3600,
        "scope": "ReadAccounts ReadMessages SMS",
        "token_type": "bearer",
        "refresh_token": s.refresh,
        "refresh_token_expires_in": 604800,
        "owner_id": owner,
        "endpoint_id": "ep-Qz0dxlhLQ",
        "id_token": s.id,
        "session_expires_in": 86400,
        "session_expiration_time": "2025-06-02T12:00:00.250Z",
        "session_id": "sess-98765",
        "session_idle_timeout": 1800,
    })
}

/// Parse a JSON value as a token; panics (test helper) on error.
pub fn parse(v: &Value) -> TokenInfo {
    TokenInfo::from_json(v.to_string().as_bytes()).expect("test token parses")
}

/// A full token for `owner` with fresh secrets.
pub fn full(owner: &str) -> (TokenInfo, Secrets) {
    let s = Secrets::new(owner);
    (parse(&full_json(owner, &s)), s)
}

/// The smallest valid token: access token, TTL, scope, type; optional owner.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn minimal(owner: Option<&str>, access: &str, expires_in: i64) -> TokenInfo {
    let mut v = json!({
        "access_token": access,
        "expires_in": expires_in,
        "scope": "ReadAccounts",
        "token_type": "bearer",
    });
    if let Some(o) = owner {
        v["owner_id"] = json!(o);
    }
    parse(&v)
}

/// A token with an access token and a refresh token with the given TTLs.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn with_refresh(owner: &str, access: &str, refresh: &str, ttl: i64, rttl: i64) -> TokenInfo {
    parse(&json!({
        "access_token": access,
        "expires_in": ttl,
        "scope": "ReadAccounts",
        "token_type": "bearer",
        "refresh_token": refresh,
        "refresh_token_expires_in": rttl,
        "owner_id": owner,
    }))
}

/// The token as wire JSON, secrets included, for exact comparison.
pub fn wire(t: &TokenInfo) -> Value {
    serde_json::from_slice(&t.to_json_revealed()).expect("revealed JSON parses")
}

/// The access token's text.
pub fn access(t: &TokenInfo) -> &str {
    t.access_token.expose_secret()
}

/// The refresh token's text, if any.
pub fn refresh(t: &TokenInfo) -> Option<&str> {
    t.refresh_token.as_ref().map(|s| s.expose_secret())
}
