//! Dispatch to the commands, and opening the store from the global options.

use std::time::Duration;

use rctoken::{Backend, TokenStore};

use super::args::{Cli, Command};
use super::exit::{Failure, USAGE};

mod api;
mod doctor;
mod generate;
mod import;
mod list;
mod login;
mod profile;
mod status;
mod token;

/// The global options, for commands that open the store.
pub struct Ctx {
    app: String,
    backend: String,
    dir: Option<std::path::PathBuf>,
    database_url: Option<String>,
    lock_timeout: Duration,
    keychain_timeout: Duration,
    /// Whether long waits are told on stderr: on a terminal, or `--verbose`.
    wait_notices: bool,
}

/// When a wait is long enough to say so.
const NOTICE_AFTER: Duration = Duration::from_millis(1500);

impl Ctx {
    /// The backend as given (`auto` unless chosen).
    pub fn backend_name(&self) -> &str {
        &self.backend
    }

    /// Open a store that exists (creating nothing: a mistyped `--app` or
    /// `--dir` is reported as "no store"). The keychain is not contacted
    /// until a command needs a secret.
    pub fn open(&self) -> Result<TokenStore, Failure> {
        Ok(self.builder()?.open_existing()?)
    }

    /// Open the store, creating its directory (0700): for the commands
    /// that add profiles.
    pub fn open_creating(&self) -> Result<TokenStore, Failure> {
        Ok(self.builder()?.open()?)
    }

    fn builder(&self) -> Result<rctoken::StoreBuilder, Failure> {
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
        if let Some(url) = &self.database_url {
            builder = builder.database_url(url);
        }
        if self.wait_notices {
            builder = builder.wait_notice(NOTICE_AFTER, |w| {
                let option = match w.what {
                    rctoken::WaitFor::Lock(_) => "--lock-timeout",
                    _ => "--keychain-timeout",
                };
                eprintln!(
                    "rctoken: {} ({option})",
                    super::output::safe(&w.to_string())
                );
            });
        }
        Ok(builder)
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
        database_url: database_url(cli.database_url)?,
        lock_timeout: seconds("--lock-timeout", cli.lock_timeout)?,
        keychain_timeout: seconds("--keychain-timeout", cli.keychain_timeout)?,
        wait_notices: cli.verbose || std::io::IsTerminal::is_terminal(&std::io::stderr()),
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
        Command::RotateKey(a) => profile::rotate_key(&ctx, a),
        Command::Login(a) => login::run(&ctx, a),
        Command::Api(a) => api::run(&ctx, a),
        Command::Completion(a) => generate::completion(a),
        Command::Man => generate::man(),
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

/// `--database-url`, unless empty. A password in it is refused when it came
/// on the command line (other users see argv in `ps`); it may come from
/// RCTOKEN_DATABASE_URL, ~/.pgpass, PGPASSFILE or PGPASSWORD.
fn database_url(url: Option<String>) -> Result<Option<String>, Failure> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let from_env = std::env::var("RCTOKEN_DATABASE_URL").ok().as_deref() == Some(url.as_str());
    if !from_env && has_password(&url) {
        return Err(Failure::new(
            USAGE,
            "--database-url holds a password, which other users can read in the process list",
            "put the password in ~/.pgpass (or PGPASSFILE), or pass the URL in RCTOKEN_DATABASE_URL",
        ));
    }
    Ok(Some(url))
}

/// Whether a connection string carries a password (`user:pw@` in a URL,
/// `password=` in key=value words or a URL's query).
fn has_password(url: &str) -> bool {
    if let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u).unwrap_or("");
        return userinfo.contains(':') || rest.contains("password=");
    }
    url.split_whitespace().any(|w| w.starts_with("password="))
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

/// Save `token` for `import` and `login`: a profile whose secrets are in a
/// backend this run cannot reach is refused unless `--move` was given (the
/// hint says both ways out), and a move is stated on stderr. Returns the
/// saved profile and the words for where its secrets went.
fn save_here(
    ctx: &Ctx,
    store: &TokenStore,
    token: &rctoken::TokenInfo,
    key: Option<&str>,
    options: rctoken::SaveOptions,
) -> Result<rctoken::ProfileInfo, Failure> {
    // Where the profile's secrets are now (a lock timeout here is the
    // save's error too: reported, not waited for again by the save).
    let before = match key.map(|k| store.info(k)) {
        Some(Ok(p)) => Some(p.secrets_backend().to_string()),
        Some(Err(rctoken::Error::NoSuchProfile(_) | rctoken::Error::NoActiveProfile)) | None => {
            None
        }
        Some(Err(e)) => return Err(e.into()),
    };
    let info = store.save(token, options).map_err(|e| match e {
        rctoken::Error::WrongBackend {
            held_by, backend, ..
        } => Failure::new(
            super::exit::KEYCHAIN,
            format!(
                "profile `{}`'s secrets are in the {held_by} backend, which this run cannot reach; nothing was saved",
                key.unwrap_or("?")
            ),
            format!(
                "run again with --backend {held_by} where it is reachable, or add --move to store the new tokens in {backend} (the old secrets stay in {held_by})"
            ),
        ),
        other => other.into(),
    })?;
    if let Some(old) = before.filter(|b| b != info.secrets_backend()) {
        eprintln!(
            "note: profile {}'s secrets moved from {old} to {}; any left in {old} are removed by `rctoken doctor --fix --backend {old}` where it is reachable",
            super::output::safe(&info.profile),
            info.secrets_backend()
        );
    }
    // A fallback of `auto` is stated, on stderr (stdout stays one line).
    if ctx.backend_name() == "auto"
        && let Ok((_, reason)) = store.backend()
        && (reason.contains("did not answer") || reason.contains("no session bus"))
    {
        eprintln!("note: {reason}");
    }
    Ok(info)
}
