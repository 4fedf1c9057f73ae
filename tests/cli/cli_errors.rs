//! Usage errors, missing profiles, bad input and unsafe store files: the
//! exit code of each, the two-line error, and that nothing is echoed that
//! could be a secret. These paths never reach a keychain, so they run on
//! keyutils only (the keychain-dependent codes are in the other cli_* files).

use crate::support::backends::Kind;
use crate::support::cli::{Env, Run, bin, run, run_with_stdin};
use crate::support::cli::{Tok, valid_token};

fn plain(args: &[&str]) -> Run {
    run(std::process::Command::new(bin())
        .env_remove("RCTOKEN_APP")
        .env_remove("RCTOKEN_BACKEND")
        .env_remove("RCTOKEN_DIR")
        .args(args))
}

#[test]
fn help_and_version_document_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["token", "--help"],
        &["doctor", "-h"],
    ] {
        let out = plain(args).ok();
        assert!(out.stdout.contains("Exit codes:"), "{args:?}");
        for line in [
            "0  success",
            "1  anything else",
            "2  usage error",
            "3  no such profile, or none active",
            "4  token not valid long enough, or login required",
            "5  keychain unavailable, locked, or not answering",
            "6  bad input",
            "7  store files corrupt or unsafe",
        ] {
            assert!(out.stdout.contains(line), "{args:?} lacks {line:?}");
        }
    }
    let out = plain(&["--version"]).ok();
    assert!(out.stdout.starts_with("rctoken "), "{}", out.stdout);
    // The hidden test backend is accepted but not advertised.
    assert!(!plain(&["--help"]).ok().stdout.contains("memory"));
}

#[test]
fn usage_errors_exit_2_in_two_lines() {
    needs!(Kind::Keyutils);
    let env = Env::new("usage", Kind::Keyutils);
    let pasted = "U1BCMDFUMDRKV1MwMXxzLFSvXdw5PHMsVLEn_MrtcyxUsw-pasted-token";
    for args in [
        &[][..],
        &["frobnicate"],
        &["list", "--bogus"],
        &["switch"],
        &["logout", "1001", "--all"],
        &["token", "--min-valid", "soon"],
        &["import", "a.json", "b.json"],
        &["import", "--profile", "x", "-", pasted],
        &["import", "--label", &"l".repeat(129)],
    ] {
        let out = env.run(args).fails(2).reveals_none(&[pasted]);
        // The usage line of the command given (not the top level's, and not
        // clap's list of the arguments in conflict, globals included).
        let usage = match args.first().filter(|a| **a != "frobnicate") {
            Some(sub) => format!("hint: usage: rctoken {sub} "),
            None => "hint: usage: rctoken [OPTIONS] <COMMAND>".to_string(),
        };
        assert!(out.stderr.contains(&usage), "{args:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains("--app <ID>"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // A token pasted as PROFILE: no such profile, not echoed.
    env.make_store_dir();
    let out = env.run(&["token", pasted]).fails(3).reveals_none(&[pasted]);
    assert!(
        out.stderr.contains(&format!("{}-character", pasted.len())),
        "{}",
        out.stderr
    );
    let out = plain(&["--backend", "gpg", "list"]).fails(2);
    assert!(out.stderr.contains("gpg"), "{}", out.stderr);
    // An invalid app id.
    let out = plain(&["--app", "../etc", "list"]).fails(2);
    assert!(out.stderr.contains("app id"), "{}", out.stderr);
    // No owner_id and no --profile: usage error, nothing saved.
    let no_owner = Tok {
        access: "AT-noowner",
        expires_in: 3600,
        refresh: None,
        owner: None,
    };
    let out = env
        .run_stdin(&["import"], no_owner.json().as_bytes())
        .fails(2)
        .reveals_none(&["AT-noowner"]);
    assert!(out.stderr.contains("--profile"), "{}", out.stderr);
    assert!(!env.dir().join("metadata.json").exists(), "nothing saved");
    // A label already taken by another profile: usage error with a fitting hint.
    env.import(&valid_token("AT-l1", "RT-l1", "1111"), &["--label", "work"]);
    let out = env
        .run_stdin(
            &["import", "--label", "work"],
            valid_token("AT-l2", "RT-l2", "2222").as_bytes(),
        )
        .fails(2);
    assert!(
        out.stderr.contains("choose another label"),
        "{}",
        out.stderr
    );
    env.run(&["logout", "--all"]).ok();
    // export without --reveal refuses before reading anything.
    env.run(&["export"]).fails(2);
}

#[test]
fn environment_variables_set_the_defaults() {
    needs!(Kind::Keyutils);
    let env = Env::new("envvars", Kind::Keyutils);
    let mut c = std::process::Command::new(bin());
    c.env("RCTOKEN_APP", &env.app)
        .env("RCTOKEN_DIR", env.dir())
        .env("RCTOKEN_BACKEND", "keyutils")
        .arg("import");
    run_with_stdin(&mut c, valid_token("AT-env", "RT-env", "1212").as_bytes()).ok();
    // The flags name the same store.
    assert_eq!(env.run(&["token"]).ok().stdout, "AT-env\n");
    let v = env.run(&["status", "--json"]).ok().json();
    assert_eq!(v["secrets_backend"], "keyutils");
    assert_eq!(v["backend"]["requested"], "keyutils");
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn missing_profiles_exit_3() {
    needs!(Kind::Keyutils);
    let env = Env::new("noprofile", Kind::Keyutils);
    env.make_store_dir();
    for args in [
        &["token"][..],
        &["status"],
        &["export", "--reveal"],
        &["logout"],
    ] {
        let out = env.run(args).fails(3);
        assert!(
            out.stderr.contains("no profile is active"),
            "{}",
            out.stderr
        );
    }
    env.import(&valid_token("AT-np", "RT-np", "1313"), &[]);
    for args in [
        &["token", "nope"][..],
        &["status", "nope"],
        &["switch", "nope"],
        &["export", "nope", "--reveal"],
        &["logout", "nope"],
    ] {
        let out = env.run(args).fails(3).reveals_none(&["AT-np", "RT-np"]);
        assert!(out.stderr.contains("`nope`"), "{}", out.stderr);
        assert!(out.stderr.contains("rctoken list"), "{}", out.stderr);
    }
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn expired_access_token_exits_4_and_says_why() {
    needs!(Kind::Keyutils);
    let env = Env::new("expired", Kind::Keyutils);
    let tok = Tok {
        access: "AT-exp",
        expires_in: 30,
        refresh: Some(("RT-exp", 604_800)),
        owner: Some("1414"),
    };
    env.import(&tok.json(), &[]);
    // Valid for 30 s: less than the default 60.
    let out = env
        .run(&["token"])
        .fails(4)
        .reveals_none(&["AT-exp", "RT-exp"]);
    assert!(out.stderr.contains("--min-valid 60"), "{}", out.stderr);
    assert!(out.stderr.contains("--refresh-with"), "{}", out.stderr);
    // Asking for less is fine.
    assert_eq!(
        env.run(&["token", "--min-valid", "10"]).ok().stdout,
        "AT-exp\n"
    );
    // status and list are not errors for an expiring token.
    let out = env.run(&["list"]).ok();
    assert!(out.stdout.contains("access in "), "{}", out.stdout);
    env.run(&["doctor"]).ok();
    let gone = Tok {
        access: "AT-exp2",
        expires_in: 0,
        refresh: None,
        owner: Some("1414"),
    };
    env.import(&gone.json(), &[]);
    let out = env.run(&["token", "--min-valid", "0"]).fails(4);
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn bad_input_exits_6_and_changes_nothing() {
    needs!(Kind::Keyutils);
    let env = Env::new("badinput", Kind::Keyutils);
    env.import(&valid_token("AT-keep", "RT-keep", "1515"), &[]);
    let meta = std::fs::read(env.dir().join("metadata.json")).unwrap();
    let long_owner = Tok {
        access: "AT-x",
        expires_in: 1,
        refresh: None,
        owner: Some(&"9".repeat(200)),
    }
    .json();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("truncated", br#"{"access_token":"AT-sec"#.to_vec()),
        ("array", b"[1,2]".to_vec()),
        ("null", b"null".to_vec()),
        ("deep", "[".repeat(20_000).into_bytes()),
        (
            "negative ttl",
            br#"{"access_token":"AT-sec","token_type":"bearer","expires_in":-1,"scope":""}"#
                .to_vec(),
        ),
        (
            "mac",
            br#"{"access_token":"AT-sec","token_type":"mac","expires_in":1,"scope":""}"#.to_vec(),
        ),
        ("not utf-8", b"{\"access_token\":\"\xff\xfe\"}".to_vec()),
        ("owner_id too long", long_owner.into_bytes()),
        ("over 1 MiB", vec![b' '; (1 << 20) + 1]),
    ];
    for (what, input) in cases {
        let out = env
            .run_stdin(&["import"], &input)
            .fails(6)
            .reveals_none(&["AT-sec"]);
        assert!(!out.stderr.contains("panicked"), "{what}");
        assert_eq!(
            std::fs::read(env.dir().join("metadata.json")).unwrap(),
            meta,
            "{what}: store unchanged"
        );
    }
    assert_eq!(env.run(&["token"]).ok().stdout, "AT-keep\n");
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn unreadable_file_exits_1_without_echoing_the_path() {
    needs!(Kind::Keyutils);
    let env = Env::new("nofile", Kind::Keyutils);
    // A token pasted where FILE goes must not be echoed back.
    let pasted = "U1BCMDFUMDRKV1MwMXxzLFSvXdw5PHMsVLEn-pasted";
    let out = env.run(&["import", pasted]).fails(1);
    assert!(!out.stderr.contains(pasted), "{}", out.stderr);
    assert!(out.stderr.contains("No such file"), "{}", out.stderr);
}

/// File modes and symlinks: Unix only.
#[cfg(unix)]
#[test]
fn unsafe_store_files_exit_7() {
    use std::os::unix::fs::PermissionsExt;
    needs!(Kind::Keyutils);
    let env = Env::new("unsafe", Kind::Keyutils);
    env.import(&valid_token("AT-us", "RT-us", "1616"), &[]);
    let meta = env.dir().join("metadata.json");

    std::fs::set_permissions(&meta, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = env.run(&["list"]).fails(7);
    assert!(out.stderr.contains("metadata.json"), "{}", out.stderr);
    assert!(out.stderr.contains("writable"), "{}", out.stderr);
    env.run(&["token"]).fails(7).reveals_none(&["AT-us"]);
    let v = env.run(&["doctor", "--json"]).code(7).json();
    assert_eq!(v["paths"]["metadata"]["mode"], "0666");
    assert_eq!(v["healthy"], false);
    std::fs::set_permissions(&meta, std::fs::Permissions::from_mode(0o600)).unwrap();

    std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&["list"]).fails(7);
    assert!(out.stderr.contains("refusing to use"), "{}", out.stderr);
    env.run(&["doctor"]).fails(7);
    std::fs::set_permissions(env.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();

    // A symlinked metadata file is refused and its target left alone.
    let target = env.path("elsewhere.json");
    std::fs::rename(&meta, &target).unwrap();
    std::os::unix::fs::symlink(&target, &meta).unwrap();
    let before = std::fs::read(&target).unwrap();
    env.run(&["list"]).fails(7);
    env.run_stdin(
        &["import"],
        valid_token("AT-us2", "RT-us2", "1717").as_bytes(),
    )
    .fails(7);
    assert_eq!(std::fs::read(&target).unwrap(), before);
    std::fs::remove_file(&meta).unwrap();
    std::fs::rename(&target, &meta).unwrap();
    env.run(&["logout", "--all"]).ok();
}

/// A panic (a bug) gives the generic two-line error and exit 1: no panic
/// message, no backtrace. The trigger exists only with the `failpoints` feature.
#[cfg(feature = "failpoints")]
#[test]
fn a_panic_prints_two_lines_and_exits_1() {
    let out = run(std::process::Command::new(bin())
        .env("RCTOKEN_CLI_TEST_PANIC", "1")
        .env("RUST_BACKTRACE", "full")
        .arg("list"))
    .fails(1)
    .reveals_none(&["SECRET-IN-PANIC-MESSAGE"]);
    assert!(out.stderr.contains("internal error"), "{}", out.stderr);
    assert!(!out.stderr.contains("backtrace"), "{}", out.stderr);
}

#[test]
#[allow(clippy::disallowed_methods)] // the test holds the store's lock from outside
fn a_held_lock_fails_after_lock_timeout_with_exit_1() {
    needs!(Kind::Keyutils);
    let env = Env::new("lock_timeout", Kind::Keyutils);
    env.import(&valid_token("acc-lock", "ref-lock", "4242"), &[])
        .ok();
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(env.dir().join("metadata.lock"))
        .expect("open lock file");
    lock.lock().expect("hold the metadata lock");
    for args in [
        &["--lock-timeout", "0.3", "list"][..],
        &["--lock-timeout", "0.3", "token"],
    ] {
        let out = env.run(args).fails(1);
        assert!(
            out.stderr.contains("waiting for lock"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // doctor reports the lock as not working and exits non-zero.
    let out = env.run(&["--lock-timeout", "0.3", "doctor"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    drop(lock);
    env.run(&["token"]).ok();
    env.run(&["logout", "--all"]).ok();
}

#[test]
fn bad_timeouts_are_usage_errors() {
    needs!(Kind::Keyutils);
    let env = Env::new("bad_timeout", Kind::Keyutils);
    for args in [
        &["--lock-timeout", "-1", "list"][..],
        &["--keychain-timeout", "NaN", "list"],
        &["--lock-timeout", "soon", "list"],
    ] {
        env.run(args).fails(2);
    }
}

/// Unsafe store paths get a hint that fits them: a file is not a
/// directory; a shared directory such as /tmp (another user's, or open to
/// others when run as root) calls for a directory of one's own, not chown.
#[test]
fn unsafe_dirs_get_a_hint_that_fits() {
    needs!(Kind::Keyutils);
    let env = Env::new("unsafe-dirs", Kind::Keyutils);
    let file = env.path("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = plain(&["--dir", file.to_str().unwrap(), "list"]).fails(7);
    assert!(
        out.stderr.contains("must name a directory"),
        "{}",
        out.stderr
    );
    let out = plain(&["--dir", "/tmp", "list"]).fails(7);
    assert!(
        out.stderr.contains("a directory of your own"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("chown"), "{}", out.stderr);
}
