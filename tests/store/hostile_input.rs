//! Hostile input: every malformed token response gets a one-line error that
//! names the problem (and the field), never echoes a value, never panics,
//! and leaves the store exactly as it was (metadata bytes identical, the
//! keychain still holding the same token). Through the CLI the same input
//! exits 6 with exactly two stderr lines (error + hint) and nothing on
//! stdout; input larger than the bound (1 MiB) is refused before parsing.
//!
//! Corrupt, truncated or future-version metadata gets a clear error naming
//! the file (CLI exit 7) and is never overwritten by a read or by a refused
//! write; `doctor --fix` moves a corrupt file aside (keeping a byte-identical
//! copy) before rebuilding from the keychain.

use std::path::Path;

use rctoken::{Backend, Error, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
use secrecy::ExposeSecret;

/// Values that must never be echoed in an error.
const ECHO: &str = "ECHOVALUE";

const GOOD: &str = r#"{"access_token":"GOODACCESS","token_type":"bearer","expires_in":3600,"refresh_token":"GOODREFRESH","refresh_token_expires_in":604800,"scope":"ReadAccounts","owner_id":"256440016"}"#;

/// A valid token with one field replaced by raw JSON `value` (or removed).
fn with_field(field: &str, value: Option<&str>) -> Vec<u8> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(GOOD).expect("valid");
    map.remove(field);
    let mut text = serde_json::to_string(&map).expect("serializes");
    if let Some(v) = value {
        text.pop(); // `}`
        text.push_str(&format!(r#","{field}":{v}}}"#));
    }
    text.into_bytes()
}

fn nested(depth: usize) -> Vec<u8> {
    let mut v = vec![b'['; depth];
    v.extend(std::iter::repeat_n(b']', depth));
    v
}

/// 50 MB of pseudo-random bytes (xorshift), generated once per process.
fn random_50mb() -> &'static [u8] {
    static DATA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut v = Vec::with_capacity(50 * 1024 * 1024);
        while v.len() < 50 * 1024 * 1024 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    })
}

/// (name, input, a word the error must contain)
fn cases() -> Vec<(String, Vec<u8>, &'static str)> {
    let mut c: Vec<(String, Vec<u8>, &'static str)> = vec![
        ("empty".into(), b"".to_vec(), "empty or truncated"),
        (
            "whitespace only".into(),
            b"  \n\t ".to_vec(),
            "empty or truncated",
        ),
        (
            "truncated".into(),
            GOOD.as_bytes()[..GOOD.len() / 2].to_vec(),
            "truncated",
        ),
        ("null".into(), b"null".to_vec(), "object"),
        ("array".into(), b"[1,2,3]".to_vec(), "object"),
        (
            "string".into(),
            format!("\"{ECHO}\"").into_bytes(),
            "object",
        ),
        ("number".into(), b"42".to_vec(), "object"),
        ("true".into(), b"true".to_vec(), "object"),
        (
            "nested 20000 deep".into(),
            nested(20_000),
            "nested too deeply",
        ),
        (
            "object nested 20000 deep".into(),
            {
                let mut v = b"{\"a\":".repeat(20_000);
                v.push(b'1');
                v.extend_from_slice(&b"}".repeat(20_000));
                v
            },
            "nested too deeply",
        ),
        (
            "deep array inside a field".into(),
            with_field(
                "scope",
                Some(std::str::from_utf8(&nested(20_000)).expect("ascii")),
            ),
            "nested too deeply",
        ),
        (
            "trailing garbage".into(),
            format!("{GOOD} {ECHO}").into_bytes(),
            "not valid JSON",
        ),
        (
            "two documents".into(),
            format!("{GOOD}{GOOD}").into_bytes(),
            "not valid JSON",
        ),
        (
            "non-UTF-8 in a string".into(),
            {
                let mut v = GOOD.as_bytes().to_vec();
                let at = GOOD.find("GOODACCESS").expect("present") + 4;
                v[at] = 0xff;
                v
            },
            "UTF-8",
        ),
        (
            "non-UTF-8 outside strings".into(),
            {
                let mut v = b"\xfe\xff".to_vec();
                v.extend_from_slice(GOOD.as_bytes());
                v
            },
            "JSON",
        ),
        (
            // One byte order mark is skipped (Notepad writes one); a
            // second is not JSON.
            "two UTF-8 BOMs".into(),
            {
                let mut v = b"\xef\xbb\xbf\xef\xbb\xbf".to_vec();
                v.extend_from_slice(GOOD.as_bytes());
                v
            },
            "JSON",
        ),
        (
            "raw control character in a string".into(),
            GOOD.replace("GOODACCESS", "GOOD\u{1}ACCESS").into_bytes(),
            "control character",
        ),
        (
            "raw NUL byte in a string".into(),
            GOOD.replace("GOODACCESS", "GOOD\0ACCESS").into_bytes(),
            "control character",
        ),
        (
            "expires_in negative".into(),
            with_field("expires_in", Some("-1")),
            "expires_in",
        ),
        (
            "expires_in 1e30".into(),
            with_field("expires_in", Some("1e30")),
            "expires_in",
        ),
        (
            "expires_in 99999999999999999999".into(),
            with_field("expires_in", Some("99999999999999999999")),
            "expires_in",
        ),
        (
            "expires_in i64::MAX".into(),
            with_field("expires_in", Some("9223372036854775807")),
            "expires_in",
        ),
        (
            "expires_in a string".into(),
            with_field("expires_in", Some("\"3600\"")),
            "expires_in",
        ),
        (
            "expires_in fractional".into(),
            with_field("expires_in", Some("3600.5")),
            "expires_in",
        ),
        (
            "expires_in null".into(),
            with_field("expires_in", Some("null")),
            "expires_in",
        ),
        (
            "refresh_token_expires_in negative".into(),
            with_field("refresh_token_expires_in", Some("-5")),
            "refresh_token_expires_in",
        ),
        (
            "refresh_token_expires_in overflowing".into(),
            with_field("refresh_token_expires_in", Some("1e300")),
            "refresh_token_expires_in",
        ),
        (
            "session_expires_in a string".into(),
            with_field("session_expires_in", Some(&format!("\"{ECHO}\""))),
            "session_expires_in",
        ),
        (
            "session_idle_timeout negative".into(),
            with_field("session_idle_timeout", Some("-900")),
            "session_idle_timeout",
        ),
        (
            "token_type mac".into(),
            with_field("token_type", Some("\"mac\"")),
            "token_type",
        ),
        (
            "token_type echo".into(),
            with_field("token_type", Some(&format!("\"{ECHO}\""))),
            "token_type",
        ),
        (
            "token_type a number".into(),
            with_field("token_type", Some("1")),
            "token_type",
        ),
        (
            "session_expiration_time not a date".into(),
            with_field("session_expiration_time", Some(&format!("\"{ECHO}\""))),
            "session_expiration_time",
        ),
        (
            "owner_id empty".into(),
            with_field("owner_id", Some("\"\"")),
            "owner_id",
        ),
        (
            "owner_id a number".into(),
            with_field("owner_id", Some("256440016")),
            "owner_id",
        ),
        (
            "owner_id an object".into(),
            with_field("owner_id", Some(&format!("{{\"{ECHO}\":1}}"))),
            "owner_id",
        ),
        (
            "access_token empty".into(),
            with_field("access_token", Some("\"\"")),
            "access_token",
        ),
        (
            "access_token a number".into(),
            with_field("access_token", Some("12345")),
            "access_token",
        ),
        (
            "access_token an array".into(),
            with_field("access_token", Some(&format!("[\"{ECHO}\"]"))),
            "access_token",
        ),
        (
            "refresh_token a bool".into(),
            with_field("refresh_token", Some("true")),
            "refresh_token",
        ),
        (
            "scope a number".into(),
            with_field("scope", Some("7")),
            "scope",
        ),
    ];
    for field in ["access_token", "token_type", "expires_in", "scope"] {
        c.push((format!("{field} missing"), with_field(field, None), field));
    }
    for field in [
        "access_token",
        "refresh_token",
        "id_token",
        "scope",
        "owner_id",
        "endpoint_id",
        "session_id",
    ] {
        c.push((
            format!("NUL inside {field}"),
            with_field(field, Some(&format!("\"{ECHO}\\u0000x\""))),
            field,
        ));
        c.push((
            format!("escape sequence control char inside {field}"),
            with_field(field, Some(&format!("\"{ECHO}\\u001b[31m\""))),
            field,
        ));
    }
    c
}

fn assert_good_error(what: &str, e: &Error, word: &str) {
    assert!(matches!(e, Error::BadToken { .. }), "{what}: {e:?}");
    let msg = e.to_string();
    assert_eq!(msg.lines().count(), 1, "{what}: one line: {msg:?}");
    assert_eq!(e.kind(), rctoken::ErrorKind::BadInput, "{what}: bad input");
    assert!(msg.contains(word), "{what}: names `{word}`: {msg}");
    assert!(!msg.contains(ECHO), "{what}: echoes the value: {msg}");
    assert!(msg.len() < 200, "{what}: short: {msg}");
}

/// The library, input by input: error, no panic, store unchanged.
#[test]
fn library_refuses_hostile_token_json_and_keeps_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keychain = MemoryKeychain::new();
    let store = TokenStore::builder("hostile-lib")
        .dir(tmp.path())
        .backend(Backend::Memory(keychain.clone()))
        .open()
        .expect("opens");
    let good = TokenInfo::from_json(GOOD.as_bytes()).expect("valid");
    store.save(&good, SaveOptions::new()).expect("saves");
    let meta = std::fs::read(store.layout().index()).expect("metadata");
    let items = keychain.len();

    for (what, input, word) in cases() {
        let result = std::panic::catch_unwind(|| TokenInfo::from_json(&input));
        let parsed = result.unwrap_or_else(|_| panic!("{what}: panicked"));
        match parsed {
            Err(e) => assert_good_error(&what, &e, word),
            // Some inputs are refused only when saved (range checks).
            Ok(t) => {
                let e = store
                    .save(&t, SaveOptions::new())
                    .expect_err(&format!("{what}: accepted"));
                assert_good_error(&what, &e, word);
            }
        }
        // serde's Deserialize goes through the same checks.
        assert!(
            serde_json::from_slice::<TokenInfo>(&input).is_err()
                || TokenInfo::from_json(&input).is_ok(),
            "{what}: Deserialize accepts what from_json refuses"
        );
        assert_eq!(
            std::fs::read(store.layout().index()).expect("metadata"),
            meta,
            "{what}: metadata changed"
        );
        assert_eq!(keychain.len(), items, "{what}: keychain changed");
    }
    let big = random_50mb();
    let e = TokenInfo::from_json(big).expect_err("random bytes");
    assert!(matches!(e, Error::BadToken { .. }), "{e:?}");
    assert_eq!(e.to_string().lines().count(), 1);

    let loaded = store.load(rctoken::Selector::Active).expect("still loads");
    assert_eq!(loaded.token.access_token.expose_secret(), "GOODACCESS");
    assert!(store.verify().expect("verifies").is_clean());
}

/// `Bearer` in any case is the one token type accepted.
#[test]
fn token_type_bearer_in_any_case_is_accepted() {
    for t in ["bearer", "Bearer", "BEARER"] {
        let json = with_field("token_type", Some(&format!("\"{t}\"")));
        TokenInfo::from_json(&json).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// Corrupt metadata, library level
// ---------------------------------------------------------------------------

fn bad_metadata(good: &[u8]) -> Vec<(&'static str, Vec<u8>, bool)> {
    // (name, bytes, is it "too new" rather than corrupt)
    vec![
        ("garbage", b"\x00\x01not json at all\xff".to_vec(), false),
        ("truncated", good[..good.len() / 2].to_vec(), false),
        ("empty file", Vec::new(), false),
        ("null", b"null".to_vec(), false),
        ("no version", br#"{"profiles":{}}"#.to_vec(), false),
        (
            "wrong types",
            br#"{"format_version":1,"profiles":[1,2]}"#.to_vec(),
            false,
        ),
        (
            "wrong types, format 2",
            br#"{"format_version":2,"labels":[1,2]}"#.to_vec(),
            false,
        ),
        (
            "future version",
            br#"{"format_version":3,"profiles":{"x":{"anything":"new"}}}"#.to_vec(),
            true,
        ),
    ]
}

#[test]
fn corrupt_metadata_is_named_and_never_overwritten() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keychain = MemoryKeychain::new();
    let store = TokenStore::builder("hostile-meta")
        .dir(tmp.path())
        .backend(Backend::Memory(keychain.clone()))
        .open()
        .expect("opens");
    let good = TokenInfo::from_json(GOOD.as_bytes()).expect("valid");
    store.save(&good, SaveOptions::new()).expect("saves");
    let good_meta = std::fs::read(store.layout().index()).expect("metadata");
    let path = store.layout().index().to_path_buf();

    for (what, bytes, too_new) in bad_metadata(&good_meta) {
        std::fs::write(&path, &bytes).expect("writes");
        let errors = [
            store.list().err(),
            store.load(rctoken::Selector::Active).err(),
            store.info(rctoken::Selector::Active).err(),
            store.save(&good, SaveOptions::new()).err(),
            store.switch("256440016").err(),
            store.set_label("256440016", Some("x")).err(),
            store.remove("256440016").err(),
            store
                .refresh(rctoken::Selector::Active, std::time::Duration::MAX, |_| {
                    Ok::<_, std::io::Error>(good.clone())
                })
                .err(),
        ];
        for e in errors {
            let e = e.unwrap_or_else(|| panic!("{what}: an operation succeeded"));
            match (&e, too_new) {
                (Error::CorruptMetadata { path: p, .. }, false) => assert_eq!(p, &path),
                (
                    Error::UnsupportedVersion {
                        path: p, found: 3, ..
                    },
                    true,
                ) => {
                    assert_eq!(p, &path)
                }
                _ => panic!("{what}: {e:?}"),
            }
            assert!(
                e.to_string().contains(&*path.to_string_lossy()),
                "{what}: names the file: {e}"
            );
            assert_eq!(e.to_string().lines().count(), 1, "{what}: {e}");
            assert_eq!(std::fs::read(&path).expect("reads"), bytes, "{what}");
        }
        let report = store.verify().expect("verify reports");
        assert!(!report.is_clean(), "{what}");
        assert_eq!(
            std::fs::read(&path).expect("reads"),
            bytes,
            "{what}: verify"
        );

        let before: Vec<_> = std::fs::read_dir(tmp.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        let repaired = store.repair();
        if too_new {
            // Left alone: reported, or refused with the same error.
            match repaired {
                Ok(r) => assert!(!r.is_clean(), "{what}: {r:?}"),
                Err(e) => assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e:?}"),
            }
            assert_eq!(std::fs::read(&path).expect("reads"), bytes, "{what}");
        } else {
            let repaired = repaired.expect("repairs");
            assert!(repaired.is_clean(), "{what}: {repaired:?}");
            // The corrupt file is kept, byte for byte, under a new name.
            let aside: Vec<_> = std::fs::read_dir(tmp.path())
                .expect("dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| !before.contains(&p.file_name().expect("name").to_owned()))
                .collect();
            assert_eq!(aside.len(), 1, "{what}: one moved-aside copy: {aside:?}");
            assert_eq!(std::fs::read(&aside[0]).expect("reads"), bytes, "{what}");
            std::fs::remove_file(&aside[0]).expect("removes");
            let t = store.load("256440016").expect("rebuilt from the keychain");
            assert_eq!(t.token.access_token.expose_secret(), "GOODACCESS");
        }
        std::fs::write(&path, &good_meta).expect("restores");
    }
}

// ---------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------

#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Output, Stdio};

    use crate::support::backends::Kind;

    /// A CLI store on real keyutils, with one profile imported.
    struct Cli {
        _tmp: tempfile::TempDir,
        dir: std::path::PathBuf,
        app: String,
    }

    impl Cli {
        fn new(tag: &str) -> Cli {
            let tmp = tempfile::tempdir().expect("tempdir");
            let cli = Cli {
                dir: tmp.path().join("store"),
                app: format!("hostile-{tag}-{}", std::process::id()),
                _tmp: tmp,
            };
            let out = cli.run(&["import"], Some(GOOD.as_bytes()));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            cli
        }

        fn command(&self, args: &[&str]) -> Command {
            let mut c = Command::new(env!("CARGO_BIN_EXE_rctoken"));
            c.args(["--app", &self.app, "--backend", "keyutils", "--dir"])
                .arg(&self.dir)
                .args(args)
                .env_remove("RUST_BACKTRACE")
                .env_remove("RUST_LOG");
            c
        }

        fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
            let mut child = self
                .command(args)
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("rctoken runs");
            let writer = stdin.map(|bytes| {
                let mut pipe = child.stdin.take().expect("stdin");
                let bytes = bytes.to_vec();
                // The CLI may stop reading early (too large): ignore EPIPE.
                std::thread::spawn(move || {
                    let _ = pipe.write_all(&bytes);
                })
            });
            let out = child.wait_with_output().expect("waits");
            if let Some(w) = writer {
                let _ = w.join();
            }
            out
        }

        fn metadata(&self) -> Vec<u8> {
            std::fs::read(self.dir.join("metadata.json")).expect("metadata")
        }

        fn assert_unchanged(&self, what: &str, meta: &[u8]) {
            assert_eq!(self.metadata(), meta, "{what}: metadata changed");
            let out = self.run(&["token"], None);
            assert!(out.status.success(), "{what}: token fails afterwards");
            assert_eq!(out.stdout, b"GOODACCESS\n", "{what}: keychain changed");
        }
    }

    impl Drop for Cli {
        fn drop(&mut self) {
            let _ = self.run(&["logout", "--all"], None);
        }
    }

    fn assert_exit_6(what: &str, out: &Output) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: error + hint: {stderr}");
        assert!(lines[0].starts_with("error: "), "{what}: {stderr}");
        assert!(lines[1].starts_with("hint: "), "{what}: {stderr}");
        assert!(!stderr.contains(ECHO), "{what}: echoes the value: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }

    #[test]
    fn cli_import_refuses_hostile_json_with_exit_6() {
        needs!(Kind::Keyutils);
        let cli = Cli::new("json");
        let meta = cli.metadata();
        for (what, input, word) in cases() {
            let out = cli.run(&["import"], Some(&input));
            assert_exit_6(&what, &out);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(word), "{what}: names `{word}`: {stderr}");
            assert_eq!(cli.metadata(), meta, "{what}: metadata changed");
        }
        cli.assert_unchanged("all cases", &meta);
        // The same through a file argument.
        let file = cli._tmp.path().join("token.json");
        std::fs::write(&file, b"{\"access_token\":").expect("writes");
        let out = cli.run(&["import", &file.to_string_lossy()], None);
        assert_exit_6("file argument", &out);
        cli.assert_unchanged("file argument", &meta);
    }

    #[test]
    fn cli_refuses_oversized_input_before_parsing() {
        needs!(Kind::Keyutils);
        let cli = Cli::new("big");
        let meta = cli.metadata();
        let out = cli.run(&["import"], Some(random_50mb()));
        assert_exit_6("50 MB random on stdin", &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("MiB") || stderr.contains("bytes") || stderr.contains("large"),
            "names the bound: {stderr}"
        );
        // Valid JSON padded past 1 MiB: refused by size, so before parsing.
        let mut padded = GOOD.as_bytes().to_vec();
        padded.extend(std::iter::repeat_n(b' ', 1024 * 1024 + 1));
        let out = cli.run(&["import"], Some(&padded));
        assert_exit_6("valid JSON padded past 1 MiB", &out);
        // Just under the bound is parsed (and accepted).
        let mut under = GOOD.as_bytes().to_vec();
        under.extend(std::iter::repeat_n(b' ', 1024 * 1024 - GOOD.len() - 1));
        let out = cli.run(&["import", "--no-switch"], Some(&under));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta_after = cli.metadata();
        // An endless file argument is bounded too.
        let out = cli.run(&["import", "/dev/zero"], None);
        assert_exit_6("/dev/zero", &out);
        let out = cli.run(&["import", "/dev/urandom"], None);
        assert_exit_6("/dev/urandom", &out);
        cli.assert_unchanged("oversized", &meta_after);
        drop(meta);
    }

    fn assert_exit_7(what: &str, out: &Output, path: &Path) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{what}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: error + hint: {stderr}");
        assert!(
            lines[0].contains(&*path.to_string_lossy()),
            "{what}: names the file: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("GOODACCESS"));
    }

    #[test]
    fn cli_corrupt_metadata_exits_7_and_doctor_fix_moves_it_aside() {
        needs!(Kind::Keyutils);
        let cli = Cli::new("meta");
        let good = cli.metadata();
        let path = cli.dir.join("metadata.json");
        for (what, bytes, too_new) in bad_metadata(&good) {
            std::fs::write(&path, &bytes).expect("writes");
            for args in [
                &["list"][..],
                &["list", "--json"],
                &["status"],
                &["status", "--json"],
                &["token"],
                &["export", "--reveal"],
                &["switch", "256440016"],
                &["logout", "256440016"],
            ] {
                let out = cli.run(args, None);
                assert_exit_7(&format!("{what}: {args:?}"), &out, &path);
                assert_eq!(
                    std::fs::read(&path).expect("reads"),
                    bytes,
                    "{what}: {args:?}"
                );
            }
            let out = cli.run(&["import", "--no-switch"], Some(GOOD.as_bytes()));
            assert_exit_7(&format!("{what}: import"), &out, &path);
            assert_eq!(
                std::fs::read(&path).expect("reads"),
                bytes,
                "{what}: import"
            );

            let out = cli.run(&["doctor"], None);
            assert!(!out.status.success(), "{what}: doctor reports a fault");
            assert_eq!(
                std::fs::read(&path).expect("reads"),
                bytes,
                "{what}: doctor"
            );

            let before: Vec<_> = std::fs::read_dir(&cli.dir)
                .expect("dir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            let out = cli.run(&["doctor", "--fix"], None);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if too_new {
                assert!(!out.status.success(), "{what}: newer file left alone");
                assert_eq!(std::fs::read(&path).expect("reads"), bytes, "{what}");
            } else {
                assert!(out.status.success(), "{what}: {stdout}{stderr}");
                let aside: Vec<_> = std::fs::read_dir(&cli.dir)
                    .expect("dir")
                    .map(|e| e.expect("entry").path())
                    .filter(|p| !before.contains(&p.file_name().expect("name").to_owned()))
                    .collect();
                assert_eq!(aside.len(), 1, "{what}: one moved-aside copy: {aside:?}");
                assert_eq!(std::fs::read(&aside[0]).expect("reads"), bytes, "{what}");
                assert!(
                    stdout.contains(&*aside[0].file_name().expect("name").to_string_lossy())
                        || stderr.contains(&*aside[0].file_name().expect("name").to_string_lossy()),
                    "{what}: doctor says where it moved the file: {stdout}{stderr}"
                );
                std::fs::remove_file(&aside[0]).expect("removes");
                let out = cli.run(&["token", "256440016"], None);
                assert_eq!(
                    out.stdout, b"GOODACCESS\n",
                    "{what}: rebuilt from the keychain"
                );
            }
            std::fs::write(&path, &good).expect("restores");
        }
    }
}
