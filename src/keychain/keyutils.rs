//! Kernel keyutils backend (Linux), written directly on `linux-keyutils`.
//!
//! Keys are `user` keys linked into the **user keyring** (`@u`), which every
//! process of the same uid shares, with or without a PAM session keyring.
//! (The published `linux-keyutils-keyring-store` uses the session keyring and
//! the persistent keyring, which fail or are not shared across processes in
//! containers, CI and `su` shells.) Keys are described as
//! `<service>:<account>`. Keyutils keys live in kernel memory and are cleared
//! at reboot. A `user` key holds at most 32767 bytes, but rctoken writes
//! items of at most 4096 bytes: `KEYCTL_UPDATE` takes at most a page, and a
//! refresh overwrites the items it reserved in place (see `secrets::reserve`).
//!
//! **Every session setup.** A process whose session keyring is not linked to
//! `@u` (a systemd service with the default `KeyringMode=private`, `keyctl
//! session -`) does not *possess* keys it adds to `@u`, and a new key grants
//! its user only `view`: setting its permissions or reading it back fails.
//! So a new key is created in this process's own process keyring (`@p`),
//! which it always possesses, given user permissions there, then linked into
//! `@u` and unlinked from `@p`. Later processes reach it through `@u` with
//! the user permissions, in any session. An existing key is updated in place
//! (`KEYCTL_UPDATE`), which charges the quota only for the size difference.
//!
//! **Descriptions of any length.** `linux-keyutils` 0.2 reads a key's
//! description into a fixed 512-byte buffer and panics on a longer one (any
//! key in `@u`, ours or not). This module describes keys itself
//! (`KEYCTL_DESCRIBE`, asking for the size first), and bounds its own
//! descriptions (item names are at most ~300 bytes, see `names::stem`).

use std::sync::Arc;

use super::{Keychain, OpenConfig};

/// The largest item rctoken writes to one key: the most `KEYCTL_UPDATE`
/// accepts (a page; 4096 bytes is the smallest page size Linux has). A
/// `user` key could hold 32767 bytes, but only an update in place replaces
/// a key without charging the quota for old and new side by side.
pub(crate) const MAX_PAYLOAD: usize = 4096;

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use crate::keychain::{KcError, Quota};
    use linux_keyutils::{
        Key, KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission,
    };
    use std::time::{Duration, Instant};
    use zeroize::Zeroizing;

    pub(crate) struct Keyutils {
        user: KeyRing,
        prefix: String,
        max_item: usize,
    }

    /// A key that was invalidated (deleted), revoked or has expired stays
    /// linked until the kernel's key garbage collector runs; meanwhile
    /// search and read report EKEYREVOKED/EKEYEXPIRED. For us it is gone.
    fn gone(e: &KeyError) -> bool {
        matches!(
            e,
            KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired
        )
    }

    fn err(e: KeyError) -> KcError {
        match e {
            KeyError::AccessDenied | KeyError::KeyRevoked | KeyError::KeyExpired => {
                KcError::unavailable(format!("keyutils: {e:?}"))
            }
            KeyError::QuotaExceeded => KcError::full(quota_message()),
            other => KcError::other(format!("keyutils: {other:?}")),
        }
    }

    /// "quota exceeded" with this user's figures from /proc/key-users.
    fn quota_message() -> String {
        match user_quota() {
            Some(q) => format!(
                "the per-user keyutils quota is exceeded: {} of {} bytes and {} of {} keys in use \
                 (/proc/key-users; limits in /proc/sys/kernel/keys/maxbytes and maxkeys)",
                q.used_bytes, q.max_bytes, q.used_keys, q.max_keys
            ),
            None => "the per-user keyutils quota is exceeded \
                     (limits in /proc/sys/kernel/keys/maxbytes and maxkeys)"
                .into(),
        }
    }

    /// This user's line of /proc/key-users:
    /// `uid: usage nkeys/nikeys qnkeys/maxkeys qnbytes/maxbytes`.
    pub(crate) fn user_quota() -> Option<Quota> {
        let text = std::fs::read_to_string("/proc/key-users").ok()?;
        let uid = crate::files::current_uid().to_string();
        text.lines().find_map(|line| {
            let (who, rest) = line.split_once(':')?;
            if who.trim() != uid {
                return None;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let pair = |f: &str| -> Option<(u64, u64)> {
                let (a, b) = f.split_once('/')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            };
            let (used_keys, max_keys) = pair(fields.get(2)?)?;
            let (used_bytes, max_bytes) = pair(fields.get(3)?)?;
            Some(Quota {
                used_bytes,
                max_bytes,
                used_keys,
                max_keys,
            })
        })
    }

    pub(crate) fn open(cfg: &OpenConfig, max_item: usize) -> Result<Arc<dyn Keychain>, String> {
        let user = KeyRing::from_special_id(KeyRingIdentifier::User, true)
            .map_err(|e| format!("cannot open the user keyring: {e:?}"))?;
        Ok(Arc::new(Keyutils {
            user,
            prefix: format!("{}:", cfg.service),
            max_item: max_item.min(MAX_PAYLOAD),
        }))
    }

    /// The serials linked from the user keyring (`KEYCTL_READ` on it),
    /// without `linux-keyutils`' `get_links`, which describes each one
    /// through its fixed 512-byte buffer.
    #[allow(unsafe_code)]
    fn user_keyring_links() -> Result<Vec<i32>, KeyError> {
        let mut buf: Vec<i32> = Vec::new();
        loop {
            let bytes = buf.len() * std::mem::size_of::<i32>();
            // SAFETY: KEYCTL_READ writes at most `bytes` bytes to `buf`
            // (null with 0 asks for the size) and returns the full size.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    libc::c_long::from(KEYCTL_READ),
                    libc::c_long::from(KEY_SPEC_USER_KEYRING),
                    if buf.is_empty() {
                        std::ptr::null_mut()
                    } else {
                        buf.as_mut_ptr()
                    },
                    bytes,
                )
            };
            if n < 0 {
                return Err(KeyError::from_errno());
            }
            let n = usize::try_from(n).map_err(|_| KeyError::InvalidDescription)?;
            if n <= bytes {
                buf.truncate(n / std::mem::size_of::<i32>());
                return Ok(buf);
            }
            // Linked keys may have been added meanwhile: ask again with room.
            buf = vec![0; n.div_ceil(std::mem::size_of::<i32>()) + 16];
        }
    }

    const KEYCTL_READ: i32 = 11;
    const KEY_SPEC_USER_KEYRING: i32 = -4;

    /// A key's description (`type;uid;gid;perm;description`), of any length.
    #[allow(unsafe_code)]
    fn describe(id: i32) -> Result<String, KeyError> {
        let id = libc::c_long::from(id);
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // SAFETY: KEYCTL_DESCRIBE writes at most `buf.len()` bytes to
            // `buf` (a null pointer with length 0 only asks for the size) and
            // returns the full size including the terminating NUL.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    libc::c_long::from(KEYCTL_DESCRIBE),
                    id,
                    if buf.is_empty() {
                        std::ptr::null_mut()
                    } else {
                        buf.as_mut_ptr()
                    },
                    buf.len(),
                )
            };
            if n < 0 {
                return Err(KeyError::from_errno());
            }
            let n = usize::try_from(n).map_err(|_| KeyError::InvalidDescription)?;
            if n <= buf.len() && n > 0 {
                buf.truncate(n - 1); // the NUL
                return String::from_utf8(buf).map_err(|_| KeyError::InvalidDescription);
            }
            if n == 0 || n > 1 << 20 {
                return Err(KeyError::InvalidDescription);
            }
            buf = vec![0; n];
        }
    }

    const KEYCTL_DESCRIBE: i32 = 6;

    impl Keyutils {
        fn find(&self, account: &str) -> Result<Option<Key>, KcError> {
            match self.user.search(&format!("{}{account}", self.prefix)) {
                Ok(k) => Ok(Some(k)),
                Err(e) if gone(&e) => Ok(None),
                Err(e) => Err(err(e)),
            }
        }

        /// Create a key in the process keyring (possessed, so its
        /// permissions can be set in any session), then move it to `@u`.
        fn create(&self, description: &str, data: &[u8]) -> Result<(), KeyError> {
            let process = KeyRing::from_special_id(KeyRingIdentifier::Process, true)?;
            let key = process.add_key(description, data)?;
            // Possessor: everything. User (same uid, any process): view, read,
            // write, search, link, setattr, so later processes can use it
            // without possessing it.
            let perms = KeyPermissionsBuilder::builder()
                .posessor(Permission::ALL)
                .user(Permission::ALL)
                .build();
            let moved = key.set_perms(perms).and_then(|()| self.user.link_key(key));
            // Whatever happened, the process keyring must not keep it.
            let _ = process.unlink_key(key);
            if let Err(e) = moved {
                let _ = key.invalidate();
                return Err(e);
            }
            Ok(())
        }
    }

    /// How long a write that finds the quota full waits for it to drain,
    /// in all, and at most while the use does not fall.
    const ROOM_LIMIT: Duration = Duration::from_secs(3);
    const ROOM_STILL: Duration = Duration::from_secs(1);

    /// Run `write`, and while it fails for a full quota, retry as long as
    /// the quota's use keeps falling to new lows. The kernel charges a
    /// deleted key to the quota until its garbage collector frees it, from
    /// a work queue a moment after the delete (hundreds of milliseconds on
    /// a loaded machine). A save right after a delete (its own old
    /// generation, another process's logout) would otherwise fail for room
    /// that is about to be there. Only a new low counts as a fall: a failed
    /// `create` adds a key and invalidates it, whose freeing brings the use
    /// back to where it was, not below. A quota that is really full fails
    /// after [`ROOM_STILL`], at most [`ROOM_LIMIT`] when other processes
    /// keep freeing keys.
    fn with_room(mut write: impl FnMut() -> Result<(), KeyError>) -> Result<(), KeyError> {
        let use_now = || user_quota().map(|q| (q.used_bytes, q.used_keys));
        let start = Instant::now();
        let mut lowest = use_now();
        let mut fell = Instant::now();
        loop {
            match write() {
                Err(KeyError::QuotaExceeded)
                    if start.elapsed() < ROOM_LIMIT && fell.elapsed() < ROOM_STILL =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                    if let (Some(now), Some(low)) = (use_now(), lowest)
                        && (now.0 < low.0 || now.1 < low.1)
                    {
                        fell = Instant::now();
                        lowest = Some((now.0.min(low.0), now.1.min(low.1)));
                    }
                }
                done => return done,
            }
        }
    }

    impl Keychain for Keyutils {
        fn name(&self) -> &str {
            super::super::KEYUTILS
        }
        fn max_item_bytes(&self) -> usize {
            self.max_item
        }
        fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError> {
            if let Some(key) = self.find(account)? {
                match with_room(|| key.update(&*data)) {
                    Ok(()) => return Ok(()),
                    // Deleted meanwhile: create it afresh.
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            let description = format!("{}{account}", self.prefix);
            with_room(|| self.create(&description, &data[..])).map_err(err)
        }
        fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
            let Some(key) = self.find(account)? else {
                return Ok(None);
            };
            // Ask for the size first, then read into a buffer of exactly that size.
            let mut probe: [u8; 0] = [];
            let len = match key.read(&mut probe) {
                Ok(n) => n,
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(err(e)),
            };
            let mut buf = Zeroizing::new(vec![0u8; len]);
            let got = match key.read(&mut *buf) {
                Ok(n) => n,
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(err(e)),
            };
            if got != len {
                return Err(KcError::other("keyutils: key changed while read"));
            }
            Ok(Some(buf))
        }
        fn delete(&self, account: &str) -> Result<bool, KcError> {
            let Some(key) = self.find(account)? else {
                return Ok(false);
            };
            // Unlink from @u first: an invalidated key's link stays charged
            // to the user's quota (4 bytes each, measured) until something
            // rewrites the keyring, so thousands of re-saves would slowly
            // fill a non-root quota. Then invalidate, for any other link.
            match self.user.unlink_key(key) {
                Ok(()) => {}
                Err(e) if gone(&e) => return Ok(false),
                Err(e) => return Err(err(e)),
            }
            match key.invalidate() {
                Ok(()) => Ok(true),
                // Unlinked and destroyed already: deleted all the same.
                Err(e) if gone(&e) => Ok(true),
                Err(e) => {
                    log::debug!("keyutils: invalidating an unlinked key failed: {e:?}");
                    Ok(true)
                }
            }
        }
        fn list(&self) -> Result<Option<Vec<String>>, KcError> {
            let mut out = Vec::new();
            for id in user_keyring_links().map_err(err)? {
                // Keys we may not describe, and keyrings, are not ours: skip.
                let Ok(described) = describe(id) else {
                    continue;
                };
                let mut fields = described.splitn(5, ';');
                let (Some(kind), Some(description)) = (fields.next(), fields.nth(3)) else {
                    continue;
                };
                if kind == "user"
                    && let Some(account) = description.strip_prefix(&self.prefix)
                {
                    out.push(account.to_string());
                }
            }
            Ok(Some(out))
        }
        fn quota(&self) -> Option<Quota> {
            user_quota()
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use imp::open;

#[cfg(not(target_os = "linux"))]
pub(crate) fn open(_: &OpenConfig, _: usize) -> Result<Arc<dyn Keychain>, String> {
    Err("the keyutils backend exists only on Linux".into())
}
