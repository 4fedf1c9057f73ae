//! The secret envelope: all secrets of one profile in one versioned blob, and
//! its split into keychain items when a backend limits item size.
//!
//! Envelope v2 (big-endian integers):
//! `"RCTE" | version u8 = 2 | generation u64 | key: u16 len + UTF-8 |
//!  record: u32 len + JSON of the non-secret ProfileInfo |
//!  access: u32 len + bytes | refresh: u8 present + u32 len + bytes |
//!  id: u8 present + u32 len + bytes | client secret: u8 present + u32 len + bytes`
//!
//! v1 is the same without the client secret; this build reads both and
//! writes v2. An older build reads a v2 envelope as "newer", which it
//! leaves alone, rather than as damaged.
//!
//! Item v1: `"RCTI" | version u8 = 1 | generation u64 | index u16 | count u16 | payload`,
//! where the payloads of items `0..count` concatenate to the envelope.
//!
//! Every buffer holding envelope bytes is a `Zeroizing<Vec<u8>>` allocated once
//! at its final size, so no reallocation leaves a copy behind.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// The envelope format version this build writes (it reads this one and
/// every older one, from 1).
pub const ENVELOPE_VERSION: u8 = 2;

/// The item framing version (independent of the envelope's).
const ITEM_VERSION: u8 = 1;

/// Whether this build reads envelopes of `version`.
pub(crate) fn readable(version: u8) -> bool {
    (1..=ENVELOPE_VERSION).contains(&version)
}
const MAGIC: &[u8; 4] = b"RCTE";
const ITEM_MAGIC: &[u8; 4] = b"RCTI";
/// Bytes of item header before the payload.
pub(crate) const ITEM_HEADER: usize = 4 + 1 + 8 + 2 + 2;

/// Secrets decoded from an envelope.
pub(crate) struct Decoded {
    pub key: String,
    pub generation: u64,
    pub record: Vec<u8>,
    pub access: SecretString,
    pub refresh: Option<SecretString>,
    pub id: Option<SecretString>,
    /// The app's client secret (v2; a profile logged in with one).
    pub client: Option<SecretString>,
}

impl Decoded {
    /// The size of the envelope these secrets were decoded from.
    pub(crate) fn encoded_len(&self) -> usize {
        let opt = |s: &Option<SecretString>| 5 + s.as_ref().map_or(0, |s| s.expose_secret().len());
        4 + 1
            + 8
            + 2
            + self.key.len()
            + 4
            + self.record.len()
            + 4
            + self.access.expose_secret().len()
            + opt(&self.refresh)
            + opt(&self.id)
            + opt(&self.client)
    }
}

/// Why an envelope or item could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvelopeError {
    /// Another format version (a newer build's, or an old one's).
    Version(u8),
    /// Damaged or inconsistent bytes; the message names a position, never content.
    Malformed(String),
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::Version(v) => write!(
                f,
                "format version {v}; this build reads versions 1 to {ENVELOPE_VERSION}"
            ),
            EnvelopeError::Malformed(m) => f.write_str(m),
        }
    }
}

/// A length that does not fit the envelope's length field (a key over
/// 65,535 bytes, or a record or secret over 4 GiB).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge(pub &'static str);

/// A length as a big-endian field of type `T`, checked.
fn field<T: TryFrom<usize>>(len: usize, what: &'static str) -> Result<T, TooLarge> {
    T::try_from(len).map_err(|_| TooLarge(what))
}

/// Encode an envelope.
pub(crate) fn encode(
    key: &str,
    generation: u64,
    record: &[u8],
    access: &SecretString,
    refresh: Option<&SecretString>,
    id: Option<&SecretString>,
    client: Option<&SecretString>,
) -> Result<Zeroizing<Vec<u8>>, TooLarge> {
    let a = access.expose_secret().as_bytes();
    let r = refresh.map(|s| s.expose_secret().as_bytes());
    let i = id.map(|s| s.expose_secret().as_bytes());
    let c = client.map(|s| s.expose_secret().as_bytes());
    let len = 4
        + 1
        + 8
        + 2
        + key.len()
        + 4
        + record.len()
        + 4
        + a.len()
        + 5
        + r.map_or(0, <[u8]>::len)
        + 5
        + i.map_or(0, <[u8]>::len)
        + 5
        + c.map_or(0, <[u8]>::len);
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(MAGIC);
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&field::<u16>(key.len(), "profile key")?.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&field::<u32>(record.len(), "metadata record")?.to_be_bytes());
    out.extend_from_slice(record);
    out.extend_from_slice(&field::<u32>(a.len(), "access token")?.to_be_bytes());
    out.extend_from_slice(a);
    for opt in [r, i, c] {
        match opt {
            None => out.extend_from_slice(&[0, 0, 0, 0, 0]),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(
                    &field::<u32>(b.len(), "refresh token, id token or client secret")?
                        .to_be_bytes(),
                );
                out.extend_from_slice(b);
            }
        }
    }
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], EnvelopeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                EnvelopeError::Malformed(format!("truncated in {what} at byte {}", self.pos))
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, EnvelopeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, EnvelopeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, EnvelopeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, EnvelopeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn secret(&mut self, what: &str) -> Result<SecretString, EnvelopeError> {
        let n = usize::try_from(self.u32(what)?)
            .map_err(|_| EnvelopeError::Malformed(format!("{what} too long for this platform")))?;
        let b = self.take(n, what)?;
        let s = std::str::from_utf8(b)
            .map_err(|_| EnvelopeError::Malformed(format!("{what} is not UTF-8")))?;
        Ok(SecretString::from(s))
    }
    fn opt_secret(&mut self, what: &str) -> Result<Option<SecretString>, EnvelopeError> {
        match self.u8(what)? {
            0 => {
                if self.u32(what)? != 0 {
                    return Err(EnvelopeError::Malformed(format!(
                        "absent {what} has a length"
                    )));
                }
                Ok(None)
            }
            1 => Ok(Some(self.secret(what)?)),
            _ => Err(EnvelopeError::Malformed(format!(
                "bad presence flag for {what}"
            ))),
        }
    }
}

/// Decode an envelope.
pub(crate) fn decode(buf: &[u8]) -> Result<Decoded, EnvelopeError> {
    let mut r = Reader { buf, pos: 0 };
    if r.take(4, "magic")? != MAGIC {
        return Err(EnvelopeError::Malformed("not an rctoken envelope".into()));
    }
    let version = r.u8("version")?;
    if !readable(version) {
        return Err(EnvelopeError::Version(version));
    }
    let generation = r.u64("generation")?;
    let klen = usize::from(r.u16("key")?);
    let key = std::str::from_utf8(r.take(klen, "key")?)
        .map_err(|_| EnvelopeError::Malformed("key is not UTF-8".into()))?
        .to_string();
    let rlen = usize::try_from(r.u32("record")?)
        .map_err(|_| EnvelopeError::Malformed("record too long for this platform".into()))?;
    let record = r.take(rlen, "record")?.to_vec();
    let access = r.secret("access token")?;
    let refresh = r.opt_secret("refresh token")?;
    let id = r.opt_secret("id token")?;
    let client = if version >= 2 {
        r.opt_secret("client secret")?
    } else {
        None
    };
    if r.pos != buf.len() {
        return Err(EnvelopeError::Malformed(format!(
            "{} trailing bytes",
            buf.len() - r.pos
        )));
    }
    Ok(Decoded {
        key,
        generation,
        record,
        access,
        refresh,
        id,
        client,
    })
}

/// As much of an envelope's record as `prefix` (a prefix of the envelope,
/// such as item 0's payload) holds, without touching the secrets. The
/// record may be cut short when items are small.
pub(crate) fn peek_record(prefix: &[u8]) -> Option<&[u8]> {
    let mut r = Reader {
        buf: prefix,
        pos: 0,
    };
    if r.take(4, "magic").ok()? != MAGIC || !readable(r.u8("version").ok()?) {
        return None;
    }
    r.u64("generation").ok()?;
    let klen = usize::from(r.u16("key").ok()?);
    r.take(klen, "key").ok()?;
    let rlen = usize::try_from(r.u32("record").ok()?).ok()?;
    let start = r.pos;
    Some(&prefix[start..prefix.len().min(start.saturating_add(rlen))])
}

/// Split an envelope into framed items of at most `max_item` bytes each;
/// `TooLarge` if that takes more than 65,535 items (the count field).
pub(crate) fn split(
    envelope: &[u8],
    generation: u64,
    max_item: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>, TooLarge> {
    let payload = max_item.saturating_sub(ITEM_HEADER).max(1);
    let count: u16 = field(envelope.len().div_ceil(payload).max(1), "item count")?;
    Ok((0..count)
        .zip(envelope.chunks(payload).chain(std::iter::once(&[][..])))
        .map(|(i, part)| {
            let mut item = Zeroizing::new(Vec::with_capacity(ITEM_HEADER + part.len()));
            item.extend_from_slice(ITEM_MAGIC);
            item.push(ITEM_VERSION);
            item.extend_from_slice(&generation.to_be_bytes());
            item.extend_from_slice(&i.to_be_bytes());
            item.extend_from_slice(&count.to_be_bytes());
            item.extend_from_slice(part);
            item
        })
        .collect())
}

/// Check an item's header against the expected generation, index and count;
/// return its payload.
pub(crate) fn item_payload(
    item: &[u8],
    generation: u64,
    index: u16,
    count: u16,
) -> Result<&[u8], EnvelopeError> {
    let mut r = Reader { buf: item, pos: 0 };
    if r.take(4, "item magic")? != ITEM_MAGIC {
        return Err(EnvelopeError::Malformed(
            "not an rctoken keychain item".into(),
        ));
    }
    let version = r.u8("item version")?;
    if version != ITEM_VERSION {
        return Err(EnvelopeError::Version(version));
    }
    let g = r.u64("item generation")?;
    let i = r.u16("item index")?;
    let c = r.u16("item count")?;
    if g != generation || i != index || c != count {
        return Err(EnvelopeError::Malformed(format!(
            "item {index} belongs to another save (generation/index/count mismatch)"
        )));
    }
    Ok(&item[ITEM_HEADER..])
}

/// The item count an item's header declares, if the header is ours.
pub(crate) fn item_header_count(item: &[u8]) -> Option<u16> {
    if item.get(..4)? != ITEM_MAGIC {
        return None;
    }
    let b = item.get(ITEM_HEADER - 2..ITEM_HEADER)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Join item payloads into one envelope buffer, allocated once.
pub(crate) fn join(
    items: &[Zeroizing<Vec<u8>>],
    generation: u64,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let count: u16 = field(items.len(), "item count")
        .map_err(|_| EnvelopeError::Malformed("more than 65,535 items".into()))?;
    let total: usize = items
        .iter()
        .map(|i| i.len().saturating_sub(ITEM_HEADER))
        .sum();
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    for (index, item) in (0..count).zip(items) {
        out.extend_from_slice(item_payload(item, generation, index, count)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Zeroizing<Vec<u8>> {
        let a = SecretString::from("A".repeat(n).as_str());
        let r = SecretString::from("refresh");
        encode("256440016", 7, b"{}", &a, Some(&r), None, None).expect("fits")
    }

    #[test]
    fn round_trip() {
        let env = sample(10);
        let d = decode(&env).expect("decodes");
        assert_eq!(d.key, "256440016");
        assert_eq!(d.generation, 7);
        assert_eq!(d.record, b"{}");
        assert_eq!(d.access.expose_secret(), "A".repeat(10));
        assert_eq!(
            d.refresh.as_ref().map(|s| s.expose_secret()),
            Some("refresh")
        );
        assert!(d.id.is_none());
    }

    #[test]
    fn split_and_join() {
        let env = sample(70_000);
        let items = split(&env, 9, 2560).expect("fits");
        assert!(items.len() > 20);
        assert!(items.iter().all(|i| i.len() <= 2560));
        let joined = join(&items, 9).expect("joins");
        assert_eq!(&*joined, &*env);
        // An item from another generation is refused.
        assert!(join(&items, 8).is_err());
        // Dropping an item is detected.
        assert!(join(&items[1..], 9).is_err());
    }

    #[test]
    fn truncation_and_versions_are_errors() {
        let env = sample(5);
        for cut in 0..env.len() {
            assert!(decode(&env[..cut]).is_err(), "cut at {cut}");
        }
        let mut newer = env.to_vec();
        newer[4] = ENVELOPE_VERSION + 1;
        assert!(matches!(decode(&newer), Err(EnvelopeError::Version(_))));
        let mut zero = env.to_vec();
        zero[4] = 0;
        assert!(matches!(decode(&zero), Err(EnvelopeError::Version(0))));
    }

    #[test]
    fn version_1_is_read_and_version_2_carries_the_client_secret() {
        let a = SecretString::from("AT".to_string());
        let c = SecretString::from("client-secret".to_string());
        let with = encode("k", 3, b"{}", &a, None, None, Some(&c)).unwrap();
        let d = decode(&with).unwrap();
        assert_eq!(
            d.client.as_ref().map(|s| s.expose_secret()),
            Some("client-secret")
        );
        assert_eq!(d.encoded_len(), with.len());
        // A v1 envelope: v2 without the client field.
        let without = encode("k", 3, b"{}", &a, None, None, None).unwrap();
        let mut v1 = without[..without.len() - 5].to_vec();
        v1[4] = 1;
        let d = decode(&v1).unwrap();
        assert!(d.client.is_none());
        assert_eq!(d.access.expose_secret(), "AT");
        assert_eq!(peek_record(&v1), Some(&b"{}"[..]));
        // v1 with a client field is damaged, not silently accepted.
        let mut bad = without.to_vec();
        bad[4] = 1;
        assert!(matches!(decode(&bad), Err(EnvelopeError::Malformed(_))));
    }
}
