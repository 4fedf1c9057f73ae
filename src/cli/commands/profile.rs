//! `rctoken switch PROFILE` and `rctoken logout [PROFILE] | --all`.

use super::{Ctx, label_part};
use crate::cli::args::{LogoutArgs, SwitchArgs};
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

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    if a.all {
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
    let info = store.remove(&key)?;
    output::print(&format!(
        "logged out profile {}{}; deleted its secrets from {}\n",
        info.profile,
        label_part(info.label.as_deref()),
        info.secrets_backend()
    ))?;
    Ok(OK)
}
