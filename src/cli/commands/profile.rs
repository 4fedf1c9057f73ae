//! `rctoken switch`, `logout`, `migrate` and `rotate-key`: commands that change where profiles are or how they are sealed.

use super::{Ctx, label_part};
use crate::cli::args::{LogoutArgs, RotateKeyArgs, SwitchArgs};
use crate::cli::exit::{Failure, OK};
use crate::cli::output;

pub fn switch(ctx: &Ctx, a: SwitchArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let info = store.switch(&a.profile)?;
    output::print(&format!(
        "switched to profile {}{}\n",
        info.profile,
        label_part(info.label.as_deref())
    ))?;
    Ok(OK)
}

/// `rctoken migrate`: move every profile whose secrets are in plain
/// keyutils into the sealed store this store now uses.
pub fn migrate(ctx: &Ctx) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let n = store.migrate()?;
    let backend = store.backend().map(|(name, _)| name)?;
    output::print(&format!(
        "moved {n} profile{} into {backend}\n",
        if n == 1 { "" } else { "s" }
    ))?;
    Ok(OK)
}

pub fn rotate_key(ctx: &Ctx, a: RotateKeyArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let to = match a.new_key_file {
        Some(path) => rctoken::KeySource::File(std::path::absolute(&path).unwrap_or(path)),
        None => rctoken::KeySource::Auto,
    };
    let moved_to_file = matches!(to, rctoken::KeySource::File(_));
    let done = store.rotate_key(to)?;
    let mut text = format!(
        "re-sealed {} of {} sealed item{} under {}\n",
        done.resealed,
        done.items,
        if done.items == 1 { "" } else { "s" },
        done.key
    );
    if moved_to_file {
        text.push_str(
            "now point RCTOKEN_KEY_FILE (or the systemd credential) at that file; the old key no longer opens this store\n",
        );
    }
    output::print(&text)?;
    Ok(OK)
}

/// Revoke a profile's session at RingCentral, if it logged in with
/// rctoken: one try, a short timeout, whatever the answer. Returns the line
/// to print, or `None` for a profile with no app to revoke through.
fn revoke(store: &rctoken::TokenStore, key: &str) -> Option<String> {
    let stored = match store.load(key) {
        Ok(s) => s,
        Err(e) => {
            return store.info(key).ok().and_then(|i| i.server).map(|server| {
                format!(
                    "could not revoke profile {key} at {server} ({e}); deleting it here anyway\n"
                )
            });
        }
    };
    let client = super::token::client_of(&stored).ok().flatten()?;
    // The refresh token ends the whole session; an access token alone
    // ends it too.
    let token = stored
        .token
        .refresh_token
        .as_ref()
        .unwrap_or(&stored.token.access_token);
    Some(match client.revoke(token) {
        Ok(()) => format!("revoked profile {key}'s session at {}\n", client.server()),
        Err(e) => format!(
            "could not revoke profile {key} at {} ({e}); deleting it here anyway\n",
            client.server()
        ),
    })
}

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    if a.all {
        if !a.no_revoke {
            for info in store.list()? {
                if info.client_id.is_some()
                    && let Some(line) = revoke(&store, &info.profile)
                {
                    output::print(&line)?;
                }
            }
        }
        let n = store.remove_all()?;
        let backend = store.backend().map(|(name, _)| name)?;
        output::print(&format!(
            "logged out {n} profile{}; deleted this store's {backend} items of app {}\n",
            if n == 1 { "" } else { "s" },
            store.app_id()
        ))?;
        return Ok(OK);
    }
    let key = store.resolve(a.profile.as_deref())?;
    if !a.no_revoke
        && store.info(key.as_str())?.client_id.is_some()
        && let Some(line) = revoke(&store, &key)
    {
        output::print(&line)?;
    }
    let info = store.remove(&key)?;
    output::print(&format!(
        "logged out profile {}{}; deleted its secrets from {}\n",
        info.profile,
        label_part(info.label.as_deref()),
        info.secrets_backend()
    ))?;
    Ok(OK)
}
