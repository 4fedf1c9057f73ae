//! The sealed store's key record (`sealed/.keys`): the id of the key the
//! store is sealed under and, while a key rotation is under way, the id of
//! the key it re-seals under. Written atomically under the key lock.
//!
//! ```text
//! rctoken sealed-store keys v1
//! current <key id, 16 hex digits>[ <key file>]
//! next <key id>[ <key file>]
//! ```
//!
//! The record is what lets the store tell a key that is *gone* (keyutils
//! was cleared at reboot: log in again, `doctor --fix` drops what cannot
//! open) from a key that is *not configured* (another key file than the
//! store's: exit 7, nothing is dropped and nothing is sealed under the
//! wrong key). Key ids reveal nothing of the keys (see `SealingKey::id`).

use std::path::{Path, PathBuf};

use crate::files;
use crate::keychain::KcError;

pub(super) const RECORD_FILE: &str = ".keys";
const HEADER: &str = "rctoken sealed-store keys v1";
const MAX_RECORD: usize = 16 << 10;

/// One key the record names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: [u8; 8],
    /// The key file it was read from, for a key file holder (so a reader
    /// can name it, and a reader resuming a rotation can load it).
    pub file: Option<PathBuf>,
}

impl Entry {
    pub(crate) fn new(id: [u8; 8], file: Option<&Path>) -> Entry {
        Entry {
            id,
            file: file.map(Path::to_path_buf),
        }
    }

    /// Where the key is, for messages.
    pub(crate) fn describe(&self) -> String {
        match &self.file {
            Some(path) => format!("the key in the key file {}", path.display()),
            None => "its key in kernel keyutils".into(),
        }
    }
}

/// The key record; empty when the store has none yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    pub current: Option<Entry>,
    pub next: Option<Entry>,
}

impl Record {
    /// The current key's entry, when a key file holds that key.
    pub(crate) fn key_file(&self) -> Option<&Entry> {
        self.current.as_ref().filter(|c| c.file.is_some())
    }

    /// Read `sealed_dir`'s record; empty if there is none.
    ///
    /// # Errors
    /// [`crate::Error::CorruptMetadata`] when the file does not parse (its
    /// hint, `doctor --fix`, rebuilds it: see `Sealed::rebuild_record`), or
    /// the I/O error reading it.
    pub(crate) fn read(sealed_dir: &Path) -> Result<Record, crate::Error> {
        let path = sealed_dir.join(RECORD_FILE);
        let Some(bytes) = files::read_bounded(&path, MAX_RECORD)? else {
            return Ok(Record::default());
        };
        Self::parse(&bytes).ok_or_else(|| crate::Error::CorruptMetadata {
            path,
            reason: "the sealed store's key record (which key its items are sealed under) \
                     does not parse"
                .into(),
        })
    }

    fn parse(bytes: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut record = Record::default();
        for line in lines.filter(|l| !l.is_empty()) {
            let (which, rest) = line.split_once(' ')?;
            let (hex, file) = match rest.split_once(' ') {
                Some((hex, file)) => (hex, Some(PathBuf::from(file))),
                None => (rest, None),
            };
            let entry = Entry {
                id: parse_id(hex)?,
                file,
            };
            let slot = match which {
                "current" => &mut record.current,
                "next" => &mut record.next,
                _ => return None,
            };
            if slot.replace(entry).is_some() {
                return None;
            }
        }
        Some(record)
    }

    /// Write the record atomically (an empty record removes the file). The
    /// caller holds the key lock.
    pub(crate) fn write(&self, sealed_dir: &Path) -> Result<(), KcError> {
        let path = sealed_dir.join(RECORD_FILE);
        let io = |e: crate::Error| KcError::other(format!("sealed: {e}"));
        if self.current.is_none() && self.next.is_none() {
            return files::remove_durable(&path).map_err(io);
        }
        let mut text = format!("{HEADER}\n");
        for (which, entry) in [("current", &self.current), ("next", &self.next)] {
            let Some(entry) = entry else { continue };
            text.push_str(which);
            text.push(' ');
            text.push_str(&hex_id(&entry.id));
            if let Some(file) = &entry.file {
                let file = file.to_str().filter(|f| !f.contains(['\n', '\r']));
                let Some(file) = file else {
                    return Err(KcError::other(
                        "sealed: the key file's path is not UTF-8 or has a line break; \
                         move the key file to a plainer path",
                    ));
                };
                text.push(' ');
                text.push_str(file);
            }
            text.push('\n');
        }
        files::write_atomic_unchecked(&path, text.as_bytes()).map_err(io)
    }

    /// Whether the record names the key `id`.
    pub(crate) fn knows(&self, id: &[u8; 8]) -> bool {
        [&self.current, &self.next]
            .into_iter()
            .flatten()
            .any(|e| &e.id == id)
    }

    /// The key new items are sealed under: the rotation's target while one
    /// is under way, else the current key.
    pub(crate) fn sealing(&self) -> Option<&Entry> {
        self.next.as_ref().or(self.current.as_ref())
    }

    /// Whether this record has never been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.current.is_none() && self.next.is_none()
    }
}

fn hex_id(id: &[u8; 8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_id(hex: &str) -> Option<[u8; 8]> {
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 8];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(Record::read(tmp.path()).unwrap().is_empty());
        let rec = Record {
            current: Some(Entry::new([1, 2, 3, 4, 5, 6, 7, 8], None)),
            next: Some(Entry::new([9; 8], Some(Path::new("/run/secrets/a key")))),
        };
        rec.write(tmp.path()).unwrap();
        let back = Record::read(tmp.path()).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.sealing().unwrap().id, [9; 8]);
        assert!(back.knows(&[1, 2, 3, 4, 5, 6, 7, 8]) && !back.knows(&[0; 8]));
        for bad in [
            "nonsense\n",
            "rctoken sealed-store keys v1\ncurrent 12\n",
            "rctoken sealed-store keys v1\nother 0102030405060708\n",
            "rctoken sealed-store keys v1\ncurrent 0102030405060708\ncurrent 0102030405060708\n",
        ] {
            std::fs::write(tmp.path().join(RECORD_FILE), bad).unwrap();
            let e = Record::read(tmp.path()).unwrap_err();
            assert!(
                matches!(&e, crate::Error::CorruptMetadata { path, .. } if path.ends_with(RECORD_FILE)),
                "{bad:?}: {e}"
            );
        }
        Record::default().write(tmp.path()).unwrap();
        assert!(!tmp.path().join(RECORD_FILE).exists());
    }
}
