//! The metadata file: every non-secret field of each profile, the derived
//! instants, labels, the active profile and a format version, as one JSON
//! document. Never holds a secret.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::model::TokenType;

/// The metadata format this build writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// Everything non-secret about one stored profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProfileInfo {
    /// The profile key (the `owner_id`, or the name given at save).
    #[serde(skip)]
    pub profile: String,
    /// Whether this is the active profile.
    #[serde(skip)]
    pub active: bool,
    /// An optional user-chosen label, unique within the store.
    #[serde(default)]
    pub label: Option<String>,
    /// `owner_id` as received.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// `endpoint_id` as received.
    #[serde(default)]
    pub endpoint_id: Option<String>,
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
    /// Where the secrets are.
    pub secret: SecretRef,
}

/// Where a profile's secrets live in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SecretRef {
    /// The backend holding them (`secret-service`, `keyutils`, …).
    pub backend: String,
    /// The generation of the committed envelope: 16 hex digits.
    pub generation: String,
    /// How many keychain items the envelope is split across.
    pub items: u16,
    /// The envelope format version.
    pub envelope_version: u8,
}

/// The whole metadata document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Metadata {
    pub format_version: u64,
    #[serde(default)]
    pub active: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileInfo>,
}

/// A serde_json error as what and where, never content: serde's data errors
/// quote the offending value (`invalid type: string "…"`, `unknown variant
/// "…"`), and the file may hold anything, a pasted token included.
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let msg = e.to_string();
    let what = match e.classify() {
        Category::Io => "could not be read".to_string(),
        Category::Eof => "is empty or truncated".to_string(),
        Category::Syntax => "is not valid JSON".to_string(),
        // Field names come from our schema, not from the file.
        Category::Data => match msg
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(field) => format!("lacks the required field `{field}`"),
            None => "has a field of the wrong type or value".to_string(),
        },
    };
    if e.line() == 0 {
        what
    } else {
        format!("{what} (line {}, column {})", e.line(), e.column())
    }
}

impl Metadata {
    pub(crate) fn new() -> Self {
        Metadata {
            format_version: FORMAT_VERSION,
            ..Default::default()
        }
    }

    /// Read the metadata at `path`; an absent file is an empty store.
    pub(crate) fn read(path: &Path) -> Result<Metadata> {
        match crate::files::read_if_exists(path)? {
            None => Ok(Metadata::new()),
            Some(bytes) => Metadata::parse(&bytes, path),
        }
    }

    /// Parse metadata bytes; `path` is only used in errors.
    pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<Metadata> {
        let corrupt = |reason: String| Error::CorruptMetadata {
            path: path.to_path_buf(),
            reason,
        };
        // One typed parse on the hot path; only a failure pays for a second
        // look to tell a newer format from a damaged file.
        let mut meta: Metadata = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => {
                #[derive(Deserialize)]
                struct VersionOnly {
                    format_version: u64,
                }
                return Err(match serde_json::from_slice::<VersionOnly>(bytes) {
                    Ok(v) if v.format_version > FORMAT_VERSION => Error::UnsupportedVersion {
                        path: path.to_path_buf(),
                        found: v.format_version,
                        supported: FORMAT_VERSION,
                    },
                    _ => corrupt(json_reason(&e)),
                });
            }
        };
        if meta.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: meta.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if meta.format_version == 0 {
            return Err(corrupt("`format_version` 0 is not a valid version".into()));
        }
        if let Some(active) = &meta.active
            && !meta.profiles.contains_key(active)
        {
            return Err(corrupt(format!("active profile `{active}` is not listed")));
        }
        let mut labels = std::collections::HashSet::new();
        for (key, info) in meta.profiles.iter_mut() {
            crate::names::check_profile_key(key).map_err(|e| corrupt(e.to_string()))?;
            if let Some(label) = &info.label
                && !labels.insert(label.clone())
            {
                return Err(corrupt(format!("label `{label}` is used twice")));
            }
            info.profile = key.clone();
            info.active = meta.active.as_deref() == Some(key.as_str());
        }
        Ok(meta)
    }

    /// Serialize for writing: pretty, stable order, trailing newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Resolve a profile key, or else a label, to a profile key.
    pub(crate) fn resolve(&self, key_or_label: &str) -> Result<String> {
        if self.profiles.contains_key(key_or_label) {
            return Ok(key_or_label.to_string());
        }
        self.profiles
            .values()
            .find(|p| p.label.as_deref() == Some(key_or_label))
            .map(|p| p.profile.clone())
            .ok_or_else(|| Error::NoSuchProfile(key_or_label.to_string()))
    }

    pub(crate) fn set_active(&mut self, key: Option<&str>) {
        self.active = key.map(str::to_string);
        for (k, p) in self.profiles.iter_mut() {
            p.active = Some(k.as_str()) == key;
        }
    }
}
