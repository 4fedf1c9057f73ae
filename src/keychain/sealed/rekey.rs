//! Key rotation: re-seal every item of a sealed store under a new key, and
//! forgetting the key once the store holds nothing.
//!
//! Crash safety: each item is re-sealed by an atomic replace of its file,
//! and the key record names both keys until every item is under the new
//! one, so at any instant each item opens with the old key or the new.
//!
//! 1. Check that every item opens with a key this process has (nothing is
//!    changed otherwise).
//! 2. Have the new key: keyutils creates it as `…:<store id>.next`; a key
//!    file is the caller's.
//! 3. Record it as `next` (from here on, every writer seals under it).
//! 4. Re-seal each item not yet under it.
//! 5. Commit: keyutils updates the store's key in place to the new one
//!    (atomic); the record's `current` becomes the new key; the `.next`
//!    key is deleted.
//!
//! A rotation that was interrupted is finished by running it again with
//! the same target.

use std::path::PathBuf;

use super::record::{Entry, Record};
use super::{SEALED, Sealed};
use crate::error::Error;
use crate::files;
use crate::keychain::sealing_key::{self, KeyHolder, Slot};
use crate::keychain::{KcError, KcKind};

/// What to re-seal under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RekeyTo {
    /// A new random key in keyutils.
    Keyutils,
    /// The key in this key file.
    File(PathBuf),
}

/// What a rotation did.
#[derive(Clone, Debug)]
pub(crate) struct RekeyReport {
    /// Item files in the store.
    pub items: usize,
    /// Items re-sealed by this run (fewer than `items` when it finished an
    /// interrupted rotation).
    pub resealed: usize,
    /// Where the new key is.
    pub key: String,
}

pub(super) fn rekey(s: &Sealed, to: &RekeyTo) -> Result<RekeyReport, Error> {
    let kc = |e: KcError| e.into_error(SEALED);
    let _lock = s.lock().map_err(kc)?;
    let mut record = Record::read(&s.dir)?;
    let Some(current) = record.current.clone() else {
        return Err(cannot("the store has no key yet; save a profile first"));
    };
    // A rotation to a key file that already finished (the configured key
    // is the old one): nothing to do, so running it again is harmless.
    if let (RekeyTo::File(path), None, KeyHolder::File(configured)) = (to, &record.next, &s.holder)
    {
        let target = sealing_key::from_file(path)?;
        if target.id() == current.id && sealing_key::from_file(configured)?.id() != current.id {
            return Ok(RekeyReport {
                items: s.items().map_err(kc)?.len(),
                resealed: 0,
                key: format!("the key in the key file {} (already)", path.display()),
            });
        }
    }
    s.load_rotation(&record);
    // 1. Every item opens with a key we have, or nothing changes.
    let items = s.items().map_err(kc)?;
    for account in &items {
        let Some(bytes) = s.read_item(account).map_err(kc)? else {
            continue;
        };
        let id = super::key_id_of(&bytes).map_err(|e| refuse(account, e))?;
        if s.key(&id).is_none() {
            return Err(refuse(account, s.missing_key(&record, &id)));
        }
    }
    // 2. The new key.
    let (target, entry) = match (&record.next, to, &s.holder) {
        (Some(next), RekeyTo::Keyutils, KeyHolder::Keyutils(slot)) if next.file.is_none() => {
            let key = slot.read(Slot::Next).map_err(keyutils)?;
            match key.filter(|k| k.id() == next.id) {
                Some(key) => (key, next.clone()),
                None => {
                    return Err(cannot(
                        "the new key of the interrupted rotation is gone from keyutils \
                         (a reboot?): the profiles it re-sealed cannot open; run \
                         `rctoken doctor --fix` and log in again to those",
                    ));
                }
            }
        }
        (Some(next), RekeyTo::File(path), _) if next.file.as_deref() == Some(path.as_path()) => {
            let key = sealing_key::from_file(path)?;
            if key.id() != next.id {
                return Err(cannot(format!(
                    "the key file {} no longer holds the key the interrupted rotation \
                     re-seals under",
                    path.display()
                )));
            }
            (key, next.clone())
        }
        (Some(next), _, _) => {
            return Err(cannot(format!(
                "an interrupted key rotation to {} is pending: run the rotation again \
                 with that target to finish it",
                next.describe()
            )));
        }
        (None, RekeyTo::Keyutils, KeyHolder::Keyutils(slot)) => {
            // A `.next` key with no record of it was left by a rotation that
            // died before step 3: nothing is sealed under it yet.
            let key = match slot.read(Slot::Next).map_err(keyutils)? {
                Some(key) => key,
                None => slot.create(Slot::Next).map_err(keyutils)?,
            };
            let id = key.id();
            (key, Entry::new(id, None))
        }
        (None, RekeyTo::Keyutils, KeyHolder::File(path)) => {
            return Err(cannot(format!(
                "this store's key is in the key file {}: a key file store rotates to a \
                 new key file you make (give it with --new-key-file)",
                path.display()
            )));
        }
        (None, RekeyTo::File(path), _) => {
            let key = sealing_key::from_file(path)?;
            if key.id() == current.id {
                return Err(cannot(format!(
                    "the store is already sealed under the key in {}; make a new key file",
                    path.display()
                )));
            }
            let id = key.id();
            (key, Entry::new(id, Some(path)))
        }
    };
    // 3. Record it: from here on every writer seals under it.
    if record.next.is_none() {
        record.next = Some(entry.clone());
        record.write(&s.dir).map_err(kc)?;
    }
    // 4. Re-seal.
    let mut resealed = 0;
    for account in &items {
        let Some(bytes) = s.read_item(account).map_err(kc)? else {
            continue;
        };
        let id = super::key_id_of(&bytes).map_err(kc)?;
        if id == target.id() {
            continue;
        }
        let Some(key) = s.key(&id) else {
            return Err(refuse(account, s.missing_key(&record, &id)));
        };
        let plain = s
            .open_with(&key, account, bytes)
            .map_err(|e| refuse(account, e))?;
        let sealed = s.seal(&target, account, &plain).map_err(kc)?;
        drop(plain);
        files::write_atomic_unchecked(&s.path(account).map_err(kc)?, &sealed)?;
        resealed += 1;
        #[cfg(feature = "failpoints")]
        delay_point();
    }
    // 5. Commit.
    let key = match (&s.holder, &entry.file) {
        (KeyHolder::Keyutils(slot), None) => {
            slot.put(Slot::Current, &target).map_err(keyutils)?;
            Record {
                current: Some(entry),
                next: None,
            }
            .write(&s.dir)
            .map_err(kc)?;
            slot.delete(Slot::Next).map_err(keyutils)?;
            format!(
                "a new key in kernel keyutils (`{}`)",
                slot.description(Slot::Current)
            )
        }
        (holder, Some(path)) => {
            let key = format!("the key in the key file {}", path.display());
            Record {
                current: Some(entry.clone()),
                next: None,
            }
            .write(&s.dir)
            .map_err(kc)?;
            // A store moved from keyutils to a key file: its old key is
            // of no further use.
            if let KeyHolder::Keyutils(slot) = holder {
                let _ = slot.delete(Slot::Current);
                let _ = slot.delete(Slot::Next);
            }
            key
        }
        (KeyHolder::File(_), None) => {
            return Err(Error::Internal {
                reason: "sealed: a key file store has no keyutils key".into(),
            });
        }
    };
    s.add_key(target);
    Ok(RekeyReport {
        items: items.len(),
        resealed,
        key,
    })
}

/// After the last item is gone: delete the store's keyutils keys and the
/// key record (the next save starts with a fresh key). A key file is the
/// user's and stays. Does nothing while any item is left.
pub(super) fn forget_key(s: &Sealed) -> Result<(), KcError> {
    let _lock = s.lock()?;
    if !s.items()?.is_empty() {
        return Ok(());
    }
    if let KeyHolder::Keyutils(slot) = &s.holder {
        slot.delete(Slot::Next).map_err(KcError::unavailable)?;
        slot.delete(Slot::Current).map_err(KcError::unavailable)?;
    }
    Record::default().write(&s.dir)
}

fn cannot(reason: impl Into<String>) -> Error {
    Error::CannotRotate {
        reason: reason.into(),
    }
}

fn keyutils(reason: String) -> Error {
    Error::KeychainUnavailable {
        backend: SEALED.into(),
        reason: format!("its key cannot be kept in keyutils: {reason}"),
        source: None,
    }
}

/// A rotation stopped by `account`, which does not open: before anything
/// changed (step 1) or, for an item altered meanwhile, midway (every item
/// still opens with the key it is sealed under).
fn refuse(account: &str, e: KcError) -> Error {
    match e.kind {
        KcKind::Unavailable | KcKind::Other | KcKind::Full | KcKind::Bug => e.into_error(SEALED),
        KcKind::Corrupt | KcKind::KeyLost | KcKind::WrongKey => cannot(format!(
            "the item `{account}` does not open ({}); run `rctoken doctor` (and `doctor --fix` \
             for profiles whose key is gone) before rotating",
            e.message
        )),
    }
}

/// Failpoint (feature `failpoints`): sleep `RCTOKEN_TEST_REKEY_DELAY_MS`
/// after each re-sealed item, so a test can kill a rotation midway.
#[cfg(feature = "failpoints")]
fn delay_point() {
    if let Some(ms) = std::env::var("RCTOKEN_TEST_REKEY_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
