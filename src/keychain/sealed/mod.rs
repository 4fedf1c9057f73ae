//! The sealed store: each keychain item is a file in the store directory
//! (`sealed/<account>`), encrypted with XChaCha20-Poly1305 under one
//! 32-byte key that a key holder keeps (see `sealing_key`): a single
//! keyutils key, or a key file. To the store it is one more backend, so the
//! commit protocol, refresh reservations, ownership records and repair
//! apply unchanged; an item is never split (a 64 KiB token is one file).
//!
//! File format (all of it authenticated):
//!
//! ```text
//! "RCSE" | version 1 | key id (8) | nonce (24) | ciphertext | tag (16)
//! ```
//!
//! The associated data is the header (magic, version, key id, nonce), the
//! namespace (`rctoken:<app id>`) and the account
//! (`<stem>.<generation>.<index>`), so a file moved or copied to another
//! profile, generation or store does not decrypt. The key id (the first 8
//! bytes of a SHA-256 of the key) tells "sealed under another key" (the
//! key was cleared, or another key file is configured) from "tampered".

use crate::wait::Patience;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::sealing_key::{self, KeyHolder, SealingKey, Slot};
use super::{KcError, Keychain};
use crate::files;

mod lazy;
mod record;
mod rekey;

pub(crate) use lazy::{LazySealed, Opener, is_fresh};

use record::{Entry, Record};
pub(crate) use rekey::{RekeyReport, RekeyTo};

const MAGIC: &[u8; 4] = b"RCSE";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 4 + 1 + 8 + NONCE_LEN;

/// The largest item this backend stores. Far above any token; it bounds
/// what a read allocates for a planted file.
pub(crate) const MAX_ITEM: usize = 16 << 20;

/// The backend's name in metadata and on the command line.
pub(crate) const SEALED: &str = "sealed";

/// The directory of sealed items inside the store directory.
pub(crate) const SEALED_DIR: &str = "sealed";

/// The sealed store of one store directory.
///
/// Which key seals and which keys open: the key record (`record`) names
/// the store's key and, during a rotation, the next one. Items are opened
/// with whichever loaded key their header names; new items are sealed
/// under the record's sealing key, re-read under the key lock on every
/// write, so a process that loaded its keys before another process rotated
/// them never seals under a retired key.
pub(crate) struct Sealed {
    dir: PathBuf,
    service: String,
    holder: KeyHolder,
    lock_timeout: Patience,
    /// The keys loaded so far (the configured one, and a rotation's).
    keys: Mutex<Vec<Arc<SealingKey>>>,
    /// What [`Sealed::open`] with `rebuild` did to a damaged key record.
    rebuilt: Option<String>,
}

impl Sealed {
    /// Open the sealed store in `store_dir` with the key `holder` keeps:
    /// under the key lock, load (keyutils: find or create) the key and make
    /// sure the key record names it, or learn that it names another.
    ///
    /// With `rebuild` (`repair`), a key record that does not parse is
    /// rebuilt when that is provably right (see [`Sealed::rebuild_record`]);
    /// `Keychain::rebuilt` then says what was done.
    ///
    /// # Errors
    /// The key cannot be had (keyutils refused, a bad key file), the lock
    /// timed out, or the key record does not parse
    /// ([`crate::Error::CorruptMetadata`]; with `rebuild`, when it cannot be
    /// rebuilt).
    pub(crate) fn open(
        store_dir: &Path,
        service: &str,
        holder: KeyHolder,
        lock_timeout: Patience,
        rebuild: bool,
    ) -> Result<Self, crate::Error> {
        let mut sealed = Sealed {
            dir: store_dir.join(SEALED_DIR),
            service: service.to_string(),
            holder,
            lock_timeout,
            keys: Mutex::new(Vec::new()),
            rebuilt: None,
        };
        files::ensure_private_dir(&sealed.dir)?;
        let _lock = sealing_key::key_lock(&sealed.dir, &sealed.lock_timeout)?;
        if rebuild
            && let Err(damaged @ crate::Error::CorruptMetadata { .. }) = Record::read(&sealed.dir)
        {
            sealed.rebuilt = Some(sealed.rebuild_record(damaged)?);
        }
        sealed.establish().map_err(|e| e.into_error())?;
        Ok(sealed)
    }

    /// Replace a key record that does not parse (`damaged` is that error),
    /// when the configured key is provably the store's: every item names
    /// it in its header (or there is no item); an item that cannot be read
    /// or is of another sealed format refuses, and only a truncated file or
    /// one that is not a sealed item is passed over. The damaged file is
    /// copied to `.keys.corrupt-<time>`, then a record naming the
    /// configured key replaces it atomically. Otherwise nothing changes and
    /// the error says what to configure. A keyutils key is never created here:
    /// a key that did not exist cannot be the one the items are under.
    /// The caller holds the key lock.
    fn rebuild_record(&self, damaged: crate::Error) -> Result<String, crate::Error> {
        let crate::Error::CorruptMetadata { path, reason } = damaged else {
            return Err(damaged);
        };
        let refuse = |why: String| crate::Error::CorruptMetadata {
            path: path.clone(),
            reason: format!("{reason}, and it cannot be rebuilt: {why}"),
        };
        let configured = match &self.holder {
            KeyHolder::File(file) => sealing_key::from_file(file)?,
            KeyHolder::Keyutils(slot) => match slot.read(Slot::Current) {
                Ok(Some(key)) => key,
                Ok(None) => {
                    return Err(refuse(
                        "kernel keyutils holds no key for this store (it is cleared at \
                         reboot); if the store's key is in a key file, set RCTOKEN_KEY_FILE \
                         to it and run again"
                            .into(),
                    ));
                }
                Err(e) => return Err(refuse(format!("kernel keyutils cannot be read: {e}"))),
            },
        };
        let key = self.holder.describe();
        let key = key.trim_start_matches("its ");
        let items = self.items().map_err(|e| e.into_error(SEALED))?;
        let mut others = 0usize;
        for account in &items {
            // An item that cannot be read (its mode, an I/O error) might be
            // under another key: nothing is adopted until it can be.
            let bytes = self.read_item(account).map_err(|e| {
                refuse(format!(
                    "its item {account} cannot be read ({}); fix that and run again",
                    e.message
                ))
            })?;
            let Some(bytes) = bytes else { continue };
            match key_id_of(&bytes) {
                Ok(id) if id == configured.id() => {}
                Ok(_) => others += 1,
                // A sealed item of another format version names its key in
                // a way this rctoken does not know.
                Err(_) if bytes.len() > 4 && &bytes[..4] == MAGIC => {
                    return Err(refuse(format!(
                        "its item {account} has a sealed format this rctoken does not read; \
                         upgrade rctoken and run again"
                    )));
                }
                // Truncated or not a sealed item at all: repair's to drop,
                // and it says nothing about the key.
                Err(_) => {}
            }
        }
        if others > 0 {
            return Err(refuse(format!(
                "{others} of its {} item{} {} sealed under another key than the {}; \
                 configure the store's key (RCTOKEN_KEY_FILE) and run again",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                if others == 1 { "is" } else { "are" },
                key
            )));
        }
        // Copy first, then replace atomically: at no instant is there no
        // record (a store with none adopts any key without looking).
        let aside = files::copy_aside(&path, time::OffsetDateTime::now_utc().unix_timestamp())?;
        let record = Record {
            current: Some(Entry::new(configured.id(), self.holder.file())),
            next: None,
        };
        record.write(&self.dir).map_err(|e| e.into_error(SEALED))?;
        Ok(format!(
            "rebuilt the sealed store's key record {} for the {} ({} item{}, all sealed under \
             it; the damaged record is kept as {})",
            path.display(),
            key,
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            aside.display()
        ))
    }

    /// A sealed store over one key, for unit tests.
    #[cfg(test)]
    fn with_key(dir: &Path, service: &str, key: SealingKey) -> Self {
        std::fs::create_dir_all(dir.join(SEALED_DIR)).unwrap();
        Sealed {
            dir: dir.join(SEALED_DIR),
            service: service.to_string(),
            holder: KeyHolder::File(dir.join("key")),
            lock_timeout: Patience::new(std::time::Duration::from_secs(5), None),
            keys: Mutex::new(vec![Arc::new(key)]),
            rebuilt: None,
        }
    }

    /// Load the configured key, write the record if the store has none (or
    /// has no items and names another key), and load a rotation's keys.
    /// The caller holds the key lock exclusively.
    fn establish(&self) -> Result<(), Establish> {
        let mut record = Record::read(&self.dir).map_err(Establish::Error)?;
        let configured = match &self.holder {
            KeyHolder::File(path) => sealing_key::from_file(path).map_err(Establish::Error)?,
            KeyHolder::Keyutils(slot) => {
                match slot.read(Slot::Current).map_err(Establish::Keyutils)? {
                    Some(key) => key,
                    // The store was moved to a key file, and this process
                    // has none configured: refused before any key is made.
                    None if record.key_file().is_some() => {
                        return Err(Establish::Keychain(no_key_file(&record)));
                    }
                    None => {
                        let key = slot.create(Slot::Current).map_err(Establish::Keyutils)?;
                        // A keyutils key that is gone is gone for good (a
                        // reboot): items sealed under it can never open again,
                        // so the new key becomes the store's. Not so when the
                        // store's key is a key file (moved there by a rotation):
                        // then this process lacks the configuration.
                        if record.current.as_ref().is_none_or(|c| c.file.is_none()) {
                            record = Record {
                                current: Some(Entry::new(key.id(), None)),
                                next: None,
                            };
                            record.write(&self.dir).map_err(Establish::Keychain)?;
                        }
                        key
                    }
                }
            }
        };
        if record.is_empty() || (!record.knows(&configured.id()) && self.items()?.is_empty()) {
            record = Record {
                current: Some(Entry::new(configured.id(), self.holder.file())),
                next: None,
            };
            record.write(&self.dir).map_err(Establish::Keychain)?;
        }
        self.add_key(configured);
        self.load_rotation(&record);
        Ok(())
    }

    /// Load the keys a rotation under way needs that this process lacks:
    /// its target, and the key it rotates from when a key file holds it.
    fn load_rotation(&self, record: &Record) {
        let Some(next) = &record.next else { return };
        for entry in [Some(next), record.current.as_ref()].into_iter().flatten() {
            if self.key(&entry.id).is_some() {
                continue;
            }
            let key = match (&entry.file, &self.holder) {
                (Some(path), _) => sealing_key::from_file(path).ok(),
                (None, KeyHolder::Keyutils(slot)) if entry == next => {
                    slot.read(Slot::Next).ok().flatten()
                }
                (None, _) => None,
            };
            if let Some(key) = key.filter(|k| k.id() == entry.id) {
                self.add_key(key);
            }
        }
    }

    fn add_key(&self, key: SealingKey) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if !keys.iter().any(|k| k.id() == key.id()) {
            keys.push(Arc::new(key));
        }
    }

    fn key(&self, id: &[u8; 8]) -> Option<Arc<SealingKey>> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().find(|k| &k.id() == id).cloned()
    }

    /// The key `id`, loading keys afresh (under the key lock) if this
    /// process does not have it: another process may have rotated them.
    fn key_or_reload(&self, id: &[u8; 8]) -> Result<Arc<SealingKey>, KcError> {
        if let Some(key) = self.key(id) {
            return Ok(key);
        }
        let record = {
            let _lock = self.lock()?;
            let record = Record::read(&self.dir).map_err(io_error)?;
            if let KeyHolder::Keyutils(slot) = &self.holder
                && let Ok(Some(key)) = slot.read(Slot::Current)
            {
                self.add_key(key);
            }
            self.load_rotation(&record);
            record
        };
        if let Some(key) = self.key(id) {
            return Ok(key);
        }
        Err(self.missing_key(&record, id))
    }

    /// Why an item sealed under `id` cannot be opened here.
    fn missing_key(&self, record: &Record, id: &[u8; 8]) -> KcError {
        match record.current.as_ref().filter(|_| record.knows(id)) {
            // The store still uses that key: this process is configured
            // with another one.
            Some(current) => KcError::wrong_key(format!(
                "this store is sealed under {}, and {} is not that key",
                current.describe(),
                match &self.holder {
                    KeyHolder::File(p) => format!("the configured key file {}", p.display()),
                    KeyHolder::Keyutils(_) => "the key in keyutils".into(),
                }
            )),
            None => KcError::key_lost(self.holder.lost_reason()),
        }
    }

    /// The key new items are sealed under. The caller holds the key lock.
    fn sealing_key(&self) -> Result<Arc<SealingKey>, KcError> {
        let mut record = Record::read(&self.dir).map_err(io_error)?;
        if record.sealing().is_none() {
            // Someone removed the record (the last profile was logged out,
            // and with it the store's key): start afresh.
            self.establish().map_err(Establish::into_kc)?;
            record = Record::read(&self.dir).map_err(io_error)?;
        }
        let Some(entry) = record.sealing() else {
            return Err(KcError::other("sealed: the key record is missing"));
        };
        if let Some(key) = self.key(&entry.id) {
            return Ok(key);
        }
        if let KeyHolder::Keyutils(slot) = &self.holder
            && let Ok(Some(key)) = slot.read(Slot::Current)
        {
            self.add_key(key);
        }
        self.load_rotation(&record);
        self.key(&entry.id)
            .ok_or_else(|| self.missing_key(&record, &entry.id))
    }

    fn lock(&self) -> Result<crate::lock::FileLock, KcError> {
        sealing_key::key_lock(&self.dir, &self.lock_timeout)
            .map_err(|e| KcError::unavailable(format!("sealed: {e}")))
    }

    fn path(&self, account: &str) -> Result<PathBuf, KcError> {
        // Accounts are escaped stems (no separator, no leading dot); refuse
        // anything else rather than build a path from it.
        if account.is_empty() || account.starts_with('.') || account.contains(['/', '\\', '\0']) {
            return Err(KcError::other(format!(
                "sealed: `{account}` is not an item name"
            )));
        }
        Ok(self.dir.join(account))
    }

    /// The item files (every regular file not starting with a dot).
    fn items(&self) -> Result<Vec<String>, KcError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(KcError::other(format!(
                    "sealed: listing {}: {e}",
                    self.dir.display()
                )));
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temp files of interrupted writes and the key holder's files
            // start with a dot.
            if !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_file()) {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn read_item(&self, account: &str) -> Result<Option<Vec<u8>>, KcError> {
        let path = self.path(account)?;
        files::read_bounded(&path, HEADER_LEN + MAX_ITEM + TAG_LEN).map_err(io_error)
    }

    /// What binds an item's ciphertext to its place: the keychain
    /// namespace and the item's account.
    fn context(&self, account: &str) -> Vec<u8> {
        let mut context = Vec::with_capacity(self.service.len() + account.len() + 1);
        context.extend_from_slice(self.service.as_bytes());
        context.push(0);
        context.extend_from_slice(account.as_bytes());
        context
    }

    fn seal(&self, key: &SealingKey, account: &str, plain: &[u8]) -> Result<Vec<u8>, KcError> {
        seal(key, &self.context(account), plain)
    }

    /// Open a sealed file's bytes for `account` with the key its header
    /// names.
    fn open_item(&self, account: &str, bytes: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, KcError> {
        let id = key_id_of(&bytes)?;
        let key = self.key_or_reload(&id)?;
        self.open_with(&key, account, bytes)
    }

    fn open_with(
        &self,
        key: &SealingKey,
        account: &str,
        bytes: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, KcError> {
        open(key, &self.context(account), bytes)
    }
}

/// Seal `plain` under `key`, bound to `context` (the associated data is
/// the header and `context`): header, then the ciphertext and tag in a
/// buffer allocated once (no plaintext copy is ever reallocated). The
/// PostgreSQL engine seals its envelopes the same way.
pub(crate) fn seal(key: &SealingKey, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, KcError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| KcError::other(format!("sealed: no randomness for a nonce: {e}")))?;
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&key.id());
    out.extend_from_slice(&nonce);
    let aad = [&out[..], context].concat();
    out.extend_from_slice(plain);
    let tag = XChaCha20Poly1305::new(key.bytes().into())
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[HEADER_LEN..])
        .map_err(|_| KcError::other("sealed: encryption failed"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// The key id a sealed item's header names.
pub(crate) fn key_id_of(bytes: &[u8]) -> Result<[u8; 8], KcError> {
    if bytes.len() < HEADER_LEN + TAG_LEN || &bytes[..4] != MAGIC {
        return Err(KcError::corrupt(
            "the sealed file is truncated or not a sealed item",
        ));
    }
    if bytes[4] != VERSION {
        return Err(KcError::corrupt(format!(
            "the sealed file has format version {}; this rctoken reads version {VERSION}",
            bytes[4]
        )));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[5..13]);
    Ok(id)
}

/// Open what [`seal`] sealed under `key` for `context`.
pub(crate) fn open(
    key: &SealingKey,
    context: &[u8],
    mut bytes: Vec<u8>,
) -> Result<Zeroizing<Vec<u8>>, KcError> {
    if key_id_of(&bytes)? != key.id() {
        return Err(KcError::other("sealed: opened with the wrong key (a bug)"));
    }
    let header: [u8; HEADER_LEN] = match bytes[..HEADER_LEN].try_into() {
        Ok(h) => h,
        Err(_) => return Err(KcError::corrupt("the sealed file is truncated")),
    };
    let aad = [&header[..], context].concat();
    let tag_at = bytes.len() - TAG_LEN;
    let tag: [u8; TAG_LEN] = match bytes[tag_at..].try_into() {
        Ok(t) => t,
        Err(_) => return Err(KcError::corrupt("the sealed file is truncated")),
    };
    bytes.truncate(tag_at);
    // Decrypt in place, then drop the header: the plaintext never moves
    // to another allocation before it is wrapped for zeroizing.
    let body = &mut bytes[HEADER_LEN..];
    if XChaCha20Poly1305::new(key.bytes().into())
        .decrypt_in_place_detached(XNonce::from_slice(&header[13..]), &aad, body, (&tag).into())
        .is_err()
    {
        return Err(KcError::corrupt(
            "the sealed file fails authentication under this store's key: it was altered, \
             truncated, or moved from another profile or store",
        ));
    }
    let mut plain = Zeroizing::new(bytes);
    plain.drain(..HEADER_LEN);
    Ok(plain)
}

/// The refusal for a process with no key file configured when the store's
/// record names a key file as its key (exit 7, naming the file).
fn no_key_file(record: &Record) -> KcError {
    let current = record.key_file().map(Entry::describe);
    KcError::wrong_key(format!(
        "this store is sealed under {}, and no key file is configured",
        current.unwrap_or_default()
    ))
}

/// What a process that cannot keep a key in keyutils (Windows, macOS, a
/// container that blocks keyutils; `keyutils` says why) must say instead
/// of that, for the store in `sealed_dir`: [`no_key_file`]'s error if its
/// record names a key file, or the record's own error if it does not parse
/// (a damaged record is the thing to fix, whatever holds the key), saying
/// that only a key file can rebuild it here.
pub(crate) fn key_file_required(sealed_dir: &Path, keyutils: &str) -> Option<crate::Error> {
    let record = match Record::read(sealed_dir) {
        Ok(record) => record,
        Err(crate::Error::CorruptMetadata { path, reason }) => {
            return Some(crate::Error::CorruptMetadata {
                path,
                reason: format!(
                    "{reason}; kernel keyutils cannot be used here ({keyutils}), so only the \
                     store's key file can rebuild it: set RCTOKEN_KEY_FILE to it"
                ),
            });
        }
        Err(e) => return Some(e),
    };
    record.key_file()?;
    Some(no_key_file(&record).into_error(SEALED))
}

/// Why establishing the store's key failed.
enum Establish {
    Error(crate::Error),
    Keyutils(String),
    Keychain(KcError),
}

impl From<KcError> for Establish {
    fn from(e: KcError) -> Self {
        Establish::Keychain(e)
    }
}

impl Establish {
    fn into_error(self) -> crate::Error {
        match self {
            Establish::Error(e) => e,
            Establish::Keyutils(reason) => crate::Error::KeychainUnavailable {
                backend: SEALED.into(),
                reason: format!("its key cannot be kept in keyutils: {reason}"),
                source: None,
            },
            Establish::Keychain(e) => e.into_error(SEALED),
        }
    }

    fn into_kc(self) -> KcError {
        match self {
            Establish::Error(e) => KcError::other(format!("sealed: {e}")),
            Establish::Keyutils(reason) => KcError::unavailable(format!(
                "sealed: its key cannot be kept in keyutils: {reason}"
            )),
            Establish::Keychain(e) => e,
        }
    }
}

impl Keychain for Sealed {
    fn name(&self) -> &str {
        SEALED
    }

    fn max_item_bytes(&self) -> usize {
        MAX_ITEM
    }

    fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError> {
        let path = self.path(account)?;
        // Under the key lock: the key record cannot change between reading
        // which key seals and writing the item.
        let _lock = self.lock()?;
        let key = self.sealing_key()?;
        let sealed = self.seal(&key, account, &data)?;
        drop(data);
        files::write_atomic_unchecked(&path, &sealed).map_err(io_error)
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        match self.read_item(account)? {
            None => Ok(None),
            Some(bytes) => self.open_item(account, bytes).map(Some),
        }
    }

    fn delete(&self, account: &str) -> Result<bool, KcError> {
        let path = self.path(account)?;
        let existed = files::exists(&path) == Some(true);
        files::remove_durable(&path).map_err(io_error)?;
        Ok(existed)
    }

    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        self.items().map(Some)
    }

    fn rekey(&self, to: &RekeyTo) -> Result<RekeyReport, crate::Error> {
        rekey::rekey(self, to)
    }

    fn forget_key(&self) -> Result<(), KcError> {
        rekey::forget_key(self)
    }

    fn rebuilt(&self) -> Option<String> {
        self.rebuilt.clone()
    }
}

fn io_error(e: crate::Error) -> KcError {
    KcError::other(format!("sealed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, key: [u8; 32]) -> Sealed {
        Sealed::with_key(
            dir,
            "rctoken:t",
            SealingKey::from_bytes(Zeroizing::new(key)),
        )
    }

    #[test]
    fn round_trips_and_binds_the_account_and_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), [7; 32]);
        let plain = b"the envelope".to_vec();
        let id = s.keys.lock().unwrap()[0].id();
        let key = s.key(&id).unwrap();
        let sealed = s.seal(&key, "a.0000000000000001.0", &plain).unwrap();
        assert!(
            !sealed.windows(plain.len()).any(|w| w == plain),
            "ciphertext hides the plaintext"
        );
        let opened = s.open_item("a.0000000000000001.0", sealed.clone()).unwrap();
        assert_eq!(&opened[..], &plain[..]);
        // Another account: fails authentication.
        let e = s
            .open_item("b.0000000000000001.0", sealed.clone())
            .unwrap_err();
        assert_eq!(e.kind, super::super::KcKind::Corrupt);
        // One flipped bit anywhere: fails.
        for i in [0, 5, 13, HEADER_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                s.open_item("a.0000000000000001.0", bad).is_err(),
                "bit at {i}"
            );
        }
        // Truncated: fails.
        assert!(
            s.open_item("a.0000000000000001.0", sealed[..sealed.len() - 1].to_vec())
                .is_err()
        );
        // Another key: reported as a lost key, not as tampering.
        let other = store(tmp.path(), [8; 32]);
        let e = other.open_item("a.0000000000000001.0", sealed).unwrap_err();
        assert_eq!(e.kind, super::super::KcKind::KeyLost);
    }

    #[test]
    fn refuses_names_that_are_not_items() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), [7; 32]);
        for bad in ["", ".x", "../x", "a/b", "a\0b"] {
            assert!(s.path(bad).is_err(), "{bad:?}");
        }
    }
}
