//! The two commands that reveal secrets: `rctoken token` (the access token,
//! optionally refreshed through `--refresh-with CMD`) and
//! `rctoken export --reveal` (the whole token as endpoint JSON).

use std::time::Duration;

use rctoken::ProfileInfo;
use rctoken::ringcentral::Client;
use rctoken::secrecy::ExposeSecret;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::Ctx;
use crate::cli::args::{ExportArgs, TokenArgs};
use crate::cli::exit::{Failure, NOT_VALID, OK, USAGE, oauth_failure};
use crate::cli::output::{self, relative, remaining};
use crate::cli::refresher;

pub fn token(ctx: &Ctx, a: TokenArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let min = Duration::from_secs(a.min_valid);
    let print_if_valid = |e: &rctoken::Error| {
        // The new tokens could not be stored and the old refresh token is
        // spent: the new access token is all the caller has, so print it
        // if it is what they asked for, then fail with exit 8 (see
        // docs/cli.md).
        if let rctoken::Error::RefreshNotStored { token, .. } = e
            && u64::try_from(token.expires_in).is_ok_and(|s| s >= a.min_valid)
        {
            print_access_token(token)?;
        }
        Ok::<(), Failure>(())
    };
    let mut over_https = false;
    let stored = match &a.refresh_with {
        None => {
            let stored = store.load(a.profile.as_deref())?;
            // A profile that logged in with rctoken refreshes itself over
            // HTTPS, single-flight across processes.
            match client_of(&stored)? {
                Some(client) if !stored.info.access_token_valid_for(store.now(), min) => {
                    over_https = true;
                    match store.refresh(&stored.info.profile, min, |rt| client.refresh(rt)) {
                        Ok(s) => s,
                        Err(e) => {
                            print_if_valid(&e)?;
                            return Err(e.into());
                        }
                    }
                }
                _ => stored,
            }
        }
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
                Err(e) => {
                    print_if_valid(&e)?;
                    return Err(e.into());
                }
            }
        }
    };
    let now = store.now();
    if !stored.info.access_token_valid_for(now, min) {
        return Err(not_valid(
            &stored.info,
            now,
            a.min_valid,
            a.refresh_with.is_some() || over_https,
        ));
    }
    print_access_token(&stored.token)?;
    Ok(OK)
}

/// The RingCentral client of a profile that logged in with rctoken.
pub(crate) fn client_of(stored: &rctoken::StoredToken) -> Result<Option<Client>, Failure> {
    let Some(app) = stored.client() else {
        return Ok(None);
    };
    let mut client = Client::new(&app.server, &app.client_id)
        .map_err(|e| oauth_failure(&e))?
        .with_wait_notice(wait_notice)
        .with_endpoint_id(stored.info.endpoint_id.clone());
    if let Some(secret) = app.client_secret {
        client = client.with_secret(secret);
    }
    Ok(Some(client))
}

/// One line on stderr while a 429's `Retry-After` is waited out.
pub(crate) fn wait_notice(wait: Duration) {
    eprintln!(
        "rctoken: RingCentral's rate limit: waiting {}s as the server asks (429)",
        wait.as_secs()
    );
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
        "the newest token (refreshed just now, or less than a minute ago, which is reused) is not valid that long: lower --min-valid, or check the refresher or the app's access token lifetime"
    } else if info.refresh_token_valid_for(now, Duration::ZERO) {
        "refresh it with `rctoken token --refresh-with CMD`, or log in with `rctoken login` (which refreshes by itself)"
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
    let now = store.now();
    let token = store.load(a.profile.as_deref())?.token_at(now);
    let format = match a.format.as_str() {
        "rc-js" => rctoken::TokenFormat::RcJs,
        "rc-python" => rctoken::TokenFormat::RcPython,
        _ => rctoken::TokenFormat::Token,
    };
    let json = token.to_sdk_json_revealed(format, now);
    output::print_secret(&json)?;
    output::print_secret(b"\n")?;
    Ok(OK)
}
