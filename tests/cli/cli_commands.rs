//! Every command of the `rctoken` binary, driven as a user would, on both
//! real Linux backends (keyutils; the Secret Service under
//! .ci/with-keyring.sh), and on Windows on the Credential Manager (under
//! Wine in CI), where files have no Unix modes to report.

use crate::support::backends::Kind;
use crate::support::cli::{self, Env};
use crate::support::cli::{Tok, valid_token};

on_both_backends!(
    import_list_switch_status_token_logout,
    reimport_keeps_label_and_first_profile_is_active,
    export_needs_reveal_and_round_trips,
    doctor_reports_and_repairs_a_missing_secret,
    corrupt_metadata_exits_7_and_doctor_fix_rebuilds_it,
);

fn import_list_switch_status_token_logout(kind: Kind) {
    let env = Env::new("flow", kind);
    let (at_a, rt_a) = ("AT-flow-a-5eCr3t", "RT-flow-a-5eCr3t");
    let (at_b, rt_b) = ("AT-flow-b-5eCr3t", "RT-flow-b-5eCr3t");
    let secrets = [at_a, rt_a, at_b, rt_b];

    // import from FILE, with a label: the first profile is active.
    let file = env.path("a.json");
    std::fs::write(&file, valid_token(at_a, rt_a, "1001")).unwrap();
    let out = env
        .run(&["import", file.to_str().unwrap(), "--label", "work"])
        .ok()
        .reveals_none(&secrets);
    assert_eq!(
        out.stdout,
        format!(
            "saved profile 1001 (label work), active; secrets in {}\n",
            kind.name()
        )
    );

    // import from stdin (`-`), not switching.
    let out = env
        .run_stdin(
            &["import", "-", "--no-switch"],
            valid_token(at_b, rt_b, "2002").as_bytes(),
        )
        .ok()
        .reveals_none(&secrets);
    assert_eq!(
        out.stdout,
        format!(
            "saved profile 2002, not active; secrets in {}\n",
            kind.name()
        )
    );

    // list: one line per profile, active marker, label, expiries.
    let out = env.run(&["list"]).ok().reveals_none(&secrets);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].starts_with("* 1001 "), "{}", out.stdout);
    assert!(
        lines[0].contains("work") && lines[0].contains("access in 59m"),
        "{}",
        out.stdout
    );
    assert!(lines[0].contains("refresh in 6d 23h") || lines[0].contains("refresh in 7d"));
    assert!(lines[1].starts_with("  2002 "), "{}", out.stdout);

    // list --json: the documented fields.
    let v = env
        .run(&["list", "--json"])
        .ok()
        .reveals_none(&secrets)
        .json();
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    let a = &arr[0];
    assert_eq!(a["profile"], "1001");
    assert_eq!(a["owner_id"], "1001");
    assert_eq!(a["label"], "work");
    assert_eq!(a["active"], true);
    assert_eq!(a["scope"], "ReadAccounts CallControl");
    assert_eq!(a["endpoint_id"], "8zXq6oaLT7WvwWITlGiA1A");
    assert!(
        a["access_token_expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        a["refresh_token_expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(a["session_expires_at"].is_null());
    assert_eq!(arr[1]["active"], false);
    assert!(arr[1]["label"].is_null());

    // token: exactly the token and a newline, nothing on stderr.
    let out = env.run(&["token"]).ok();
    assert_eq!(out.stdout, format!("{at_a}\n"));
    assert_eq!(out.stderr, "");
    let out = env.run(&["token", "2002"]).ok();
    assert_eq!(out.stdout, format!("{at_b}\n"));

    // switch by key, then by label.
    let out = env.run(&["switch", "2002"]).ok().reveals_none(&secrets);
    assert_eq!(out.stdout, "switched to profile 2002\n");
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{at_b}\n"));
    env.run(&["switch", "work"]).ok();
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{at_a}\n"));

    // status: human and JSON, with the backend and the secret's presence.
    let out = env.run(&["status"]).ok().reveals_none(&secrets);
    assert!(out.stdout.contains("1001 (active)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("secrets held by:      {}", kind.name()))
    );
    assert!(
        out.stdout.contains("secrets:              present"),
        "{}",
        out.stdout
    );
    let v = env
        .run(&["status", "2002", "--json"])
        .ok()
        .reveals_none(&secrets)
        .json();
    assert_eq!(v["profile"], "2002");
    assert_eq!(v["active"], false);
    assert_eq!(v["session_id"], "sess-1234");
    assert_eq!(v["session_idle_timeout"], 900);
    assert_eq!(v["expires_in"], 3600);
    assert!(v["obtained_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["secrets_backend"], kind.name());
    assert_eq!(v["backend"]["in_use"], kind.name());
    assert_eq!(
        v["backend"]["reason"],
        "chosen explicitly".to_string()
            + if kind == Kind::Keyutils {
                "; keyutils keys are cleared at reboot"
            } else {
                ""
            }
    );
    assert_eq!(v["secret"], "present");

    // logout: the secret is in the keychain before, gone after (checked from outside).
    let accounts_a = env.accounts("1001");
    let accounts_b = env.accounts("2002");
    assert!(
        env.in_keychain(&accounts_a[0]),
        "item present before logout"
    );
    assert!(env.in_keychain(&accounts_b[0]));
    let out = env.run(&["logout", "work"]).ok().reveals_none(&secrets);
    assert_eq!(
        out.stdout,
        format!(
            "logged out profile 1001 (label work); deleted its secrets from {}\n",
            kind.name()
        )
    );
    assert!(!env.in_keychain(&accounts_a[0]), "item gone after logout");
    assert!(
        env.in_keychain(&accounts_b[0]),
        "the other profile is untouched"
    );
    // No active profile now.
    env.run(&["token"]).fails(3);
    env.run(&["logout"]).fails(3);

    let out = env.run(&["logout", "--all"]).ok();
    assert!(
        out.stdout.starts_with("logged out 1 profile;"),
        "{}",
        out.stdout
    );
    env.assert_namespace_empty(&[accounts_a, accounts_b].concat());
    let out = env.run(&["list"]).ok();
    assert_eq!(out.stdout, "");
    let v = env.run(&["list", "--json"]).ok().json();
    assert_eq!(v, serde_json::json!([]));
}

fn reimport_keeps_label_and_first_profile_is_active(kind: Kind) {
    let env = Env::new("reimport", kind);
    // --no-switch on the very first profile: active anyway.
    let out = env.import(
        &valid_token("AT-r1", "RT-r1", "77"),
        &["--no-switch", "--label", "desk"],
    );
    assert_eq!(
        out.stdout,
        format!(
            "saved profile 77 (label desk), active; secrets in {}\n",
            kind.name()
        )
    );
    let old_accounts = env.accounts("77");
    // Re-import: new tokens, label kept; the old generation's items are gone.
    let out = env.import(&valid_token("AT-r2", "RT-r2", "77"), &[]);
    assert_eq!(
        out.stdout,
        format!(
            "saved profile 77 (label desk), active; secrets in {}\n",
            kind.name()
        )
    );
    assert_eq!(env.run(&["token", "desk"]).ok().stdout, "AT-r2\n");
    assert!(!env.in_keychain(&old_accounts[0]), "old generation deleted");
    assert!(env.in_keychain(&env.accounts("77")[0]));
    // --label replaces it; --profile overrides owner_id.
    let out = env.import(&valid_token("AT-r3", "RT-r3", "77"), &["--label", "home"]);
    assert_eq!(
        out.stdout,
        format!(
            "saved profile 77 (label home), active; secrets in {}\n",
            kind.name()
        )
    );
    let no_owner = Tok {
        access: "AT-r4",
        expires_in: 3600,
        refresh: None,
        owner: None,
    }
    .json();
    let out = env.import(&no_owner, &["--profile", "sandbox", "--no-switch"]);
    assert_eq!(
        out.stdout,
        format!(
            "saved profile sandbox, not active; secrets in {}\n",
            kind.name()
        )
    );
    assert_eq!(env.run(&["token", "sandbox"]).ok().stdout, "AT-r4\n");
    let v = env.run(&["status", "sandbox", "--json"]).ok().json();
    assert!(v["owner_id"].is_null());
    assert_eq!(v["has_refresh_token"], false);
    let out = env.run(&["list"]).ok();
    assert!(out.stdout.contains("refresh none"), "{}", out.stdout);
    env.run(&["logout", "--all"]).ok();
}

fn export_needs_reveal_and_round_trips(kind: Kind) {
    let env = Env::new("export", kind);
    let (at, rt) = ("AT-export-5eCr3t", "RT-export-5eCr3t");
    env.import(&valid_token(at, rt, "3003"), &["--label", "x"]);

    // Without --reveal: usage error, no secret anywhere.
    env.run(&["export"]).fails(2).reveals_none(&[at, rt]);

    let out = env.run(&["export", "--reveal"]).ok();
    assert_eq!(out.stderr, "");
    assert!(out.stdout.ends_with("}\n"));
    let v = out.json();
    assert_eq!(v["access_token"], at);
    assert_eq!(v["refresh_token"], rt);
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["owner_id"], "3003");
    assert_eq!(v["endpoint_id"], "8zXq6oaLT7WvwWITlGiA1A");
    let left = v["expires_in"].as_i64().unwrap();
    assert!(
        (3500..=3600).contains(&left),
        "remaining seconds, got {left}"
    );
    let rleft = v["refresh_token_expires_in"].as_i64().unwrap();
    assert!((604_700..=604_800).contains(&rleft), "got {rleft}");

    // Re-import into another app id: same token.
    let other = Env::new("export-into", kind);
    let out = other.run_stdin(&["import"], out.stdout.as_bytes()).ok();
    assert_eq!(
        out.stdout,
        format!("saved profile 3003, active; secrets in {}\n", kind.name())
    );
    assert_eq!(other.run(&["token"]).ok().stdout, format!("{at}\n"));
    let again = other.run(&["export", "--reveal"]).ok().json();
    assert_eq!(again["refresh_token"], rt);
    other.run(&["logout", "--all"]).ok();
    env.run(&["logout", "--all"]).ok();
}

fn doctor_reports_and_repairs_a_missing_secret(kind: Kind) {
    let env = Env::new("doctor", kind);
    let (at, rt) = ("AT-doctor-5eCr3t", "RT-doctor-5eCr3t");
    env.import(&valid_token(at, rt, "4004"), &[]);
    env.import(&valid_token("AT-d2", "RT-d2", "4005"), &["--no-switch"]);

    let out = env.run(&["doctor"]).ok().reveals_none(&[at, rt]);
    assert!(
        out.stdout
            .contains(&format!("backend       {} (chosen explicitly", kind.name()))
    );
    #[cfg(unix)]
    assert!(
        out.stdout.contains("(directory, mode 0700"),
        "{}",
        out.stdout
    );
    #[cfg(unix)]
    assert!(
        out.stdout.contains("metadata.json (file, mode 0600"),
        "{}",
        out.stdout
    );
    #[cfg(windows)]
    assert!(
        out.stdout.contains("(directory)") && out.stdout.contains("metadata.json (file)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("lock          works"), "{}", out.stdout);
    assert!(
        out.stdout.contains("metadata      parses, 2 profiles"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("4004: secret present"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("ok: no problems found\n"));
    let v = env.run(&["doctor", "--json"]).ok().json();
    assert_eq!(v["healthy"], true);
    if cfg!(unix) {
        assert_eq!(v["paths"]["dir"]["mode"], "0700");
        assert_eq!(v["paths"]["metadata"]["mode"], "0600");
        assert_eq!(v["paths"]["profiles"]["mode"], "0700");
    }
    assert_eq!(v["paths"]["profiles"]["kind"], "directory");
    assert_eq!(v["lock"]["ok"], true);
    assert_eq!(v["metadata"]["profiles"], 2);

    // Drift: the secret vanishes behind our back (keyutils after a reboot).
    let account = env.accounts("4004").remove(0);
    env.delete_from_outside(&account);
    let out = env.run(&["doctor"]).code(1).reveals_none(&[at, rt]);
    assert!(
        out.stdout.contains("4004: secret missing"),
        "{}",
        out.stdout
    );
    cli::two_line_error(&out.stderr);
    let v = env.run(&["doctor", "--json"]).code(1).json();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["profiles"][0]["secret"], "missing");
    assert_eq!(v["profiles"][1]["secret"], "present");
    // The token is gone: log in again (exit 4); status says so but succeeds.
    env.run(&["token"]).fails(4);
    let v = env.run(&["status", "--json"]).ok().json();
    assert_eq!(v["secret"], "missing");

    let out = env.run(&["doctor", "--fix"]).ok();
    assert!(
        out.stdout.contains("fixed         dropped profile `4004`"),
        "{}",
        out.stdout
    );
    let v = env.run(&["list", "--json"]).ok().json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["profile"], "4005");
    env.run(&["doctor"]).ok();
    env.run(&["logout", "--all"]).ok();
}

fn corrupt_metadata_exits_7_and_doctor_fix_rebuilds_it(kind: Kind) {
    let env = Env::new("corrupt", kind);
    env.import(&valid_token("AT-c", "RT-c", "5005"), &["--label", "lab"]);
    let meta = env.dir().join("metadata.json");
    std::fs::write(&meta, b"{\"format_version\": 1, \"profiles\": [tru").unwrap();

    let out = env.run(&["list"]).fails(7);
    assert!(
        out.stderr.contains("metadata.json"),
        "names the file: {}",
        out.stderr
    );
    env.run(&["token"]).fails(7);
    let out = env.run(&["doctor"]).code(7);
    assert!(
        out.stdout.contains("metadata      FAILED"),
        "{}",
        out.stdout
    );
    // A read never rewrites it.
    assert_eq!(
        std::fs::read(&meta).unwrap(),
        b"{\"format_version\": 1, \"profiles\": [tru"
    );

    let out = env.run(&["doctor", "--fix"]).ok();
    assert!(
        out.stdout.contains("moved the corrupt metadata"),
        "{}",
        out.stdout
    );
    let kept: Vec<_> = std::fs::read_dir(env.dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("metadata.json.corrupt-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the corrupt copy is kept");
    // Rebuilt from the keychain: the profile and its token are back.
    let v = env.run(&["list", "--json"]).ok().json();
    assert_eq!(v[0]["profile"], "5005");
    assert_eq!(env.run(&["token", "5005"]).ok().stdout, "AT-c\n");
    env.run(&["logout", "--all"]).ok();
}
