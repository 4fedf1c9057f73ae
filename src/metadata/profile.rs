//! [`ProfileInfo`], everything non-secret about a stored token, and its
//! conversion from and to a [`TokenInfo`]: the instants a save derives from
//! the token's TTLs, and the TTLs a load gives back.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock;
use crate::envelope::{self, ENVELOPE_VERSION};
use crate::error::{Error, Result};
use crate::model::{TokenInfo, TokenType, representable, session_instant};

/// Everything non-secret about one stored profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProfileInfo {
    /// The profile key (the `owner_id`, or the name given at save).
    #[serde(default)]
    pub profile: String,
    /// Whether this is the active profile.
    #[serde(skip)]
    pub active: bool,
    /// An optional user-chosen label, unique within the store. Kept in the
    /// index, not in the profile's file (read from format-1 files only).
    #[serde(default, skip_serializing)]
    pub label: Option<String>,
    /// `owner_id` as received.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// `endpoint_id` as received.
    #[serde(default)]
    pub endpoint_id: Option<String>,
    /// The client id of the app the profile logged in with (`rctoken
    /// login`); its secret, if any, is in the keychain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The server the profile logged in at (`rctoken login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `scope` as received.
    pub scope: String,
    /// `token_type` as received.
    pub token_type: TokenType,
    /// `expires_in` as received.
    pub expires_in: i64,
    /// `refresh_token_expires_in` as received.
    #[serde(default)]
    pub refresh_token_expires_in: Option<i64>,
    /// `session_expires_in` as received.
    #[serde(default)]
    pub session_expires_in: Option<i64>,
    /// `session_expiration_time` as received, verbatim.
    #[serde(default)]
    pub session_expiration_time: Option<String>,
    /// `session_id` as received.
    #[serde(default)]
    pub session_id: Option<String>,
    /// `session_idle_timeout` as received.
    #[serde(default)]
    pub session_idle_timeout: Option<i64>,
    /// When the token was saved (the base of every `*_expires_in`).
    #[serde(with = "time::serde::rfc3339")]
    pub obtained_at: OffsetDateTime,
    /// `obtained_at + expires_in`.
    #[serde(with = "time::serde::rfc3339")]
    pub access_token_expires_at: OffsetDateTime,
    /// `obtained_at + refresh_token_expires_in`, if a TTL was given.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub refresh_token_expires_at: Option<OffsetDateTime>,
    /// From `session_expiration_time` when present, else `obtained_at + session_expires_in`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub session_expires_at: Option<OffsetDateTime>,
    /// Whether a refresh token is stored.
    pub has_refresh_token: bool,
    /// Whether an id token is stored.
    pub has_id_token: bool,
    /// Whether this token is the result of [`TokenStore::refresh`]
    /// (rather than a save): such a token is not refreshed again within
    /// [`MIN_REFRESH_INTERVAL`] while it is still valid.
    ///
    /// [`TokenStore::refresh`]: crate::TokenStore::refresh
    /// [`MIN_REFRESH_INTERVAL`]: crate::MIN_REFRESH_INTERVAL
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refreshed: bool,
    /// Where the secrets are (see [`secrets_backend`](Self::secrets_backend),
    /// [`generation`](Self::generation)).
    pub(crate) secret: SecretRef,
}

/// Where a profile's secrets live in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretRef {
    /// The backend holding them (`secret-service`, `keyutils`, …).
    pub backend: String,
    /// The generation of the committed envelope: 16 hex digits.
    pub generation: String,
    /// How many keychain items the envelope is split across.
    pub items: u16,
    /// The envelope format version.
    pub envelope_version: u8,
}

impl ProfileInfo {
    /// The non-secret record of `token` saved at `now` as profile `key`, its
    /// secrets in generation `generation` of `backend` (item count still 0).
    /// Every instant derived from a TTL is checked to be writable (RFC 3339,
    /// years 0000–9999), so a token is refused before anything is written.
    ///
    /// # Errors
    /// [`Error::BadToken`] naming the field out of range.
    pub(crate) fn from_token(
        token: &TokenInfo,
        key: &str,
        now: OffsetDateTime,
        backend: &str,
        generation: &str,
    ) -> Result<ProfileInfo> {
        let range = |field: &str| Error::BadToken {
            reason: format!("field `{field}`: out of range"),
        };
        let access_token_expires_at =
            clock::after(now, Some(token.expires_in)).ok_or_else(|| range("expires_in"))?;
        if token.expires_in < 0 {
            return Err(Error::BadToken {
                reason: "field `expires_in`: must not be negative".into(),
            });
        }
        let refresh_token_expires_at = match token.refresh_token_expires_in {
            Some(s) => {
                Some(clock::after(now, Some(s)).ok_or_else(|| range("refresh_token_expires_in"))?)
            }
            None => None,
        };
        let session_expires_at = match (&token.session_expiration_time, token.session_expires_in) {
            (Some(t), _) => Some(session_instant(t).map_err(|reason| Error::BadToken { reason })?),
            (None, Some(s)) => {
                Some(clock::after(now, Some(s)).ok_or_else(|| range("session_expires_in"))?)
            }
            (None, None) => None,
        };
        for (field, at) in [
            ("expires_in", Some(access_token_expires_at)),
            ("refresh_token_expires_in", refresh_token_expires_at),
            ("session_expires_in", session_expires_at),
        ] {
            if at.is_some_and(|t| !representable(t)) {
                return Err(range(field));
            }
        }
        Ok(ProfileInfo {
            profile: key.to_string(),
            active: false,
            label: None,
            owner_id: token.owner_id.clone(),
            endpoint_id: token.endpoint_id.clone(),
            client_id: None,
            server: None,
            scope: token.scope.clone(),
            token_type: token.token_type,
            expires_in: token.expires_in,
            refresh_token_expires_in: token.refresh_token_expires_in,
            session_expires_in: token.session_expires_in,
            session_expiration_time: token.session_expiration_time.clone(),
            session_id: token.session_id.clone(),
            session_idle_timeout: token.session_idle_timeout,
            obtained_at: now,
            access_token_expires_at,
            refresh_token_expires_at,
            session_expires_at,
            has_refresh_token: token.refresh_token.is_some(),
            has_id_token: token.id_token.is_some(),
            refreshed: false,
            secret: SecretRef {
                backend: backend.to_string(),
                generation: generation.to_string(),
                items: 0,
                envelope_version: ENVELOPE_VERSION,
            },
        })
    }

    /// A profile whose secrets survive but whose record does not (see
    /// `repair`): expiry unknown, which counts as expired, so the next use
    /// refreshes it.
    pub(crate) fn unknown(key: &str, secrets: &envelope::Decoded, secret: SecretRef) -> Self {
        ProfileInfo {
            profile: key.to_string(),
            active: false,
            label: None,
            owner_id: None,
            endpoint_id: None,
            client_id: None,
            server: None,
            scope: String::new(),
            token_type: TokenType::Bearer,
            expires_in: 0,
            refresh_token_expires_in: None,
            session_expires_in: None,
            session_expiration_time: None,
            session_id: None,
            session_idle_timeout: None,
            obtained_at: OffsetDateTime::UNIX_EPOCH,
            access_token_expires_at: OffsetDateTime::UNIX_EPOCH,
            refresh_token_expires_at: None,
            session_expires_at: None,
            has_refresh_token: secrets.refresh.is_some(),
            has_id_token: secrets.id.is_some(),
            refreshed: false,
            secret,
        }
    }

    /// The backend holding the profile's secrets (`secret-service`,
    /// `keyutils`, …): the one a store must be opened with to read them.
    pub fn secrets_backend(&self) -> &str {
        &self.secret.backend
    }

    /// An opaque id of the save (or refresh) the stored token comes from:
    /// it changes with every save and refresh, so a caller can tell whether
    /// the token it holds is still the stored one.
    pub fn generation(&self) -> &str {
        &self.secret.generation
    }

    /// How many keychain items hold the secrets (more than one where the
    /// backend limits an item's size), for diagnostics.
    pub fn keychain_items(&self) -> u16 {
        self.secret.items
    }

    /// Is the access token valid for at least `min` more at `now`?
    pub fn access_token_valid_for(&self, now: OffsetDateTime, min: Duration) -> bool {
        clock::valid_for(Some(self.access_token_expires_at), now, min)
    }

    /// Is there a refresh token, valid for at least `min` more at `now`?
    /// A refresh token without a TTL counts as valid.
    pub fn refresh_token_valid_for(&self, now: OffsetDateTime, min: Duration) -> bool {
        self.has_refresh_token && clock::valid_for(self.refresh_token_expires_at, now, min)
    }

    /// How long the access token stays valid after `now` (zero once expired).
    pub fn access_token_remaining(&self, now: OffsetDateTime) -> Duration {
        remaining(self.access_token_expires_at, now)
    }

    /// How long the refresh token stays valid after `now` (zero once
    /// expired); `None` without a refresh token or without a TTL.
    pub fn refresh_token_remaining(&self, now: OffsetDateTime) -> Option<Duration> {
        match (self.has_refresh_token, self.refresh_token_expires_at) {
            (true, Some(at)) => Some(remaining(at, now)),
            _ => None,
        }
    }

    /// How long the session stays valid after `now` (zero once expired);
    /// `None` when the token named no session expiry.
    pub fn session_remaining(&self, now: OffsetDateTime) -> Option<Duration> {
        self.session_expires_at.map(|at| remaining(at, now))
    }
}

fn remaining(at: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(at - now).unwrap_or(Duration::ZERO)
}

/// Reassemble a token from its metadata and its decoded secrets, with the
/// TTLs as received (as of `info.obtained_at`).
pub(crate) fn token_from(info: &ProfileInfo, s: envelope::Decoded) -> TokenInfo {
    let mut token = TokenInfo::new(s.access, info.expires_in, info.scope.clone());
    token.token_type = info.token_type;
    token.refresh_token = s.refresh;
    token.refresh_token_expires_in = info.refresh_token_expires_in;
    token.owner_id = info.owner_id.clone();
    token.endpoint_id = info.endpoint_id.clone();
    token.id_token = s.id;
    token.session_expires_in = info.session_expires_in;
    token.session_expiration_time = info.session_expiration_time.clone();
    token.session_id = info.session_id.clone();
    token.session_idle_timeout = info.session_idle_timeout;
    token
}
