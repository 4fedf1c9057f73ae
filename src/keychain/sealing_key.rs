//! The sealed store's key and who holds it.
//!
//! - **keyutils**: one 32-byte `user` key per store in the user keyring,
//!   described `rctoken-key:<app id>:<store id>`, where the store id is a
//!   random id kept in the store directory (`sealed/.store-id`). It is
//!   created on first use under the store's key lock (`sealed/.key.lock`),
//!   after searching for it, because `add_key` with an existing
//!   description replaces the key and would orphan everything sealed under
//!   it. The key is cleared at reboot like every keyutils key.
//! - **a key file** (`RCTOKEN_KEY_FILE`, or systemd's credential
//!   `rctoken-<app id>` in `$CREDENTIALS_DIRECTORY`): 32 bytes, base64 (44
//!   characters, surrounding whitespace ignored), owned by the user or root
//!   and not accessible to group or others. rctoken never creates one.
//!
//! No environment variable ever holds the key itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Keychain, OpenConfig};
use crate::error::{Error, Result};
use crate::files;
use crate::lock::FileLock;
use crate::wait::Patience;

/// The environment variable naming a key file.
pub(crate) const KEY_FILE_ENV: &str = "RCTOKEN_KEY_FILE";

const KEY_LEN: usize = 32;
const STORE_ID_FILE: &str = ".store-id";
const KEY_LOCK_FILE: &str = ".key.lock";
/// A key file larger than this is not a key file.
const MAX_KEY_FILE: u64 = 1024;

/// A sealing key, zeroized on drop, and its id.
pub(crate) struct SealingKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: [u8; 8],
}

impl SealingKey {
    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let mut h = Sha256::new();
        h.update(b"rctoken sealing key id\0");
        h.update(&bytes[..]);
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        SealingKey { bytes, id }
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// An id of the key that reveals nothing about it: a store can tell
    /// "sealed under another key" from "tampered".
    pub(crate) fn id(&self) -> [u8; 8] {
        self.id
    }
}

/// Where a sealed store's key is kept.
pub(crate) enum KeyHolder {
    /// A key in the user keyring.
    Keyutils(KeyutilsSlot),
    /// A key file.
    File(PathBuf),
}

impl KeyHolder {
    /// What a reader says about an item sealed under a key that is gone.
    pub(crate) fn lost_reason(&self) -> String {
        match self {
            KeyHolder::Keyutils(_) => "it was sealed under a key this store no longer has: the store's key was cleared (keyutils is emptied at reboot)".into(),
            KeyHolder::File(path) => format!(
                "it was sealed under another key than the one in the key file {}, and not under a key this store still uses",
                path.display()
            ),
        }
    }

    /// One line on where the key is, for `doctor` and `status`.
    pub(crate) fn describe(&self) -> String {
        match self {
            // The same words before the store's first save made the key
            // (see `sealed::LazySealed`) as after.
            KeyHolder::Keyutils(_) => "its key in kernel keyutils (cleared at reboot)".into(),
            KeyHolder::File(path) => format!("its key in the key file {}", path.display()),
        }
    }

    /// The key file, for a key file holder.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            KeyHolder::File(p) => Some(p),
            KeyHolder::Keyutils(_) => None,
        }
    }
}

/// The key file the environment configures for `app_id`, if any:
/// `RCTOKEN_KEY_FILE`, else systemd's credential `rctoken-<app id>`.
pub(crate) fn configured_key_file(app_id: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) {
        return Some(expand_home(PathBuf::from(path)));
    }
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|p| !p.is_empty())?;
    let path = Path::new(&creds).join(credential_name(app_id));
    (files::exists(&path) == Some(true)).then_some(path)
}

/// A leading `~` or `~/` is the home directory, as in a shell: a quoted
/// `RCTOKEN_KEY_FILE="~/.config/rctoken.key"` (a unit file, a `.env` file)
/// reaches us unexpanded. `~user` is left alone.
fn expand_home(path: PathBuf) -> PathBuf {
    match (
        path.strip_prefix("~"),
        directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()),
    ) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

/// The systemd credential name that holds `app_id`'s key.
pub(crate) fn credential_name(app_id: &str) -> String {
    format!("rctoken-{app_id}")
}

/// Read the key in a key file, refusing one that others may read.
///
/// # Errors
/// [`Error::UnsafeStore`] for a file that is not a regular file owned by
/// this user or root with no group or other access; [`Error::BadKeyFile`]
/// for one that cannot be read or does not hold a key.
pub(crate) fn from_file(path: &Path) -> Result<SealingKey> {
    use std::io::Read;
    let bad = |reason: String| Error::BadKeyFile {
        path: path.to_path_buf(),
        reason,
    };
    // Symlinks are followed (Kubernetes mounts secrets as links into
    // `..data/`); the checks apply to the file itself, after the open.
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot be opened: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| bad(format!("cannot be inspected: {e}")))?;
    if !meta.is_file() {
        return Err(bad("is not a regular file".into()));
    }
    check_key_file_access(path, &meta)?;
    let mut text = Zeroizing::new(Vec::with_capacity(64));
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(bad("is too large to be a key file".into()));
    }
    let trimmed = text.trim_ascii();
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    use base64ct::{Base64, Encoding};
    match Base64::decode(trimmed, &mut key[..]) {
        Ok(decoded) if decoded.len() == KEY_LEN => {}
        _ => {
            return Err(bad(
                "does not hold a key: it must be 32 random bytes in base64 (44 characters), \
                 for example from `head -c 32 /dev/urandom | base64`"
                    .into(),
            ));
        }
    }
    Ok(SealingKey::from_bytes(key))
}

#[cfg(unix)]
fn check_key_file_access(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let unsafe_file = |reason: String, kind| Error::UnsafeStore {
        path: path.to_path_buf(),
        reason,
        kind,
    };
    let uid = files::current_uid();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(unsafe_file(
            format!(
                "the key file is owned by uid {}, not by this user ({uid}) or root",
                meta.uid()
            ),
            crate::error::UnsafeKind::OtherOwner,
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(unsafe_file(
            format!(
                "the key file has mode {:04o}: group or others may access it (it must be 0400 or 0600)",
                meta.mode() & 0o7777
            ),
            crate::error::UnsafeKind::OpenToOthers,
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_file_access(_: &Path, _: &std::fs::Metadata) -> Result<()> {
    // The user profile's ACL protects files there; see docs/security.md.
    Ok(())
}

/// Which of a keyutils holder's two keys: the store's key, or the one a
/// key rotation in progress re-seals under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Current,
    Next,
}

/// The store's key in keyutils: `rctoken-key:<app id>:<store id>`, and
/// during a key rotation `…:<store id>.next`. Opened under the store's key
/// lock (see [`key_lock`]), which every use that creates or replaces a key
/// also holds.
pub(crate) struct KeyutilsSlot {
    kc: Arc<dyn Keychain>,
    service: String,
    store_id: String,
}

impl KeyutilsSlot {
    /// Open the keyutils namespace of `app_id`'s keys and read (or create)
    /// the store id. The caller holds the key lock.
    ///
    /// # Errors
    /// `Err(reason)` when keyutils cannot be used (a seccomp filter, no
    /// keyutils on this platform) or the store id cannot be had.
    pub(crate) fn open(
        cfg: &OpenConfig,
        app_id: &str,
        sealed_dir: &Path,
    ) -> std::result::Result<Self, String> {
        let holder_cfg = OpenConfig {
            service: format!("rctoken-key:{app_id}"),
            ..cfg.clone()
        };
        let kc = super::keyutils::open(&holder_cfg, super::keyutils::MAX_PAYLOAD)?;
        let store_id = store_id(sealed_dir).map_err(|e| e.to_string())?;
        Ok(KeyutilsSlot {
            kc,
            service: holder_cfg.service,
            store_id,
        })
    }

    fn account(&self, slot: Slot) -> String {
        match slot {
            Slot::Current => self.store_id.clone(),
            Slot::Next => format!("{}.next", self.store_id),
        }
    }

    /// The key's description in keyutils.
    pub(crate) fn description(&self, slot: Slot) -> String {
        format!("{}:{}", self.service, self.account(slot))
    }

    /// The key in `slot`, if it is there.
    pub(crate) fn read(&self, slot: Slot) -> std::result::Result<Option<SealingKey>, String> {
        match self
            .kc
            .get(&self.account(slot))
            .map_err(|e| format!("keyutils: {}", e.message))?
        {
            None => Ok(None),
            Some(bytes) => {
                let arr: [u8; KEY_LEN] = bytes[..]
                    .try_into()
                    .map_err(|_| "the store's key in keyutils is not 32 bytes".to_string())?;
                Ok(Some(SealingKey::from_bytes(Zeroizing::new(arr))))
            }
        }
    }

    /// The key in `slot`, created if absent. The caller holds the key lock
    /// and has searched first: `add_key` with an existing description
    /// replaces the key and would orphan everything sealed under it.
    pub(crate) fn create(&self, slot: Slot) -> std::result::Result<SealingKey, String> {
        // Test-only: hold processes between the search and the creation until
        // a test releases them together, so a test of many processes racing
        // here can see a missing lock.
        #[cfg(feature = "failpoints")]
        race_point();
        let mut fresh = Zeroizing::new(vec![0u8; KEY_LEN]);
        getrandom::fill(&mut fresh[..]).map_err(|e| format!("no randomness for a key: {e}"))?;
        self.kc
            .set(&self.account(slot), fresh)
            .map_err(|e| format!("keyutils: {}", e.message))?;
        self.read(slot)?
            .ok_or_else(|| "keyutils: the new key is not there after it was added".into())
    }

    /// Make `slot` hold `key` (an update in place: atomic, one key).
    pub(crate) fn put(&self, slot: Slot, key: &SealingKey) -> std::result::Result<(), String> {
        self.kc
            .set(&self.account(slot), Zeroizing::new(key.bytes().to_vec()))
            .map_err(|e| format!("keyutils: {}", e.message))
    }

    /// Delete the key in `slot`, if any.
    pub(crate) fn delete(&self, slot: Slot) -> std::result::Result<(), String> {
        self.kc
            .delete(&self.account(slot))
            .map(|_| ())
            .map_err(|e| format!("keyutils: {}", e.message))
    }
}

/// The store's key lock (`sealed/.key.lock`): held exclusively by whoever
/// creates or replaces a key, writes the key record or seals an item.
pub(crate) fn key_lock(sealed_dir: &Path, timeout: &Patience) -> Result<FileLock> {
    FileLock::exclusive(&sealed_dir.join(KEY_LOCK_FILE), timeout)
}

/// Failpoint (feature `failpoints`): with `RCTOKEN_TEST_KEY_CREATE_BARRIER`
/// set to a path, leave a marker `<path>.<pid>`, wait (at most 10 s) until
/// the path exists, then sleep `RCTOKEN_TEST_KEY_CREATE_DELAY_MS`.
#[cfg(feature = "failpoints")]
fn race_point() {
    let Some(barrier) = std::env::var_os("RCTOKEN_TEST_KEY_CREATE_BARRIER") else {
        return;
    };
    let barrier = PathBuf::from(barrier);
    let mut marker = barrier.clone().into_os_string();
    marker.push(format!(".{}", std::process::id()));
    let _ = std::fs::write(&marker, b"");
    let start = std::time::Instant::now();
    while !barrier.exists() && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if let Some(ms) = std::env::var("RCTOKEN_TEST_KEY_CREATE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// The store's random id (`sealed/.store-id`), created if absent. The
/// caller holds the key lock.
fn store_id(sealed_dir: &Path) -> Result<String> {
    let path = sealed_dir.join(STORE_ID_FILE);
    if let Some(bytes) = files::read_bounded(&path, 64)? {
        let id = String::from_utf8_lossy(&bytes).trim().to_string();
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id);
        }
    }
    let id = format!("{:016x}{:016x}", files::random_u64(), files::random_u64());
    files::write_atomic_unchecked(&path, id.as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str, mode: u32) {
        // A 0400 file cannot be rewritten by its (non-root) owner.
        let _ = std::fs::remove_file(path);
        std::fs::write(path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
    }

    #[test]
    fn key_files_are_base64_of_32_bytes_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key");
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        write(&path, &format!("{b64}\n"), 0o600);
        let key = from_file(&path).unwrap();
        assert_eq!(key.bytes()[31], 31);
        write(&path, b64, 0o400);
        assert!(from_file(&path).is_ok());
        #[cfg(unix)]
        for mode in [0o640, 0o604, 0o644, 0o660] {
            write(&path, b64, mode);
            assert!(
                matches!(from_file(&path), Err(Error::UnsafeStore { .. })),
                "{mode:o}"
            );
        }
        for bad in ["", "AAEC", "not base64 at all!!", &format!("{b64}{b64}")] {
            write(&path, bad, 0o600);
            assert!(
                matches!(from_file(&path), Err(Error::BadKeyFile { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            from_file(&tmp.path().join("absent")),
            Err(Error::BadKeyFile { .. })
        ));
    }

    #[test]
    fn key_ids_differ_by_key() {
        let a = SealingKey::from_bytes(Zeroizing::new([1; 32]));
        let b = SealingKey::from_bytes(Zeroizing::new([2; 32]));
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), SealingKey::from_bytes(Zeroizing::new([1; 32])).id());
    }
}
