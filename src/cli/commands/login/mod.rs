//! `rctoken login (--jwt FILE | --browser) --client-id ID [--client-secret-file FILE]
//! [--server S] [--label L] [--no-switch]`: the JWT grant, or the
//! authorization code grant with PKCE through the browser, at RingCentral,
//! saved as the profile of the response's `owner_id`, with the app's client
//! id and server in its metadata and its client secret in the keychain, so
//! later refreshes need no flags.

use std::path::Path;
use std::time::Duration;

use rctoken::ringcentral::Client;
use rctoken::secrecy::SecretString;
use rctoken::{AppClient, SaveOptions};

use super::{Ctx, label_part};
use crate::cli::args::LoginArgs;
use crate::cli::exit::{Failure, OK, OTHER, USAGE, oauth_failure};
use crate::cli::input::{self, ReadError};
use crate::cli::output;

mod browser;

pub fn run(ctx: &Ctx, a: LoginArgs) -> Result<u8, Failure> {
    if a.jwt.as_deref() == Some(Path::new("-"))
        && a.client_secret_file.as_deref() == Some(Path::new("-"))
    {
        return Err(Failure::new(
            USAGE,
            "the JWT and the client secret cannot both come from stdin",
            "put the client secret in a file (mode 0600) and pass --client-secret-file FILE",
        ));
    }
    let jwt = a
        .jwt
        .as_deref()
        .map(|p| read_secret(p, "the JWT"))
        .transpose()?;
    let secret = a
        .client_secret_file
        .as_deref()
        .map(|p| read_secret(p, "the client secret"))
        .transpose()?;
    // Said once both are read: a failure to read one is the one message.
    let (jwt, secret) = (jwt.map(Read::warn), secret.map(Read::warn));
    let mut client = Client::new(&a.server, &a.client_id)
        .map_err(|e| oauth_failure(&e))?
        .with_wait_notice(super::token::wait_notice);
    if let Some(s) = &secret {
        client = client.with_secret(s.clone());
    }
    // Open the store before calling the server: a store that cannot be
    // opened fails before anything is asked of RingCentral.
    let store = ctx.open_creating()?;
    let token = match jwt {
        Some(jwt) => client.login_jwt(&jwt).map_err(|e| oauth_failure(&e))?,
        None => browser::login(&client, a.port, !a.no_open, Duration::from_secs(a.wait))?,
    };
    let app = AppClient::new(client.client_id(), client.server(), secret);
    let mut options = SaveOptions::new()
        .switch(!a.no_switch)
        .client(app)
        .move_secrets(a.move_secrets);
    if let Some(l) = &a.label {
        options = options.label(l);
    }
    let info = super::save_here(ctx, &store, &token, token.owner_id.as_deref(), options)?;
    output::print(&format!(
        "logged in at {} as profile {}{}, {}; secrets in {}\n",
        client.server(),
        info.profile,
        label_part(info.label.as_deref()),
        if info.active { "active" } else { "not active" },
        info.secrets_backend()
    ))?;
    Ok(OK)
}

/// A secret read from a file, and what to warn about it.
struct Read {
    secret: SecretString,
    warning: Option<String>,
}

impl Read {
    /// Print the warning, if any, and give the secret.
    fn warn(self) -> SecretString {
        if let Some(w) = self.warning {
            eprintln!("warning: {w}");
        }
        self.secret
    }
}

/// The warning for a regular file holding a secret that group or others
/// may access, by the mode bits rctoken checks key files by (ssh refuses such a private key; rctoken refuses such a key
/// file). Only a warning: the secret is exposed already, and the login it
/// is for is what the user is doing now.
fn open_to_others(f: &std::fs::File, what: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = f.metadata().ok()?;
        let mode = meta.permissions().mode() & 0o7777;
        (meta.is_file() && mode & 0o077 != 0).then(|| {
            format!(
                "the file with {what} has mode {mode:04o}: group or others may access it; `chmod 600` it"
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (f, what);
        None
    }
}

/// A secret from `path` (`-`: stdin), at most 1 MiB, surrounding
/// whitespace trimmed, in a zeroizing buffer.
fn read_secret(path: &Path, what: &str) -> Result<Read, Failure> {
    let mut warning = None;
    let bytes = if path.as_os_str() == "-" {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            eprintln!("reading {what} from stdin (end with Ctrl-D)");
        }
        input::read_bounded(&mut std::io::stdin().lock())
    } else {
        let mut f = std::fs::File::open(path).map_err(|e| {
            Failure::new(
                OTHER,
                // The path is never echoed: a JWT or secret pasted where
                // its file belongs would end up on stderr.
                format!("cannot open the file with {what}: {e}"),
                "check the path and its permissions; the option takes the path of a file that holds the secret (or `-` for stdin), never the secret itself",
            )
        })?;
        warning = open_to_others(&f, what);
        input::read_bounded(&mut f)
    }
    .map_err(|e| match e {
        ReadError::TooLarge => Failure::new(
            USAGE,
            format!("the file with {what} is larger than 1 MiB"),
            "give the file that holds only that secret",
        ),
        ReadError::Io(e) => Failure::new(
            OTHER,
            format!("cannot read {what}: {e}"),
            "check the path and its permissions",
        ),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::new(
            USAGE,
            format!("{what} is not UTF-8 text"),
            "give the file that holds only that secret",
        )
    })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Failure::new(
            USAGE,
            format!("the file with {what} is empty"),
            "give the file that holds only that secret",
        ));
    }
    Ok(Read {
        secret: SecretString::from(trimmed.to_string()),
        warning,
    })
}
