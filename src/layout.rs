//! Where a store keeps its files: the one place that names them.
//!
//! ```text
//! <dir>/metadata.json              the index: format version, app id, active profile, labels
//! <dir>/metadata.lock              the metadata lock (shared to read, exclusive to write)
//! <dir>/profiles/<stem>.json       one profile's metadata
//! <dir>/refresh-locks/<stem>.lock  one profile's refresh lock
//! <dir>/refresh-locks/<stem>.reserve  room set aside for a refresh's result
//! ```
//!
//! `<stem>` is the escaped profile key, or a hash of it when that is long
//! (see `names::stem`).

use std::path::{Path, PathBuf};

use crate::names;

const INDEX_FILE: &str = "metadata.json";
const LOCK_FILE: &str = "metadata.lock";
const PROFILES_DIR: &str = "profiles";
const REFRESH_LOCK_DIR: &str = "refresh-locks";

/// The paths of one store's files, for diagnostics (`rctoken doctor` prints
/// them) and tests. Their names are not a format promise beyond the
/// documentation in `docs/architecture.md`; go through [`TokenStore`] to
/// read or change them.
///
/// [`TokenStore`]: crate::TokenStore
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLayout {
    dir: PathBuf,
}

impl StoreLayout {
    pub(crate) fn new(dir: PathBuf) -> Self {
        StoreLayout { dir }
    }

    /// The store directory (absolute and canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The metadata index file (format version, app id, active profile, labels).
    pub fn index(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    /// The metadata lock file.
    pub fn metadata_lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// The directory of per-profile metadata files.
    pub fn profiles_dir(&self) -> PathBuf {
        self.dir.join(PROFILES_DIR)
    }

    /// The metadata file of profile `key` (whether or not it exists).
    pub fn profile_file(&self, key: &str) -> PathBuf {
        self.profiles_dir().join(profile_file_name(key))
    }

    /// The directory of per-profile refresh locks.
    pub fn refresh_locks_dir(&self) -> PathBuf {
        self.dir.join(REFRESH_LOCK_DIR)
    }

    /// The refresh lock file of profile `key`.
    pub fn refresh_lock(&self, key: &str) -> PathBuf {
        self.refresh_locks_dir()
            .join(format!("{}.lock", names::stem(key)))
    }

    /// The file a refresh of profile `key` sets aside for its result.
    pub(crate) fn reserve_file(&self, key: &str) -> PathBuf {
        self.refresh_locks_dir()
            .join(format!("{}.reserve", names::stem(key)))
    }
}

/// The file name of a profile's metadata: its stem and `.json`. The file
/// names its key, and a read checks it.
pub(crate) fn profile_file_name(key: &str) -> String {
    format!("{}.json", names::stem(key))
}

/// Whether a directory entry is a profile file (not a temp or moved-aside file).
pub(crate) fn is_profile_file_name(name: &str) -> bool {
    !name.starts_with('.') && name.ends_with(".json")
}
