//! The two commands that reveal secrets: `rctoken token` (the access token,
//! optionally refreshed through `--refresh-with CMD`) and
//! `rctoken export --reveal` (the whole token as endpoint JSON).

use std::time::Duration;

use rctoken::ProfileInfo;
use rctoken::secrecy::ExposeSecret;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::Ctx;
use crate::cli::args::{ExportArgs, TokenArgs};
use crate::cli::exit::{Failure, NOT_VALID, OK, USAGE};
use crate::cli::output::{self, relative, remaining};
use crate::cli::refresher;

pub fn token(ctx: &Ctx, a: TokenArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let min = Duration::from_secs(a.min_valid);
    let stored = match &a.refresh_with {
        None => store.load(a.profile.as_deref())?,
        Some(cmd) => {
            // Resolve first, so the refresher learns whose token it refreshes.
            let info = store.info(a.profile.as_deref())?;
            let owner = info
                .owner_id
                .clone()
                .unwrap_or_else(|| info.profile.clone());
            // The refresh lock goes to CMD's processes too, so that it stays
            // held until the last of them exits, even if rctoken dies first.
            let refreshed = store.refresh_holding(&info.profile, min, |rt, lock| {
                refresher::run(cmd, &owner, rt, lock)
            });
            match refreshed {
                Ok(stored) => stored,
                // The new tokens could not be stored and the old refresh
                // token is spent: the new access token is all the caller
                // has, so print it if it is what they asked for, then fail
                // with exit 8 (see docs/cli.md).
                Err(e @ rctoken::Error::RefreshNotStored { .. }) => {
                    if let rctoken::Error::RefreshNotStored { token, .. } = &e
                        && u64::try_from(token.expires_in).is_ok_and(|s| s >= a.min_valid)
                    {
                        print_access_token(token)?;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let now = store.now();
    if !stored.info.access_token_valid_for(now, min) {
        return Err(not_valid(
            &stored.info,
            now,
            a.min_valid,
            a.refresh_with.is_some(),
        ));
    }
    print_access_token(&stored.token)?;
    Ok(OK)
}

/// The access token and a newline on stdout: the explicit reveal.
fn print_access_token(token: &rctoken::TokenInfo) -> Result<(), Failure> {
    let secret = token.access_token.expose_secret().as_bytes();
    let mut line = Zeroizing::new(Vec::with_capacity(secret.len() + 1));
    line.extend_from_slice(secret);
    line.push(b'\n');
    output::print_secret(&line)?;
    Ok(())
}

fn not_valid(info: &ProfileInfo, now: OffsetDateTime, min: u64, refreshed: bool) -> Failure {
    let at = info.access_token_expires_at;
    let what = if remaining(at, now) > 0 {
        format!(
            "the access token of profile `{}` expires {}, sooner than --min-valid {min} requires",
            info.profile,
            relative(at, now),
        )
    } else {
        format!(
            "the access token of profile `{}` {}",
            info.profile,
            relative(at, now)
        )
    };
    let hint = if refreshed {
        "the refresher returned a token that is not valid long enough; check CMD or lower --min-valid"
    } else if info.refresh_token_valid_for(now, Duration::ZERO) {
        "refresh it with `rctoken token --refresh-with CMD`, or log in again and import the new token"
    } else {
        "log in again and import the new token"
    };
    Failure::new(NOT_VALID, what, hint)
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<u8, Failure> {
    if !a.reveal {
        return Err(Failure::new(
            USAGE,
            "export prints the access and refresh tokens, so it needs --reveal",
            "run `rctoken export --reveal` and keep the output out of logs and shell history",
        ));
    }
    let store = ctx.open()?;
    // TTLs as seconds remaining now, so the JSON can be imported elsewhere.
    let token = store.load(a.profile.as_deref())?.token_at(store.now());
    let json = token.to_json_revealed();
    output::print_secret(&json)?;
    output::print_secret(b"\n")?;
    Ok(OK)
}
