//! `token --refresh-with CMD`: run the caller's refresher through `sh -c`,
//! hand it the refresh token on stdin (never argv or the environment, which
//! other users' `ps` can read), and parse the token JSON it prints.

use std::io::Write;
use std::process::{Command, ExitStatus, Stdio};

use rctoken::TokenInfo;
use rctoken::secrecy::{ExposeSecret, SecretString};

use super::input::{self, ReadError};

/// The environment variable naming the profile's owner for the refresher.
pub const OWNER_ENV: &str = "RCTOKEN_OWNER_ID";

/// Why the refresher did not produce a token. Never holds its output.
#[derive(Debug)]
pub enum RefresherError {
    /// `sh` could not be started.
    Spawn(std::io::Error),
    /// Talking to the refresher failed.
    Io(std::io::Error),
    /// The refresher exited unsuccessfully.
    Exit(ExitStatus),
    /// It printed more than 1 MiB.
    TooLarge,
    /// It printed something that is not token JSON.
    BadOutput(String),
}

impl RefresherError {
    /// The refresher ran but its output was not acceptable token JSON.
    pub fn is_bad_output(&self) -> bool {
        matches!(
            self,
            RefresherError::BadOutput(_) | RefresherError::TooLarge
        )
    }

    /// What to do, for the hint line.
    pub fn hint(&self) -> &'static str {
        match self {
            RefresherError::Spawn(_) | RefresherError::Io(_) => {
                "check that `sh` can run CMD; the stored tokens are unchanged"
            }
            RefresherError::Exit(_) => {
                "see CMD's own messages above; the stored tokens are unchanged"
            }
            RefresherError::TooLarge | RefresherError::BadOutput(_) => {
                "CMD must print the token endpoint's JSON response on stdout; the stored tokens are unchanged"
            }
        }
    }
}

impl std::fmt::Display for RefresherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefresherError::Spawn(e) => write!(f, "could not start the refresher with sh -c: {e}"),
            RefresherError::Io(e) => write!(f, "could not talk to the refresher: {e}"),
            RefresherError::Exit(status) => write!(f, "the refresher failed ({status})"),
            RefresherError::TooLarge => write!(
                f,
                "the refresher printed more than {} bytes",
                input::MAX_INPUT
            ),
            RefresherError::BadOutput(reason) => {
                write!(f, "the refresher printed bad token JSON: {reason}")
            }
        }
    }
}

impl std::error::Error for RefresherError {}

/// Run `sh -c cmd` with `refresh_token` (exactly, no newline) on its stdin
/// and [`OWNER_ENV`] set; its stderr passes through, its stdout (at most
/// 1 MiB, read into a zeroized buffer) must be token endpoint JSON.
pub fn run(
    cmd: &str,
    owner_id: &str,
    refresh_token: &SecretString,
) -> Result<TokenInfo, RefresherError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env(OWNER_ENV, owner_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(RefresherError::Spawn)?;
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(RefresherError::Io(std::io::Error::other("no pipes to CMD")));
    };
    let (written, read) = std::thread::scope(|s| {
        // A separate writer, so a CMD that prints before reading (or never
        // reads) cannot deadlock us.
        let writer = s.spawn(move || {
            let r = stdin.write_all(refresh_token.expose_secret().as_bytes());
            drop(stdin); // EOF
            r
        });
        let read = input::read_bounded(&mut stdout);
        if read.is_err() {
            let _ = child.kill();
        }
        drop(stdout);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
        (written, read)
    });
    let status = child.wait().map_err(RefresherError::Io)?;
    let output = match read {
        Ok(buf) => buf,
        Err(ReadError::TooLarge) => return Err(RefresherError::TooLarge),
        Err(ReadError::Io(e)) => return Err(RefresherError::Io(e)),
    };
    if !status.success() {
        return Err(RefresherError::Exit(status));
    }
    match written {
        // A CMD that does not need the refresh token may exit without reading it.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(RefresherError::Io(e));
        }
        _ => {}
    }
    TokenInfo::from_json(&output).map_err(|e| match e {
        rctoken::Error::BadToken { reason } => RefresherError::BadOutput(reason),
        other => RefresherError::BadOutput(other.to_string()),
    })
}
