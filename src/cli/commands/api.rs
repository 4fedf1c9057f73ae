//! `rctoken api [-X METHOD] PATH [--data JSON|@FILE|@-] [-H 'Name: value']…`:
//! an authenticated request to the profile's server, as `gh api` does, so
//! the access token never appears in any process's argv. It refreshes ahead
//! of expiry, and on a 401 refreshes once and retries once.

use std::io::Write;
use std::time::Duration;

use rctoken::ringcentral::{ApiResponse, Client};
use rctoken::secrecy::SecretString;

use super::Ctx;
use super::token::client_of;
use crate::cli::args::ApiArgs;
use crate::cli::exit::{Failure, HTTP, NOT_VALID, OK, OTHER, USAGE, oauth_failure};
use crate::cli::input;

/// How long the access token must stay valid for a request to go out
/// without a refresh first.
const AHEAD: Duration = Duration::from_secs(60);

pub fn run(ctx: &Ctx, a: ApiArgs) -> Result<u8, Failure> {
    let headers = a
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = a.data.as_deref().map(read_data).transpose()?;
    let method = a
        .method
        .clone()
        .unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    let store = ctx.open()?;
    let mut stored = store.load(a.profile.as_deref())?;
    let refresher = client_of(&stored)?;
    let server = a
        .server
        .clone()
        .or_else(|| stored.info.server.clone())
        .unwrap_or_else(|| "production".into());
    // The request goes to the profile's own server (or --server); it needs
    // no client secret.
    let caller = match (&refresher, &a.server) {
        (Some(c), None) => Client::new(c.server(), c.client_id()),
        (Some(c), Some(_)) => {
            // A token is only ever sent to the server that issued it.
            let asked = Client::new(&server, c.client_id()).map_err(|e| oauth_failure(&e))?;
            if asked.server() != c.server() {
                return Err(Failure::new(
                    USAGE,
                    format!(
                        "profile `{}` logged in at {}; its token is not sent to {}",
                        stored.info.profile,
                        c.server(),
                        asked.server()
                    ),
                    "drop --server, or log in at that server with `rctoken login --server`",
                ));
            }
            Ok(asked)
        }
        (None, _) => Client::new(&server, "rctoken-api"),
    }
    .map_err(|e| oauth_failure(&e))?;
    if !stored.info.access_token_valid_for(store.now(), AHEAD) {
        let Some(client) = &refresher else {
            return Err(Failure::new(
                NOT_VALID,
                format!(
                    "the access token of profile `{}` is not valid for another minute, and the profile did not log in with rctoken, so it cannot be refreshed here",
                    stored.info.profile
                ),
                "log in with `rctoken login`, or refresh it with `rctoken token --refresh-with CMD`",
            ));
        };
        stored = store.refresh(&stored.info.profile, AHEAD, |rt| client.refresh(rt))?;
    }
    let call = |token: &SecretString| {
        caller
            .api(&method, &a.path, token, &headers, body.as_deref())
            .map_err(|e| oauth_failure(&e))
    };
    let mut resp = call(&stored.token.access_token)?;
    if resp.status == 401
        && let Some(client) = &refresher
    {
        // The server no longer takes this access token (revoked, or
        // another process refreshed it away): refresh once, retry once.
        stored = store.refresh_rejected(&stored, |rt| client.refresh(rt))?;
        resp = call(&stored.token.access_token)?;
    }
    print_body(&resp)?;
    if (200..300).contains(&resp.status) {
        return Ok(OK);
    }
    let code = resp
        .error_code
        .as_deref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    Err(Failure::new(
        HTTP,
        format!(
            "the API answered {}{code} to {method} {}",
            resp.status, a.path
        ),
        match resp.status {
            401 => "the token was refused; log in again: `rctoken login`",
            403 => "the app or the user lacks the permission this call needs",
            404 => "check the path",
            429 => "RingCentral's rate limit is reached; wait and retry",
            _ => "see the response body on stdout",
        },
    ))
}

fn print_body(resp: &ApiResponse) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(&resp.body)
        .and_then(|()| {
            if !resp.body.ends_with(b"\n") && !resp.body.is_empty() {
                out.write_all(b"\n")?;
            }
            out.flush()
        })
        .map_err(|e| {
            Failure::new(
                OTHER,
                format!("cannot write the response: {e}"),
                "check where the output goes (a closed pipe, a full disk)",
            )
        })
}

fn parse_header(h: &str) -> Result<(String, String), Failure> {
    match h.split_once(':') {
        Some((name, value))
            if !name.trim().is_empty()
                && name.trim().bytes().all(|b| b.is_ascii_graphic())
                && !value.contains(['\r', '\n']) =>
        {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(Failure::new(
            USAGE,
            format!("`{h}` is not a header"),
            "give headers as -H 'Name: value'",
        )),
    }
}

/// `--data`: JSON text, `@FILE`, or `@-` for stdin (at most 1 MiB).
fn read_data(data: &str) -> Result<Vec<u8>, Failure> {
    let read = |r: &mut dyn std::io::Read| {
        let mut r = r;
        input::read_bounded(&mut r)
            .map(|b| b.to_vec())
            .map_err(|e| match e {
                input::ReadError::TooLarge => Failure::new(
                    USAGE,
                    "the request body is larger than 1 MiB",
                    "send a smaller body",
                ),
                input::ReadError::Io(e) => Failure::new(
                    OTHER,
                    format!("cannot read the request body: {e}"),
                    "check the file",
                ),
            })
    };
    match data.strip_prefix('@') {
        Some("-") => read(&mut std::io::stdin().lock()),
        Some(path) => {
            let mut f = std::fs::File::open(path).map_err(|e| {
                Failure::new(OTHER, format!("cannot open {path}: {e}"), "check the path")
            })?;
            read(&mut f)
        }
        None => Ok(data.as_bytes().to_vec()),
    }
}
