//! A refresher for `rctoken token --refresh-with CMD` that behaves the
//! same under `sh -c CMD` (Unix) and `cmd /D /S /C "CMD"` (Windows): CMD is
//! `"<this test binary>" --rctoken-test-refresher "<spec file>"`, the same
//! text for both shells.
//!
//! The test binary cannot run it as one of its tests (libtest prints its
//! own lines on stdout, where rctoken reads the token JSON), so it is a
//! function run before `main`, from the platform's initializer section
//! (`.init_array` on Linux, `.CRT$XCU` on Windows): with that first
//! argument it does what the spec says and exits; with any other it returns
//! and the tests run as usual.
//!
//! Each run appends `ran` to `NAME.ran` (one write, so concurrent runs
//! count), records its stdin in `NAME.stdin`, its `RCTOKEN_OWNER_ID` in
//! `NAME.owner` and its environment in `NAME.env`, then sleeps, writes the
//! spec's stderr text, prints its stdout and exits with its code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The first argument that makes this test binary the refresher.
const ARG: &str = "--rctoken-test-refresher";

/// What one run of the refresher does once it has recorded the run.
#[derive(Clone, Debug, Default)]
pub struct Does {
    /// Milliseconds to sleep first (so concurrent callers queue on the
    /// refresh lock).
    pub sleep_ms: u64,
    /// Printed on stdout.
    pub stdout: String,
    /// This many zero bytes printed after `stdout`.
    pub zeros: usize,
    /// Written to stderr.
    pub stderr: String,
    /// The exit code.
    pub exit: i32,
}

impl Does {
    /// Print `text` and exit 0.
    pub fn print(text: &str) -> Does {
        Does {
            stdout: text.to_string(),
            ..Does::default()
        }
    }
}

/// One refresher, named `name`, keeping its spec and records in `dir`.
pub struct Refresher {
    dir: PathBuf,
    name: String,
}

impl Refresher {
    pub fn new(dir: &Path, name: &str) -> Refresher {
        Refresher {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    fn file(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.name))
    }

    /// Write the spec (replacing an earlier one) and return the CMD that
    /// runs it.
    pub fn cmd(&self, does: &Does) -> String {
        let spec = json!({
            "records": self.file("").display().to_string(),
            "sleep_ms": does.sleep_ms,
            "stdout": does.stdout,
            "zeros": does.zeros,
            "stderr": does.stderr,
            "exit": does.exit,
        });
        let path = self.file("json");
        std::fs::write(&path, spec.to_string()).expect("write the refresher's spec");
        let exe = std::env::current_exe().expect("current_exe");
        format!("{} {ARG} {}", quoted(&exe), quoted(&path))
    }

    /// How many times it ran.
    pub fn runs(&self) -> usize {
        read(&self.file("ran")).lines().count()
    }

    /// The `ran` file (absent until the first run).
    #[allow(dead_code, reason = "not every test uses it")]
    pub fn ran_file(&self) -> PathBuf {
        self.file("ran")
    }

    /// What the last run read on stdin.
    #[allow(dead_code, reason = "not every test uses it")]
    pub fn stdin(&self) -> String {
        read(&self.file("stdin"))
    }

    /// The last run's `RCTOKEN_OWNER_ID`.
    #[allow(dead_code, reason = "not every test uses it")]
    pub fn owner(&self) -> String {
        read(&self.file("owner"))
    }

    /// The last run's environment, one `NAME=VALUE` a line.
    #[allow(dead_code, reason = "not every test uses it")]
    pub fn env(&self) -> String {
        read(&self.file("env"))
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `"PATH"`, which `sh` and `cmd.exe` both take as one word as long as it
/// holds none of the characters either expands inside double quotes.
fn quoted(p: &Path) -> String {
    let s = p.display().to_string();
    let special: &[char] = if cfg!(windows) {
        &['"', '%', '!', '^']
    } else {
        &['"', '$', '`', '\\']
    };
    assert!(
        !s.contains(special) && !s.contains(char::is_control),
        "{s:?} cannot be quoted the same for sh and cmd.exe"
    );
    format!("\"{s}\"")
}

/// The process's arguments, read without std's `args` (which on Linux is
/// not yet set up this early).
fn early_args() -> Vec<String> {
    #[cfg(target_os = "linux")]
    {
        let raw = std::fs::read("/proc/self/cmdline").unwrap_or_default();
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::args().collect()
    }
}

/// Before `main`: be the refresher if asked to (never returns then).
fn before_main() {
    let args = early_args();
    if args.get(1).map(String::as_str) != Some(ARG) {
        return;
    }
    let code = match args.get(2) {
        Some(spec) => refresher_main(Path::new(spec)),
        None => {
            eprintln!("{ARG}: no spec file");
            125
        }
    };
    std::process::exit(code);
}

fn refresher_main(spec: &Path) -> i32 {
    let spec: Value = match std::fs::read(spec).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(v)) => v,
        other => {
            eprintln!("{ARG}: bad spec {}: {other:?}", spec.display());
            return 125;
        }
    };
    let records = spec["records"].as_str().unwrap_or_default().to_string();
    let record = |ext: &str, bytes: &[u8]| {
        let _ = std::fs::write(format!("{records}{ext}"), bytes);
    };
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    record("stdin", &input);
    record(
        "owner",
        std::env::var("RCTOKEN_OWNER_ID")
            .unwrap_or_default()
            .as_bytes(),
    );
    let env: String = std::env::vars_os()
        .map(|(k, v)| format!("{}={}\n", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    record("env", env.as_bytes());
    if let Ok(mut ran) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(format!("{records}ran"))
    {
        let _ = ran.write_all(b"ran\n");
    }
    std::thread::sleep(std::time::Duration::from_millis(
        spec["sleep_ms"].as_u64().unwrap_or(0),
    ));
    let _ = std::io::stderr().write_all(spec["stderr"].as_str().unwrap_or_default().as_bytes());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(spec["stdout"].as_str().unwrap_or_default().as_bytes());
    let zeros = vec![0u8; spec["zeros"].as_u64().unwrap_or(0) as usize];
    let _ = out.write_all(&zeros);
    let _ = out.flush();
    spec["exit"].as_i64().unwrap_or(0) as i32
}

// The initializer entries. glibc calls `.init_array` functions with
// (argc, argv, envp); the CRT calls `.CRT$XCU` functions with nothing.
#[cfg(target_os = "linux")]
extern "C" fn init_array_entry(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
    _envp: *const *const std::ffi::c_char,
) {
    before_main();
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = init_array_entry;

#[cfg(windows)]
extern "C" fn crt_entry() {
    before_main();
}

#[cfg(windows)]
#[used]
#[unsafe(link_section = ".CRT$XCU")]
static BEFORE_MAIN: extern "C" fn() = crt_entry;
