//! Zeroization of the `rctoken` binary as a whole, measured from outside
//! with an LD_PRELOAD shim (tests/shim/scanfree.c) around glibc's `free`
//! and `realloc`: every freed block, and the old block of every realloc
//! (always moved), is scanned for the secret markers; at exit the [heap] and
//! every anonymous writable mapping are scanned too (what a core dump at
//! exit would show). A control program proves the shim reports a leaked
//! block, a moved one and a live one, and not a zeroized one.
//!
//! Runs `import` (stdin and file), `token`, `token --refresh-with` (the
//! refresher's output is read and parsed), `export --reveal`, `status`,
//! `list --json`, `doctor` and `logout` on keyutils and on the Secret
//! Service (run under .ci/with-keyring.sh).
//!
//! The shim is an LD_PRELOAD library around glibc: Linux only.
#![cfg(all(feature = "cli", target_os = "linux"))]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::backends::Kind;

const MARKERS: [&str; 3] = [
    "ZSECRETACCESS0123456789",
    "ZSECRETREFRESH0123456789",
    "ZSECRETIDTOKEN0123456789",
];
const CONTROL: &str = "ZSECRETCONTROL0123456789";

fn token_json() -> String {
    format!(
        r#"{{"access_token":"{}","token_type":"bearer","expires_in":3600,"refresh_token":"{}","refresh_token_expires_in":604800,"id_token":"{}","scope":"ReadAccounts","owner_id":"256440016"}}"#,
        MARKERS[0], MARKERS[1], MARKERS[2]
    )
}

fn compile(tmp: &Path, source: &str, out: &str, shared: bool) -> PathBuf {
    let target = tmp.join(out);
    let mut cc = Command::new("cc");
    if shared {
        cc.args(["-shared", "-fPIC", "-O1"]);
    } else {
        // The control program must not have its leaks optimized away.
        cc.arg("-O0");
    }
    let status = cc
        .arg("-o")
        .arg(&target)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(source))
        .status()
        .expect("cc runs (gcc is needed for this test)");
    assert!(status.success(), "compiling {source}");
    target
}

/// The shim reads its markers from a file: an environment variable would be
/// copied by every process that builds a child's environment.
fn markers_file(tmp: &Path, markers: &[&str]) -> PathBuf {
    let path = tmp.join("markers");
    std::fs::write(&path, markers.join("\n")).expect("writes");
    path
}

#[derive(Debug, Default)]
struct Scan {
    hits: Vec<String>,
    residue: Vec<String>,
    scanned: u64,
    done: bool,
}

fn read_scan(log: &Path) -> Scan {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut scan = Scan::default();
    for line in text.lines() {
        if line.starts_with("hit ") {
            scan.hits.push(line.to_string());
        } else if line.starts_with("residue ") {
            scan.residue.push(line.to_string());
        } else if let Some(rest) = line.strip_prefix("done scanned=") {
            scan.done = true;
            scan.scanned = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    scan
}

#[test]
fn control_the_shim_detects_leaks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shim = compile(tmp.path(), "tests/shim/scanfree.c", "scanfree.so", true);
    let prog = compile(
        tmp.path(),
        "tests/shim/leak_control.c",
        "leak_control",
        false,
    );
    let log = tmp.path().join("scan.log");
    let status = Command::new(&prog)
        .env("MARKER", CONTROL)
        .env(
            "SCANFREE_MARKERS_FILE",
            markers_file(tmp.path(), &[CONTROL]),
        )
        .env("SCANFREE_LOG", &log)
        .env("LD_PRELOAD", &shim)
        .status()
        .expect("runs");
    assert!(status.success());
    let scan = read_scan(&log);
    assert!(scan.done, "{scan:?}");
    assert_eq!(
        scan.hits,
        vec!["hit 0 free 40".to_string(), "hit 0 realloc 40".to_string()],
        "the leaked and the moved block, not the zeroized one"
    );
    assert_eq!(scan.residue.len(), 1, "the live block at exit: {scan:?}");
}

struct Run<'a> {
    shim: &'a Path,
    dir: PathBuf,
    app: String,
    backend: &'a str,
    log: PathBuf,
    markers: PathBuf,
    /// The sealed store's key file, if the run uses one.
    key_file: Option<PathBuf>,
}

/// `logout --all` when the run ends, pass or fail: a step that panics must
/// not leave this run's keys in the user's keyring.
impl Drop for Run<'_> {
    fn drop(&mut self) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rctoken"));
        c.args(["--app", &self.app, "--backend", self.backend, "--dir"])
            .arg(&self.dir)
            .args(["logout", "--all"]);
        if let Some(k) = &self.key_file {
            c.env("RCTOKEN_KEY_FILE", k);
        }
        let _ = c.output();
    }
}

impl Run<'_> {
    fn cli(&self, args: &[&str], stdin: Option<&[u8]>) -> Scan {
        let _ = std::fs::remove_file(&self.log);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rctoken"));
        if let Some(k) = &self.key_file {
            cmd.env("RCTOKEN_KEY_FILE", k);
        }
        let mut child = cmd
            .args(["--app", &self.app, "--backend", self.backend, "--dir"])
            .arg(&self.dir)
            .args(args)
            .env("SCANFREE_MARKERS_FILE", &self.markers)
            .env("SCANFREE_LOG", &self.log)
            .env("LD_PRELOAD", self.shim)
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
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bytes)
                .expect("writes stdin");
        }
        let out = child.wait_with_output().expect("waits");
        assert!(
            out.status.success(),
            "[{}] {args:?}: {:?} {}",
            self.backend,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let scan = read_scan(&self.log);
        assert!(
            scan.done,
            "[{}] {args:?}: the shim ran: {scan:?}",
            self.backend
        );
        assert!(
            scan.scanned > 10,
            "[{}] {args:?}: frees were seen",
            self.backend
        );
        scan
    }
}

/// The sealed store's key in the sealed run: printable, so the shim can
/// look for freed copies of the key itself (and of its base64 form, which
/// the key file holds).
const SEALING_KEY: &[u8; 32] = b"ZSECRETSEALINGKEY0123456789abcde";

fn run_everything(backend: &str, sealed_key_file: bool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shim = compile(tmp.path(), "tests/shim/scanfree.c", "scanfree.so", true);
    let mut markers: Vec<String> = MARKERS.iter().map(|m| m.to_string()).collect();
    let key_file = sealed_key_file.then(|| {
        use base64ct::Encoding;
        let b64 = base64ct::Base64::encode_string(SEALING_KEY);
        markers.push(String::from_utf8_lossy(&SEALING_KEY[..24]).into_owned());
        markers.push(b64[..24].to_string());
        let path = tmp.path().join("sealing.key");
        std::fs::write(&path, format!("{b64}\n")).expect("writes");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    });
    let markers: Vec<&str> = markers.iter().map(String::as_str).collect();
    let run = Run {
        shim: &shim,
        dir: tmp.path().join("store"),
        app: format!("zeroize-cli-{backend}-{}", std::process::id()),
        backend,
        log: tmp.path().join("scan.log"),
        markers: markers_file(tmp.path(), &markers),
        key_file,
    };
    let json = token_json();
    let file = tmp.path().join("token.json");
    std::fs::write(&file, &json).expect("writes");
    let file = file.to_string_lossy().into_owned();
    // The refresher prints a token valid for a day; it runs without the
    // shim (`env -u`), so only rctoken's own frees are judged.
    let next = tmp.path().join("next.json");
    std::fs::write(
        &next,
        json.replace("\"expires_in\":3600", "\"expires_in\":86400"),
    )
    .expect("writes");
    let refresher = format!(
        "exec env -u LD_PRELOAD sh -c 'cat >/dev/null; cat \"$0\"' '{}'",
        next.display()
    );
    let steps: Vec<(Vec<&str>, Option<&[u8]>)> = vec![
        (vec!["import"], Some(json.as_bytes())),
        (vec!["import", "-"], Some(json.as_bytes())),
        (vec!["import", &file, "--label", "work"], None),
        (vec!["token"], None),
        (vec!["token", "work", "--min-valid", "10"], None),
        (vec!["export", "--reveal"], None),
        (
            vec!["token", "--min-valid", "7200", "--refresh-with", &refresher],
            None,
        ),
        (vec!["status"], None),
        (vec!["status", "--json"], None),
        (vec!["list", "--json"], None),
        (vec!["doctor"], None),
        (vec!["logout"], None),
    ];
    let mut failures = Vec::new();
    for (args, stdin) in &steps {
        let scan = run.cli(args, *stdin);
        if !scan.hits.is_empty() || !scan.residue.is_empty() {
            failures.push(format!(
                "[{backend}] {args:?}: freed blocks with a secret: {:?}; left at exit: {:?}",
                scan.hits, scan.residue
            ));
        }
    }
    // `run` logs out on drop, also when a step above panicked.
    drop(run);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cli_frees_no_secret_on_keyutils() {
    needs!(Kind::Keyutils);
    run_everything("keyutils", false);
}

/// The sealed store with its key in a key file: no freed block holds a
/// token, the key, or the key file's text.
#[test]
fn cli_frees_no_secret_or_key_on_the_sealed_store() {
    run_everything("sealed", true);
}

/// The sealed store with its key in keyutils (the key is random here; the
/// tokens are the markers).
#[test]
fn cli_frees_no_secret_on_the_sealed_store_with_its_key_in_keyutils() {
    needs!(Kind::Keyutils);
    run_everything("sealed", false);
    let left = crate::support::keyutils::keys(&crate::support::keyutils::sealing_keys(&format!(
        "zeroize-cli-sealed-{}",
        std::process::id()
    )));
    assert!(
        left.is_empty(),
        "the store's key is gone after logout: {left:?}"
    );
}

#[test]
fn cli_frees_no_secret_on_the_secret_service() {
    needs!(Kind::SecretService);
    run_everything("secret-service", false);
}
