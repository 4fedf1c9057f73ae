//! The PostgreSQL store's tests: the private cluster `.ci/lib/postgres.sh`
//! starts (its socket in `RCTOKEN_TEST_DATABASE_URL`), one app id per test
//! (every row is namespaced by it, and dropped with the test), "hosts"
//! that share nothing but the database, and looks from outside with
//! `psql` and `pg_dump`.
//!
//! The missing-backend policy of `support::backends` holds: without
//! `RCTOKEN_TEST_DATABASE_URL` a test fails, unless the run declares
//! `postgres` absent in `RCTOKEN_TEST_ABSENT_BACKENDS`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::backends::{ABSENT_ENV, declared_absent_name};
use super::cli::{Run, bin, run, run_with_stdin};
use super::ids;

pub const URL_ENV: &str = "RCTOKEN_TEST_DATABASE_URL";

/// `Some(url)` if the tests on PostgreSQL run; `None` (after saying so)
/// if the run declared it absent; panics if it is neither.
#[track_caller]
pub fn url() -> Option<String> {
    if declared_absent_name("postgres") {
        let thread = std::thread::current();
        let _ = writeln!(
            std::io::stderr(),
            "{}: NOT RUN on postgres (declared absent in {ABSENT_ENV})",
            thread.name().unwrap_or("a test")
        );
        return None;
    }
    match std::env::var(URL_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => panic!(
            "no PostgreSQL server for the tests: {URL_ENV} is unset. CI starts a private \
             cluster (.ci/lib/postgres.sh, pg_private_start); or declare it absent: \
             {ABSENT_ENV}=postgres (the tests on it then do not run)"
        ),
    }
}

/// `let pg = pg_env!("name");` at the start of a test: returns from the
/// test if PostgreSQL is declared absent.
#[macro_export]
macro_rules! pg_env {
    ($test:expr) => {
        match $crate::support::postgres::url() {
            Some(url) => $crate::support::postgres::Pg::new($test, url),
            None => return,
        }
    };
    ($test:expr, alone) => {
        match $crate::support::postgres::url() {
            Some(url) => $crate::support::postgres::Pg::alone($test, url),
            None => return,
        }
    };
}

/// One test's app in the database, and a key file.
pub struct Pg {
    pub app: String,
    pub url: String,
    pub tmp: tempfile::TempDir,
    _turn: Turn,
}

/// Tests that restart the server hold this exclusively; every other test
/// holds it shared (in its [`Pg`]) while it runs.
static SERVER: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[allow(dead_code, reason = "held for its drop")]
enum Turn {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
}

/// A machine that shares nothing with the others but the database: its
/// own HOME, store directory and copy of the key file, and (see
/// [`Pg::on_host`]) its own network namespace.
pub struct Host {
    pub home: PathBuf,
    pub key: PathBuf,
}

impl Pg {
    pub fn new(test: &str, url: String) -> Pg {
        Self::with_turn(test, url, false)
    }

    /// As [`new`](Self::new), with the server to this test alone (no other
    /// test of this binary runs meanwhile): for tests that restart it.
    pub fn alone(test: &str, url: String) -> Pg {
        Self::with_turn(test, url, true)
    }

    fn with_turn(test: &str, url: String, alone: bool) -> Pg {
        let turn = if alone {
            Turn::Alone(SERVER.write().unwrap_or_else(|p| p.into_inner()))
        } else {
            Turn::Shared(SERVER.read().unwrap_or_else(|p| p.into_inner()))
        };
        let pg = Pg {
            app: ids::app_id(test, "pg"),
            url,
            tmp: tempfile::tempdir().expect("tempdir"),
            _turn: turn,
        };
        write_key(&pg.key_file(), &random_key());
        pg
    }

    /// The key file of this test (mode 0600).
    pub fn key_file(&self) -> PathBuf {
        self.tmp.path().join("key")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `rctoken --app APP` on the database, with the key file; its HOME
    /// is the test's temp dir, so nothing touches the user's.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env_remove("RCTOKEN_DIR")
            .env_remove("RCTOKEN_BACKEND")
            .env("HOME", self.tmp.path())
            .env("RCTOKEN_DATABASE_URL", &self.url)
            .env("RCTOKEN_KEY_FILE", self.key_file())
            .arg("--app")
            .arg(&self.app)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args))
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        run_with_stdin(self.cmd().args(args), input.as_bytes())
    }

    /// A new host `name`, with a copy of the key file.
    pub fn host(&self, name: &str) -> Host {
        let home = self.tmp.path().join(format!("host-{name}"));
        std::fs::create_dir_all(&home).expect("host dir");
        let key = home.join("key");
        std::fs::copy(self.key_file(), &key).expect("copy the key file");
        Host { home, key }
    }

    /// `rctoken --app APP` as run on `host`: in a network namespace of its
    /// own (`unshare --net`, only a loopback that is down: it reaches the
    /// database through the socket file alone), with the host's HOME and
    /// key file, and nothing of this process's environment but PATH.
    pub fn on_host(&self, host: &Host) -> Command {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-current-user", "--net", "--"])
            .arg(bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &host.home)
            .env("RCTOKEN_DATABASE_URL", &self.url)
            .env("RCTOKEN_KEY_FILE", &host.key)
            .arg("--app")
            .arg(&self.app)
            .stdin(Stdio::null());
        c
    }

    /// One value from the database, as `psql -At` prints it.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(&self.url)
            .args(["-X", "-qAtc", sql])
            .env("HOME", self.tmp.path())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `sh -e -c SCRIPT` as a user of this store runs a recipe of
    /// docs/cli.md: HOME is `home`, `rctoken` is first on PATH, and the
    /// app, the database and the key file are in the environment; stdin is
    /// empty, stdout and stderr are piped.
    #[allow(dead_code, reason = "not every test uses it")]
    pub fn recipe_sh(&self, home: &Path, script: &str) -> Command {
        let bin_dir = Path::new(bin()).parent().expect("bin dir").to_path_buf();
        let mut c = Command::new("sh");
        c.args(["-e", "-c", script])
            .env("HOME", home)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("RCTOKEN_APP", &self.app)
            .env("RCTOKEN_DATABASE_URL", &self.url)
            .env("RCTOKEN_KEY_FILE", self.key_file())
            .env_remove("RCTOKEN_DIR")
            .env_remove("RCTOKEN_BACKEND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The whole database, as `pg_dump` writes it (data and schema).
    pub fn dump(&self) -> Vec<u8> {
        let out = Command::new("pg_dump")
            .arg(&self.url)
            .env("HOME", self.tmp.path())
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Every row of this test's app, whatever the test left.
        let app = self.app.replace('\'', "''");
        let _ = Command::new("psql")
            .arg(&self.url)
            .args([
                "-X",
                "-qAtc",
                &format!(
                    "DELETE FROM rctoken_profiles WHERE app = '{app}'; DELETE FROM rctoken_stores WHERE app = '{app}'"
                ),
            ])
            .env("HOME", self.tmp.path())
            .stderr(Stdio::null())
            .status();
    }
}

/// 32 random bytes in base64, the key file format.
pub fn random_key() -> String {
    use base64ct::{Base64, Encoding};
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).expect("random");
    Base64::encode_string(&k)
}

/// Write a key file, mode 0600.
pub fn write_key(path: &Path, key: &str) {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
        .and_then(|mut f| writeln!(f, "{key}"))
        .expect("write the key file");
}
