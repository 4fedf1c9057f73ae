//! A sealed store that does not exist yet: opening it creates nothing (no
//! `sealed/` directory, no key lock, no store id, no key in keyutils), so
//! commands that only read (`status`, `doctor` under `auto` on a store
//! whose secrets are elsewhere) leave no trace. The first write opens the
//! real store, creating it; so does any call made once another process
//! has created it meanwhile (a long-lived process must see what others
//! saved).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use zeroize::Zeroizing;

use super::rekey::{RekeyReport, RekeyTo};
use super::{MAX_ITEM, SEALED};
use crate::error::Error;
use crate::keychain::{KcError, Keychain};

/// Whether the sealed store in `dir` holds nothing yet: no directory, or
/// one with no key record and no item (as after the last logout, which
/// takes the key with it).
pub(crate) fn is_fresh(dir: &std::path::Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return !dir.exists();
    };
    !entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name == super::record::RECORD_FILE || !name.starts_with('.')
    })
}

/// Opens the real sealed store (creating what it lacks).
pub(crate) type Opener = Box<dyn Fn() -> Result<Arc<dyn Keychain>, Error> + Send + Sync>;

pub(crate) struct LazySealed {
    dir: PathBuf,
    open: Opener,
    real: OnceLock<Arc<dyn Keychain>>,
}

impl LazySealed {
    /// A sealed store in `sealed_dir` (which does not exist yet), opened
    /// by `open` when needed.
    pub(crate) fn new(sealed_dir: PathBuf, open: Opener) -> Self {
        LazySealed {
            dir: sealed_dir,
            open,
            real: OnceLock::new(),
        }
    }

    /// The real store: opened now if `create`, or if another process has
    /// created it since; `None` while it does not exist.
    fn real(&self, create: bool) -> Result<Option<&Arc<dyn Keychain>>, KcError> {
        if let Some(real) = self.real.get() {
            return Ok(Some(real));
        }
        if !create && is_fresh(&self.dir) {
            return Ok(None);
        }
        let real = (self.open)().map_err(|e| KcError::unavailable(e.to_string()))?;
        Ok(Some(self.real.get_or_init(|| real)))
    }
}

impl Keychain for LazySealed {
    fn name(&self) -> &str {
        SEALED
    }
    fn max_item_bytes(&self) -> usize {
        MAX_ITEM
    }
    fn set(&self, account: &str, data: Zeroizing<Vec<u8>>) -> Result<(), KcError> {
        match self.real(true)? {
            Some(real) => real.set(account, data),
            None => Err(KcError::bug("the sealed store was not created")),
        }
    }
    fn get(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KcError> {
        match self.real(false)? {
            Some(real) => real.get(account),
            None => Ok(None),
        }
    }
    fn delete(&self, account: &str) -> Result<bool, KcError> {
        match self.real(false)? {
            Some(real) => real.delete(account),
            None => Ok(false),
        }
    }
    fn list(&self) -> Result<Option<Vec<String>>, KcError> {
        match self.real(false)? {
            Some(real) => real.list(),
            None => Ok(Some(Vec::new())),
        }
    }
    fn rekey(&self, to: &RekeyTo) -> Result<RekeyReport, Error> {
        match self.real(false).map_err(|e| e.into_error(SEALED))? {
            Some(real) => real.rekey(to),
            None => Err(Error::CannotRotate {
                reason: "the store has no key yet; save a profile first".into(),
            }),
        }
    }
    fn forget_key(&self) -> Result<(), KcError> {
        match self.real(false)? {
            Some(real) => real.forget_key(),
            None => Ok(()),
        }
    }
}
