//! `rctoken list [--json]`: reads the metadata files only, never the
//! keychain. A profile file that cannot be read does not hide the others:
//! they are listed, it is marked `!`, and the exit code is its error's.

use serde_json::Value;

use super::Ctx;
use crate::cli::args::ListArgs;
use crate::cli::exit::{Failure, OK};
use crate::cli::output::{self, profile_json, refresh_state, relative};

pub fn run(ctx: &Ctx, a: ListArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let listing = store.list_readable()?;
    let profiles = listing.profiles;
    let broken: Vec<String> = listing
        .unreadable
        .iter()
        .map(|(path, _)| {
            path.file_name()
                .unwrap_or(path.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let failure = listing.unreadable.into_iter().next().map(|(path, e)| {
        let mut f = Failure::from(e);
        f.what = format!(
            "profile file {} cannot be read, so it is not listed: {}",
            path.display(),
            f.what
        );
        f
    });
    let done = move || match failure {
        Some(f) => Err(f),
        None => Ok(OK),
    };
    if a.json {
        let all: Vec<Value> = profiles.iter().map(profile_json).collect();
        output::print(&output::json_text(&Value::Array(all)))?;
        return done();
    }
    if profiles.is_empty() && broken.is_empty() {
        eprintln!("no profiles; add one with `rctoken login` or `rctoken import FILE`");
        return Ok(OK);
    }
    let now = store.now();
    let mut rows: Vec<[String; 5]> = profiles
        .iter()
        .map(|p| {
            [
                if p.active { "*" } else { " " }.to_string(),
                p.profile.clone(),
                p.label.clone().unwrap_or_else(|| "-".into()),
                format!("access {}", relative(p.access_token_expires_at, now)),
                format!("refresh {}", refresh_state(p, now)),
            ]
        })
        .collect();
    for file in broken {
        rows.push([
            "!".into(),
            file,
            "-".into(),
            "unreadable".into(),
            "(see the error below)".into(),
        ]);
    }
    // Escaped before measuring, so a hostile name cannot skew the columns.
    let rows: Vec<[String; 5]> = rows
        .into_iter()
        .map(|r| r.map(|cell| output::safe(&cell)))
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w1, w2, w3) = (width(1), width(2), width(3));
    let mut text = String::new();
    for r in &rows {
        text.push_str(&format!(
            "{} {:w1$}  {:w2$}  {:w3$}  {}\n",
            r[0], r[1], r[2], r[3], r[4]
        ));
    }
    output::print(&text)?;
    done()
}
