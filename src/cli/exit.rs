//! Exit codes, the mapping from library errors to them, and the two-line
//! error report ("error: what happened" / "hint: what to do") on stderr.

use std::io::Write;

use rctoken::ringcentral::{OAuthError, OAuthErrorKind};
use rctoken::{Error, NameKind, UnsafeKind};

use super::refresher::RefresherError;

/// Success.
pub const OK: u8 = 0;
/// Anything else.
pub const OTHER: u8 = 1;
/// Usage error.
pub const USAGE: u8 = 2;
/// No such profile, or none active.
pub const NO_PROFILE: u8 = 3;
/// Token not valid long enough, or login required.
pub const NOT_VALID: u8 = 4;
/// Keychain unavailable, locked, or not answering.
pub const KEYCHAIN: u8 = 5;
/// Bad input.
pub const BAD_INPUT: u8 = 6;
/// Store files corrupt or unsafe, or the store of another app id.
pub const STORE: u8 = 7;
/// A refresh succeeded but its result could not be stored: the old refresh
/// token is spent.
pub const NOT_STORED: u8 = 8;
/// RingCentral refused the request or could not be reached.
pub const SERVER: u8 = 9;
/// `rctoken api`: the API answered with an HTTP error.
pub const HTTP: u8 = 10;
/// The PostgreSQL store's database is unreachable, restarting, timed out,
/// or its settings cannot be used (nothing was half-written).
pub const DATABASE: u8 = 11;

/// A command that failed: its exit code and the two lines to print.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub what: String,
    pub hint: String,
}

impl Failure {
    pub fn new(code: u8, what: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure {
            code,
            what: what.into(),
            hint: hint.into(),
        }
    }

    /// Print the two lines on stderr and return the exit code.
    pub fn report(&self) -> u8 {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "error: {}\nhint: {}",
            one_line(&self.what),
            one_line(&self.hint)
        );
        self.code
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let what = match &e {
            // A long "profile name" may be a token pasted in the wrong place.
            Error::NoSuchProfile(name) if name.chars().count() > MAX_ECHO => format!(
                "no profile is named by the {}-character argument",
                name.chars().count()
            ),
            _ => e.to_string(),
        };
        Failure::new(code_of(&e), what, hint_of(&e))
    }
}

/// The exit code of a library error (see the table in `--help`). With
/// [`hint_of`], the one place that maps library errors to the CLI.
pub fn code_of(e: &Error) -> u8 {
    match e {
        Error::NoSuchProfile(_) | Error::NoActiveProfile | Error::NoStore { .. } => NO_PROFILE,
        // A listed profile whose secrets are gone (keyutils after a reboot)
        // needs the same action as an expired refresh token: log in again.
        Error::LoginRequired { .. }
        | Error::SecretMissing { .. }
        | Error::SealingKeyLost { .. } => NOT_VALID,
        // WrongBackend: the keychain holding the secrets is not the one in use
        // (e.g. auto fell back to keyutils without a session bus).
        Error::KeychainUnavailable { .. } | Error::WrongBackend { .. } => KEYCHAIN,
        Error::BadToken { .. } | Error::TooLarge { .. } | Error::ErrorResponse { .. } => BAD_INPUT,
        Error::InvalidName {
            kind: NameKind::OwnerId,
            ..
        } => BAD_INPUT,
        Error::CorruptMetadata { .. }
        | Error::UnsupportedVersion { .. }
        | Error::SecretsTooNew { .. }
        | Error::UnsafeStore { .. }
        | Error::ForeignStore { .. }
        | Error::BadKeyFile { .. }
        | Error::WrongSealingKey { .. }
        | Error::CannotRotate { .. }
        | Error::CorruptSecret { .. } => STORE,
        Error::Database { .. } | Error::DatabaseConfig { .. } => DATABASE,
        Error::NotRefreshed { source, .. } => code_of(source),
        Error::RefreshNotStored { .. } => NOT_STORED,
        Error::InvalidName { .. } | Error::NameTaken { .. } | Error::MissingProfileKey => USAGE,
        Error::RefreshFailed { source, .. } => {
            if source.downcast_ref::<OAuthError>().is_some() {
                return SERVER;
            }
            match source.downcast_ref::<RefresherError>() {
                Some(r) if r.is_bad_output() => BAD_INPUT,
                Some(RefresherError::Refused(_)) => SERVER,
                _ => OTHER,
            }
        }
        _ => OTHER,
    }
}

/// The failure of a call to RingCentral outside a refresh (login, api).
pub fn oauth_failure(e: &OAuthError) -> Failure {
    let code = match e.kind {
        OAuthErrorKind::LoginAgain => NOT_VALID,
        OAuthErrorKind::BadServer | OAuthErrorKind::BadRequest if e.status.is_none() => USAGE,
        _ => SERVER,
    };
    Failure::new(code, e.to_string(), oauth_hint(e))
}

/// What to do about a RingCentral error.
pub fn oauth_hint(e: &OAuthError) -> String {
    match e.kind {
        OAuthErrorKind::LoginAgain => {
            "log in again: `rctoken login --jwt FILE --client-id ID`".into()
        }
        OAuthErrorKind::BadClient => {
            "check the client id and the client secret file (a public app has no secret)".into()
        }
        OAuthErrorKind::RateLimited => {
            "RingCentral's rate limit for this app is reached; wait a minute and retry".into()
        }
        OAuthErrorKind::Unavailable => {
            "check the network (and HTTPS_PROXY) and retry; the stored tokens are unchanged".into()
        }
        OAuthErrorKind::BadServer => "give --server production, sandbox, or an https:// URL".into(),
        _ => "check the request; the stored tokens are unchanged".into(),
    }
}

/// One line for the user: what to do about `e`, in the CLI's terms.
pub fn hint_of(e: &Error) -> String {
    match e {
        Error::Database {
            lock_timeout: true, ..
        } => "another host holds this profile's row lock (a refresh under way, or a host that died: the server ends its session within the lock timeout); retry, or raise --lock-timeout".into(),
        Error::Database { .. } => "check that the PostgreSQL server is up and that --database-url / RCTOKEN_DATABASE_URL and the PG* variables name it; nothing was half-written, so retry once it answers".into(),
        Error::DatabaseConfig { .. } => "fix --database-url / RCTOKEN_DATABASE_URL (a postgresql:// URL or key=value words; passwords belong in ~/.pgpass or PGPASSFILE) and the PG* variables".into(),
        Error::KeychainUnavailable { backend, .. } if backend == "auto" || backend == "sealed" => {
            "start a Secret Service (a desktop session), allow kernel keyutils (a container's seccomp profile may block it), or give the sealed store a key file: RCTOKEN_KEY_FILE=PATH (see `rctoken --help`)".into()
        }
        Error::KeychainUnavailable { backend, .. } if backend == "secret-service" => {
            "unlock the login keyring (log in to the desktop session, or use Passwords and Keys), create one if there is none, or use --backend sealed (encrypted files, no keyring needed); then retry".into()
        }
        Error::KeychainUnavailable { backend, .. } => format!(
            "unlock or start the {backend} keychain (or pick another with --backend), then retry"
        ),
        Error::Keychain { .. } => "retry; if it persists run `rctoken doctor`".into(),
        Error::NoSuchProfile(_) => "run `rctoken list` to see the profiles".into(),
        Error::NoStore { .. } => {
            "nothing was saved for this app id here: check --app and --dir (or RCTOKEN_APP and RCTOKEN_DIR), or log in with `rctoken login` or `rctoken import FILE`".into()
        }
        Error::NoActiveProfile => {
            "name a profile, or make one active with `rctoken switch PROFILE`".into()
        }
        Error::SecretMissing { .. } => {
            "log in again and import the new token, or run `rctoken doctor --fix` to drop the profile".into()
        }
        Error::WrongBackend { held_by, .. } => format!("run again with --backend {held_by}"),
        Error::CorruptSecret { .. } => {
            "run `rctoken doctor --fix`, then log in again for this profile".into()
        }
        Error::CorruptMetadata { .. } => {
            "fix the file by hand, or run `rctoken doctor --fix` to move it aside and rebuild".into()
        }
        Error::UnsupportedVersion { .. } => "upgrade rctoken to read this store".into(),
        Error::SecretsTooNew { .. } => {
            "a newer rctoken saved this profile: upgrade rctoken to read it (`doctor --fix` leaves it alone)".into()
        }
        Error::UnsafeStore { path, kind, .. } => {
            let p = path.display();
            match kind {
                UnsafeKind::Symlink => format!(
                    "name the real directory or file instead of the link {p} (rctoken never follows a symlink in a store)"
                ),
                UnsafeKind::NotADirectory => format!(
                    "--dir (or RCTOKEN_DIR) must name a directory, new or a store's; {p} is not one"
                ),
                UnsafeKind::NotAFile => format!("move {p} aside; rctoken keeps a file of its own there"),
                // A file (a key file, a store file): about the file.
                UnsafeKind::OtherOwner if !path.is_dir() => format!(
                    "{p} belongs to another user: use a file of your own (owned by you, mode 0600)"
                ),
                UnsafeKind::OpenToOthers if !path.is_dir() => format!(
                    "`chmod 600 {p}` (others could read it), or make a new one with `umask 077` if others may have read it already"
                ),
                UnsafeKind::OtherOwner => format!(
                    "use a directory of your own (leave out --dir for the default, or `mkdir -m 700 DIR`); {p} belongs to another user"
                ),
                _ => format!(
                    "if {p} is meant to be private, `chmod go-rwx {p}`; if it is shared (like /tmp), use a directory of your own (leave out --dir for the default, or `mkdir -m 700 DIR`)"
                ),
            }
        }
        Error::BadToken { .. } => "pass the token endpoint's JSON response unchanged".into(),
        Error::ErrorResponse { error, .. } if error == "invalid_grant" => {
            "the refresh token or code that request used is dead: log in again (`rctoken login`, or your login tool), then import the token it prints".into()
        }
        Error::ErrorResponse { .. } => {
            "RingCentral refused the request that printed this; fix what its error says, then import the token response of a request that succeeded".into()
        }
        Error::TooLarge { .. } => {
            "pass the token endpoint's JSON response unchanged; no RingCentral token is this large".into()
        }
        Error::InvalidName {
            kind: NameKind::AppId,
            ..
        } => "pass --app ID (or RCTOKEN_APP) with 1 to 64 of A-Z a-z 0-9 _ - .".into(),
        Error::InvalidName {
            kind: NameKind::OwnerId,
            ..
        } => "name the profile with --profile NAME".into(),
        Error::InvalidName { .. } => "use printable characters only, at most 128 of them".into(),
        Error::NameTaken { as_label: true, .. } => {
            "choose another label or profile name (--label, --profile): profile keys and labels share one namespace".into()
        }
        Error::NameTaken { as_label: false, .. } => {
            "choose another label: a label may not be another profile's key".into()
        }
        Error::MissingProfileKey => "name the profile explicitly (--profile NAME)".into(),
        Error::LoginRequired { .. } => "log in again and import the new token".into(),
        Error::RefreshFailed { source, .. } => {
            if let Some(e) = source.downcast_ref::<OAuthError>() {
                return oauth_hint(e);
            }
            match source.downcast_ref::<RefresherError>() {
                Some(r) => r.hint().to_string(),
                None => "the stored tokens are unchanged; retry later".into(),
            }
        }
        Error::LockTimeout { .. } => {
            "retry; if it persists, look for a hung process holding the lock".into()
        }
        Error::Io { .. } => "check the path, its permissions and free space".into(),
        Error::NoDataDir => "pass an explicit directory (--dir)".into(),
        Error::ForeignStore { owner, .. } => format!(
            "pass --app {owner} to use this store, or give this app a directory of its own with --dir"
        ),
        Error::KeychainFull { .. } => {
            "remove profiles you no longer need (`rctoken logout PROFILE`), or use the sealed store, which the key quota does not limit (`rctoken --backend sealed migrate` moves keyutils profiles into it)".into()
        }
        Error::NotRefreshed { source, .. } => hint_of(source),
        Error::RefreshNotStored { .. } => {
            "log in again and import the new token: the old refresh token no longer works, so retrying the refresh cannot help".into()
        }
        Error::SealingKeyLost { .. } => {
            "log in again and import the new token; to keep the sealed store's key across reboots, use a key file (RCTOKEN_KEY_FILE, see `rctoken help`)".into()
        }
        Error::WrongSealingKey { .. } => {
            "a store whose key is a key file (named above): point RCTOKEN_KEY_FILE (or the systemd credential) at it; a store whose key is in keyutils: unset RCTOKEN_KEY_FILE (to move it to a key file, run `rctoken rotate-key --new-key-file FILE` without it); nothing was read, sealed or deleted".into()
        }
        Error::CannotRotate { .. } => {
            "do what the message says, then run `rctoken rotate-key` again; every profile still opens with the key it is sealed under".into()
        }
        Error::BadKeyFile { .. } => {
            "point RCTOKEN_KEY_FILE at the store's key file; for a new store, make one with `(umask 077 && head -c 32 /dev/urandom | base64 > FILE)`".into()
        }
        Error::Internal { .. } => {
            "retry; the store is crash-safe. Please report it with the command you ran".into()
        }
        _ => "see `rctoken doctor`".into(),
    }
}

/// Replace line breaks and other control characters so a message stays on one line.
pub fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    super::output::safe(&flat)
}

/// Turn a clap error into our two-line form (or print help/version).
pub fn clap_failure(e: clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return OK;
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let what = match e.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "no command given".to_string()
        }
        _ => {
            // The first line, and for a list ("the following required
            // arguments were not provided:") the indented lines under it.
            let mut lines = rendered.lines().map(str::trim).skip_while(|l| l.is_empty());
            let first = lines.next().unwrap_or("invalid command line");
            let mut what = first.strip_prefix("error: ").unwrap_or(first).to_string();
            if what.ends_with(':') {
                let items: Vec<&str> = lines.take_while(|l| !l.is_empty()).collect();
                what = format!("{what} {}", items.join(", "));
            }
            redact_quoted(&what)
        }
    };
    let hint = match subcommand_usage() {
        // `rctoken help` has no --help of its own.
        Some((name, usage)) if name == "help" => format!("usage: {usage} (see rctoken --help)"),
        Some((name, usage)) => format!("usage: {usage} (see rctoken {name} --help)"),
        None => "usage: rctoken [OPTIONS] <COMMAND> (see rctoken --help)".into(),
    };
    Failure::new(USAGE, what, hint).report()
}

/// The command line's subcommand and its usage line, as clap renders it for
/// that subcommand alone (clap's own error usage lists the arguments in
/// conflict, globals included, which reads as if they were required).
fn subcommand_usage() -> Option<(String, String)> {
    let mut cmd = super::args::command();
    cmd.build();
    let name = std::env::args_os()
        .skip(1)
        .filter_map(|a| a.into_string().ok())
        .find(|a| cmd.find_subcommand(a).is_some())?;
    let sub = cmd.find_subcommand_mut(&name)?;
    let usage = sub.render_usage().to_string();
    let usage = usage
        .trim()
        .strip_prefix("Usage: ")
        .unwrap_or(usage.trim())
        .to_string();
    Some((name, usage))
}

/// Longest quoted value clap's message may echo; longer ones may be a token
/// pasted in the wrong place and are replaced by their length.
const MAX_ECHO: usize = 40;

fn redact_quoted(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('\'') {
        out.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        match after.find('\'') {
            Some(end) => {
                let quoted = &after[..end];
                if quoted.chars().count() > MAX_ECHO {
                    out.push_str(&format!("<{} characters>", quoted.chars().count()));
                } else {
                    out.push_str(quoted);
                }
                out.push('\'');
                rest = &after[end + 1..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Panics print nothing (the message could hold anything). Whoever catches
/// one turns it into an ordinary error: the library at the keychain
/// boundary, the refresher's threads' joiners, and [`internal_error`] for a
/// panic that reaches `main`.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Last resort for a panic that reached `main`: a generic two-line error,
/// never the panic message. Returns the exit code.
pub fn internal_error() -> u8 {
    Failure::new(
        OTHER,
        "rctoken hit an internal error (a bug)",
        "retry; the store is crash-safe. Please report it with the command you ran",
    )
    .report()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_redacted() {
        let token = "U1BCMDFUMDRKV1MwMXxzLFSvXdw5PHMsVLEn_MrtcyxUsw";
        let line = format!("unexpected argument '{token}' found");
        let r = redact_quoted(&line);
        assert!(!r.contains(token), "{r}");
        assert_eq!(r, "unexpected argument '<46 characters>' found");
        assert_eq!(
            redact_quoted("invalid value 'x' for '--a'"),
            "invalid value 'x' for '--a'"
        );
        assert_eq!(redact_quoted("it's"), "it's");
    }
}
