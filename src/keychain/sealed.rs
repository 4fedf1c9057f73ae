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

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::sealing_key::{KeyHolder, SealingKey};
use super::{KcError, Keychain};
use crate::files;

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

pub(crate) struct Sealed {
    dir: PathBuf,
    service: String,
    key: SealingKey,
    holder: KeyHolder,
}

impl Sealed {
    pub(crate) fn new(store_dir: &Path, service: &str, key: SealingKey, holder: KeyHolder) -> Self {
        Sealed {
            dir: store_dir.join(SEALED_DIR),
            service: service.to_string(),
            key,
            holder,
        }
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

    fn aad(&self, header: &[u8], account: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + self.service.len() + account.len() + 1);
        aad.extend_from_slice(header);
        aad.extend_from_slice(self.service.as_bytes());
        aad.push(0);
        aad.extend_from_slice(account.as_bytes());
        aad
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.bytes().into())
    }

    /// Seal `plain` for `account`: header, then the ciphertext and tag in a
    /// buffer allocated once (no plaintext copy is ever reallocated).
    fn seal(&self, account: &str, plain: &[u8]) -> Result<Vec<u8>, KcError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| KcError::other(format!("sealed: no randomness for a nonce: {e}")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.key.id());
        out.extend_from_slice(&nonce);
        let aad = self.aad(&out, account);
        out.extend_from_slice(plain);
        let tag = self
            .cipher()
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[HEADER_LEN..])
            .map_err(|_| KcError::other("sealed: encryption failed"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Open a sealed file's bytes for `account`.
    fn open(&self, account: &str, mut bytes: Vec<u8>) -> Result<Zeroizing<Vec<u8>>, KcError> {
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
        if bytes[5..13] != self.key.id() {
            return Err(KcError::key_lost(self.holder.lost_reason()));
        }
        let header: [u8; HEADER_LEN] = match bytes[..HEADER_LEN].try_into() {
            Ok(h) => h,
            Err(_) => return Err(KcError::corrupt("the sealed file is truncated")),
        };
        let aad = self.aad(&header, account);
        let tag_at = bytes.len() - TAG_LEN;
        let tag: [u8; TAG_LEN] = match bytes[tag_at..].try_into() {
            Ok(t) => t,
            Err(_) => return Err(KcError::corrupt("the sealed file is truncated")),
        };
        bytes.truncate(tag_at);
        // Decrypt in place, then drop the header: the plaintext never moves
        // to another allocation before it is wrapped for zeroizing.
        let body = &mut bytes[HEADER_LEN..];
        if self
            .cipher()
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
        let sealed = self.seal(account, &data)?;
        drop(data);
        files::ensure_private_dir(&self.dir).map_err(io_error)?;
        files::write_atomic_unchecked(&path, &sealed).map_err(io_error)
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        let path = self.path(account)?;
        match files::read_bounded(&path, HEADER_LEN + MAX_ITEM + TAG_LEN).map_err(io_error)? {
            None => Ok(None),
            Some(bytes) => self.open(account, bytes).map(Some),
        }
    }

    fn delete(&self, account: &str) -> Result<bool, KcError> {
        let path = self.path(account)?;
        let existed = files::exists(&path) == Some(true);
        files::remove_durable(&path).map_err(io_error)?;
        Ok(existed)
    }

    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(Vec::new())),
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
        Ok(Some(out))
    }
}

fn io_error(e: crate::Error) -> KcError {
    KcError::other(format!("sealed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, key: [u8; 32]) -> Sealed {
        Sealed::new(
            dir,
            "rctoken:t",
            SealingKey::from_bytes(Zeroizing::new(key)),
            KeyHolder::File(dir.join("key")),
        )
    }

    #[test]
    fn round_trips_and_binds_the_account_and_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), [7; 32]);
        let plain = b"the envelope".to_vec();
        let sealed = s.seal("a.0000000000000001.0", &plain).unwrap();
        assert!(
            !sealed.windows(plain.len()).any(|w| w == plain),
            "ciphertext hides the plaintext"
        );
        let opened = s.open("a.0000000000000001.0", sealed.clone()).unwrap();
        assert_eq!(&opened[..], &plain[..]);
        // Another account: fails authentication.
        let e = s.open("b.0000000000000001.0", sealed.clone()).unwrap_err();
        assert_eq!(e.kind, super::super::KcKind::Corrupt);
        // One flipped bit anywhere: fails.
        for i in [0, 5, 13, HEADER_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(s.open("a.0000000000000001.0", bad).is_err(), "bit at {i}");
        }
        // Truncated: fails.
        assert!(
            s.open("a.0000000000000001.0", sealed[..sealed.len() - 1].to_vec())
                .is_err()
        );
        // Another key: reported as a lost key, not as tampering.
        let other = store(tmp.path(), [8; 32]);
        let e = other.open("a.0000000000000001.0", sealed).unwrap_err();
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
