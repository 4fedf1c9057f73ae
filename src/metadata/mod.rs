//! The metadata files: every non-secret field of each profile in a file of
//! its own (`profiles/<name>.json`), and a small index (`metadata.json`)
//! holding the format version, the active profile and the labels. Never
//! holds a secret.
//!
//! One file per profile keeps a save's cost independent of how many
//! profiles the store holds: a save rewrites its own profile's file, and the
//! index only when the active profile or a label changes (see
//! `docs/architecture.md`). Format 1 kept everything in `metadata.json`; it
//! is read as is, and converted by the first write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files;
use crate::layout::{StoreLayout, is_profile_file_name, profile_file_name};

/// The metadata format this build writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 2;

mod profile;

pub use profile::ProfileInfo;
pub(crate) use profile::SecretRef;
pub(crate) use profile::token_from;

/// The index: format version, active profile and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub format_version: u64,
    /// The app id whose keychain namespace this store uses. Recorded by the
    /// first write; a store is never opened under another app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default)]
    pub active: Option<String>,
    /// label → profile key.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            format_version: FORMAT_VERSION,
            ..Default::default()
        }
    }

    /// The label of `key`, if any.
    pub(crate) fn label_of(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(_, k)| k.as_str() == key)
            .map(|(l, _)| l.as_str())
    }

    /// Give `key` the label `label` (or none), dropping any label it had.
    /// Forget `key`: its label, and the active pointer if it names `key`.
    pub(crate) fn forget(&mut self, key: &str) {
        self.set_label(key, None);
        if self.active.as_deref() == Some(key) {
            self.active = None;
        }
    }

    pub(crate) fn set_label(&mut self, key: &str, label: Option<&str>) {
        self.labels.retain(|_, k| k != key);
        if let Some(l) = label {
            self.labels.insert(l.to_string(), key.to_string());
        }
    }

    fn to_bytes(&self) -> Result<Vec<u8>> {
        to_json_file(self)
    }
}

/// A metadata document as file bytes: pretty JSON and a newline. A value
/// that does not serialize is an error, never an empty file.
fn to_json_file<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(value).map_err(|e| Error::BadToken {
        reason: format!("the metadata cannot be written: {}", json_reason(&e)),
    })?;
    out.push(b'\n');
    Ok(out)
}

/// Format 1: everything in one document.
#[derive(Deserialize)]
struct FormatV1 {
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, ProfileInfo>,
}

/// What one read of the index saw. Profiles are read from their files on
/// demand, except in a format-1 store, whose profiles the index itself holds.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub index: Index,
    v1: Option<BTreeMap<String, ProfileInfo>>,
}

impl Snapshot {
    /// Whether this is a format-1 store that a write must convert first.
    pub(crate) fn is_v1(&self) -> bool {
        self.v1.is_some()
    }
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

/// A profile file that could not be read: its path and why.
pub(crate) type Unreadable = (PathBuf, Error);

/// The metadata files of one store directory.
#[derive(Clone, Debug)]
pub(crate) struct MetaFiles {
    pub index_path: PathBuf,
    pub profiles_dir: PathBuf,
    app_id: String,
}

impl MetaFiles {
    pub(crate) fn new(layout: &StoreLayout, app_id: &str) -> Self {
        MetaFiles {
            index_path: layout.index(),
            profiles_dir: layout.profiles_dir(),
            app_id: app_id.to_string(),
        }
    }

    pub(crate) fn profile_path(&self, key: &str) -> PathBuf {
        self.profiles_dir.join(profile_file_name(key))
    }

    /// Read the index for a write (the caller holds the exclusive metadata
    /// lock), converting a format-1 store first.
    pub(crate) fn read_for_write(&self) -> Result<Snapshot> {
        let snap = self.read()?;
        if snap.is_v1() {
            return self.convert_v1(snap);
        }
        Ok(snap)
    }

    /// Read the index; an absent index is an empty store.
    pub(crate) fn read(&self) -> Result<Snapshot> {
        files::check_safe_if_exists(&self.profiles_dir, true)?;
        match files::read_if_exists(&self.index_path)? {
            None => Ok(Snapshot {
                index: Index::new(),
                v1: None,
            }),
            Some(bytes) => {
                let snap = parse_index(&bytes, &self.index_path)?;
                match &snap.index.app_id {
                    Some(owner) if *owner != self.app_id => Err(Error::ForeignStore {
                        path: self.index_path.clone(),
                        owner: owner.clone(),
                        app: self.app_id.clone(),
                    }),
                    _ => Ok(snap),
                }
            }
        }
    }

    /// One profile by key, with its label and active flag from the index.
    pub(crate) fn profile(&self, snap: &Snapshot, key: &str) -> Result<Option<ProfileInfo>> {
        let mut info = match &snap.v1 {
            Some(v1) => match v1.get(key) {
                Some(p) => p.clone(),
                None => return Ok(None),
            },
            None => {
                let path = self.profile_path(key);
                let Some(bytes) = files::read_if_exists(&path)? else {
                    return Ok(None);
                };
                let info = parse_profile(&bytes, &path)?;
                if info.profile != key {
                    return Err(corrupt(&path, "it belongs to another profile".into()));
                }
                info
            }
        };
        decorate(&snap.index, &mut info);
        Ok(Some(info))
    }

    /// A profile by key, or else by label; `None` means the active one.
    pub(crate) fn lookup(
        &self,
        snap: &Snapshot,
        key_or_label: Option<&str>,
    ) -> Result<ProfileInfo> {
        let Some(name) = key_or_label else {
            return match &snap.index.active {
                Some(key) => self.profile(snap, key)?.ok_or(Error::NoActiveProfile),
                None => Err(Error::NoActiveProfile),
            };
        };
        if let Some(info) = self.profile(snap, name)? {
            return Ok(info);
        }
        if let Some(key) = snap.index.labels.get(name)
            && let Some(info) = self.profile(snap, key)?
        {
            return Ok(info);
        }
        Err(Error::NoSuchProfile(name.to_string()))
    }

    /// Whether any profile exists.
    pub(crate) fn any(&self, snap: &Snapshot) -> Result<bool> {
        if let Some(v1) = &snap.v1 {
            return Ok(!v1.is_empty());
        }
        Ok(self.profile_names()?.next().is_some())
    }

    fn profile_names(&self) -> Result<impl Iterator<Item = String>> {
        let entries = match std::fs::read_dir(&self.profiles_dir) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("listing", &self.profiles_dir, e)),
        };
        Ok(entries
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_profile_file_name(n)))
    }

    /// Every profile, sorted by key; any unreadable file fails the whole read.
    pub(crate) fn all(&self, snap: &Snapshot) -> Result<Vec<ProfileInfo>> {
        let (profiles, mut bad) = self.all_lenient(snap)?;
        match bad.pop() {
            Some((_, e)) => Err(e),
            None => Ok(profiles),
        }
    }

    /// Every readable profile, sorted by key, and the files that could not
    /// be read (path, error).
    pub(crate) fn all_lenient(
        &self,
        snap: &Snapshot,
    ) -> Result<(Vec<ProfileInfo>, Vec<Unreadable>)> {
        if let Some(v1) = &snap.v1 {
            let mut profiles: Vec<ProfileInfo> = v1.values().cloned().collect();
            for p in &mut profiles {
                decorate(&snap.index, p);
            }
            return Ok((profiles, Vec::new()));
        }
        let mut profiles = Vec::new();
        let mut bad = Vec::new();
        for name in self.profile_names()? {
            let path = self.profiles_dir.join(&name);
            let read = files::read_if_exists(&path).and_then(|bytes| match bytes {
                // Removed since the directory was listed.
                None => Ok(None),
                Some(bytes) => {
                    let info = parse_profile(&bytes, &path)?;
                    if profile_file_name(&info.profile) != name {
                        return Err(corrupt(&path, "its name does not match its profile".into()));
                    }
                    Ok(Some(info))
                }
            });
            match read {
                Ok(Some(mut info)) => {
                    decorate(&snap.index, &mut info);
                    profiles.push(info);
                }
                Ok(None) => {}
                Err(e) => bad.push((path, e)),
            }
        }
        profiles.sort_by(|a, b| a.profile.cmp(&b.profile));
        Ok((profiles, bad))
    }

    /// Write the index, recording this store's app id in it.
    pub(crate) fn write_index(&self, index: &Index) -> Result<()> {
        let mut index = index.clone();
        index.app_id = Some(self.app_id.clone());
        files::write_atomic(&self.index_path, &index.to_bytes()?)
    }

    /// A profile's file bytes.
    pub(crate) fn profile_bytes(info: &ProfileInfo) -> Result<Vec<u8>> {
        to_json_file(info)
    }

    pub(crate) fn write_profile(&self, info: &ProfileInfo) -> Result<()> {
        files::ensure_private_dir(&self.profiles_dir)?;
        files::write_atomic(
            &self.profile_path(&info.profile),
            &Self::profile_bytes(info)?,
        )
    }

    /// Commit a profile's file through space reserved earlier (see
    /// [`files::ReservedFile`]).
    pub(crate) fn commit_profile(
        &self,
        info: &ProfileInfo,
        reserved: files::ReservedFile,
    ) -> Result<()> {
        files::ensure_private_dir(&self.profiles_dir)?;
        reserved.commit(
            &self.profile_path(&info.profile),
            &Self::profile_bytes(info)?,
        )
    }

    pub(crate) fn remove_profile(&self, key: &str) -> Result<()> {
        files::remove_durable(&self.profile_path(key))
    }

    /// Convert a format-1 store (caller holds the exclusive metadata lock):
    /// write every profile's file, remove files of profiles it does not list
    /// (left by an interrupted conversion), then commit by writing the
    /// format-2 index. A crash before that leaves format 1 in force, and the
    /// next write converts again.
    pub(crate) fn convert_v1(&self, snap: Snapshot) -> Result<Snapshot> {
        let Some(v1) = snap.v1 else {
            return Ok(snap);
        };
        for info in v1.values() {
            self.write_profile(info)?;
        }
        let keep: std::collections::HashSet<String> =
            v1.keys().map(|k| profile_file_name(k)).collect();
        for name in self.profile_names()?.collect::<Vec<_>>() {
            if !keep.contains(&name) {
                files::remove_durable(&self.profiles_dir.join(name))?;
            }
        }
        self.write_index(&snap.index)?;
        log::debug!("converted the metadata to format {FORMAT_VERSION}");
        Ok(Snapshot {
            index: snap.index,
            v1: None,
        })
    }
}

fn decorate(index: &Index, info: &mut ProfileInfo) {
    info.active = index.active.as_deref() == Some(info.profile.as_str());
    info.label = index.label_of(&info.profile).map(str::to_string);
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::CorruptMetadata {
        path: path.to_path_buf(),
        reason,
    }
}

fn too_new(path: &Path, found: u64) -> Error {
    Error::UnsupportedVersion {
        path: path.to_path_buf(),
        found,
        supported: FORMAT_VERSION,
    }
}

/// Parse index bytes; `path` is only used in errors.
pub(crate) fn parse_index(bytes: &[u8], path: &Path) -> Result<Snapshot> {
    #[derive(Deserialize)]
    struct VersionOnly {
        format_version: u64,
    }
    let version = match serde_json::from_slice::<VersionOnly>(bytes) {
        Ok(v) => v.format_version,
        Err(e) => return Err(corrupt(path, json_reason(&e))),
    };
    match version {
        0 => Err(corrupt(
            path,
            "`format_version` 0 is not a valid version".into(),
        )),
        1 => parse_v1(bytes, path),
        FORMAT_VERSION => {
            let index: Index =
                serde_json::from_slice(bytes).map_err(|e| corrupt(path, json_reason(&e)))?;
            if let Some(active) = &index.active {
                crate::names::check_profile_key(active)
                    .map_err(|e| corrupt(path, format!("active profile: {e}")))?;
            }
            let mut labelled = std::collections::HashSet::new();
            for (label, key) in &index.labels {
                crate::names::check_label(label).map_err(|e| corrupt(path, e.to_string()))?;
                crate::names::check_profile_key(key).map_err(|e| corrupt(path, e.to_string()))?;
                if !labelled.insert(key) {
                    return Err(corrupt(path, format!("profile `{key}` has two labels")));
                }
            }
            Ok(Snapshot { index, v1: None })
        }
        found => Err(too_new(path, found)),
    }
}

fn parse_v1(bytes: &[u8], path: &Path) -> Result<Snapshot> {
    let doc: FormatV1 =
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, json_reason(&e)))?;
    if let Some(active) = &doc.active
        && !doc.profiles.contains_key(active)
    {
        return Err(corrupt(
            path,
            format!("active profile `{active}` is not listed"),
        ));
    }
    let mut index = Index::new();
    index.active = doc.active;
    let mut profiles = doc.profiles;
    for (key, info) in profiles.iter_mut() {
        crate::names::check_profile_key(key).map_err(|e| corrupt(path, e.to_string()))?;
        check_secret_ref(&info.secret)
            .map_err(|reason| corrupt(path, format!("profile `{key}`: {reason}")))?;
        if let Some(label) = info.label.take() {
            crate::names::check_label(&label).map_err(|e| corrupt(path, e.to_string()))?;
            if index.labels.insert(label.clone(), key.clone()).is_some() {
                return Err(corrupt(path, format!("label `{label}` is used twice")));
            }
        }
        info.profile = key.clone();
    }
    Ok(Snapshot {
        index,
        v1: Some(profiles),
    })
}

/// Where the secrets are must be well-formed: a generation of 16 lower-case
/// hex digits (as saves write it) and at least one item.
fn check_secret_ref(secret: &SecretRef) -> std::result::Result<(), String> {
    if !crate::names::is_generation(&secret.generation) {
        return Err("field `secret.generation`: not 16 lower-case hex digits".into());
    }
    if secret.items == 0 {
        return Err("field `secret.items`: must be at least 1".into());
    }
    Ok(())
}

/// Parse a profile file; `path` is only used in errors.
/// The rules a save applies to a profile's other fields, checked again on
/// read (a hand-edited file): a present `owner_id`, `client_id` or
/// `server` is not empty, and the server is an `http(s)://` URL.
fn check_fields(info: &ProfileInfo) -> std::result::Result<(), String> {
    for (field, value) in [
        ("owner_id", &info.owner_id),
        ("client_id", &info.client_id),
        ("server", &info.server),
    ] {
        if value.as_deref() == Some("") {
            return Err(format!("field `{field}`: must not be empty"));
        }
    }
    if let Some(server) = &info.server
        && !(server.starts_with("https://") || server.starts_with("http://"))
    {
        return Err("field `server`: not an http(s) URL".into());
    }
    if info.client_id.is_some() != info.server.is_some() {
        return Err("fields `client_id` and `server`: one is given without the other".into());
    }
    Ok(())
}

pub(crate) fn parse_profile(bytes: &[u8], path: &Path) -> Result<ProfileInfo> {
    let mut info: ProfileInfo =
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, json_reason(&e)))?;
    crate::names::check_profile_key(&info.profile)
        .map_err(|e| corrupt(path, format!("field `profile`: {e}")))?;
    check_secret_ref(&info.secret).map_err(|reason| corrupt(path, reason))?;
    check_fields(&info).map_err(|reason| corrupt(path, reason))?;
    info.label = None;
    info.active = false;
    Ok(info)
}
