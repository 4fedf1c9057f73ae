//! Verify and repair: detect drift between the metadata files and the
//! keychain (a secret missing for a listed profile, an item no profile owns,
//! a version mismatch, a corrupt index or profile file, an index naming a
//! profile that does not exist) and fix what can be fixed.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::envelope::{self, ENVELOPE_VERSION};
use crate::error::{Error, Result};
use crate::files;
use crate::keychain::{Connection, Keychain};
use crate::layout::StoreLayout;
use crate::metadata::{Index, MetaFiles, ProfileInfo, SecretRef};
use crate::names;
use crate::secrets::{self, ReadFail};

/// One problem found by [`TokenStore::verify`](crate::TokenStore::verify).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The metadata index (`metadata.json`) does not parse.
    MetadataCorrupt {
        /// Why.
        reason: String,
    },
    /// A profile's metadata file does not parse.
    ProfileFileCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The index names a profile that does not exist (left by an
    /// interrupted save or remove). Harmless: readers ignore it.
    DanglingReference {
        /// What refers to it: `active profile` or `label `…``.
        what: String,
        /// The missing profile key.
        profile: String,
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
    /// A keychain item in this app id's namespace that no profile of this
    /// store owns and that may belong to another store of the same app id
    /// (its owner cannot be told: written by an older rctoken, damaged, or
    /// not rctoken's). `repair` leaves it alone.
    StrayItem {
        /// The item's account name (no secret).
        account: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MetadataCorrupt { reason } => write!(f, "metadata is corrupt: {reason}"),
            Problem::ProfileFileCorrupt { path, reason } => {
                write!(f, "profile file {} is corrupt: {reason}", path.display())
            }
            Problem::DanglingReference { what, profile } => {
                write!(
                    f,
                    "the {what} names profile `{profile}`, which does not exist"
                )
            }
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
            Problem::StrayItem { account } => write!(
                f,
                "keychain item `{account}` belongs to no profile of this store, and may belong to another store of this app id (left alone)"
            ),
        }
    }
}

/// The outcome of [`TokenStore::verify`](crate::TokenStore::verify) or [`TokenStore::repair`](crate::TokenStore::repair).
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
    /// Keychain bytes a refresh of the largest checked profile sets aside
    /// before it runs (its envelope plus a margin, plus item names): with
    /// less room than this left in a quota, that refresh fails up front.
    pub refresh_room: u64,
}

impl Report {
    /// No problems.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What verify and repair work on: the store's files, its keychain and
/// the time. The caller holds the metadata lock (shared to verify,
/// exclusive to repair).
pub(crate) struct Parts<'a> {
    pub layout: &'a StoreLayout,
    pub meta: &'a MetaFiles,
    pub keychain: &'a Connection,
    pub now: OffsetDateTime,
}

impl Parts<'_> {
    /// Check the store: metadata parses and is safe, each profile's secret
    /// is present and decodes, and no item of the namespace is orphaned.
    pub(crate) fn check(&self) -> Result<Report> {
        let mut owned = std::collections::HashSet::new();
        let mut report = Report::default();
        let snap = match self.meta.read() {
            Ok(m) => m,
            Err(e) => {
                report.problems.push(meta_problem(e)?);
                return Ok(report);
            }
        };
        let (profiles, bad) = self.meta.all_lenient(&snap)?;
        for (path, e) in bad {
            report.problems.push(match e {
                Error::CorruptMetadata { reason, .. } => {
                    Problem::ProfileFileCorrupt { path, reason }
                }
                other => meta_problem(other)?,
            });
        }
        let exists = |key: &str| profiles.iter().any(|p| p.profile == key);
        if let Some(active) = &snap.index.active
            && !exists(active)
        {
            report.problems.push(Problem::DanglingReference {
                what: "active profile".into(),
                profile: active.clone(),
            });
        }
        for (label, key) in &snap.index.labels {
            if !exists(key) {
                report.problems.push(Problem::DanglingReference {
                    what: format!("label `{label}`"),
                    profile: key.clone(),
                });
            }
        }
        let corrupt_files: std::collections::HashSet<String> = report
            .problems
            .iter()
            .filter_map(|p| match p {
                Problem::ProfileFileCorrupt { path, .. } => {
                    path.file_name().map(|n| n.to_string_lossy().into_owned())
                }
                _ => None,
            })
            .collect();
        let kc = self.keychain.get()?;
        for info in &profiles {
            // A profile still in plain keyutils under a sealed store is
            // checked there (it moves on its next save).
            let holder = self.keychain.holding(&info.secret.backend)?;
            if info.secret.backend != holder.name() {
                report.problems.push(Problem::OtherBackend {
                    profile: info.profile.clone(),
                    held_by: info.secret.backend.clone(),
                });
                continue;
            }
            let legacy = holder.name() != kc.name();
            for index in (0..info.secret.items).filter(|_| !legacy) {
                owned.insert(names::item_account(
                    &info.profile,
                    &info.secret.generation,
                    index,
                ));
            }
            report.profiles_checked += 1;
            if !envelope::readable(info.secret.envelope_version) {
                report.problems.push(Problem::VersionMismatch {
                    profile: info.profile.clone(),
                    found: format!("metadata says version {}", info.secret.envelope_version),
                    newer: info.secret.envelope_version > ENVELOPE_VERSION,
                });
                continue;
            }
            match secrets::read(holder.as_ref(), &info.profile, &info.secret) {
                Ok(decoded) => {
                    let needed = secrets::reserve_bytes(decoded.encoded_len())
                        + usize::from(info.secret.items) * names::MAX_ACCOUNT_OVERHEAD;
                    report.refresh_room = report.refresh_room.max(needed as u64);
                }
                Err(ReadFail::Missing) => report.problems.push(Problem::SecretMissing {
                    profile: info.profile.clone(),
                }),
                Err(ReadFail::Version(v)) => report.problems.push(Problem::VersionMismatch {
                    profile: info.profile.clone(),
                    found: format!("keychain item has version {v}"),
                    newer: v > ENVELOPE_VERSION,
                }),
                Err(ReadFail::Malformed(reason) | ReadFail::KeyLost(reason)) => {
                    report.problems.push(Problem::SecretUnreadable {
                        profile: info.profile.clone(),
                        reason,
                    })
                }
                Err(ReadFail::WrongBackend) => report.problems.push(Problem::OtherBackend {
                    profile: info.profile.clone(),
                    held_by: info.secret.backend.clone(),
                }),
                Err(ReadFail::Keychain(e)) => return Err(secrets::kc_error(holder.as_ref(), e)),
            }
        }
        match kc.list() {
            Ok(Some(accounts)) => {
                report.orphan_scan = true;
                for account in accounts {
                    // Some stores list deleted credentials (keyring-core's mock
                    // keeps them): only an item that still reads is an orphan.
                    // Items of a profile whose file is corrupt are what
                    // `repair` rebuilds it from, not orphans.
                    // Only items of this store are deleted: another store
                    // of the same app id (another directory) shares the
                    // namespace.
                    let recoverable = names::parse_account(&account).is_some_and(|(stem, _, _)| {
                        corrupt_files.contains(&format!("{stem}.json"))
                    });
                    if recoverable
                        || owned.contains(&account)
                        || !matches!(kc.get(&account), Ok(Some(_)))
                    {
                        continue;
                    }
                    match ownership(kc.as_ref(), &account, self.layout.dir()) {
                        Ownership::Ours => report.problems.push(Problem::Orphan { account }),
                        Ownership::OtherStore => {}
                        Ownership::Unknown => report.problems.push(Problem::StrayItem { account }),
                    }
                }
            }
            Ok(None) => {}
            Err(e) => return Err(secrets::kc_error(kc.as_ref(), e)),
        }
        Ok(report)
    }

    /// Fix what [`check`](Self::check) finds (see `TokenStore::repair`).
    pub(crate) fn repair(&self) -> Result<Report> {
        let mut fixed = Vec::new();
        // Every metadata write runs under the exclusive metadata lock we
        // hold, so any temp file of one was left by a writer that died.
        let stale = files::remove_stale_temps_in(self.layout.dir())
            + files::remove_stale_temps_in(&self.layout.profiles_dir());
        if stale > 0 {
            fixed.push(format!(
                "removed {stale} temp file(s) left by interrupted metadata writes"
            ));
        }
        let mut found = self.check()?;
        let untouchable = found
            .problems
            .iter()
            .any(|p| matches!(p, Problem::MetadataTooNew { .. } | Problem::Unsafe { .. }));
        if untouchable {
            // A newer rctoken's metadata, or an unsafe file: never touched;
            // the final check reports it as remaining.
            let mut after = self.check()?;
            after.fixed = fixed;
            return Ok(after);
        }
        // 1. Corrupt files: move aside, rebuild from the keychain. A corrupt
        //    index hides the profile files, so look again after replacing it.
        for _pass in 0..2 {
            if !found.problems.iter().any(|p| {
                matches!(
                    p,
                    Problem::MetadataCorrupt { .. } | Problem::ProfileFileCorrupt { .. }
                )
            }) {
                break;
            }
            self.fix_corrupt_files(&found, &mut fixed)?;
            found = self.check()?;
        }
        // 2. Drift between the (now readable) metadata and the keychain.
        if !found.problems.is_empty() {
            let kc = self.keychain.get()?;
            let snap = self.meta.read_for_write()?;
            let mut index = snap.index.clone();
            for problem in &found.problems {
                match problem {
                    Problem::SecretMissing { profile }
                    | Problem::SecretUnreadable { profile, .. }
                    | Problem::VersionMismatch {
                        profile,
                        newer: false,
                        ..
                    } => {
                        if let Some(info) = self.meta.profile(&snap, profile)? {
                            index.forget(profile);
                            self.meta.write_index(&index)?;
                            self.meta.remove_profile(profile)?;
                            let holder = self.keychain.holding(&info.secret.backend)?;
                            secrets::delete(
                                holder.as_ref(),
                                profile,
                                &info.secret.generation,
                                info.secret.items,
                            );
                            fixed.push(format!("dropped profile `{profile}` ({problem})"));
                        }
                    }
                    Problem::Orphan { account } => match kc.delete(account) {
                        Ok(_) => fixed.push(format!("deleted orphaned keychain item `{account}`")),
                        Err(e) => return Err(secrets::kc_error(kc.as_ref(), e)),
                    },
                    Problem::DanglingReference { profile, .. } => {
                        index.forget(profile);
                        fixed.push(format!("removed from the index: {problem}"));
                    }
                    _ => {}
                }
            }
            if index != snap.index {
                self.meta.write_index(&index)?;
            }
        }
        let mut after = self.check()?;
        after.fixed = fixed;
        Ok(after)
    }

    /// Move corrupt metadata files aside and rebuild what they held.
    fn fix_corrupt_files(&self, found: &Report, fixed: &mut Vec<String>) -> Result<()> {
        let mut rebuild_names = std::collections::HashSet::new();
        let mut rebuild_all = false;
        for problem in &found.problems {
            match problem {
                Problem::MetadataCorrupt { .. } => {
                    let aside = files::move_aside(&self.layout.index(), self.now.unix_timestamp())?;
                    fixed.push(format!("moved the corrupt metadata to {}", aside.display()));
                    rebuild_all = !self.meta.any(&self.meta.read()?)?;
                }
                Problem::ProfileFileCorrupt { path, .. } => {
                    let aside = files::move_aside(path, self.now.unix_timestamp())?;
                    fixed.push(format!(
                        "moved the corrupt profile file to {}",
                        aside.display()
                    ));
                    if let Some(name) = path.file_name() {
                        rebuild_names.insert(name.to_string_lossy().into_owned());
                    }
                }
                _ => {}
            }
        }
        if rebuild_all || !rebuild_names.is_empty() {
            let only = (!rebuild_all).then_some(&rebuild_names);
            let rebuilt = self.rebuild(only)?;
            fixed.push(format!("rebuilt {rebuilt} profile(s) from the keychain"));
        }
        if found
            .problems
            .iter()
            .any(|p| matches!(p, Problem::MetadataCorrupt { .. }))
        {
            let snap = self.meta.read()?;
            let (profiles, _corrupt) = self.meta.all_lenient(&snap)?;
            let mut index = Index::new();
            if let [only] = profiles.as_slice() {
                index.active = Some(only.profile.clone());
            }
            self.meta.write_index(&index)?;
            fixed.push(format!(
                "wrote a new metadata index for {} profile(s) (labels are not recoverable)",
                profiles.len()
            ));
        }
        Ok(())
    }

    /// Rebuild profile files from the envelopes in the keychain: those whose
    /// file name is in `only`, or every profile for `None`. The newest save
    /// of each profile wins; older generations are deleted.
    fn rebuild(&self, only: Option<&std::collections::HashSet<String>>) -> Result<usize> {
        let kc = self.keychain.get()?;
        // key -> (newest profile found, whether this store wrote it)
        let mut rebuilt: std::collections::BTreeMap<String, (ProfileInfo, bool)> =
            Default::default();
        let accounts = kc
            .list()
            .map_err(|e| secrets::kc_error(kc.as_ref(), e))?
            .unwrap_or_default();
        let mut losers = Vec::new();
        for account in &accounts {
            let Some((stem, generation, 0)) = names::parse_account(account) else {
                continue;
            };
            if only.is_some_and(|names| !names.contains(&format!("{stem}.json"))) {
                continue;
            }
            let Ok(Some(first)) = kc.get(account) else {
                continue;
            };
            let Some(count) = envelope::item_header_count(&first) else {
                continue;
            };
            let ours = match ownership(kc.as_ref(), account, self.layout.dir()) {
                Ownership::Ours => true,
                // Another store's profile is not this store's to rebuild.
                Ownership::OtherStore => continue,
                Ownership::Unknown => false,
            };
            // An envelope that does not read is left alone, never dropped.
            let Ok(decoded) = secrets::read_generation(kc.as_ref(), &stem, &generation, count)
            else {
                continue;
            };
            // Room set aside by a refresh that never committed: never a
            // profile.
            if serde_json::from_slice::<secrets::Owner>(&decoded.record)
                .is_ok_and(|o| o.reservation)
            {
                if ours {
                    losers.push((stem, generation, count));
                }
                continue;
            }
            let key = decoded.key.clone();
            let secret = SecretRef {
                backend: kc.name().to_string(),
                generation: generation.clone(),
                items: count,
                envelope_version: ENVELOPE_VERSION,
            };
            let mut info = match serde_json::from_slice::<ProfileInfo>(&decoded.record) {
                Ok(info) => info,
                // The secrets are intact but their record is not: keep the
                // profile with its expiry unknown (treated as expired, so the
                // next use refreshes it) rather than lose its tokens.
                Err(_) => ProfileInfo::unknown(&key, &decoded, secret.clone()),
            };
            info.profile = key.clone();
            info.label = None;
            info.secret = secret;
            // The newest save wins; an older generation is deleted only if
            // this store wrote it.
            let loser = match rebuilt.get(&key) {
                Some((existing, _)) if existing.obtained_at >= info.obtained_at => {
                    Some((info, ours))
                }
                _ => rebuilt.insert(key, (info, ours)),
            };
            if let Some((old, true)) = loser {
                losers.push((stem, old.secret.generation, old.secret.items));
            }
        }
        for (info, _) in rebuilt.values() {
            self.meta.write_profile(info)?;
        }
        for (stem, generation, count) in losers {
            secrets::delete_stem(kc.as_ref(), &stem, &generation, count);
        }
        Ok(rebuilt.len())
    }
}

fn meta_problem(e: Error) -> Result<Problem> {
    Ok(match e {
        Error::CorruptMetadata { reason, .. } => Problem::MetadataCorrupt { reason },
        Error::UnsupportedVersion { found, .. } => Problem::MetadataTooNew { found },
        Error::UnsafeStore { path, reason, .. } => Problem::Unsafe { path, reason },
        other => return Err(other),
    })
}

/// Which store an item in this store's keychain namespace belongs to.
pub(crate) enum Ownership {
    /// This store wrote it, or the store that wrote it no longer exists.
    Ours,
    /// Another store of the same app id (another directory) wrote it.
    OtherStore,
    /// Cannot be told: no readable item 0, an older rctoken's record, or a
    /// store directory that cannot be inspected.
    Unknown,
}

/// Who owns the generation that `account` belongs to, from the store
/// directory its item 0 records, for the store in `store_dir`.
pub(crate) fn ownership(kc: &dyn Keychain, account: &str, store_dir: &Path) -> Ownership {
    let Some(dir) = secrets::owner_of(kc, account).and_then(|o| o.store_dir) else {
        return Ownership::Unknown;
    };
    let dir = StoreLayout::new(PathBuf::from(dir));
    if dir.dir() == store_dir {
        return Ownership::Ours;
    }
    match (files::exists(dir.dir()), files::exists(&dir.index())) {
        (Some(false), _) => Ownership::Ours,
        (Some(true), Some(true)) => Ownership::OtherStore,
        _ => Ownership::Unknown,
    }
}
