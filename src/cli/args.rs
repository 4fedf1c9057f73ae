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
macOS, Credential Manager on Windows);
everything else goes into a small locked JSON file. PROFILE is a profile key
(the token's owner_id, or the --profile given at import) or a label; left
out, it means the active profile.";

/// Shown after every help text.
pub const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  anything else (I/O error, refresher command failed, store drift found by doctor)
  2  usage error
  3  no such profile, or none active
  4  token not valid long enough, or login required
  5  keychain unavailable, locked, or not answering
  6  bad input (token JSON that does not parse or violates the model)
  7  store files corrupt or unsafe, or the store of another --app
  8  refreshed, but the new tokens could not be stored (the refresh token is spent)

Environment: RCTOKEN_APP, RCTOKEN_BACKEND, RCTOKEN_DIR, RCTOKEN_LOCK_TIMEOUT and
RCTOKEN_KEYCHAIN_TIMEOUT set the defaults of the global options of the same names.
RCTOKEN_KEY_FILE names the sealed store's key file (a path; 32 random bytes in
base64, mode 0600). See docs/cli.md for examples.";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "rctoken",
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
