//! `rctoken status [PROFILE] [--json]`: everything non-secret about a
//! profile, which backend holds its secrets and whether they are there. A
//! keychain that cannot be reached is reported, not an error.

use rctoken::{Error, ProfileInfo, TokenStore};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::args::StatusArgs;
use crate::cli::exit::{Failure, OK};
use crate::cli::output::{self, profile_json, refresh_state, relative, remaining, rfc3339};

/// What the keychain says about a profile's secrets.
struct SecretState {
    /// present | missing | unavailable | other-backend | unreadable | error
    state: &'static str,
    /// Details (never secret).
    detail: Option<String>,
}

fn secret_state(store: &TokenStore, info: &ProfileInfo, backend_ok: bool) -> SecretState {
    if !backend_ok {
        return SecretState {
            state: "unavailable",
            detail: Some("the keychain could not be reached".into()),
        };
    }
    let (state, detail) = match store.load(&info.profile) {
        Ok(_) => ("present", None),
        Err(Error::SecretMissing { .. }) => ("missing", None),
        Err(e @ Error::KeychainUnavailable { .. }) => ("unavailable", Some(e.to_string())),
        Err(e @ Error::WrongBackend { .. }) => ("other-backend", Some(e.to_string())),
        Err(e @ Error::CorruptSecret { .. }) => ("unreadable", Some(e.to_string())),
        Err(e) => ("error", Some(e.to_string())),
    };
    SecretState { state, detail }
}

pub fn run(ctx: &Ctx, a: StatusArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let info = store.info(a.profile.as_deref())?;
    let backend = store.backend();
    let secret = secret_state(&store, &info, backend.is_ok());
    let now = store.now();
    if a.json {
        let mut v = profile_json(&info);
        let extra = json!({
            "token_type": info.token_type.as_str(),
            "expires_in": info.expires_in,
            "refresh_token_expires_in": info.refresh_token_expires_in,
            "session_id": info.session_id,
            "session_idle_timeout": info.session_idle_timeout,
            "session_expires_in": info.session_expires_in,
            "session_expiration_time": info.session_expiration_time,
            "access_token_remaining_secs": remaining(info.access_token_expires_at, now),
            "refresh_token_remaining_secs": info.refresh_token_expires_at.map(|at| remaining(at, now)),
            "secret": secret.state,
            "secret_detail": secret.detail,
            "backend": {
                "requested": store.requested_backend(),
                "in_use": backend.as_ref().ok().map(|(n, _)| n),
                "reason": backend.as_ref().ok().map(|(_, r)| r),
                "error": backend.as_ref().err().map(ToString::to_string),
            },
            "store_dir": store.dir().display().to_string(),
            "database": store.database(),
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        output::print(&output::json_text(&v))?;
        return Ok(OK);
    }
    let opt = |o: Option<&str>| o.unwrap_or("-").to_string();
    let mut lines: Vec<(&str, String)> = vec![
        (
            "profile",
            format!(
                "{}{}",
                info.profile,
                if info.active { " (active)" } else { "" }
            ),
        ),
        ("label", opt(info.label.as_deref())),
        ("owner_id", opt(info.owner_id.as_deref())),
        ("endpoint_id", opt(info.endpoint_id.as_deref())),
        (
            "logged in via",
            match (&info.client_id, &info.server) {
                (Some(id), Some(server)) => {
                    format!("app {id} at {server} (refreshes by itself)")
                }
                _ => "imported (refresh with --refresh-with CMD)".into(),
            },
        ),
        ("scope", info.scope.clone()),
        (
            "obtained",
            format!(
                "{} ({})",
                rfc3339(info.obtained_at),
                ago(info.obtained_at, now)
            ),
        ),
        (
            "access token",
            format!(
                "{}, expires {}",
                relative(info.access_token_expires_at, now),
                rfc3339(info.access_token_expires_at)
            ),
        ),
        ("refresh token", refresh_line(&info, now)),
        (
            "session",
            match info.session_expires_at {
                Some(at) => format!("{}, expires {}", relative(at, now), rfc3339(at)),
                None => "no absolute timeout".into(),
            },
        ),
        ("session_id", opt(info.session_id.as_deref())),
        (
            "session idle timeout",
            info.session_idle_timeout
                .map(|s| format!("{} ({s}s)", output::span(s)))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "id token",
            if info.has_id_token { "stored" } else { "none" }.into(),
        ),
        ("secrets held by", info.secrets_backend().to_string()),
        (
            "backend in use",
            match &backend {
                Ok((name, reason)) => format!("{name} ({reason})"),
                Err(e) => format!("unavailable: {e}"),
            },
        ),
        (
            "secrets",
            match &secret.detail {
                Some(d) => format!("{}: {d}", secret.state),
                None => secret.state.to_string(),
            },
        ),
        (
            "store",
            match store.database() {
                Some(server) => format!("PostgreSQL database {server}"),
                None => store.dir().display().to_string(),
            },
        ),
    ];
    if secret.state == "missing" {
        lines.push((
            "hint",
            "log in again and import the new token, or run `rctoken doctor --fix`".into(),
        ));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let text: String = lines
        .iter()
        .map(|(k, v)| format!("{:width$} {v}\n", format!("{k}:")))
        .collect();
    output::print(&text)?;
    Ok(OK)
}

fn ago(at: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    format!("{} ago", output::span(remaining(at, now)))
}

fn refresh_line(info: &ProfileInfo, now: time::OffsetDateTime) -> String {
    match info.refresh_token_expires_at {
        Some(at) if info.has_refresh_token => {
            format!("{}, expires {}", refresh_state(info, now), rfc3339(at))
        }
        _ => refresh_state(info, now),
    }
}
