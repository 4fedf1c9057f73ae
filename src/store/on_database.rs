//! The store's operations on the PostgreSQL engine ([`Database`]): the
//! same promises as on files, each change one transaction.
//!
//! Lock order: the app's store row (`rctoken_stores … FOR UPDATE`), then a
//! profile's row. Saves, switches, labels and removes take both; a refresh
//! takes only its profile's row, for as long as the refresh function runs,
//! so a refresh never waits for a store-row holder that waits for it.

use secrecy::SecretString;

use crate::clock;
use crate::database::{BACKEND, Database, Row, StoreRow};
use crate::envelope::{self, EnvelopeError};
use crate::error::{Error, Result};
use crate::metadata::{ProfileInfo, token_from};
use crate::model::TokenInfo;
use crate::names;
use crate::repair::{Problem, Report};

use super::refresh::{Begun, Pending, When};
use super::{AppClient, Placement, Selector, StoredToken, TokenStore, fresh_generation};

impl TokenStore {
    pub(super) fn db_list(&self, db: &Database) -> Result<Vec<ProfileInfo>> {
        db.with(|c| Ok(db.rows(c, false)?.into_iter().map(|r| r.info).collect()))
    }

    /// The row `profile` selects, with its envelope; no lock.
    fn db_row(&self, db: &Database, profile: &Selector) -> Result<Row> {
        db.with(|c| {
            let key = db.resolve(c, profile.name())?;
            db.row(c, &key, false)?
                .ok_or_else(|| Error::NoSuchProfile(key.clone()))
        })
    }

    pub(super) fn db_info(&self, db: &Database, profile: &Selector) -> Result<ProfileInfo> {
        Ok(self.db_row(db, profile)?.info)
    }

    pub(super) fn db_load(&self, db: &Database, profile: &Selector) -> Result<StoredToken> {
        let row = self.db_row(db, profile)?;
        self.db_token(db, row)
    }

    /// Open a row's envelope and assemble its token.
    fn db_token(&self, db: &Database, row: Row) -> Result<StoredToken> {
        let info = row.info;
        let key = info.profile.clone();
        let bytes = row.envelope.ok_or_else(|| Error::Internal {
            reason: "a row was read without its envelope".into(),
        })?;
        let plain = db.open(&info, bytes)?;
        let corrupt = |reason: String| Error::CorruptSecret {
            profile: key.clone(),
            reason,
        };
        let mut decoded = envelope::decode(&plain).map_err(|e| match e {
            EnvelopeError::Version(v) => Error::SecretsTooNew {
                profile: key.clone(),
                found: v,
                supported: envelope::ENVELOPE_VERSION,
            },
            EnvelopeError::Malformed(m) => corrupt(m),
        })?;
        drop(plain);
        if decoded.key != key || names::generation_hex(decoded.generation) != info.secret.generation
        {
            return Err(corrupt(
                "the envelope belongs to another profile or save".into(),
            ));
        }
        let client_secret = decoded.client.take();
        Ok(StoredToken {
            token: token_from(&info, decoded),
            info,
            client_secret,
        })
    }

    /// Seal `token` as a new generation of profile `key`, described by
    /// `info` (its generation set here).
    fn db_sealed(
        &self,
        db: &Database,
        token: &TokenInfo,
        info: &mut ProfileInfo,
        client: Option<&AppClient>,
    ) -> Result<Vec<u8>> {
        let generation = fresh_generation();
        info.secret.generation = names::generation_hex(generation);
        info.secret.items = 1;
        info.client_id = client.map(|c| c.client_id.clone());
        info.server = client.map(|c| c.server.clone());
        let record = self.record(info)?;
        let plain = envelope::encode(
            &info.profile,
            generation,
            &record,
            &token.access_token,
            token.refresh_token.as_ref(),
            token.id_token.as_ref(),
            client.and_then(|c| c.client_secret.as_ref()),
        )
        .map_err(crate::secrets::too_large)?;
        db.seal(&info.profile, &info.secret.generation, &plain)
    }

    /// A save: one transaction under the store row's lock and the
    /// profile's row lock (so it waits for a refresh of the same profile).
    pub(super) fn db_save(
        &self,
        db: &Database,
        token: &TokenInfo,
        key: &str,
        place: Placement<'_>,
        client: Option<&AppClient>,
    ) -> Result<ProfileInfo> {
        let now = clock::truncate(self.clock.now());
        let mut info = ProfileInfo::from_token(token, key, now, BACKEND, "0")?;
        db.write("save a profile", |tx| {
            let active = db.lock_store(tx, true)?.and_then(|s| s.active);
            let old = db.row(tx, key, true)?;
            if old.is_none()
                && let Some((owner, _)) = db.name_owner(tx, key, key)?
            {
                return Err(Error::NameTaken {
                    name: key.to_string(),
                    owner,
                    as_label: true,
                });
            }
            info.label = match place.label {
                Some(l) => Some(l.to_string()),
                None => old.as_ref().and_then(|o| o.info.label.clone()),
            };
            if let Some(l) = &info.label
                && let Some((owner, as_label)) = db.name_owner(tx, l, key)?
            {
                return Err(Error::NameTaken {
                    name: l.clone(),
                    owner,
                    as_label,
                });
            }
            // The app the profile logged in with: as given, else kept.
            let kept = match (client, old) {
                (None, Some(o)) if o.info.client_id.is_some() => self.db_token(db, o)?.client(),
                _ => None,
            };
            let client = client.or(kept.as_ref());
            let sealed = self.db_sealed(db, token, &mut info, client)?;
            db.put(tx, &info, &sealed)?;
            let first = active.is_none() && db.count(tx)? == 1;
            if place.switch || first {
                db.set_active(tx, Some(key))?;
            }
            info.active = place.switch || first || active.as_deref() == Some(key);
            Ok(())
        })?;
        log::debug!(
            "saved profile `{key}` generation {} in the database",
            info.secret.generation
        );
        Ok(info)
    }

    pub(super) fn db_switch(&self, db: &Database, profile: &Selector) -> Result<ProfileInfo> {
        db.write("switch profiles", |tx| {
            db.lock_store(tx, false)?;
            let key = db.resolve(tx, profile.name())?;
            let mut row = db
                .row(tx, &key, false)?
                .ok_or(Error::NoSuchProfile(key.clone()))?;
            db.set_active(tx, Some(&key))?;
            row.info.active = true;
            Ok(row.info)
        })
    }

    pub(super) fn db_set_label(
        &self,
        db: &Database,
        profile: &Selector,
        label: Option<&str>,
    ) -> Result<ProfileInfo> {
        db.write("label a profile", |tx| {
            db.lock_store(tx, false)?;
            let key = db.resolve(tx, profile.name())?;
            let mut row = db
                .row(tx, &key, false)?
                .ok_or(Error::NoSuchProfile(key.clone()))?;
            if let Some(l) = label
                && let Some((owner, as_label)) = db.name_owner(tx, l, &key)?
            {
                return Err(Error::NameTaken {
                    name: l.to_string(),
                    owner,
                    as_label,
                });
            }
            db.set_label(tx, &key, label)?;
            row.info.label = label.map(str::to_string);
            Ok(row.info)
        })
    }

    pub(super) fn db_remove(&self, db: &Database, profile: &Selector) -> Result<ProfileInfo> {
        db.write("remove a profile", |tx| {
            let active = db.lock_store(tx, false)?.and_then(|s| s.active);
            let key = db.resolve(tx, profile.name())?;
            let row = db
                .row(tx, &key, true)?
                .ok_or(Error::NoSuchProfile(key.clone()))?;
            db.delete(tx, Some(&key))?;
            if active.as_deref() == Some(key.as_str()) {
                db.set_active(tx, None)?;
            }
            Ok(row.info)
        })
    }

    pub(super) fn db_remove_all(&self, db: &Database) -> Result<usize> {
        db.write("remove every profile", |tx| {
            db.lock_store(tx, false)?;
            Ok(usize::try_from(db.delete(tx, None)?).unwrap_or(usize::MAX))
        })
    }

    /// Re-seal every profile under the key in the key file `to`, in one
    /// transaction: killed or cut off at any instant, the store is wholly
    /// under the old key or wholly under the new one. Run again after it
    /// committed (still configured with the old key), it does nothing.
    pub(super) fn db_rotate_key(
        &self,
        db: &Database,
        to: crate::KeySource,
    ) -> Result<super::KeyRotation> {
        let crate::KeySource::File(path) = to else {
            return Err(Error::CannotRotate {
                reason: "every host of a PostgreSQL store must hold its key, so the new key \
                         must be a key file: give --new-key-file FILE; nothing was changed"
                    .into(),
            });
        };
        let new = crate::keychain::sealing_key::from_file(&path)?;
        let configured = db.key()?;
        let key = format!("the key in the key file {}", path.display());
        let done = db.write("rotate the key", |tx| {
            let Some(StoreRow { key_id: id, .. }) = db.lock_store(tx, false)? else {
                return Err(Error::CannotRotate {
                    reason: "the store has no key yet; save a profile first".into(),
                });
            };
            if id == new.id() && id != configured.id() {
                // Already rotated to it (by this command, run before).
                return Ok(super::KeyRotation {
                    items: usize::try_from(db.count(tx)?).unwrap_or(usize::MAX),
                    resealed: 0,
                    key: format!("{key} (already)"),
                });
            }
            db.check_key_id(&id)?;
            if id == new.id() {
                return Err(Error::CannotRotate {
                    reason: format!(
                        "{} holds the key already in use; make a new one; nothing was changed",
                        path.display()
                    ),
                });
            }
            let resealed = db.reseal_all(tx, &new)?;
            Ok(super::KeyRotation {
                items: resealed,
                resealed,
                key,
            })
        })?;
        // The store is under the new key now (also when it already was).
        db.use_key(new);
        Ok(done)
    }

    /// Open every envelope: a transaction never leaves an orphan or a torn
    /// pair, so what is left to find is an envelope that does not open
    /// (another key, damage). Repair changes nothing: dropping a row that
    /// does not open under the configured key would delete every profile
    /// of a store run with the wrong key file.
    pub(super) fn db_verify(&self, db: &Database) -> Result<Report> {
        let rows = db.with(|c| db.rows(c, true))?;
        let mut report = Report {
            orphan_scan: true,
            ..Report::default()
        };
        for row in rows {
            let profile = row.info.profile.clone();
            report.profiles_checked += 1;
            if let Err(e) = self.db_token(db, row) {
                report.problems.push(Problem::SecretUnreadable {
                    profile,
                    reason: e.to_string(),
                });
            }
        }
        Ok(report)
    }

    /// Phase one of a refresh: without a lock if the token is good, else
    /// under the profile's row lock, in a transaction of its own that the
    /// refresh function runs inside.
    pub(super) fn db_begin_refresh(
        &self,
        db: &Database,
        profile: &Selector,
        when: &When,
    ) -> Result<Begun> {
        let seen = self.db_row(db, profile)?;
        if !self.needs_refresh(&seen.info, when) {
            return Ok(Begun::Done(self.db_token(db, seen)?));
        }
        let key = seen.info.profile.clone();
        // Idle in the transaction at most as long as a waiter waits for
        // its lock: a host that hangs or is cut off mid-refresh loses the
        // lock to the server's timeout, not forever.
        let mut tx = db.begin_own(self.lock_timeout.limit)?;
        let row = db
            .row(db.tx_client(&mut tx), &key, true)?
            .ok_or_else(|| Error::NoSuchProfile(key.clone()))?;
        if row.info.secret.generation != seen.info.secret.generation
            || !self.needs_refresh(&row.info, when)
        {
            drop(tx);
            return Ok(Begun::Done(self.db_token(db, row)?));
        }
        // The envelope opens under this key, so the result can be sealed
        // and stored: only then is the refresh token spent.
        let current = self.db_token(db, row)?;
        let refresh_token: SecretString = self.spendable(&current)?;
        Ok(Begun::Refresh(Pending::in_database(
            tx,
            refresh_token,
            current,
        )))
    }

    /// Phase two: store the result in the same transaction, and commit.
    pub(super) fn db_finish_refresh<E>(
        &self,
        db: &Database,
        mut pending: Pending,
        result: std::result::Result<TokenInfo, E>,
    ) -> Result<StoredToken>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let new = self.checked_result(&pending.current, result)?;
        let current = &pending.current;
        let key = current.info.profile.clone();
        let client = current.client();
        let Some(mut tx) = pending.tx.take() else {
            return Err(Error::Internal {
                reason: "a refresh was finished twice".into(),
            });
        };
        let now = clock::truncate(self.clock.now());
        let stored = ProfileInfo::from_token(&new, &key, now, BACKEND, "0").and_then(|mut info| {
            info.refreshed = true;
            info.label = current.info.label.clone();
            info.active = current.info.active;
            let sealed = self.db_sealed(db, &new, &mut info, client.as_ref())?;
            db.put(db.tx_client(&mut tx), &info, &sealed)?;
            db.commit(*tx)?;
            Ok(info)
        });
        match stored {
            Ok(info) => Ok(StoredToken {
                token: new,
                info,
                client_secret: client.and_then(|c| c.client_secret),
            }),
            Err(e @ (Error::BadToken { .. } | Error::TooLarge { .. })) => Err(e),
            Err(e) => Err(Error::RefreshNotStored {
                profile: key,
                token: Box::new(new),
                source: Box::new(e),
            }),
        }
    }
}
