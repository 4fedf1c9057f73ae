//! `rctoken import [FILE] [--profile NAME] [--label LABEL] [--no-switch]`.

use std::io::IsTerminal;

use rctoken::{Error, SaveOptions, TokenFormat, TokenInfo};

use super::{Ctx, label_part};
use crate::cli::args::ImportArgs;
use crate::cli::exit::{BAD_INPUT, Failure, OK, OTHER, USAGE};
use crate::cli::input::{self, ReadError};
use crate::cli::output;

pub fn run(ctx: &Ctx, a: ImportArgs) -> Result<u8, Failure> {
    // Parse before touching the store: bad input changes nothing.
    let token = read_token(a.file.as_deref(), &a.format)?;
    if a.profile.is_none() && token.owner_id.is_none() {
        return Err(Failure::new(
            USAGE,
            "the token has no owner_id, so the profile needs a name",
            "name it with --profile NAME",
        ));
    }
    let mut options = SaveOptions::new().switch(!a.no_switch);
    if let Some(p) = &a.profile {
        options = options.profile(p);
    }
    if let Some(l) = &a.label {
        options = options.label(l);
    }
    options = options.move_secrets(a.move_secrets);
    // A profile key taken from the token's owner_id is input, not usage.
    if a.profile.is_none()
        && let Some(owner) = &token.owner_id
        && let Err(Error::InvalidName { reason, .. }) = rctoken::check_profile_name(owner)
    {
        return Err(Failure::new(
            BAD_INPUT,
            format!("the token's owner_id is not a usable profile name: {reason}"),
            "name the profile with --profile NAME",
        ));
    }
    let store = ctx.open_creating()?;
    let key = a.profile.as_deref().or(token.owner_id.as_deref());
    let info = super::save_here(ctx, &store, &token, key, options)?;
    output::print(&format!(
        "saved profile {}{}, {}; secrets in {}\n",
        info.profile,
        label_part(info.label.as_deref()),
        if info.active { "active" } else { "not active" },
        info.secrets_backend()
    ))?;
    Ok(OK)
}

/// Read and parse the token JSON from FILE, or stdin for `None`/`-`.
fn read_token(file: Option<&std::path::Path>, format: &str) -> Result<TokenInfo, Failure> {
    let bytes = match file {
        Some(path) if path.as_os_str() != "-" => {
            // The path is never echoed: a token pasted as FILE would end up on stderr.
            let mut f = std::fs::File::open(path).map_err(|e| {
                Failure::new(
                    OTHER,
                    format!("could not open FILE: {e}"),
                    "check the path; pass `-` or nothing to read the JSON from stdin",
                )
            })?;
            read(&mut f)?
        }
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("reading token JSON from stdin (end with Ctrl-D)");
            }
            read(&mut stdin.lock())?
        }
    };
    let format = match format {
        "token" => Some(TokenFormat::Token),
        "rc-js" => Some(TokenFormat::RcJs),
        "rc-python" => Some(TokenFormat::RcPython),
        _ => None,
    };
    let (token, _) = TokenInfo::from_sdk_json(&bytes, format, time::OffsetDateTime::now_utc())?;
    if token.expires_in == 0 {
        eprintln!(
            "warning: the access token in the input has expired already; `rctoken token` will refresh it (a profile that logged in with rctoken) or exit 4"
        );
    }
    Ok(token)
}

fn read(r: &mut impl std::io::Read) -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
    input::read_bounded(r).map_err(|e| match e {
        ReadError::TooLarge => Failure::new(
            BAD_INPUT,
            format!(
                "the input is larger than {} bytes (1 MiB), too large for a token response",
                input::MAX_INPUT
            ),
            "pass the token endpoint's JSON response unchanged",
        ),
        ReadError::Io(e) => Failure::new(
            OTHER,
            format!("could not read the input: {e}"),
            "check the file or pipe you are importing from",
        ),
    })
}
