//! No secret in the CLI's output except where it is the point (`token`,
//! `export --reveal`): every command, plain and `--json`, successful and
//! failing, on keyutils and on the Secret Service, with `RUST_BACKTRACE=1`
//! and `RUST_LOG=trace` set. Stdout of every other command and stderr of
//! every command are grepped for each secret (raw, hex, byte-list form), for
//! panics and backtraces; so are all files in the store directory afterwards.
//! The refresher (`token --refresh-with`) gets the refresh token on stdin,
//! never in argv or its environment.
//!
//! Run under .ci/with-keyring.sh.
#![cfg(feature = "cli")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::backends::Kind;

const ACCESS: &str = "CLINOWHEREACCESS4e1d";
const REFRESH: &str = "CLINOWHEREREFRESH8b2a";
const ID: &str = "CLINOWHEREIDTOKEN33c0";
const ACCESS2: &str = "CLINOWHEREACCESS2f9e";
const REFRESH2: &str = "CLINOWHEREREFRESH2aa1";
const SECRETS: [&str; 5] = [ACCESS, REFRESH, ID, ACCESS2, REFRESH2];

fn token_json(access: &str, refresh: &str) -> String {
    format!(
        r#"{{"access_token":"{access}","token_type":"bearer","expires_in":3600,"refresh_token":"{refresh}","refresh_token_expires_in":604800,"id_token":"{ID}","scope":"ReadAccounts","owner_id":"256440016","endpoint_id":"ep","session_id":"sess"}}"#
    )
}

fn forms(secret: &str) -> Vec<String> {
    let b = secret.as_bytes();
    vec![
        secret.to_string(),
        b.iter().map(|x| format!("{x:02x}")).collect(),
        format!("{}, {}, {}, {}", b[0], b[1], b[2], b[3]),
        secret[secret.len() - 8..].to_string(),
    ]
}

fn assert_clean(what: &str, text: &str, allowed: &[&str]) {
    for secret in SECRETS.iter().filter(|s| !allowed.contains(s)) {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} contains a secret ({form}):\n{text}"
            );
        }
    }
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!text.contains(bad), "{what}: {bad}:\n{text}");
    }
}

struct Cli {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    app: String,
    backend: &'static str,
}

impl Cli {
    fn new(backend: &'static str) -> Cli {
        let tmp = tempfile::tempdir().expect("tempdir");
        Cli {
            dir: tmp.path().join("store"),
            app: format!("secrets-cli-{backend}-{}", std::process::id()),
            backend,
            tmp,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rctoken"))
            .args(["--app", &self.app, "--backend", self.backend, "--dir"])
            .arg(&self.dir)
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .env("RUST_LOG", "trace")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rctoken runs");
        if let Some(bytes) = stdin {
            let _ = child.stdin.take().expect("stdin").write_all(bytes);
        }
        child.wait_with_output().expect("waits")
    }

    /// Run and check: `code` expected, secrets only where allowed.
    fn check(&self, args: &[&str], stdin: Option<&[u8]>, code: i32, reveals: &[&str]) -> Output {
        let out = self.run(args, stdin);
        let what = format!("[{}] rctoken {args:?}", self.backend);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{what}:\n{stdout}\n{stderr}");
        assert_clean(&format!("{what} stdout"), &stdout, reveals);
        assert_clean(&format!("{what} stderr"), &stderr, &[]);
        out
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.run(&["logout", "--all"], None);
    }
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn every_command(backend: &'static str) {
    let cli = Cli::new(backend);
    let json = token_json(ACCESS, REFRESH);
    let bytes = json.as_bytes();
    // Success paths.
    cli.check(&["import", "--label", "work"], Some(bytes), 0, &[]);
    let mut other = json.replace("256440016", "11111");
    other = other.replace(ACCESS, ACCESS2);
    cli.check(&["import", "--no-switch"], Some(other.as_bytes()), 0, &[]);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status"],
        &["status", "--json"],
        &["status", "11111"],
        &["status", "11111", "--json"],
        &["doctor"],
        &["doctor", "--json"],
        &["switch", "work"],
        &["--help"],
        &["token", "--help"],
    ] {
        cli.check(args, None, 0, &[]);
    }
    let out = cli.check(&["token"], None, 0, &[ACCESS]);
    assert_eq!(
        out.stdout,
        format!("{ACCESS}\n").as_bytes(),
        "token prints only the token"
    );
    let out = cli.check(&["export", "--reveal"], None, 0, &[ACCESS, REFRESH, ID]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(REFRESH));
    // Refusals and failures.
    cli.check(&["export"], None, 2, &[]);
    cli.check(&["export", "work"], None, 2, &[]);
    cli.check(&["token", "nobody"], None, 3, &[]);
    cli.check(&["token", "--min-valid", "999999"], None, 4, &[]);
    cli.check(
        &["import"],
        Some(format!("{{\"access_token\":\"{ACCESS}\"").as_bytes()),
        6,
        &[],
    );
    cli.check(
        &["import"],
        Some(format!("{{\"access_token\":\"{ACCESS}\",\"token_type\":\"{REFRESH}\",\"expires_in\":1,\"scope\":\"s\"}}").as_bytes()),
        6,
        &[],
    );
    cli.check(
        &["import"],
        Some(json.replace("3600", &format!("\"{REFRESH}\"")).as_bytes()),
        6,
        &[],
    );
    // Refresh through a refresher: it reads the refresh token on stdin and
    // must not find it in argv or its environment.
    let seen = cli.tmp.path().join("refresher-saw");
    let next = cli.tmp.path().join("next.json");
    let next_json =
        token_json(ACCESS2, REFRESH2).replace("\"expires_in\":3600", "\"expires_in\":86400");
    std::fs::write(&next, next_json).expect("writes");
    let refresher = format!(
        "cat > '{seen}.stdin'; env > '{seen}.env'; echo \"$0 $*\" > '{seen}.argv'; cat '{next}'",
        seen = seen.display(),
        next = next.display()
    );
    let out = cli.check(
        &["token", "--min-valid", "7200", "--refresh-with", &refresher],
        None,
        0,
        &[ACCESS2],
    );
    assert_eq!(out.stdout, format!("{ACCESS2}\n").as_bytes());
    let stdin_seen = std::fs::read_to_string(format!("{}.stdin", seen.display())).expect("stdin");
    assert!(
        stdin_seen.contains(REFRESH),
        "the refresher got the refresh token on stdin"
    );
    for part in ["env", "argv"] {
        let text = std::fs::read_to_string(format!("{}.{part}", seen.display())).expect(part);
        assert!(
            !text.contains(REFRESH) && !text.contains(ACCESS),
            "refresher {part} holds a secret"
        );
    }
    // A refresher that fails, or prints a secret-bearing non-token.
    let out = cli.run(
        &[
            "token",
            "--min-valid",
            "999999",
            "--refresh-with",
            "cat >/dev/null; exit 3",
        ],
        None,
    );
    assert!(!out.status.success() && out.stdout.is_empty());
    assert_clean(
        "failed refresher stderr",
        &String::from_utf8_lossy(&out.stderr),
        &[],
    );
    let bad = format!(
        "cat >/dev/null; echo '{{\"access_token\":\"{ACCESS}\",\"expires_in\":\"{REFRESH}\"}}'"
    );
    let out = cli.run(
        &["token", "--min-valid", "999999", "--refresh-with", &bad],
        None,
    );
    assert!(!out.status.success());
    assert_clean(
        "bad refresher stderr",
        &String::from_utf8_lossy(&out.stderr),
        &[],
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout when the refresh fails"
    );

    // Corrupt metadata and doctor --fix.
    let meta = cli.dir.join("metadata.json");
    let good = std::fs::read(&meta).expect("metadata");
    std::fs::write(&meta, &good[..good.len() / 3]).expect("truncates");
    cli.check(&["list"], None, 7, &[]);
    cli.check(&["status", "--json"], None, 7, &[]);
    let out = cli.run(&["doctor", "--json"], None);
    assert!(!out.status.success());
    assert_clean(
        "doctor --json (corrupt)",
        &String::from_utf8_lossy(&out.stdout),
        &[],
    );
    cli.check(&["doctor", "--fix"], None, 0, &[]);
    cli.check(&["list", "--json"], None, 0, &[]);
    cli.check(&["logout", "11111"], None, 0, &[]);

    for f in all_files(&cli.dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).expect("reads")).into_owned();
        assert_clean(&format!("file {}", f.display()), &text, &[]);
    }
    cli.check(&["logout", "--all"], None, 0, &[]);
}

#[test]
fn cli_output_holds_no_secret_on_keyutils() {
    needs!(Kind::Keyutils);
    every_command("keyutils");
}

#[test]
fn cli_output_holds_no_secret_on_the_secret_service() {
    needs!(Kind::SecretService);
    every_command("secret-service");
}
