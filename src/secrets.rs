//! One generation of one profile's secrets in the keychain: read, write,
//! reserve and delete its items over `&dyn Keychain`, and the mapping of
//! keychain failures to [`Error`]. Knows the envelope and the item names;
//! knows nothing of metadata files.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::envelope::{self, Decoded};
use crate::error::{Error, Result};
use crate::keychain::{KcError, KcKind, Keychain};
use crate::metadata::SecretRef;
use crate::names;

/// Why a profile's envelope could not be read.
pub(crate) enum ReadFail {
    WrongBackend,
    Missing,
    Version(u8),
    Malformed(String),
    /// Sealed under a key the store no longer has.
    KeyLost(String),
    Keychain(KcError),
}

impl From<envelope::EnvelopeError> for ReadFail {
    fn from(e: envelope::EnvelopeError) -> Self {
        match e {
            envelope::EnvelopeError::Version(m) => ReadFail::Version(m),
            envelope::EnvelopeError::Malformed(m) => ReadFail::Malformed(m),
        }
    }
}

/// An envelope field that cannot hold its length, as a library error
/// (nothing was written).
pub(crate) fn too_large(e: envelope::TooLarge) -> Error {
    Error::TooLarge {
        what: e.0.to_string(),
    }
}

/// A keychain failure as a library error.
pub(crate) fn kc_error(kc: &dyn Keychain, e: KcError) -> Error {
    e.into_error(kc.name())
}

/// The error a caller sees for a failed read of `key`'s secrets.
pub(crate) fn read_error(
    kc: &dyn Keychain,
    key: &str,
    secret: &SecretRef,
    fail: ReadFail,
) -> Error {
    match fail {
        ReadFail::WrongBackend => wrong_backend(kc, key, secret),
        ReadFail::Missing => Error::SecretMissing {
            profile: key.to_string(),
            backend: kc.name().to_string(),
        },
        ReadFail::Version(v) if v > envelope::ENVELOPE_VERSION => Error::SecretsTooNew {
            profile: key.to_string(),
            found: v,
            supported: envelope::ENVELOPE_VERSION,
        },
        ReadFail::Version(v) => Error::CorruptSecret {
            profile: key.to_string(),
            reason: envelope::EnvelopeError::Version(v).to_string(),
        },
        ReadFail::Malformed(reason) => Error::CorruptSecret {
            profile: key.to_string(),
            reason,
        },
        ReadFail::KeyLost(reason) => Error::SealingKeyLost {
            profile: key.to_string(),
            reason,
        },
        ReadFail::Keychain(e) => kc_error(kc, e),
    }
}

/// The profile's secrets are in another backend than `kc`.
pub(crate) fn wrong_backend(kc: &dyn Keychain, key: &str, secret: &SecretRef) -> Error {
    Error::WrongBackend {
        profile: key.to_string(),
        held_by: secret.backend.clone(),
        backend: kc.name().to_string(),
    }
}

/// Read and decode the envelope `secret` points at.
pub(crate) fn read(
    kc: &dyn Keychain,
    key: &str,
    secret: &SecretRef,
) -> std::result::Result<Decoded, ReadFail> {
    if secret.backend != kc.name() {
        return Err(ReadFail::WrongBackend);
    }
    let decoded = read_generation(kc, &names::stem(key), &secret.generation, secret.items)?;
    if decoded.key != key {
        return Err(ReadFail::Malformed(
            "the item belongs to another profile or save".into(),
        ));
    }
    Ok(decoded)
}

/// Read and decode the `count` items of generation `generation` of the
/// profile whose [stem](names::stem) is `stem`.
pub(crate) fn read_generation(
    kc: &dyn Keychain,
    stem: &str,
    generation: &str,
    count: u16,
) -> std::result::Result<Decoded, ReadFail> {
    let gen_num = u64::from_str_radix(generation, 16)
        .map_err(|_| ReadFail::Malformed("bad generation in metadata".into()))?;
    let mut items = Vec::with_capacity(usize::from(count));
    for index in 0..count {
        match kc.get(&names::stem_account(stem, generation, index)) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return Err(ReadFail::Missing),
            Err(e) if e.kind == KcKind::Corrupt => return Err(ReadFail::Malformed(e.message)),
            Err(e) if e.kind == KcKind::KeyLost => return Err(ReadFail::KeyLost(e.message)),
            Err(e) => return Err(ReadFail::Keychain(e)),
        }
    }
    let joined = envelope::join(&items, gen_num)?;
    drop(items);
    let decoded = envelope::decode(&joined)?;
    if decoded.generation != gen_num || names::stem(&decoded.key) != stem {
        return Err(ReadFail::Malformed(
            "the item belongs to another profile or save".into(),
        ));
    }
    Ok(decoded)
}

/// Write `envelope` as generation `generation` of `key`, split into items.
/// On failure the items already written are deleted. Returns the count.
pub(crate) fn write(kc: &dyn Keychain, key: &str, generation: u64, envelope: &[u8]) -> Result<u16> {
    let items = split(kc, generation, envelope)?;
    let gen_hex = names::generation_hex(generation);
    let count = len_u16(items.len());
    for (index, item) in (0..count).zip(items) {
        if let Err(e) = kc.set(&names::item_account(key, &gen_hex, index), item) {
            undo_write(kc, key, &gen_hex, index, &e);
            return Err(kc_error(kc, e));
        }
    }
    Ok(count)
}

/// Clean up after the write of item `failed` failed with `e`. If the
/// keychain did not answer in time, the write may still land later, so item
/// 0 (the owner record) stays for `repair` to find the generation by; a
/// late item without it could not be told from another store's.
fn undo_write(kc: &dyn Keychain, key: &str, gen_hex: &str, failed: u16, e: &KcError) {
    let stem = names::stem(key);
    let keep_first = e.kind == KcKind::Unavailable && failed > 0;
    for index in (u16::from(keep_first)..=failed).rev() {
        let account = names::stem_account(&stem, gen_hex, index);
        if let Err(e) = kc.delete(&account) {
            log::warn!("could not delete keychain item `{account}`: {e:?}");
            return;
        }
    }
}

/// Split an envelope into items for `kc`, refusing one that would need more
/// than 65,535 items.
fn split(kc: &dyn Keychain, generation: u64, envelope: &[u8]) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let max = kc.max_item_bytes();
    envelope::split(envelope, generation, max).map_err(|_| Error::KeychainFull {
        backend: kc.name().to_string(),
        reason: format!(
            "the secrets need more than {} items of {max} bytes",
            u16::MAX
        ),
    })
}

fn len_u16(n: usize) -> u16 {
    // `envelope::split` makes at most u16::MAX items.
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Best-effort deletion of items `0..count` of a generation, last item
/// first, stopping at the first failure: item 0 (which carries the owner
/// record) goes last, so any item left by an interrupted or failed delete
/// has its item 0 beside it and `repair` can tell whose it is.
pub(crate) fn delete(kc: &dyn Keychain, key: &str, generation: &str, count: u16) {
    delete_stem(kc, &names::stem(key), generation, count);
}

/// [`delete`] by stem.
pub(crate) fn delete_stem(kc: &dyn Keychain, stem: &str, generation: &str, count: u16) {
    for index in (0..count).rev() {
        let account = names::stem_account(stem, generation, index);
        if let Err(e) = kc.delete(&account) {
            log::warn!("could not delete keychain item `{account}`: {e:?}");
            return;
        }
    }
}

/// Delete every item of `secret`, failing on the first keychain error.
pub(crate) fn delete_all(kc: &dyn Keychain, key: &str, secret: &SecretRef) -> Result<()> {
    if secret.backend != kc.name() {
        return Err(wrong_backend(kc, key, secret));
    }
    for index in (0..secret.items).rev() {
        kc.delete(&names::item_account(key, &secret.generation, index))
            .map_err(|e| kc_error(kc, e))?;
    }
    Ok(())
}

/// The part of an envelope's record that says which store wrote it. Every
/// save records the store directory, so `repair` can tell an item of this
/// store from one of another store of the same app id.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Owner {
    /// The absolute store directory that wrote the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_dir: Option<String>,
    /// A placeholder that reserves space for a refresh, never a profile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reservation: bool,
}

/// Who wrote the generation that `account` belongs to, from its item 0, if
/// that can be read. (`reservation` is reliable only when item 0 holds the
/// whole record; [`read_generation`] gives the whole record.)
pub(crate) fn owner_of(kc: &dyn Keychain, item: &str) -> Option<Owner> {
    let (stem, generation, _) = names::parse_account(item)?;
    let first = kc.get(&names::stem_account(&stem, &generation, 0)).ok()??;
    let gen_num = u64::from_str_radix(&generation, 16).ok()?;
    let count = envelope::item_header_count(&first)?;
    let payload = envelope::item_payload(&first, gen_num, 0, count).ok()?;
    let record = envelope::peek_record(payload)?;
    if let Ok(owner) = serde_json::from_slice(record) {
        return Some(owner);
    }
    // Cut short (small items): the store directory comes first.
    let rest = record.strip_prefix(br#"{"store_dir":"#.as_slice())?;
    let dir = serde_json::Deserializer::from_slice(rest)
        .into_iter::<String>()
        .next()?
        .ok()?;
    Some(Owner {
        store_dir: Some(dir),
        reservation: false,
    })
}

/// Keychain space set aside for a refresh before the refresh token is
/// spent: placeholder items of a fresh generation, as large as the old
/// envelope plus a margin. Filling them later replaces their bytes in place,
/// which on keyutils needs no more quota than the placeholders hold.
#[derive(Clone, Copy)]
pub(crate) struct Reservation {
    pub generation: u64,
    pub items: u16,
}

/// How many bytes to reserve for a new envelope when the current one has
/// `current` bytes: an eighth more, at least 512 bytes more. Token sizes
/// barely change from one refresh to the next.
pub(crate) fn reserve_bytes(current: usize) -> usize {
    current + (current / 8).max(512)
}

/// Reserve `bytes` bytes of envelope for generation `generation` of `key`.
/// The placeholder is a well-formed envelope whose record says it is a
/// reservation of `store_dir`, so `repair` deletes one left by a crash.
pub(crate) fn reserve(
    kc: &dyn Keychain,
    key: &str,
    generation: u64,
    bytes: usize,
    store_dir: &str,
) -> Result<Reservation> {
    let record = serde_json::to_vec(&Owner {
        store_dir: Some(store_dir.to_string()),
        reservation: true,
    })
    .map_err(|e| Error::Internal {
        reason: format!("could not encode a reservation: {e}"),
    })?;
    let bare = envelope::encode(
        key,
        generation,
        &record,
        &SecretString::from(""),
        None,
        None,
        None,
    )
    .map_err(too_large)?;
    let filler = "0".repeat(bytes.saturating_sub(bare.len()));
    let placeholder = envelope::encode(
        key,
        generation,
        &record,
        &SecretString::from(filler),
        None,
        None,
        None,
    )
    .map_err(too_large)?;
    let items = write(kc, key, generation, &placeholder)?;
    Ok(Reservation { generation, items })
}

/// Write `envelope` into a reservation: overwrite the placeholder items,
/// write any extra ones, delete the ones not needed. On failure the whole
/// generation is deleted. Returns the item count.
pub(crate) fn fill(
    kc: &dyn Keychain,
    key: &str,
    res: &Reservation,
    envelope: &[u8],
) -> Result<u16> {
    let gen_hex = names::generation_hex(res.generation);
    let items = match split(kc, res.generation, envelope) {
        Ok(items) => items,
        Err(e) => {
            release(kc, key, res);
            return Err(e);
        }
    };
    let count = len_u16(items.len());
    for (index, item) in (0..count).zip(items) {
        if let Err(e) = kc.set(&names::item_account(key, &gen_hex, index), item) {
            // Placeholders beyond the failed item, then what was written.
            let stem = names::stem(key);
            for above in (index + 1..count.max(res.items)).rev() {
                if kc
                    .delete(&names::stem_account(&stem, &gen_hex, above))
                    .is_err()
                {
                    return Err(kc_error(kc, e));
                }
            }
            undo_write(kc, key, &gen_hex, index, &e);
            return Err(kc_error(kc, e));
        }
    }
    for index in (count..res.items).rev() {
        let account = names::item_account(key, &gen_hex, index);
        if let Err(e) = kc.delete(&account) {
            log::warn!("could not delete reserved keychain item `{account}`: {e:?}");
        }
    }
    Ok(count)
}

/// Give a reservation back.
pub(crate) fn release(kc: &dyn Keychain, key: &str, res: &Reservation) {
    delete(kc, key, &names::generation_hex(res.generation), res.items);
}

#[cfg(test)]
mod tests {
    #[test]
    fn partial_owner_parses() {
        let rest = br#""/tmp/.tmpabc/store","reservation":true}"#;
        let dir = serde_json::Deserializer::from_slice(rest.as_slice())
            .into_iter::<String>()
            .next();
        assert_eq!(dir.unwrap().unwrap(), "/tmp/.tmpabc/store");
        let cut = br#""/tmp/.tmpabc/store","reserva"#;
        let dir = serde_json::Deserializer::from_slice(cut.as_slice())
            .into_iter::<String>()
            .next();
        assert_eq!(dir.unwrap().unwrap(), "/tmp/.tmpabc/store");
    }
}
