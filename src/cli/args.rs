//! The command line as clap sees it: global options, commands, and the help
//! texts (including the exit code table).

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Keep RingCentral OAuth tokens in the OS keychain, one profile per extension";

const LONG_ABOUT: &str = "\
Keep RingCentral OAuth tokens in the OS keychain, one profile per extension.

The access, refresh and id tokens go into the keychain (the Secret Service on
Linux, else a sealed store whose key keyutils or a key file holds; Keychain on
macOS, Credential Manager on Windows); everything else goes into a small
locked JSON file. PROFILE is a profile key
(the token's owner_id, or the --profile given at import) or a label; left
out, it means the active profile.";

/// Shown after every help text.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  anything else (I/O error, refresher command failed, store drift found by doctor)
  2  usage error
  3  no such profile, or none active, or no store for this --app and --dir
  4  token not valid long enough, or login required
  5  keychain unavailable, locked, or not answering
  6  bad input (token JSON that does not parse or violates the model)
  7  store files corrupt or unsafe, the store of another --app, or a sealed-store
     key file that is loose, empty or not the store's key
  8  refreshed, but the new tokens could not be stored (the refresh token is spent)
  9  RingCentral refused or could not be reached (network, TLS, 5xx after retries,
     429 past the wait bound, app credentials refused)
 10  `rctoken api`: the API answered with an HTTP error (status on stderr)
 11  the PostgreSQL store's database is unreachable, restarting, timed out, or its
     settings cannot be used (every change is one transaction: nothing half-written)

Environment: RCTOKEN_APP, RCTOKEN_BACKEND, RCTOKEN_DIR, RCTOKEN_LOCK_TIMEOUT and
RCTOKEN_KEYCHAIN_TIMEOUT set the defaults of the global options of the same names
(an empty variable counts as unset).
RCTOKEN_DATABASE_URL sets --database-url; libpq's PG* variables and ~/.pgpass
fill what it leaves out.
RCTOKEN_KEY_FILE names the sealed store's key file (a path; 32 random bytes in
base64, mode 0600). RCTOKEN_CLIENT_ID and RCTOKEN_SERVER set login's
--client-id and --server.";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "rctoken",
    // Not argv[0]'s file name, which is `rctoken.exe` on Windows.
    bin_name = "rctoken",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    color = clap::ColorChoice::Never,
    propagate_version = true
)]
pub struct Cli {
    /// Application id: names the keychain namespace (rctoken:<ID>) and the default metadata directory
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "RCTOKEN_APP",
        default_value = "rctoken",
        value_name = "ID"
    )]
    pub app: String,

    /// Keychain backend
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "RCTOKEN_BACKEND",
        default_value = "auto",
        value_parser = backend_names(),
        value_name = "BACKEND"
    )]
    pub backend: String,

    /// Metadata directory (created with mode 0700) [default: the platform's local data directory for ID]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "RCTOKEN_DIR",
        value_name = "PATH"
    )]
    pub dir: Option<PathBuf>,

    /// Keep the profiles in PostgreSQL instead of this machine (a postgresql:// URL or key=value words; passwords go in ~/.pgpass, never here); needs RCTOKEN_KEY_FILE
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "RCTOKEN_DATABASE_URL",
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Seconds to wait for a store lock held by another process before failing
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "RCTOKEN_LOCK_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECS"
    )]
    pub lock_timeout: f64,

    /// Seconds to wait for one keychain call before failing with exit 5
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "RCTOKEN_KEYCHAIN_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECS"
    )]
    pub keychain_timeout: f64,

    /// Say on stderr what a long wait (over 1.5 s, on a lock or the
    /// keychain) waits for, even when stderr is not a terminal
    #[arg(long, short = 'v', global = true, help_heading = "Global options")]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// `--backend` values: the library's names; `memory` is hidden (tests
/// only: it lives for one process).
fn backend_names() -> PossibleValuesParser {
    PossibleValuesParser::new(
        rctoken::Backend::NAMES
            .iter()
            .map(|b| PossibleValue::new(b.name).help(b.help).hide(b.tests_only)),
    )
}

/// The command line as clap builds it from `Cli`, plus what the derive
/// cannot say once for every command: its examples (ahead of the exit code
/// table) and its version line (`rctoken 0.1.0`, where clap would print
/// `rctoken-list 0.1.0`; usage lines still read `rctoken list`). Parsing,
/// the usage hints, the completion scripts and the man page all use it.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommands(|sub| {
        let sub = sub.display_name("rctoken");
        match super::examples::of(sub.get_name()) {
            Some(examples) => {
                let after = sub.get_after_help().map(|a| a.to_string());
                let after = after.map(|a| format!("\n\n{a}")).unwrap_or_default();
                sub.after_help(format!("Examples:\n{examples}{after}"))
            }
            None => sub,
        }
    })
}

/// Parse the process's command line against [`command`].
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut cmd = without_empty_env(command());
    let matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// An environment variable set to the empty string counts as unset, as
/// for most Unix tools (`RCTOKEN_DIR= rctoken list` uses the default
/// directory): clap would take it as an empty value and refuse it.
fn without_empty_env(cmd: clap::Command) -> clap::Command {
    let empty = |a: &clap::Arg| {
        a.get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.is_empty())
    };
    cmd.mut_args(|a| if empty(&a) { a.env(None) } else { a })
        .mut_subcommands(without_empty_env)
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save a token endpoint response (JSON) from FILE or stdin as a profile
    #[command(after_help = AFTER_HELP)]
    Import(ImportArgs),
    /// List the profiles (never touches the keychain)
    #[command(after_help = AFTER_HELP)]
    List(ListArgs),
    /// Make PROFILE the active profile
    #[command(after_help = AFTER_HELP)]
    Switch(SwitchArgs),
    /// Show everything non-secret about a profile, and where its secrets are
    #[command(after_help = AFTER_HELP)]
    Status(StatusArgs),
    /// Print the access token and a newline, and nothing else
    #[command(after_help = AFTER_HELP)]
    Token(TokenArgs),
    /// Print the token as token endpoint JSON, secrets included (needs --reveal)
    #[command(after_help = AFTER_HELP)]
    Export(ExportArgs),
    /// Delete a profile's secrets from the keychain and its metadata
    #[command(after_help = AFTER_HELP)]
    Logout(LogoutArgs),
    /// Check the store: backend, files, lock, metadata, secrets (--fix repairs)
    #[command(after_help = AFTER_HELP)]
    Doctor(DoctorArgs),
    /// Move profiles an older rctoken kept in plain keyutils into the sealed store
    #[command(after_help = AFTER_HELP)]
    Migrate,
    /// Re-seal every profile of the sealed or PostgreSQL store under a new key (crash-safe)
    #[command(after_help = AFTER_HELP)]
    RotateKey(RotateKeyArgs),
    /// Log in at RingCentral (a JWT credential, or the browser) and save the profile
    #[command(after_help = AFTER_HELP)]
    Login(LoginArgs),
    /// Send an authenticated request to the profile's RingCentral server
    #[command(after_help = AFTER_HELP)]
    Api(ApiArgs),
    /// Print a completion script for SHELL
    #[command(after_help = AFTER_HELP)]
    Completion(CompletionArgs),
    /// Print the manual page (roff)
    #[command(after_help = AFTER_HELP)]
    Man,
}

/// `rctoken completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `rctoken login`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("grant").required(true).args(["jwt", "browser"])))]
pub struct LoginArgs {
    /// File holding the JWT credential; `-` reads it from stdin
    #[arg(long, value_name = "FILE")]
    pub jwt: Option<PathBuf>,
    /// Log in through the browser: authorization code with PKCE, redirected
    /// to http://127.0.0.1:PORT/callback
    #[arg(long)]
    pub browser: bool,
    /// The loopback port of the redirect (must match the app's registered
    /// redirect URI) [default: any free port]
    #[arg(
        long,
        value_name = "N",
        requires = "browser",
        default_value_t = 0,
        hide_default_value = true
    )]
    pub port: u16,
    /// Do not open a browser; only print the URL (on stderr)
    #[arg(long, requires = "browser")]
    pub no_open: bool,
    /// How long to wait for the browser's redirect
    #[arg(long, value_name = "SECS", requires = "browser", default_value_t = 300)]
    pub wait: u64,
    /// The app's client id
    #[arg(long, value_name = "ID", env = "RCTOKEN_CLIENT_ID")]
    pub client_id: String,
    /// File holding the app's client secret (omit for a public app)
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// `production`, `sandbox`, or the server's https:// URL
    #[arg(
        long,
        value_name = "SERVER",
        default_value = "production",
        env = "RCTOKEN_SERVER"
    )]
    pub server: String,
    /// Set the profile's label
    #[arg(long, value_name = "LABEL", value_parser = profile_name)]
    pub label: Option<String>,
    /// Do not make the profile active (the first profile is active anyway)
    #[arg(long)]
    pub no_switch: bool,
    /// Store the new tokens here even if the profile's secrets are in a
    /// backend this run cannot reach (e.g. the Secret Service, with no
    /// session bus); the old secrets stay there
    #[arg(long = "move")]
    pub move_secrets: bool,
}

/// `rctoken api`.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Path relative to the server, e.g. /restapi/v1.0/account/~/extension/~
    #[arg(value_name = "PATH")]
    pub path: String,
    /// HTTP method [default: GET, or POST with --data]
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Request body: JSON, @FILE, or @- for stdin
    #[arg(long, short = 'd', value_name = "DATA")]
    pub data: Option<String>,
    /// An extra request header, `Name: value` (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Profile key or label [default: the active profile]
    #[arg(long, value_name = "PROFILE", value_parser = profile_name)]
    pub profile: Option<String>,
    /// Server for a profile that did not log in with rctoken [default: its
    /// server, else production]
    #[arg(long, value_name = "SERVER")]
    pub server: Option<String>,
}

/// `rctoken rotate-key`.
#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    /// Re-seal under the key in this key file (32 random bytes in base64,
    /// mode 0600 or 0400), which you made. Without it, a store whose key is
    /// in keyutils gets a new random key there (a PostgreSQL store needs
    /// this option). Afterwards point RCTOKEN_KEY_FILE (or the systemd
    /// credential) at this file.
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<std::path::PathBuf>,
}

/// A profile key or label given on the command line: the library's rules.
fn profile_name(s: &str) -> Result<String, String> {
    match rctoken::check_profile_name(s) {
        Ok(()) => Ok(s.to_string()),
        Err(rctoken::Error::InvalidName { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// `rctoken import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Token JSON file; `-` or absent reads stdin (at most 1 MiB)
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Profile key [default: the token's owner_id]
    #[arg(long, value_name = "NAME", value_parser = profile_name)]
    pub profile: Option<String>,
    /// Set the profile's label (otherwise a re-imported profile keeps its label)
    #[arg(long, value_name = "LABEL", value_parser = profile_name)]
    pub label: Option<String>,
    /// Do not make the profile active (the first profile is active anyway)
    #[arg(long)]
    pub no_switch: bool,
    /// Store the new tokens here even if the profile's secrets are in a
    /// backend this run cannot reach (e.g. the Secret Service, with no
    /// session bus); the old secrets stay there
    #[arg(long = "move")]
    pub move_secrets: bool,
    /// The input's format: a token endpoint response, ringcentral-js's
    /// stored data (times in ms), ringcentral-python's auth.data() (times in
    /// s), or detected
    #[arg(long, value_name = "FORMAT", default_value = "auto", value_parser = ["auto", "token", "rc-js", "rc-python"])]
    pub format: String,
}

/// `rctoken list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array instead of one line per profile
    #[arg(long)]
    pub json: bool,
}

/// `rctoken switch`.
#[derive(Debug, Args)]
pub struct SwitchArgs {
    /// Profile key or label
    #[arg(value_parser = profile_name)]
    pub profile: String,
}

/// `rctoken status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Profile key or label [default: the active profile]
    #[arg(value_parser = profile_name)]
    pub profile: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

/// `rctoken token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Profile key or label [default: the active profile]
    #[arg(value_parser = profile_name)]
    pub profile: Option<String>,
    /// Fail (exit 4) unless the access token stays valid this many more seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub min_valid: u64,
    /// When the access token is not valid long enough, run `sh -c CMD` with the
    /// refresh token on its stdin and RCTOKEN_OWNER_ID in its environment; it must
    /// print the token endpoint's JSON response. Only one process refreshes at a time.
    #[arg(long, value_name = "CMD")]
    pub refresh_with: Option<String>,
}

/// `rctoken export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Profile key or label [default: the active profile]
    #[arg(value_parser = profile_name)]
    pub profile: Option<String>,
    /// Confirm that the output (access and refresh token) may be printed
    #[arg(long)]
    pub reveal: bool,
    /// The output's format: token endpoint JSON (also what the liblab SDK
    /// takes), ringcentral-js's stored data, or ringcentral-python's
    /// auth.data()
    #[arg(long, value_name = "FORMAT", default_value = "token", value_parser = ["token", "rc-js", "rc-python"])]
    pub format: String,
}

/// `rctoken logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Profile key or label [default: the active profile]
    #[arg(value_parser = profile_name)]
    pub profile: Option<String>,
    /// Log out every profile and delete every keychain item of this app id
    #[arg(long, conflicts_with = "profile")]
    pub all: bool,
    /// Do not revoke the tokens at RingCentral first
    #[arg(long)]
    pub no_revoke: bool,
}

/// `rctoken doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// Repair: delete orphaned keychain items, drop profiles whose secrets are
    /// gone, move corrupt metadata aside and rebuild it from the keychain
    #[arg(long)]
    pub fix: bool,
}
