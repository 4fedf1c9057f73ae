//! `rctoken doctor [--json] [--fix]`: the backend and why, the store's files
//! and their modes, whether the lock works and the metadata parses, and per
//! profile whether its secret is in the keychain (`TokenStore::verify`);
//! `--fix` runs `TokenStore::repair`.
//!
//! Exit code: 0 healthy; 7 metadata corrupt, too new or unsafe; 5 keychain
//! unavailable; 1 drift (missing or unreadable secrets, orphans) or a lock
//! that cannot be taken. Expired tokens are not a fault.

use std::path::Path;

use rctoken::{Error, Problem, ProfileInfo, Report};
use serde_json::{Value, json};

use super::Ctx;
use crate::cli::args::DoctorArgs;
use crate::cli::exit::{Failure, KEYCHAIN, OK, OTHER, STORE, code_of, hint_of};
use crate::cli::output;

/// What `lstat` says about one store path.
struct Facts {
    exists: bool,
    kind: &'static str,
    mode: Option<u32>,
    uid: Option<u32>,
}

fn facts(path: &Path) -> Facts {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return Facts {
            exists: false,
            kind: "missing",
            mode: None,
            uid: None,
        };
    };
    let kind = if m.file_type().is_symlink() {
        "symlink"
    } else if m.is_dir() {
        "directory"
    } else if m.is_file() {
        "file"
    } else {
        "other"
    };
    #[cfg(unix)]
    let (mode, uid) = {
        use std::os::unix::fs::MetadataExt;
        (Some(m.mode() & 0o7777), Some(m.uid()))
    };
    #[cfg(not(unix))]
    let (mode, uid) = (None, None);
    Facts {
        exists: true,
        kind,
        mode,
        uid,
    }
}

impl Facts {
    fn human(&self) -> String {
        if !self.exists {
            return "missing".into();
        }
        match (self.mode, self.uid) {
            (Some(mode), Some(uid)) => format!("{}, mode {mode:04o}, owner uid {uid}", self.kind),
            _ => self.kind.to_string(),
        }
    }
    fn json(&self, path: &Path) -> Value {
        json!({
            "path": path.display().to_string(),
            "exists": self.exists,
            "kind": self.kind,
            "mode": self.mode.map(|m| format!("{m:04o}")),
            "uid": self.uid,
        })
    }
}

/// A profile's secret state according to a report.
fn secret_state(report: Option<&Report>, p: &ProfileInfo) -> &'static str {
    let Some(r) = report else {
        return "unchecked";
    };
    for problem in &r.problems {
        match problem {
            Problem::SecretMissing { profile } if *profile == p.profile => return "missing",
            Problem::SecretUnreadable { profile, .. } if *profile == p.profile => {
                return "unreadable";
            }
            Problem::VersionMismatch { profile, .. } if *profile == p.profile => {
                return "version-mismatch";
            }
            Problem::OtherBackend { profile, .. } if *profile == p.profile => {
                return "other-backend";
            }
            _ => {}
        }
    }
    "present"
}

fn problems_code(problems: &[Problem]) -> u8 {
    if problems.iter().any(|p| {
        matches!(
            p,
            Problem::MetadataCorrupt { .. }
                | Problem::ProfileFileCorrupt { .. }
                | Problem::MetadataTooNew { .. }
                | Problem::Unsafe { .. }
        )
    }) {
        STORE
    } else if problems.is_empty() {
        OK
    } else if problems
        .iter()
        .all(|p| matches!(p, Problem::OtherBackend { .. }))
    {
        // The secrets are in a keychain this run does not use: as `token`
        // says in the same situation (WrongBackend), exit 5.
        KEYCHAIN
    } else {
        OTHER
    }
}

/// At least 80% used.
fn nearly_full(used: u64, max: u64) -> bool {
    max > 0 && used.saturating_mul(5) >= max.saturating_mul(4)
}

fn percent(used: u64, max: u64) -> u64 {
    used.saturating_mul(100).checked_div(max).unwrap_or(0)
}

pub fn run(ctx: &Ctx, a: DoctorArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    // Takes the shared metadata lock and parses the metadata; no keychain.
    let listed = store.list();
    let layout = store.layout();
    let lock_path = layout.metadata_lock();
    let lock_error = match &listed {
        Err(e @ Error::LockTimeout { .. }) => Some(e.to_string()),
        Err(e @ (Error::Io { path, .. } | Error::UnsafeStore { path, .. }))
            if *path == lock_path =>
        {
            Some(e.to_string())
        }
        _ => None,
    };
    let metadata_error = match &listed {
        Err(e) if lock_error.is_none() => Some(e.to_string()),
        _ => None,
    };
    let mut backend = store.backend();
    // The one failure to open the keychain that repair can fix: the sealed
    // store's key record does not parse.
    let rebuildable = a.fix && matches!(backend, Err(Error::CorruptMetadata { .. }));
    // A lock that timed out once would only time out again.
    let report = ((backend.is_ok() || rebuildable) && lock_error.is_none()).then(|| {
        if a.fix {
            store.repair()
        } else {
            store.verify()
        }
    });
    if rebuildable && matches!(report, Some(Ok(_))) {
        backend = store.backend();
    }
    let profiles = if a.fix {
        store.list().unwrap_or_default()
    } else {
        listed.as_ref().map(Vec::clone).unwrap_or_default()
    };
    let ok_report = report.as_ref().and_then(|r| r.as_ref().ok());
    // A keyutils quota close to its limit makes the next save or refresh
    // fail; say so before it does.
    let quota = backend
        .is_ok()
        .then(|| store.keychain_quota().ok().flatten())
        .flatten();
    let refresh_room = ok_report.map_or(0, |r| r.refresh_room);
    let quota_full = quota.filter(|q| {
        q.max_bytes.saturating_sub(q.used_bytes) < refresh_room
            || nearly_full(q.used_bytes, q.max_bytes)
            || nearly_full(q.used_keys, q.max_keys)
    });
    let code = match &report {
        Some(Ok(r)) if quota_full.is_some() && problems_code(&r.problems) == OK => OTHER,
        Some(Ok(r)) => problems_code(&r.problems),
        Some(Err(e)) => code_of(e),
        None => match (&listed, &backend) {
            (Err(e), _) | (_, Err(e)) if code_of(e) == STORE => STORE,
            (_, Err(_)) => KEYCHAIN,
            _ => OTHER,
        },
    };
    let paths = [
        ("store dir", store.dir().to_path_buf()),
        ("metadata file", layout.index()),
        ("lock file", lock_path.clone()),
        ("profiles dir", layout.profiles_dir()),
    ];
    let mut problems: Vec<String> = ok_report
        .map(|r| r.problems.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    if let Some(q) = quota_full {
        problems.push(format!(
            "the keyutils quota is nearly full: {} of {} bytes, {} of {} keys in use; a refresh needs {refresh_room} bytes free, so the next save or refresh may not fit",
            q.used_bytes, q.max_bytes, q.used_keys, q.max_keys
        ));
    }
    let fixed: Vec<String> = ok_report.map(|r| r.fixed.clone()).unwrap_or_default();
    let check_error = match &report {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    // Where the listed profiles' secrets are, when they are all in one
    // backend other than the one that could not be opened: the hint names it.
    let held_elsewhere: Option<String> = backend.as_ref().err().and_then(|_| {
        let mut held: Vec<&str> = profiles.iter().map(|p| p.secrets_backend()).collect();
        held.sort_unstable();
        held.dedup();
        match held.as_slice() {
            [one] if *one != store.requested_backend() => Some((*one).to_string()),
            _ => None,
        }
    });
    if let Err(e) = &backend {
        problems.push(format!(
            "the keychain cannot be opened, so no secret was checked: {e}"
        ));
    }

    if a.json {
        let v = json!({
            "healthy": code == OK,
            "exit_code": code,
            "app": store.app_id(),
            "backend": {
                "requested": store.requested_backend(),
                "in_use": backend.as_ref().ok().map(|(n, _)| n),
                "reason": backend.as_ref().ok().map(|(_, r)| r),
                "error": backend.as_ref().err().map(ToString::to_string),
            },
            "paths": {
                "dir": facts(&paths[0].1).json(&paths[0].1),
                "metadata": facts(&paths[1].1).json(&paths[1].1),
                "lock": facts(&paths[2].1).json(&paths[2].1),
                "profiles": facts(&paths[3].1).json(&paths[3].1),
            },
            "lock": { "ok": lock_error.is_none(), "error": lock_error },
            "database": store.database(),
            "quota": quota.map(|q| json!({
                "used_bytes": q.used_bytes,
                "max_bytes": q.max_bytes,
                "used_keys": q.used_keys,
                "max_keys": q.max_keys,
                "nearly_full": quota_full.is_some(),
                "refresh_needs_bytes": refresh_room,
            })),
            "metadata": {
                "ok": listed.is_ok(),
                "profiles": listed.as_ref().ok().map(Vec::len),
                "error": metadata_error,
            },
            "profiles": profiles.iter().map(|p| json!({
                "profile": p.profile,
                "secrets_backend": p.secrets_backend(),
                "secret": secret_state(ok_report, p),
            })).collect::<Vec<_>>(),
            "orphan_scan": ok_report.map(|r| r.orphan_scan),
            "check_error": check_error,
            "problems": problems,
            "fixed": fixed,
        });
        output::print(&output::json_text(&v))?;
    } else {
        let mut t = String::new();
        let mut line = |k: &str, v: &str| t.push_str(&format!("{k:<14}{v}\n"));
        match &backend {
            Ok((name, reason)) => line("backend", &format!("{name} ({reason})")),
            Err(e) => line("backend", &format!("unavailable: {e}")),
        }
        if let Some(q) = quota {
            line(
                "quota",
                &format!(
                    "{} of {} bytes ({}%), {} of {} keys (this user's keyutils quota)",
                    q.used_bytes,
                    q.max_bytes,
                    percent(q.used_bytes, q.max_bytes),
                    q.used_keys,
                    q.max_keys
                ),
            );
        }
        if let Some(server) = store.database() {
            line("database", &format!("{server} (no files on this machine)"));
        } else {
            for (name, path) in &paths {
                line(
                    name,
                    &format!("{} ({})", path.display(), facts(path).human()),
                );
            }
            line(
                "lock",
                &match &lock_error {
                    None => "works (shared lock taken)".into(),
                    Some(e) => format!("FAILED: {e}"),
                },
            );
        }
        line(
            "metadata",
            &match (&listed, &metadata_error) {
                (Ok(p), _) => format!(
                    "parses, {} profile{}",
                    p.len(),
                    if p.len() == 1 { "" } else { "s" }
                ),
                (Err(_), Some(e)) => format!("FAILED: {e}"),
                (Err(_), None) => "not checked (lock failed)".into(),
            },
        );
        for p in &profiles {
            let state = secret_state(ok_report, p);
            line(
                "profile",
                &format!("{}: secret {state} ({})", p.profile, p.secrets_backend()),
            );
        }
        if let Some(r) = ok_report {
            line(
                "orphans",
                if !r.orphan_scan {
                    "not checked (this backend cannot list its items)"
                } else if r
                    .problems
                    .iter()
                    .any(|p| matches!(p, Problem::Orphan { .. }))
                {
                    "found (see below)"
                } else {
                    "none (no keychain item without a profile)"
                },
            );
        }
        for f in &fixed {
            line("fixed", f);
        }
        for p in &problems {
            line("problem", p);
        }
        if let Some(e) = &check_error {
            line("problem", &format!("could not check the keychain: {e}"));
        }
        t.push_str(&match code {
            OK => "ok: no problems found\n".to_string(),
            _ if a.fix => "not healthy: the problems above remain after repair\n".to_string(),
            _ => "not healthy: see the problems above\n".to_string(),
        });
        output::print(&t)?;
    }
    if code == OK {
        return Ok(OK);
    }
    // A check that could not run says why, with the hint for that error.
    if let Some(Err(e)) = &report {
        let hint = match e {
            // Repair tried to rebuild the key record and says why it could not.
            Error::CorruptMetadata { .. } if a.fix => {
                "do what the error says, then run `rctoken doctor --fix` again".into()
            }
            _ => hint_of(e),
        };
        return Err(Failure::new(code, e.to_string(), hint));
    }
    // The keychain could not be opened because of a store file (the
    // sealed store's key record, or a key file that is not the store's):
    // that error's own hint fits, not the keychain's.
    if let (None, Err(e)) = (&report, &backend)
        && code_of(e) == STORE
    {
        return Err(Failure::new(code, e.to_string(), hint_of(e)));
    }
    // Every problem is a profile a newer rctoken wrote: repair leaves them
    // alone, an upgrade reads them.
    if ok_report.is_some_and(|r| {
        !r.problems.is_empty()
            && r.problems
                .iter()
                .all(|p| matches!(p, Problem::VersionMismatch { newer: true, .. }))
    }) {
        return Err(Failure::new(
            code,
            "a newer rctoken saved these profiles' secrets, in a format this one cannot read",
            "upgrade rctoken to read them; `doctor --fix` leaves them alone",
        ));
    }
    // Every problem is a profile whose secrets are in another backend:
    // repair cannot help (it would drop them); the other backend can.
    let other_backends: Vec<&str> = ok_report
        .map(|r| {
            r.problems
                .iter()
                .map(|p| match p {
                    Problem::OtherBackend { held_by, .. } => Some(held_by.as_str()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    if let Some(b) = other_backends
        .first()
        .filter(|b| other_backends.iter().all(|o| o == *b))
    {
        let where_ = if *b == "secret-service" {
            " (where a session bus and the Secret Service are)"
        } else {
            ""
        };
        return Err(Failure::new(
            code,
            format!("the profiles' secrets are in the {b} backend, which this run does not use"),
            format!("run again with --backend {b}{where_}; a repair here cannot reach them"),
        ));
    }
    let keychain_hint = match &held_elsewhere {
        Some(b) => format!(
            "the profiles' secrets are in {b}: run again with --backend {b}, or where that keychain is"
        ),
        None => {
            "unlock or start the keychain (or pick another with --backend), then retry".to_string()
        }
    };
    let (what, hint) = match code {
        STORE => (
            "the store's files are corrupt or unsafe",
            if a.fix {
                "fix the file's owner and mode by hand (0700 directory, 0600 files), or upgrade rctoken"
            } else {
                "run `rctoken doctor --fix` to move corrupt metadata aside; fix unsafe modes by hand"
            },
        ),
        KEYCHAIN => (
            "the keychain is unavailable, so the secrets were not checked",
            keychain_hint.as_str(),
        ),
        _ if quota_full.is_some() && ok_report.is_some_and(|r| r.problems.is_empty()) => (
            "the keyutils quota is nearly full",
            "remove profiles you no longer need (`rctoken logout PROFILE`), or use --backend secret-service",
        ),
        _ if a.fix => (
            "the store still has problems after repair",
            "see the problems above",
        ),
        _ => (
            "the metadata and the keychain disagree",
            "run `rctoken doctor --fix` to repair",
        ),
    };
    Err(Failure::new(code, what, hint))
}
