//! Profile names that file systems treat specially: names that differ only
//! in case (one file on Windows' and macOS's case-insensitive file systems
//! unless escaped), Windows device names (`CON.json` opens the console),
//! and trailing dots (Windows strips them). Each profile keeps
//! its own token, on every platform.

use crate::support::backends::Kind;
use crate::support::cli::{Env, valid_token};

/// The backend this platform's CLI tests use for portable checks.
#[cfg(unix)]
const NATIVE: Kind = Kind::Keyutils;
#[cfg(windows)]
const NATIVE: Kind = Kind::WindowsCredentialManager;

#[test]
fn names_a_file_system_could_confuse_keep_their_own_tokens() {
    needs!(NATIVE);
    let env = Env::new("fsnames", NATIVE);
    let names = [
        "Work", "work", "WORK", "CON", "con", "nul", "COM1", "lpt9", "aux.", "prn .x", "x.",
    ];
    for (i, name) in names.iter().enumerate() {
        let json = valid_token(&format!("AT-{i}"), &format!("RT-{i}"), &format!("77{i:02}"));
        env.run_stdin(
            &["import", "--profile", name, "--no-switch"],
            json.as_bytes(),
        )
        .ok();
    }
    let listed = env.run(&["list", "--json"]).ok().json();
    let mut got: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(got, want, "every profile listed once");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            env.run(&["token", name]).ok().stdout,
            format!("AT-{i}\n"),
            "profile {name:?} has its own token"
        );
    }
    env.run(&["doctor"]).ok();
    env.run(&["logout", "--all"]).ok();
}
