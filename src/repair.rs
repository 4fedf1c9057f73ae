//! Verify and repair: detect drift between the metadata file and the
//! keychain (a secret missing for a listed profile, an item no profile owns,
//! a version mismatch, a corrupt metadata file) and fix what can be fixed.

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::envelope::{self, ENVELOPE_VERSION};
use crate::error::{Error, Result};
use crate::files;
use crate::lock::Mode;
use crate::metadata::{Metadata, ProfileInfo, SecretRef};
use crate::names;
use crate::store::{ReadFail, TokenStore};

/// One problem found by [`TokenStore::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The metadata file does not parse.
    MetadataCorrupt {
        /// Why.
        reason: String,
    },
    /// The metadata file is from a newer format; it is never touched.
    MetadataTooNew {
        /// The version found.
        found: u64,
    },
    /// A store file or directory is unsafe; never fixed automatically.
    Unsafe {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A listed profile's secrets are not in the keychain.
    SecretMissing {
        /// The profile key.
        profile: String,
    },
    /// A listed profile's keychain item does not decode.
    SecretUnreadable {
        /// The profile key.
        profile: String,
        /// Why (never content).
        reason: String,
    },
    /// A listed profile's envelope has another format version. `repair`
    /// drops the profile when the version is older than this build's, and
    /// leaves it alone when it is newer (a newer rctoken wrote it).
    VersionMismatch {
        /// The profile key.
        profile: String,
        /// What was found.
        found: String,
        /// Whether the version found is newer than this build's.
        newer: bool,
    },
    /// A listed profile's secrets are in another backend than this store's.
    OtherBackend {
        /// The profile key.
        profile: String,
        /// The backend named in the metadata.
        held_by: String,
    },
    /// A keychain item of this store that no profile owns.
    Orphan {
        /// The item's account name (no secret).
        account: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MetadataCorrupt { reason } => write!(f, "metadata is corrupt: {reason}"),
            Problem::MetadataTooNew { found } => {
                write!(
                    f,
                    "metadata format version {found} is newer than this rctoken"
                )
            }
            Problem::Unsafe { path, reason } => write!(f, "{} is unsafe: {reason}", path.display()),
            Problem::SecretMissing { profile } => {
                write!(f, "profile `{profile}`: secret missing from the keychain")
            }
            Problem::SecretUnreadable { profile, reason } => {
                write!(f, "profile `{profile}`: keychain item unreadable: {reason}")
            }
            Problem::VersionMismatch { profile, found, .. } => {
                write!(
                    f,
                    "profile `{profile}`: envelope version mismatch ({found})"
                )
            }
            Problem::OtherBackend { profile, held_by } => {
                write!(
                    f,
                    "profile `{profile}`: secrets are in the {held_by} backend"
                )
            }
            Problem::Orphan { account } => {
                write!(f, "keychain item `{account}` belongs to no profile")
            }
        }
    }
}

/// The outcome of [`TokenStore::verify`] or [`TokenStore::repair`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Report {
    /// The problems found (after a repair: those that remain).
    pub problems: Vec<Problem>,
    /// What a repair did, one line each.
    pub fixed: Vec<String>,
    /// Profiles whose secrets were checked.
    pub profiles_checked: usize,
    /// Whether the backend could enumerate its items (orphan detection).
    pub orphan_scan: bool,
}

impl Report {
    /// No problems.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl TokenStore {
    /// Check the store: metadata parses and is safe, each profile's secret is
    /// present and decodes, and no item of this store's namespace is orphaned.
    /// Changes nothing.
    ///
    /// # Errors
    /// [`Error::KeychainUnavailable`], [`Error::LockTimeout`]; everything else
    /// is reported as a [`Problem`].
    pub fn verify(&self) -> Result<Report> {
        let _lock = self.lock_meta(Mode::Shared)?;
        self.check(&mut Vec::new())
    }

    fn check(&self, owned: &mut Vec<String>) -> Result<Report> {
        let mut report = Report::default();
        let meta = match self.read_meta() {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(meta_problem(e)?);
                return Ok(report);
            }
        };
        let kc = self.keychain()?;
        for info in meta.profiles.values() {
            if info.secret.backend != kc.name() {
                report.problems.push(Problem::OtherBackend {
                    profile: info.profile.clone(),
                    held_by: info.secret.backend.clone(),
                });
                continue;
            }
            for index in 0..info.secret.items {
                owned.push(names::item_account(
                    &info.profile,
                    &info.secret.generation,
                    index,
                ));
            }
            report.profiles_checked += 1;
            if info.secret.envelope_version != ENVELOPE_VERSION {
                report.problems.push(Problem::VersionMismatch {
                    profile: info.profile.clone(),
                    found: format!("metadata says version {}", info.secret.envelope_version),
                    newer: info.secret.envelope_version > ENVELOPE_VERSION,
                });
                continue;
            }
            match self.read_envelope(kc.as_ref(), info) {
                Ok(_) => {}
                Err(ReadFail::Missing) => report.problems.push(Problem::SecretMissing {
                    profile: info.profile.clone(),
                }),
                Err(ReadFail::Version(v)) => report.problems.push(Problem::VersionMismatch {
                    profile: info.profile.clone(),
                    found: format!("keychain item has version {v}"),
                    newer: v > ENVELOPE_VERSION,
                }),
                Err(ReadFail::Malformed(reason)) => {
                    report.problems.push(Problem::SecretUnreadable {
                        profile: info.profile.clone(),
                        reason,
                    })
                }
                Err(ReadFail::WrongBackend) => report.problems.push(Problem::OtherBackend {
                    profile: info.profile.clone(),
                    held_by: info.secret.backend.clone(),
                }),
                Err(ReadFail::Keychain(e)) => return Err(self.kc_err(kc.as_ref(), e)),
            }
        }
        match kc.list() {
            Ok(Some(accounts)) => {
                report.orphan_scan = true;
                for account in accounts {
                    // Some stores list deleted credentials (keyring-core's mock
                    // keeps them): only an item that still reads is an orphan.
                    if !owned.contains(&account) && matches!(kc.get(&account), Ok(Some(_))) {
                        report.problems.push(Problem::Orphan { account });
                    }
                }
            }
            Ok(None) => {}
            Err(e) => return Err(self.kc_err(kc.as_ref(), e)),
        }
        Ok(report)
    }

    /// Fix what [`verify`](Self::verify) finds: delete orphaned items, drop
    /// profiles whose secrets are missing or unreadable, and move a corrupt
    /// metadata file aside (kept as `metadata.json.corrupt-<time>`) and
    /// rebuild it from the envelopes in the keychain. A metadata file from a
    /// newer version, unsafe files and profiles of other backends are left alone.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), plus I/O errors writing the metadata.
    pub fn repair(&self) -> Result<Report> {
        let _lock = self.lock_meta(Mode::Exclusive)?;
        let mut owned = Vec::new();
        let found = self.check(&mut owned)?;
        let mut fixed = Vec::new();
        // Every metadata write runs under the exclusive metadata lock we
        // hold, so any temp file of one was left by a writer that died.
        let stale = files::remove_stale_temps(self.metadata_path());
        if stale > 0 {
            fixed.push(format!(
                "removed {stale} temp file(s) left by interrupted metadata writes"
            ));
        }
        let untouchable = found
            .problems
            .iter()
            .any(|p| matches!(p, Problem::MetadataTooNew { .. } | Problem::Unsafe { .. }));
        if untouchable {
            // A newer rctoken's metadata, or an unsafe file: never touched;
            // the final check reports it as remaining.
        } else if let Some(Problem::MetadataCorrupt { .. }) = found.problems.first() {
            let aside = files::move_aside(self.metadata_path(), self.now().unix_timestamp())?;
            fixed.push(format!("moved the corrupt metadata to {}", aside.display()));
            let rebuilt = self.rebuild()?;
            fixed.push(format!(
                "rebuilt metadata with {} profile(s) from the keychain",
                rebuilt
            ));
        } else if !found.problems.is_empty() {
            let kc = self.keychain()?;
            let mut meta = self.read_meta()?;
            for problem in &found.problems {
                match problem {
                    Problem::SecretMissing { profile }
                    | Problem::SecretUnreadable { profile, .. }
                    | Problem::VersionMismatch {
                        profile,
                        newer: false,
                        ..
                    } => {
                        if let Some(info) = meta.profiles.remove(profile) {
                            self.delete_items(
                                kc.as_ref(),
                                profile,
                                &info.secret.generation,
                                info.secret.items,
                            );
                            fixed.push(format!("dropped profile `{profile}` ({problem})"));
                        }
                    }
                    Problem::Orphan { account } => match kc.delete(account) {
                        Ok(_) => fixed.push(format!("deleted orphaned keychain item `{account}`")),
                        Err(e) => return Err(self.kc_err(kc.as_ref(), e)),
                    },
                    _ => {}
                }
            }
            if meta
                .active
                .as_ref()
                .is_some_and(|a| !meta.profiles.contains_key(a))
            {
                meta.set_active(None);
            }
            self.write_meta(&meta)?;
        }
        let mut after = self.check(&mut Vec::new())?;
        after.fixed = fixed;
        Ok(after)
    }

    /// Rebuild metadata from the envelopes in the keychain. The newest save of
    /// each profile wins; older generations are deleted. No profile is active.
    fn rebuild(&self) -> Result<usize> {
        let kc = self.keychain()?;
        let mut meta = Metadata::new();
        let accounts = kc
            .list()
            .map_err(|e| self.kc_err(kc.as_ref(), e))?
            .unwrap_or_default();
        let mut losers = Vec::new();
        for account in &accounts {
            let Some((key, generation, 0)) = names::parse_account(account) else {
                continue;
            };
            let Ok(Some(first)) = kc.get(account) else {
                continue;
            };
            let Some(count) = envelope::item_header_count(&first) else {
                continue;
            };
            let mut candidate = ProfileInfo {
                profile: key.clone(),
                active: false,
                ..placeholder_info()
            };
            candidate.secret = SecretRef {
                backend: kc.name().to_string(),
                generation: generation.clone(),
                items: count,
                envelope_version: ENVELOPE_VERSION,
            };
            let Ok(decoded) = self.read_secrets(kc.as_ref(), &candidate) else {
                losers.push((key, generation, count));
                continue;
            };
            let Ok(mut info) = serde_json::from_slice::<ProfileInfo>(&decoded.record) else {
                losers.push((key, generation, count));
                continue;
            };
            info.profile = key.clone();
            info.secret = candidate.secret;
            match meta.profiles.get(&key) {
                Some(existing) if existing.obtained_at >= info.obtained_at => {
                    losers.push((key, generation, count));
                }
                _ => {
                    if let Some(old) = meta.profiles.insert(key.clone(), info) {
                        losers.push((key, old.secret.generation, old.secret.items));
                    }
                }
            }
        }
        // Labels must stay unique: drop duplicates rather than guess.
        let mut seen = std::collections::HashSet::new();
        for info in meta.profiles.values_mut() {
            if let Some(l) = &info.label
                && !seen.insert(l.clone())
            {
                info.label = None;
            }
        }
        self.write_meta(&meta)?;
        for (key, generation, count) in losers {
            self.delete_items(kc.as_ref(), &key, &generation, count);
        }
        Ok(meta.profiles.len())
    }
}

fn meta_problem(e: Error) -> Result<Problem> {
    Ok(match e {
        Error::CorruptMetadata { reason, .. } => Problem::MetadataCorrupt { reason },
        Error::UnsupportedVersion { found, .. } => Problem::MetadataTooNew { found },
        Error::UnsafeStore { path, reason } => Problem::Unsafe { path, reason },
        other => return Err(other),
    })
}

fn placeholder_info() -> ProfileInfo {
    ProfileInfo {
        profile: String::new(),
        active: false,
        label: None,
        owner_id: None,
        endpoint_id: None,
        scope: String::new(),
        token_type: crate::TokenType::Bearer,
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
        has_refresh_token: false,
        has_id_token: false,
        secret: SecretRef {
            backend: String::new(),
            generation: String::new(),
            items: 0,
            envelope_version: ENVELOPE_VERSION,
        },
    }
}
