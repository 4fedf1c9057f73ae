//! Single-flight refresh across processes: [`TokenStore::refresh`] and its
//! variants. A refresh runs in two phases around the caller's refresh
//! function, so that the async facade can run that function on its own
//! runtime: [`TokenStore::begin_refresh`] decides under the profile's
//! refresh lock whether a refresh is needed and sets room aside for its
//! result; [`TokenStore::finish_refresh`] stores the result into that room.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::clock;
use crate::envelope;
use crate::error::{Error, Result};
use crate::files;
use crate::keychain::Keychain;
use crate::lock::FileLock;
use crate::metadata::{MetaFiles, ProfileInfo};
use crate::model::TokenInfo;
use crate::secrets;

use super::{Selector, StoredToken, TokenStore, fresh_generation};

/// A token saved or refreshed less than this long ago is not refreshed
/// again just because it falls short of a caller's `min_valid`: the result
/// of a refresh is what the token endpoint gives, and asking again within a
/// minute only spends the endpoint's rate limit (about 5 requests a minute
/// per app). It is refreshed again once its access token has expired.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The refresh lock of one profile, held while a refresh function runs
/// (see [`TokenStore::refresh_holding`]).
#[derive(Debug)]
pub struct RefreshLock<'a>(Option<&'a FileLock>);

impl RefreshLock<'_> {
    /// Make the processes `cmd` starts hold this lock too, until the last of
    /// them exits: a refresher process that outlives its caller (killed
    /// mid-refresh) then still blocks every other refresh of the profile,
    /// so no second process spends the same refresh token while the first
    /// refresher can still reach the token endpoint. Unix only; elsewhere a
    /// no-op.
    /// (On the PostgreSQL store the lock is a row lock, which its
    /// children cannot hold: a no-op.)
    pub fn hold_in_children_of(&self, cmd: &mut std::process::Command) {
        if let Some(lock) = self.0 {
            lock.inherit_into(cmd);
        }
    }
}

/// When a refresh is called for.
#[derive(Clone, Debug)]
pub(crate) enum When {
    /// Unless the access token is valid at least this long (or is a fresh
    /// refresh's result, see [`MIN_REFRESH_INTERVAL`]).
    ValidFor(Duration),
    /// The API rejected the access token of this generation (a 401): refresh
    /// unless the stored token is already another generation.
    Rejected(String),
}

/// Room set aside for a refresh's result (see `TokenStore::reserve_for`).
pub(super) struct Reserved {
    pub keychain: secrets::Reservation,
    pub file: files::ReservedFile,
}

/// A refresh under way: the profile's refresh lock, the token to refresh,
/// and the room set aside for the result. Dropping it unfinished releases
/// the room and the lock, and stores nothing.
pub(crate) struct Pending {
    lock: Option<FileLock>,
    refresh_token: SecretString,
    pub(super) current: StoredToken,
    reserved: Option<Reserved>,
    keychain: Option<Arc<dyn Keychain>>,
    /// On the PostgreSQL store: the transaction holding the row lock.
    #[cfg(feature = "postgres")]
    pub(super) tx: Option<Box<crate::database::Tx>>,
}

impl Pending {
    /// The refresh token to spend.
    pub(crate) fn refresh_token(&self) -> &SecretString {
        &self.refresh_token
    }

    fn lock(&self) -> RefreshLock<'_> {
        RefreshLock(self.lock.as_ref())
    }

    /// A refresh of the PostgreSQL store, holding `tx`.
    #[cfg(feature = "postgres")]
    pub(super) fn in_database(
        tx: crate::database::Tx,
        refresh_token: SecretString,
        current: StoredToken,
    ) -> Pending {
        Pending {
            lock: None,
            refresh_token,
            current,
            reserved: None,
            keychain: None,
            tx: Some(Box::new(tx)),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let (Some(r), Some(kc)) = (self.reserved.take(), &self.keychain) {
            secrets::release(kc.as_ref(), &self.current.info.profile, &r.keychain);
        }
    }
}

/// What the first phase found.
pub(crate) enum Begun {
    /// No refresh needed, or another process refreshed meanwhile.
    Done(StoredToken),
    /// This caller refreshes.
    Refresh(Pending),
}

impl TokenStore {
    /// Single-flight refresh across processes.
    ///
    /// If the metadata shows the access token valid for at least
    /// `min_valid` (or it is the still-valid result of a refresh less than
    /// [`MIN_REFRESH_INTERVAL`] ago), load and return it without taking any
    /// refresh lock. Otherwise, under the profile's refresh lock, re-read
    /// the metadata; if another process refreshed meanwhile (a new
    /// generation), release the lock and return that token, whatever its
    /// lifetime, without calling `refresh`. Otherwise set aside room for
    /// the result in the keychain and on disk, call `refresh` once with the
    /// refresh token, and save its result atomically into that room. If the
    /// new token carries no refresh token, the old one (and its expiry) is
    /// kept; if it carries no `owner_id`, the stored one is kept.
    ///
    /// # Errors
    /// [`Error::LoginRequired`] (no refresh token, or it expired; `refresh`
    /// is not called), [`Error::NotRefreshed`] (no room could be set aside;
    /// `refresh` is not called), [`Error::RefreshFailed`] (stored tokens
    /// unchanged), [`Error::BadToken`] or [`Error::TooLarge`] (the result
    /// names another `owner_id`, or cannot be stored; stored tokens
    /// unchanged), [`Error::RefreshNotStored`] (the refresh token is spent,
    /// the result could not be saved; the error carries it),
    /// [`Error::LockTimeout`], and those of [`load`](Self::load).
    pub fn refresh<F, E>(
        &self,
        profile: impl Into<Selector>,
        min_valid: Duration,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(&SecretString) -> std::result::Result<TokenInfo, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.refresh_holding(profile, min_valid, |rt, _| refresh(rt))
    }

    /// [`refresh`](Self::refresh), handing `refresh` the profile's refresh
    /// lock as well, for a refresh function that starts a process
    /// ([`RefreshLock::hold_in_children_of`]).
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    pub fn refresh_holding<F, E>(
        &self,
        profile: impl Into<Selector>,
        min_valid: Duration,
        refresh: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce(&SecretString, &RefreshLock<'_>) -> std::result::Result<TokenInfo, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self.begin_refresh(&profile.into(), &When::ValidFor(min_valid))? {
            Begun::Done(token) => Ok(token),
            Begun::Refresh(pending) => {
                let result = refresh(pending.refresh_token(), &pending.lock());
                self.finish_refresh(pending, result)
            }
        }
    }

    /// Refresh a token the API has just rejected (HTTP 401), whatever its
    /// lifetime says: `rejected` is the token as loaded. If the stored
    /// token is already another generation (another process or thread
    /// refreshed since `rejected` was loaded), that one is returned and
    /// `refresh` is not called; otherwise this is
    /// [`refresh`](Self::refresh) without its lifetime check and without
    /// [`MIN_REFRESH_INTERVAL`].
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh).
    pub fn refresh_rejected<F, E>(&self, rejected: &StoredToken, refresh: F) -> Result<StoredToken>
    where
        F: FnOnce(&SecretString) -> std::result::Result<TokenInfo, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let when = When::Rejected(rejected.info.secret.generation.clone());
        match self.begin_refresh(&Selector::from(&rejected.info.profile), &when)? {
            Begun::Done(token) => Ok(token),
            Begun::Refresh(pending) => {
                let result = refresh(pending.refresh_token());
                self.finish_refresh(pending, result)
            }
        }
    }

    /// Phase one: decide whether this caller refreshes and, if so, take the
    /// profile's refresh lock and set room aside for the result.
    pub(crate) fn begin_refresh(&self, profile: &Selector, when: &When) -> Result<Begun> {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_begin_refresh(db, profile, when);
        }
        // Fast path without the refresh lock: when the metadata says the
        // token needs no refresh, no single flight is needed; the secrets
        // are read under the same metadata lock and lookup.
        let (meta_lock, seen) = self.locked_lookup(profile)?;
        if !self.needs_refresh(&seen, when) {
            return Ok(Begun::Done(self.token_of(seen, None)?));
        }
        drop(meta_lock);
        let key = seen.profile.clone();
        let (refresh_lock, prefetched) = self.lock_refresh_prefetching(&key)?;
        // Whoever held the lock may have refreshed already (a new
        // generation): use that result, whether or not it meets `min_valid`,
        // since refreshing again would only get the same kind of token.
        // Check the metadata (no keychain call) and read the secrets after
        // unlocking, so waiters do not queue on the lock for a keychain
        // round trip each.
        let by_key = Selector::from(&key);
        let now_info = self.info(&key)?;
        if now_info.secret.generation != seen.secret.generation
            || !self.needs_refresh(&now_info, when)
        {
            drop(refresh_lock);
            return Ok(Begun::Done(match prefetched {
                Some(Ok(kc)) => self.load_via(&by_key, Some(kc))?,
                // The same error this store's own connect would meet now.
                Some(Err(e)) => return Err(e),
                None => self.load(&key)?,
            }));
        }
        // This process refreshes after all (the holder gave up): through
        // this store's own connection, at normal priority.
        drop(prefetched);
        let current = self.load(&key)?;
        let refresh_token = self.spendable(&current)?;
        // Never spend a refresh token whose result cannot be stored: set
        // the room aside first (keychain quota, a live keychain, disk).
        let keychain = self.keychain.get()?;
        let reserved =
            self.reserve_for(keychain.as_ref(), &current)
                .map_err(|e| Error::NotRefreshed {
                    profile: key.clone(),
                    source: Box::new(e),
                })?;
        Ok(Begun::Refresh(Pending {
            lock: Some(refresh_lock),
            refresh_token,
            current,
            reserved: Some(reserved),
            keychain: Some(keychain),
            #[cfg(feature = "postgres")]
            tx: None,
        }))
    }

    /// The refresh token of `current`, if it can still be spent.
    pub(super) fn spendable(&self, current: &StoredToken) -> Result<SecretString> {
        let login = |reason: &str| Error::LoginRequired {
            profile: current.info.profile.clone(),
            reason: reason.to_string(),
        };
        let Some(refresh_token) = current.token.refresh_token.clone() else {
            return Err(login("no refresh token is stored"));
        };
        if !current
            .info
            .refresh_token_valid_for(self.clock.now(), Duration::ZERO)
        {
            return Err(login("the refresh token has expired"));
        }
        Ok(refresh_token)
    }

    /// Phase two: store what the refresh function returned into the room
    /// set aside, and release the refresh lock.
    pub(crate) fn finish_refresh<E>(
        &self,
        mut pending: Pending,
        result: std::result::Result<TokenInfo, E>,
    ) -> Result<StoredToken>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        #[cfg(feature = "postgres")]
        if let Some(db) = &self.database {
            return self.db_finish_refresh(db, pending, result);
        }
        let key = pending.current.info.profile.clone();
        let new = self.checked_result(&pending.current, result)?;
        let current = &pending.current;
        let Some(reserved) = pending.reserved.take() else {
            return Err(Error::Internal {
                reason: "a refresh was finished twice".into(),
            });
        };
        let room = reserved.keychain;
        let keychain = pending.keychain.clone();
        let client = current.client();
        match self.save_locked(
            &new,
            &key,
            super::Placement::default(),
            Some(reserved),
            client.as_ref(),
        ) {
            Ok(info) => Ok(StoredToken {
                token: new,
                info,
                client_secret: client.and_then(|c| c.client_secret),
            }),
            Err(e) => {
                if let Some(kc) = &keychain {
                    secrets::release(kc.as_ref(), &key, &room);
                }
                // Bad input (an instant or a size that cannot be stored) is
                // refused by the save before it writes anything: the stored
                // tokens are unchanged, as for another owner_id.
                if matches!(e, Error::BadToken { .. } | Error::TooLarge { .. }) {
                    return Err(e);
                }
                Err(Error::RefreshNotStored {
                    profile: key,
                    token: Box::new(new),
                    source: Box::new(e),
                })
            }
        }
    }

    /// What a refresh function returned, checked and completed: its error
    /// classified (RingCentral refusing the refresh token for good means
    /// log in again), the owner unchanged, the old refresh token kept if
    /// the new token carries none.
    pub(super) fn checked_result<E>(
        &self,
        current: &StoredToken,
        result: std::result::Result<TokenInfo, E>,
    ) -> Result<TokenInfo>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let key = current.info.profile.clone();
        let mut new = match result {
            Ok(t) => t,
            Err(e) => {
                let source: Box<dyn std::error::Error + Send + Sync> = e.into();
                // RingCentral saying the refresh token is dead means log in
                // again, not retry.
                if let Some(reason) = refused_for_good(source.as_ref()) {
                    return Err(Error::LoginRequired {
                        profile: key,
                        reason: format!("the refresh token was refused: {reason}"),
                    });
                }
                return Err(Error::RefreshFailed {
                    profile: key,
                    source,
                });
            }
        };
        // A refresh cannot change whose token it is.
        match (&current.token.owner_id, &new.owner_id) {
            (Some(old), Some(got)) if old != got => {
                return Err(Error::BadToken {
                    reason: format!(
                        "field `owner_id`: the refreshed token belongs to `{got}`, not to `{old}`; the stored tokens are unchanged"
                    ),
                });
            }
            (_, None) => new.owner_id = current.token.owner_id.clone(),
            _ => {}
        }
        if new.refresh_token.is_none() {
            new.refresh_token = current.token.refresh_token.clone();
            let saved_at = clock::truncate(self.clock.now());
            new.refresh_token_expires_in = current
                .info
                .refresh_token_expires_at
                .map(|at| clock::remaining_secs(at, saved_at));
        }
        Ok(new)
    }

    /// Whether `info` calls for a refresh.
    pub(super) fn needs_refresh(&self, info: &ProfileInfo, when: &When) -> bool {
        match when {
            When::Rejected(generation) => info.secret.generation == *generation,
            When::ValidFor(min_valid) => {
                let now = self.clock.now();
                if info.access_token_valid_for(now, *min_valid) {
                    return false;
                }
                let recent = info.refreshed && now - info.obtained_at < MIN_REFRESH_INTERVAL;
                !(recent && info.access_token_valid_for(now, Duration::from_secs(1)))
            }
        }
    }

    /// Set aside room for the result of refreshing `current` (caller holds
    /// its refresh lock): keychain items of a fresh generation and the
    /// profile's next metadata file, each as large as now plus a margin.
    fn reserve_for(&self, kc: &dyn Keychain, current: &StoredToken) -> Result<Reserved> {
        let key = &current.info.profile;
        let record = self.record(&current.info)?;
        let now_len = envelope::encode(
            key,
            0,
            &record,
            &current.token.access_token,
            current.token.refresh_token.as_ref(),
            current.token.id_token.as_ref(),
            current.client_secret.as_ref(),
        )
        .map_err(secrets::too_large)?
        .len();
        let file_len = MetaFiles::profile_bytes(&current.info)?.len();
        let file = files::reserve(
            &self.layout.reserve_file(key),
            secrets::reserve_bytes(file_len),
        )?;
        let keychain = secrets::reserve(
            kc,
            key,
            fresh_generation(),
            secrets::reserve_bytes(now_len),
            &self.layout.dir().to_string_lossy(),
        )?;
        Ok(Reserved { keychain, file })
    }
}

/// Whether a refresh function's error (or an error in its source chain)
/// says RingCentral refused the refresh token for good: an
/// [`OAuthError`](crate::ringcentral::OAuthError) of kind `LoginAgain`, or
/// an `invalid_grant` error response parsed by [`TokenInfo::from_json`]
/// (a refresher that printed RingCentral's answer). Returns it in words.
fn refused_for_good(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(e) = next {
        #[cfg(feature = "ringcentral")]
        if let Some(oauth) = e.downcast_ref::<crate::ringcentral::OAuthError>()
            && oauth.kind == crate::ringcentral::OAuthErrorKind::LoginAgain
        {
            return Some(oauth.to_string());
        }
        if let Some(refused @ Error::ErrorResponse { .. }) = e.downcast_ref::<Error>()
            && refused.kind() == crate::ErrorKind::LoginAgain
        {
            return Some(refused.to_string());
        }
        next = e.source();
    }
    None
}
