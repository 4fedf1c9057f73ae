//! `rctoken token --refresh-with CMD` (issue 4 §2) on every real backend
//! (Windows too: CMD is `support::refresher`, the same under `sh -c` and
//! `cmd /C`): the refresh token reaches CMD on stdin only, RCTOKEN_OWNER_ID
//! is set, a failing CMD keeps the old tokens, an expired refresh token
//! never runs CMD, and concurrent callers (16; 8 on Windows) cause exactly
//! one refresh.

use std::process::{Command, Stdio};

use crate::support::backends::Kind;
use crate::support::cli::{self, Env};
use crate::support::cli::{Tok, valid_token};
use crate::support::refresher::{Does, Refresher};

on_both_backends!(
    refresher_gets_the_refresh_token_on_stdin_and_the_owner_in_env,
    refresher_failure_keeps_the_old_tokens,
    refresher_printing_bad_json_exits_6,
    expired_refresh_token_exits_4_without_running_cmd,
    valid_token_does_not_run_cmd,
    sixteen_concurrent_refreshes_run_cmd_once,
);

const OLD_AT: &str = "AT-old-5eCr3t";
const OLD_RT: &str = "RT-old-5eCr3t";
const NEW_AT: &str = "AT-new-5eCr3t";
const NEW_RT: &str = "RT-new-5eCr3t";

/// An expired access token (expires_in 0) with a refresh token valid for a week.
fn expired(owner: Option<&str>) -> String {
    Tok {
        access: OLD_AT,
        expires_in: 0,
        refresh: Some((OLD_RT, 604_800)),
        owner,
    }
    .json()
}

fn new_token_json() -> String {
    Tok {
        access: NEW_AT,
        expires_in: 3600,
        refresh: Some((NEW_RT, 604_800)),
        owner: Some("8008"),
    }
    .json()
}

/// The test's refresher (it records its stdin, its RCTOKEN_OWNER_ID, its
/// environment and its runs) and a CMD that runs it doing `does`.
fn refresher(env: &Env, does: &Does) -> (String, Refresher) {
    let r = Refresher::new(env.tmp.path(), "refresher");
    (r.cmd(does), r)
}

/// Print the new token.
fn print_new() -> Does {
    Does::print(&new_token_json())
}

/// How std shows exit code `n` in the refresher's error.
fn exit_code(n: i32) -> String {
    if cfg!(windows) {
        format!("exit code: {n}")
    } else {
        format!("exit status: {n}")
    }
}

fn refresher_gets_the_refresh_token_on_stdin_and_the_owner_in_env(kind: Kind) {
    let env = Env::new("refresh-stdin", kind);
    env.import(&expired(Some("8008")), &["--label", "me"]);
    env.run(&["token"]).fails(4).reveals_none(&[OLD_AT, OLD_RT]);

    let (cmd, r) = refresher(&env, &print_new());
    let out = env.run(&["token", "me", "--refresh-with", &cmd]).ok();
    assert_eq!(out.stdout, format!("{NEW_AT}\n"));
    assert!(!out.stderr.contains(OLD_RT) && !out.stderr.contains(NEW_RT));
    // Exactly the refresh token on stdin, no newline; never in the environment.
    assert_eq!(r.stdin(), OLD_RT);
    assert_eq!(r.owner(), "8008");
    assert!(r.env().contains("RCTOKEN_OWNER_ID=8008"), "{}", r.env());
    assert!(!r.env().contains(OLD_RT));
    // Saved: plain `token` now prints the new one, export has the new refresh token.
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{NEW_AT}\n"));
    let v = env.run(&["export", "--reveal"]).ok().json();
    assert_eq!(v["refresh_token"], NEW_RT);
    // The label survived the refresh.
    assert_eq!(env.run(&["status", "--json"]).ok().json()["label"], "me");

    // Without an owner_id, RCTOKEN_OWNER_ID is the profile key.
    env.import(&expired(None), &["--profile", "nameless"]);
    let (cmd, r) = refresher(&env, &print_new());
    env.run(&["token", "nameless", "--refresh-with", &cmd]).ok();
    assert_eq!(r.owner(), "nameless");
    env.run(&["logout", "--all"]).ok();
}

fn refresher_failure_keeps_the_old_tokens(kind: Kind) {
    let env = Env::new("refresh-fail", kind);
    // Valid for 100 s: `--min-valid 200` wants a refresh, `--min-valid 0` does not.
    let tok = Tok {
        access: OLD_AT,
        expires_in: 100,
        refresh: Some((OLD_RT, 604_800)),
        owner: Some("8008"),
    };
    env.import(&tok.json(), &[]);
    let (cmd, r) = refresher(
        &env,
        &Does {
            stderr: "refresher: HTTP 400 invalid_grant\n".into(),
            exit: 3,
            ..Does::default()
        },
    );
    let out = env
        .run(&["token", "--min-valid", "200", "--refresh-with", &cmd])
        .code(1)
        .reveals_none(&[OLD_AT, OLD_RT]);
    assert_eq!(out.stdout, "");
    // CMD's stderr passes through, then our two lines.
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines[0], "refresher: HTTP 400 invalid_grant");
    cli::two_line_error(&lines[1..].join("\n"));
    assert!(out.stderr.contains(&exit_code(3)), "{}", out.stderr);
    assert_eq!(r.runs(), 1);
    // The old tokens are still there.
    let out = env.run(&["token", "--min-valid", "0"]).ok();
    assert_eq!(out.stdout, format!("{OLD_AT}\n"));
    let v = env.run(&["export", "--reveal"]).ok().json();
    assert_eq!(v["refresh_token"], OLD_RT);
    env.run(&["logout", "--all"]).ok();
}

fn refresher_printing_bad_json_exits_6(kind: Kind) {
    let env = Env::new("refresh-bad", kind);
    env.import(&expired(Some("8008")), &[]);
    let meta = std::fs::read(env.dir().join("metadata.json")).unwrap();
    for does in [
        Does::print("not json\n"),
        Does::print(
            "{\"access_token\":\"x\",\"token_type\":\"mac\",\"expires_in\":1,\"scope\":\"\"}\n",
        ),
        Does::print("{\"access_token\":\"x\"\n"),
        Does {
            zeros: 1_100_000,
            ..Does::default()
        },
    ] {
        let (cmd, _) = refresher(&env, &does);
        env.run(&["token", "--refresh-with", &cmd])
            .fails(6)
            .reveals_none(&[OLD_AT, OLD_RT]);
        assert_eq!(
            std::fs::read(env.dir().join("metadata.json")).unwrap(),
            meta,
            "{does:?}: store unchanged"
        );
    }
    // RingCentral's error response, printed by CMD: its error is shown.
    // invalid_grant means the refresh token is dead: log in again (exit
    // 4); another error is the server refusing (exit 9).
    for (body, code) in [
        (
            r#"{"error":"invalid_grant","error_description":"Token is revoked","errors":[{"errorCode":"OAU-211"}]}"#,
            4,
        ),
        (
            r#"{"error":"unauthorized_client","error_description":"Unauthorized for this grant type"}"#,
            9,
        ),
    ] {
        let (cmd, _) = refresher(&env, &Does::print(&format!("{body}\n")));
        let out = env
            .run(&["token", "--refresh-with", &cmd])
            .fails(code)
            .reveals_none(&[OLD_AT, OLD_RT]);
        let first = out.stderr.lines().next().unwrap_or_default().to_string();
        assert!(
            first.contains("RingCentral's error response")
                && (first.contains("invalid_grant (OAU-211): Token is revoked")
                    || first.contains("unauthorized_client: Unauthorized for this grant type")),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("token_type"),
            "not reported as a missing field: {}",
            out.stderr
        );
        assert_eq!(
            std::fs::read(env.dir().join("metadata.json")).unwrap(),
            meta,
            "{body}: store unchanged"
        );
    }
    let v = env.run(&["export", "--reveal"]).ok().json();
    assert_eq!(v["access_token"], OLD_AT);
    assert_eq!(v["refresh_token"], OLD_RT);
    env.run(&["logout", "--all"]).ok();
}

fn expired_refresh_token_exits_4_without_running_cmd(kind: Kind) {
    let env = Env::new("refresh-expired", kind);
    let tok = Tok {
        access: OLD_AT,
        expires_in: 0,
        refresh: Some((OLD_RT, 0)),
        owner: Some("8008"),
    };
    env.import(&tok.json(), &[]);
    let (cmd, r) = refresher(&env, &print_new());
    let out = env
        .run(&["token", "--refresh-with", &cmd])
        .fails(4)
        .reveals_none(&[OLD_AT, OLD_RT]);
    assert!(out.stderr.contains("login required"), "{}", out.stderr);
    assert!(!r.ran_file().exists(), "CMD must not run");
    assert_eq!(r.stdin(), "");

    // No refresh token at all: the same.
    let tok = Tok {
        access: OLD_AT,
        expires_in: 0,
        refresh: None,
        owner: Some("9009"),
    };
    env.import(&tok.json(), &[]);
    env.run(&["token", "9009", "--refresh-with", &cmd]).fails(4);
    assert!(!r.ran_file().exists(), "CMD must not run");
    env.run(&["logout", "--all"]).ok();
}

fn valid_token_does_not_run_cmd(kind: Kind) {
    let env = Env::new("refresh-valid", kind);
    env.import(&valid_token(OLD_AT, OLD_RT, "8008"), &[]);
    let (cmd, r) = refresher(&env, &print_new());
    let out = env.run(&["token", "--refresh-with", &cmd]).ok();
    assert_eq!(out.stdout, format!("{OLD_AT}\n"));
    assert!(!r.ran_file().exists(), "no refresh needed");
    // Asking for more validity than the token has forces the refresh.
    let out = env
        .run(&["token", "--min-valid", "7200", "--refresh-with", &cmd])
        .code(4);
    // The new token (3600 s) is still short of 7200 s: saved, but not printed.
    assert_eq!(out.stdout, "");
    assert_eq!(r.runs(), 1);
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{NEW_AT}\n"));
    env.run(&["logout", "--all"]).ok();
}

/// 16 callers at once (8 on Windows, where a process costs more, the more
/// so under Wine).
fn sixteen_concurrent_refreshes_run_cmd_once(kind: Kind) {
    let env = Env::new("refresh-16", kind);
    env.import(&expired(Some("8008")), &[]);
    // Slow enough that the others queue on the refresh lock.
    let (cmd, r) = refresher(
        &env,
        &Does {
            sleep_ms: 300,
            ..print_new()
        },
    );
    let callers = if cfg!(windows) { 8 } else { 16 };
    let children: Vec<_> = (0..callers)
        .map(|_| {
            let mut c: Command = env.cmd();
            c.args(["token", "--refresh-with", &cmd])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{NEW_AT}\n"));
    }
    assert_eq!(r.runs(), 1, "CMD ran exactly once for {callers} callers");
    assert_eq!(r.stdin(), OLD_RT);
    env.run(&["logout", "--all"]).ok();
}
