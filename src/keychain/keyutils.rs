//! Kernel keyutils backend (Linux), written directly on `linux-keyutils`.
//!
//! Keys are `user` keys linked into the **user keyring** (`@u`), which every
//! process of the same uid shares, with or without a PAM session keyring.
//! (The published `linux-keyutils-keyring-store` uses the session keyring and
//! the persistent keyring, which fail or are not shared across processes in
//! containers, CI and `su` shells.) Keys are described as
//! `<service>:<account>`. Keyutils keys live in kernel memory and are cleared
//! at reboot. One key holds at most 32767 bytes.

use std::sync::Arc;

use super::{Keychain, OpenConfig};

/// The largest payload of one `user` key.
pub(crate) const MAX_PAYLOAD: usize = 32767;

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use crate::keychain::KcError;
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
    use zeroize::Zeroizing;

    pub(crate) struct Keyutils {
        ring: KeyRing,
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
                KcError::Unavailable(format!("keyutils: {e:?}"))
            }
            KeyError::QuotaExceeded => KcError::Other(
                "keyutils quota exceeded (see /proc/sys/kernel/keys/maxbytes and maxkeys)".into(),
            ),
            other => KcError::Other(format!("keyutils: {other:?}")),
        }
    }

    pub(crate) fn open(cfg: &OpenConfig, max_item: usize) -> Result<Arc<dyn Keychain>, String> {
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true)
            .map_err(|e| format!("cannot open the user keyring: {e:?}"))?;
        Ok(Arc::new(Keyutils {
            ring,
            prefix: format!("{}:", cfg.service),
            max_item: max_item.min(MAX_PAYLOAD),
        }))
    }

    impl Keyutils {
        fn find(&self, account: &str) -> Result<Option<linux_keyutils::Key>, KcError> {
            match self.ring.search(&format!("{}{account}", self.prefix)) {
                Ok(k) => Ok(Some(k)),
                Err(e) if gone(&e) => Ok(None),
                Err(e) => Err(err(e)),
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
            let key = self
                .ring
                .add_key(&format!("{}{account}", self.prefix), &data[..])
                .map_err(err)?;
            // Possessor: everything. User (same uid, any process): view, read,
            // write, search, link, setattr, so later processes can read it even
            // without possessing it through a session keyring.
            let perms = KeyPermissionsBuilder::builder()
                .posessor(Permission::ALL)
                .user(Permission::ALL)
                .build();
            key.set_perms(perms).map_err(err)
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
                return Err(KcError::Other("keyutils: key changed while read".into()));
            }
            Ok(Some(buf))
        }
        fn delete(&self, account: &str) -> Result<bool, KcError> {
            let Some(key) = self.find(account)? else {
                return Ok(false);
            };
            match key.invalidate() {
                Ok(()) => Ok(true),
                Err(e) if gone(&e) => Ok(false),
                Err(e) => Err(err(e)),
            }
        }
        fn list(&self) -> Result<Option<Vec<String>>, KcError> {
            let links = self.ring.get_links(4 * 65536).map_err(err)?;
            let mut out = Vec::new();
            for node in links.iter() {
                if let Some(key) = node.as_key()
                    && let Ok(meta) = key.metadata()
                    && let Some(account) = meta.get_description().strip_prefix(&self.prefix)
                {
                    out.push(account.to_string());
                }
            }
            Ok(Some(out))
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use imp::open;

#[cfg(not(target_os = "linux"))]
pub(crate) fn open(_: &OpenConfig, _: usize) -> Result<Arc<dyn Keychain>, String> {
    Err("the keyutils backend exists only on Linux".into())
}
