//! Dispatch to the commands, and opening the store from the global options.

use std::time::Duration;

use rctoken::{Backend, TokenStore};

use super::args::{Cli, Command};
use super::exit::{Failure, USAGE};

mod doctor;
mod import;
mod list;
mod profile;
mod status;
mod token;

/// The global options, for commands that open the store.
pub struct Ctx {
    app: String,
    backend: String,
    dir: Option<std::path::PathBuf>,
    lock_timeout: Duration,
    keychain_timeout: Duration,
}

impl Ctx {
    /// Open the store (creating its directory 0700). The keychain is not
    /// contacted until a command needs a secret.
    pub fn open(&self) -> Result<TokenStore, Failure> {
        let backend = Backend::from_name(&self.backend).ok_or_else(|| {
            Failure::new(
                USAGE,
                format!("unknown backend {}", self.backend),
                "see `rctoken --help` for the backends",
            )
        })?;
        let mut builder = TokenStore::builder(&self.app)
            .backend(backend)
            .lock_timeout(self.lock_timeout)
            .keychain_timeout(self.keychain_timeout);
        if let Some(dir) = &self.dir {
            builder = builder.dir(dir);
        }
        Ok(builder.open()?)
    }
}

/// Run one parsed command line; `Ok` carries the exit code.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let ctx = Ctx {
        app: cli.app,
        backend: cli.backend,
        // An empty RCTOKEN_DIR means "not set".
        dir: cli
            .dir
            .filter(|d| !d.as_os_str().is_empty())
            .map(expand_home)
            .transpose()?,
        lock_timeout: seconds("--lock-timeout", cli.lock_timeout)?,
        keychain_timeout: seconds("--keychain-timeout", cli.keychain_timeout)?,
    };
    match cli.command {
        Command::Import(a) => import::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Switch(a) => profile::switch(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Token(a) => token::token(&ctx, a),
        Command::Export(a) => token::export(&ctx, a),
        Command::Logout(a) => profile::logout(&ctx, a),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Migrate => profile::migrate(&ctx),
    }
}

/// `~` and `~/…` at the start of `--dir`/`RCTOKEN_DIR` mean the home
/// directory, as in a shell (a quoted `RCTOKEN_DIR="~/x"` reaches us
/// unexpanded). `~user` is not expanded. Relative paths are made absolute by
/// the library when the store opens.
fn expand_home(dir: std::path::PathBuf) -> Result<std::path::PathBuf, Failure> {
    let Ok(rest) = dir.strip_prefix("~") else {
        return Ok(dir);
    };
    let home = directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or_else(|| {
            Failure::new(
                USAGE,
                "--dir starts with `~`, but there is no home directory to expand it to",
                "pass an absolute path",
            )
        })?;
    Ok(home.join(rest))
}

/// A timeout option as a Duration; usage error unless finite and in 0..=86400.
fn seconds(option: &str, secs: f64) -> Result<Duration, Failure> {
    if secs.is_finite() && (0.0..=86_400.0).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(Failure::new(
            USAGE,
            format!("{option} must be a number of seconds between 0 and 86400"),
            "pass for example 5 or 0.5",
        ))
    }
}

/// " (label work)" or "".
fn label_part(label: Option<&str>) -> String {
    label.map(|l| format!(" (label {l})")).unwrap_or_default()
}
