//! `rctoken list [--json]`: reads the metadata file only, never the keychain.

use serde_json::Value;

use super::Ctx;
use crate::cli::args::ListArgs;
use crate::cli::exit::{Failure, OK};
use crate::cli::output::{self, profile_json, refresh_state, relative};

pub fn run(ctx: &Ctx, a: ListArgs) -> Result<u8, Failure> {
    let store = ctx.open()?;
    let profiles = store.list()?;
    if a.json {
        let all: Vec<Value> = profiles.iter().map(profile_json).collect();
        output::print(&output::json_text(&Value::Array(all)))?;
        return Ok(OK);
    }
    if profiles.is_empty() {
        eprintln!("no profiles; add one with `rctoken import FILE`");
        return Ok(OK);
    }
    let now = store.now();
    let rows: Vec<[String; 5]> = profiles
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
    Ok(OK)
}
