//! The PostgreSQL engine's rows: the connection, the schema and its
//! migration, and each profile's row with its sealed envelope. The store
//! (`store::on_database`) runs the commit protocol on top of these; here
//! every write is one transaction.
//!
//! Tables (see "The PostgreSQL store" in `docs/architecture.md`):
//! `rctoken_schema(version)`, `rctoken_stores(app, active, key_id)` and
//! `rctoken_profiles(app, profile, label, generation, info, envelope)`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keychain::sealed;
use crate::keychain::sealing_key::{self, SealingKey};
use crate::metadata::ProfileInfo;

mod config;

/// The schema version this rctoken writes and reads.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// The backend name profiles of this engine carry in their metadata.
pub(crate) const BACKEND: &str = "postgres";

const SCHEMA_V1: &str = "
CREATE TABLE rctoken_stores (
    app        text PRIMARY KEY,
    active     text,
    key_id     bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE rctoken_profiles (
    app        text NOT NULL REFERENCES rctoken_stores (app) ON DELETE CASCADE,
    profile    text NOT NULL,
    label      text,
    generation text NOT NULL,
    info       text NOT NULL,
    envelope   bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app, profile),
    UNIQUE (app, label)
);
";

/// An app's row of `rctoken_stores`.
pub(crate) struct StoreRow {
    /// The active profile's key.
    pub active: Option<String>,
    /// The id of the key the store is sealed under.
    pub key_id: Vec<u8>,
}

/// One row of `rctoken_profiles`, without its envelope.
pub(crate) struct Row {
    pub info: ProfileInfo,
    pub envelope: Option<Vec<u8>>,
}

/// The connection (opened on first use, reopened after a failure) and the
/// key the envelopes are sealed with.
pub(crate) struct Database {
    app_id: String,
    settings: config::Settings,
    client: Mutex<Option<postgres::Client>>,
    /// The configured key once loaded (after a rotation: the new key).
    key: Mutex<Option<Arc<SealingKey>>>,
    /// The key file the builder named, else the environment's.
    key_file: Option<std::path::PathBuf>,
    lock_timeout: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("server", &self.settings.shown)
            .finish_non_exhaustive()
    }
}

/// A transaction on a connection of its own, held across a refresh.
pub(crate) struct Tx {
    client: postgres::Client,
    open: bool,
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

/// An error of the database call `doing`.
pub(crate) fn failed(server: &str, doing: &str, e: postgres::Error) -> Error {
    // The server's own words (its message is never a secret of ours:
    // secrets go in only as sealed bytes).
    let reason = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    };
    Error::Database {
        server: server.to_string(),
        doing: doing.to_string(),
        reason,
        lock_timeout: e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE),
    }
}

impl Database {
    /// Settle where the server is; nothing is contacted yet.
    pub(crate) fn new(
        app_id: &str,
        url: &str,
        key_file: Option<std::path::PathBuf>,
        lock_timeout: Duration,
    ) -> Result<Database> {
        Ok(Database {
            app_id: app_id.to_string(),
            settings: config::settings(url)?,
            client: Mutex::new(None),
            key: Mutex::new(None),
            key_file,
            lock_timeout,
        })
    }

    /// The server in words (no password).
    pub(crate) fn server(&self) -> &str {
        &self.settings.shown
    }

    fn err(&self, doing: &str) -> impl Fn(postgres::Error) -> Error + '_ {
        let doing = doing.to_string();
        move |e| failed(&self.settings.shown, &doing, e)
    }

    /// A new connection, its schema checked (created or migrated once).
    fn connect(&self) -> Result<postgres::Client> {
        let s = &self.settings;
        let mut client = match &s.tls {
            Some(tls) => s
                .config
                .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone())),
            None => s.config.connect(postgres::NoTls),
        }
        .map_err(self.err("connect"))?;
        self.migrate(&mut client)?;
        Ok(client)
    }

    /// Create or migrate the schema, once across every host: under a
    /// transaction-scoped advisory lock, re-checking the version it holds.
    fn migrate(&self, client: &mut postgres::Client) -> Result<()> {
        let e = self.err("check the schema");
        let quick = client.query_opt("SELECT max(version) FROM rctoken_schema", &[]);
        if let Ok(Some(row)) = &quick
            && row.get::<_, Option<i32>>(0) == Some(SCHEMA_VERSION)
        {
            return Ok(());
        }
        let mut tx = client.transaction().map_err(&e)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rctoken schema'))",
            &[],
        )
        .map_err(&e)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS rctoken_schema (version integer NOT NULL)")
            .map_err(&e)?;
        let version: Option<i32> = tx
            .query_one("SELECT max(version) FROM rctoken_schema", &[])
            .map_err(&e)?
            .get(0);
        match version {
            None => {
                tx.batch_execute(SCHEMA_V1).map_err(&e)?;
                tx.execute(
                    "INSERT INTO rctoken_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .map_err(&e)?;
                log::debug!("created the rctoken schema, version {SCHEMA_VERSION}");
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(Error::UnsupportedVersion {
                    path: format!("the database {}", self.settings.shown).into(),
                    found: u64::try_from(v).unwrap_or(0),
                    supported: SCHEMA_VERSION as u64,
                });
            }
        }
        tx.commit().map_err(&e)
    }

    /// Run `f` on the shared connection (connecting first); a connection
    /// that failed is dropped, so the next call connects again.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut postgres::Client) -> Result<T>) -> Result<T> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let client = match slot.as_mut() {
            Some(c) if !c.is_closed() => c,
            _ => slot.insert(self.connect()?),
        };
        let out = f(client);
        if client.is_closed() {
            *slot = None;
        }
        out
    }

    /// `f` inside one transaction on the shared connection, with every
    /// wait bounded: a row lock by the lock timeout, a statement by twice
    /// that.
    pub(crate) fn write<T>(
        &self,
        doing: &str,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let bounds = self.bounds(self.lock_timeout);
        self.with(|client| {
            let e = self.err(doing);
            let mut tx = client.transaction().map_err(&e)?;
            tx.batch_execute(&bounds).map_err(&e)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(&e)?;
            Ok(out)
        })
    }

    /// The `SET LOCAL`s of a transaction that may stay open for `open`.
    fn bounds(&self, open: Duration) -> String {
        let lock = self.lock_timeout.as_millis().max(1);
        let idle = open.as_millis().max(1000);
        format!(
            "SET LOCAL lock_timeout = {lock}; SET LOCAL statement_timeout = {}; \
             SET LOCAL idle_in_transaction_session_timeout = {idle}",
            lock * 2 + 1000
        )
    }

    /// Begin a transaction on a connection of its own (a refresh holds it
    /// across the refresh function), open at most `open` while idle.
    pub(crate) fn begin_own(&self, open: Duration) -> Result<Tx> {
        let mut client = self.connect()?;
        let e = self.err("begin a refresh");
        client.batch_execute("BEGIN").map_err(&e)?;
        let mut tx = Tx { client, open: true };
        tx.client.batch_execute(&self.bounds(open)).map_err(&e)?;
        Ok(tx)
    }

    /// Every profile of this app, sorted by key (`with_envelopes`: with
    /// their sealed envelopes).
    pub(crate) fn rows(
        &self,
        q: &mut impl postgres::GenericClient,
        with_envelopes: bool,
    ) -> Result<Vec<Row>> {
        let sql = if with_envelopes {
            "SELECT p.profile, p.label, p.info, s.active IS NOT DISTINCT FROM p.profile, p.envelope \
             FROM rctoken_profiles p JOIN rctoken_stores s USING (app) WHERE app = $1 ORDER BY p.profile"
        } else {
            "SELECT p.profile, p.label, p.info, s.active IS NOT DISTINCT FROM p.profile, NULL::bytea \
             FROM rctoken_profiles p JOIN rctoken_stores s USING (app) WHERE app = $1 ORDER BY p.profile"
        };
        let rows = q
            .query(sql, &[&self.app_id])
            .map_err(self.err("list the profiles"))?;
        rows.iter().map(|r| self.row_of(r)).collect()
    }

    /// The profile `key` (its row locked `FOR UPDATE` if `lock`), with its
    /// envelope.
    pub(crate) fn row(
        &self,
        q: &mut impl postgres::GenericClient,
        key: &str,
        lock: bool,
    ) -> Result<Option<Row>> {
        let sql = if lock {
            "SELECT p.profile, p.label, p.info, s.active IS NOT DISTINCT FROM p.profile, p.envelope \
             FROM rctoken_profiles p JOIN rctoken_stores s USING (app) \
             WHERE app = $1 AND p.profile = $2 FOR UPDATE OF p"
        } else {
            "SELECT p.profile, p.label, p.info, s.active IS NOT DISTINCT FROM p.profile, p.envelope \
             FROM rctoken_profiles p JOIN rctoken_stores s USING (app) \
             WHERE app = $1 AND p.profile = $2"
        };
        let row = q
            .query_opt(sql, &[&self.app_id, &key])
            .map_err(self.err("read a profile"))?;
        row.map(|r| self.row_of(&r)).transpose()
    }

    /// The key of the profile `name` names (its key, else its label), or
    /// of the active profile.
    pub(crate) fn resolve(
        &self,
        q: &mut impl postgres::GenericClient,
        name: Option<&str>,
    ) -> Result<String> {
        let e = self.err("look a profile up");
        match name {
            None => {
                let active: Option<String> = q
                    .query_opt(
                        "SELECT s.active FROM rctoken_stores s JOIN rctoken_profiles p \
                         ON p.app = s.app AND p.profile = s.active WHERE s.app = $1",
                        &[&self.app_id],
                    )
                    .map_err(&e)?
                    .map(|r| r.get(0));
                active.ok_or(Error::NoActiveProfile)
            }
            Some(n) => {
                let found: Option<String> = q
                    .query_opt(
                        "SELECT profile FROM rctoken_profiles WHERE app = $1 \
                         AND (profile = $2 OR label = $2) ORDER BY profile = $2 DESC LIMIT 1",
                        &[&self.app_id, &n],
                    )
                    .map_err(&e)?
                    .map(|r| r.get(0));
                found.ok_or_else(|| Error::NoSuchProfile(n.to_string()))
            }
        }
    }

    fn row_of(&self, r: &postgres::Row) -> Result<Row> {
        let key: String = r.get(0);
        let label: Option<String> = r.get(1);
        let text: String = r.get(2);
        let place = std::path::PathBuf::from(format!("{}/rctoken_profiles/{key}", self.server()));
        let mut info = crate::metadata::parse_profile(text.as_bytes(), &place)?;
        if info.profile != key {
            return Err(Error::CorruptMetadata {
                path: place,
                reason: format!("the row names profile `{}`", info.profile),
            });
        }
        info.label = label;
        info.active = r.get(3);
        Ok(Row {
            info,
            envelope: r.get(4),
        })
    }

    /// Lock this app's store row, which every change of profiles, labels
    /// or the active pointer takes first. With `create` (a save), create
    /// it under this process's key if there is none, and refuse if the
    /// store is sealed under another key. Returns the row (`None`: the
    /// app has no store row yet).
    pub(crate) fn lock_store(
        &self,
        tx: &mut postgres::Transaction<'_>,
        create: bool,
    ) -> Result<Option<StoreRow>> {
        let e = self.err("lock the store");
        if create {
            let key = self.key()?;
            tx.execute(
                "INSERT INTO rctoken_stores (app, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&self.app_id, &&key.id()[..]],
            )
            .map_err(&e)?;
        }
        let row = tx
            .query_opt(
                "SELECT active, key_id FROM rctoken_stores WHERE app = $1 FOR UPDATE",
                &[&self.app_id],
            )
            .map_err(&e)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let store = StoreRow {
            active: row.get(0),
            key_id: row.get(1),
        };
        if create {
            self.check_key_id(&store.key_id)?;
        }
        Ok(Some(store))
    }

    /// Which other profile than `key` a name already names: as its label
    /// (`true`) or as its key (`false`).
    pub(crate) fn name_owner(
        &self,
        tx: &mut postgres::Transaction<'_>,
        name: &str,
        key: &str,
    ) -> Result<Option<(String, bool)>> {
        let row = tx
            .query_opt(
                "SELECT profile, label IS NOT DISTINCT FROM $2 FROM rctoken_profiles \
                 WHERE app = $1 AND profile <> $3 AND (label = $2 OR profile = $2) \
                 ORDER BY 2 DESC LIMIT 1",
                &[&self.app_id, &name, &key],
            )
            .map_err(self.err("check a name"))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// How many profiles the app has.
    pub(crate) fn count(&self, tx: &mut postgres::Transaction<'_>) -> Result<i64> {
        Ok(tx
            .query_one(
                "SELECT count(*) FROM rctoken_profiles WHERE app = $1",
                &[&self.app_id],
            )
            .map_err(self.err("count the profiles"))?
            .get(0))
    }

    /// Refuse `id` unless it is the configured key's ([`Error::WrongSealingKey`]).
    pub(crate) fn check_key_id(&self, id: &[u8]) -> Result<()> {
        let key = self.key()?;
        if id != key.id() {
            return Err(Error::WrongSealingKey {
                reason: format!(
                    "the database's store of app `{}` is sealed under key {}, and the configured key file holds key {}; nothing was read or written",
                    self.app_id,
                    hex(id),
                    hex(&key.id())
                ),
            });
        }
        Ok(())
    }

    /// Set the active profile (`None`: none).
    pub(crate) fn set_active(
        &self,
        tx: &mut postgres::Transaction<'_>,
        key: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "UPDATE rctoken_stores SET active = $2 WHERE app = $1",
            &[&self.app_id, &key],
        )
        .map_err(self.err("switch profiles"))?;
        Ok(())
    }

    /// Insert or replace the row of `info` with `sealed`.
    pub(crate) fn put(
        &self,
        q: &mut impl postgres::GenericClient,
        info: &ProfileInfo,
        sealed: &[u8],
    ) -> Result<()> {
        let text =
            String::from_utf8(crate::metadata::MetaFiles::profile_bytes(info)?).map_err(|_| {
                Error::Internal {
                    reason: "profile metadata is not UTF-8".into(),
                }
            })?;
        q.execute(
            "INSERT INTO rctoken_profiles (app, profile, label, generation, info, envelope, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, now()) \
             ON CONFLICT (app, profile) DO UPDATE SET label = EXCLUDED.label, \
             generation = EXCLUDED.generation, info = EXCLUDED.info, \
             envelope = EXCLUDED.envelope, updated_at = now()",
            &[
                &self.app_id,
                &info.profile,
                &info.label,
                &info.secret.generation,
                &text,
                &sealed,
            ],
        )
        .map_err(self.err("save a profile"))?;
        Ok(())
    }

    /// Set or clear a profile's label.
    pub(crate) fn set_label(
        &self,
        tx: &mut postgres::Transaction<'_>,
        key: &str,
        label: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "UPDATE rctoken_profiles SET label = $3 WHERE app = $1 AND profile = $2",
            &[&self.app_id, &key, &label],
        )
        .map_err(self.err("label a profile"))?;
        Ok(())
    }

    /// Delete a profile's row (`None`: every profile, and the store row
    /// with its key id).
    pub(crate) fn delete(
        &self,
        tx: &mut postgres::Transaction<'_>,
        key: Option<&str>,
    ) -> Result<u64> {
        let e = self.err("remove profiles");
        match key {
            Some(k) => tx
                .execute(
                    "DELETE FROM rctoken_profiles WHERE app = $1 AND profile = $2",
                    &[&self.app_id, &k],
                )
                .map_err(&e),
            None => {
                let n = tx
                    .execute(
                        "DELETE FROM rctoken_profiles WHERE app = $1",
                        &[&self.app_id],
                    )
                    .map_err(&e)?;
                tx.execute("DELETE FROM rctoken_stores WHERE app = $1", &[&self.app_id])
                    .map_err(&e)?;
                Ok(n)
            }
        }
    }

    /// The key the envelopes are sealed with: the configured key file's
    /// (`RCTOKEN_KEY_FILE`, or the systemd credential).
    pub(crate) fn key(&self) -> Result<Arc<SealingKey>> {
        let mut slot = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let configured = self
            .key_file
            .clone()
            .or_else(|| sealing_key::configured_key_file(&self.app_id));
        let path = configured.ok_or_else(|| {
            Error::WrongSealingKey {
                reason: format!(
                    "a PostgreSQL store seals its tokens with a key file, and none is configured for app `{}` (RCTOKEN_KEY_FILE, or the systemd credential {})",
                    self.app_id,
                    sealing_key::credential_name(&self.app_id)
                ),
            }
        })?;
        let key = Arc::new(sealing_key::from_file(&path)?);
        Ok(slot.insert(key).clone())
    }

    /// Re-seal every envelope of this app under `new`, in `tx`, and record
    /// `new` as the store's key. The caller holds the store row (so no
    /// save runs); this takes every profile row (waiting, at most the lock
    /// timeout, for refreshes under way), opens each envelope under the
    /// configured key and seals it again for the same place. Any failure
    /// rolls the whole transaction back. Returns how many were re-sealed;
    /// once the caller commits, it makes `new` this process's key
    /// ([`Database::use_key`]).
    pub(crate) fn reseal_all(
        &self,
        tx: &mut postgres::Transaction<'_>,
        new: &SealingKey,
    ) -> Result<usize> {
        let old = self.key()?;
        let e = self.err("re-seal the profiles");
        let rows = tx
            .query(
                "SELECT profile, generation, envelope FROM rctoken_profiles WHERE app = $1 \
                 ORDER BY profile FOR UPDATE",
                &[&self.app_id],
            )
            .map_err(&e)?;
        for r in &rows {
            let (profile, generation, bytes): (String, String, Vec<u8>) =
                (r.get(0), r.get(1), r.get(2));
            let context = self.context(&profile, &generation);
            let cannot = |why: String| Error::CannotRotate {
                reason: format!(
                    "profile {profile} does not open under the configured key ({why}); \
                     nothing was changed: run `rctoken doctor`, and log that profile in \
                     again or remove it first"
                ),
            };
            let id = sealed::key_id_of(&bytes).map_err(|k| cannot(k.message))?;
            if id != old.id() {
                return Err(cannot(format!("it is sealed under key {}", hex(&id))));
            }
            let plain = sealed::open(&old, &context, bytes).map_err(|k| cannot(k.message))?;
            let resealed = sealed::seal(new, &context, &plain)
                .map_err(|k| Error::Internal { reason: k.message })?;
            tx.execute(
                "UPDATE rctoken_profiles SET envelope = $3 WHERE app = $1 AND profile = $2",
                &[&self.app_id, &profile, &resealed],
            )
            .map_err(&e)?;
        }
        tx.execute(
            "UPDATE rctoken_stores SET key_id = $2 WHERE app = $1",
            &[&self.app_id, &&new.id()[..]],
        )
        .map_err(&e)?;
        Ok(rows.len())
    }

    /// Seal and open with `key` from now on (after a committed rotation).
    pub(crate) fn use_key(&self, key: SealingKey) {
        *self.key.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(key));
    }

    /// What binds an envelope to its place: the app, the profile and the
    /// generation.
    fn context(&self, key: &str, generation: &str) -> Vec<u8> {
        format!("rctoken-postgres\0{}\0{key}\0{generation}", self.app_id).into_bytes()
    }

    /// Seal an envelope for generation `generation` of profile `key`.
    pub(crate) fn seal(&self, key: &str, generation: &str, envelope: &[u8]) -> Result<Vec<u8>> {
        let k = self.key()?;
        sealed::seal(&k, &self.context(key, generation), envelope)
            .map_err(|e| Error::Internal { reason: e.message })
    }

    /// Open a profile's sealed envelope.
    pub(crate) fn open(&self, info: &ProfileInfo, bytes: Vec<u8>) -> Result<Zeroizing<Vec<u8>>> {
        let k = self.key()?;
        let id = sealed::key_id_of(&bytes).map_err(|e| Error::CorruptSecret {
            profile: info.profile.clone(),
            reason: e.message.clone(),
        })?;
        if id != k.id() {
            self.check_key_id(&id)?;
        }
        sealed::open(
            &k,
            &self.context(&info.profile, &info.secret.generation),
            bytes,
        )
        .map_err(|e| Error::CorruptSecret {
            profile: info.profile.clone(),
            reason: e.message,
        })
    }

    /// Run `sql` inside the refresh transaction `tx`.
    pub(crate) fn tx_client<'a>(&self, tx: &'a mut Tx) -> &'a mut postgres::Client {
        &mut tx.client
    }

    /// Commit the refresh transaction.
    pub(crate) fn commit(&self, mut tx: Tx) -> Result<()> {
        tx.open = false;
        tx.client
            .batch_execute("COMMIT")
            .map_err(self.err("commit the refreshed token"))
    }
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
