//! Docs that run: every example session of docs/cli.md, executed in order,
//! its printed output compared with what the document shows.
//!
//! **What is a transcript.** A fenced block with at least one line that
//! starts with `$ ` (after the fence's own indentation). Each `$ CMD` line
//! is a command; the lines after it, up to the next `$ ` line or the end of
//! the block, are its expected output. Trailing blank lines are ignored on
//! both sides. A last expected line `[exit N]` is the expected exit code;
//! without it the command must exit 0. Text before the first `$ ` of a
//! block is an error, so a transcript cannot half-run.
//!
//! **One session, in document order.** A reader who runs the examples top
//! to bottom runs them in one shell session, so the test does too: every
//! command of every transcript, in order, in ONE environment:
//! - a fresh temporary HOME, which is also the working directory, holding
//!   the files the examples take for granted: `token.json`
//!   (docs/examples/token.json, owner 256440016), `sandbox.json` (owner
//!   11111), `fake-refresh` (shown by `cat fake-refresh` in the document),
//!   `sms.json`, and `~/.config/rc/jwt` and `~/.config/rc/secret`;
//! - `PATH` with the built `rctoken` first, then the test's own `PATH`;
//! - `RCTOKEN_APP` unique to this run (the tests run concurrently), and
//!   `RCTOKEN_DIR=~/.local/share/rctoken`, the default directory of the
//!   default app id the document shows;
//! - no session bus, so `auto` picks the sealed store with its key in
//!   kernel keyutils, as on the headless box of the document's examples
//!   (the test needs keyutils: [`Kind::Sealed`]);
//! - `RCTOKEN_SERVER` naming the fake RingCentral platform
//!   (`tests/support/fake_ringcentral.py`), started with the document's
//!   client id `AbCdEf` and owner 256440016, so `login`, `api` and
//!   `logout` run as written;
//! - nothing else: the environment is cleared first.
//!
//! Each command runs as `sh -c 'exec 2>&1; CMD'`, stdin from /dev/null:
//! **stdout and stderr interleaved** in the order they were written, as a
//! terminal shows them. Every command runs even after a mismatch; the test
//! then fails listing each mismatch (the command, its line in docs/cli.md,
//! the expected and the printed output, masked).
//!
//! **Masking.** Kept small and explicit; no regular expressions.
//! - On the printed side only, three literals: the temporary HOME reads
//!   `/home/alice`, the fake server's URL `https://platform.ringcentral.com`
//!   and the run's app id `rctoken`, as in the document.
//! - On both sides, what changes from run to run: RFC 3339 instants
//!   (`2026-11-25T21:51:52Z`) become `<instant>`; relative times (`59m`,
//!   `6d 23h`, `0s`: one or two runs of digits and a unit `s`/`m`/`h`/`d`)
//!   `<dur>`; runs of 16 or more lowercase hex digits (generations, store
//!   ids) `<hex>`; the number after a JSON key ending in `expires_in` or
//!   `_remaining_secs` `<secs>`; the number after `uid ` or `"uid": `
//!   `<uid>` (the document ran as root, CI runs as a user).
//! - In the expected output only, `…` matches any text within a line, and a
//!   line that is only `…` matches any number of lines (for bodies that
//!   differ between the fake platform and the real one). rctoken itself
//!   never prints `…`.
//!
//! **Not run.** A block right after a line `<!-- transcript: not run:
//! REASON -->` is skipped; the test counts and prints the skipped blocks
//! (on stderr). It fails if the document has no runnable transcript, so it
//! cannot pass by finding nothing.
//!
//! **No token in argv.** The second test scans every fenced block of
//! docs/cli.md and README.md: a line with `$(rctoken token` is allowed only
//! as the value of a plain assignment (`token=$(rctoken token …)`), never
//! inside another command (`curl -H "Bearer $(rctoken token)"`), where the
//! token would sit in that command's argv.
//!
//! The sessions are `sh` sessions on a Unix box (HOME, modes, keyutils):
//! the module is Unix only.
#![cfg(unix)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::backends::Kind;
use crate::support::fake_rc::{self, FakeRc};
use crate::support::{ids, keyutils};

/// The document the transcripts come from.
const DOC: &str = "docs/cli.md";

/// A command that runs longer than this is killed and fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// `sandbox.json`: the second profile of the examples (owner 11111, a
/// 30-minute access token, no app).
const SANDBOX_JSON: &str = r#"{"access_token":"U0FOREJPWDAxfHNhbmRib3gtYWNjZXNz","token_type":"bearer","expires_in":1800,"refresh_token":"U0FOREJPWDAxfHNhbmRib3gtcmVmcmVzaA","refresh_token_expires_in":86400,"scope":"ReadAccounts","owner_id":"11111","endpoint_id":"q2Wd0sQ1Rk2Lw0d2yX9hQA"}
"#;

/// `fake-refresh`: the refresher of the `--refresh-with` examples (the
/// document shows it with `cat fake-refresh`).
const FAKE_REFRESH: &str = r#"#!/bin/sh
# Stand-in for the token endpoint: reads the refresh token, prints new token JSON.
rt=$(cat)
echo "fake-refresh: refreshing extension $RCTOKEN_OWNER_ID (refresh token of ${#rt} bytes)" >&2
printf '{"access_token":"U0FOREJPWDAxfHJlZnJlc2hlZC1hY2Nlc3M","token_type":"bearer","expires_in":3600,"refresh_token":"U0FOREJPWDAxfHJlZnJlc2hlZC1yZWZyZXNo","refresh_token_expires_in":86400,"scope":"ReadAccounts","owner_id":"%s"}\n' "$RCTOKEN_OWNER_ID"
"#;

/// `sms.json`: the body of the `api` example that sends a message.
const SMS_JSON: &str = r#"{"from":{"phoneNumber":"+16505550100"},"to":[{"phoneNumber":"+16505550101"}],"text":"Hello from rctoken"}
"#;

// ---------------------------------------------------------------------------
// The document

/// A fenced block: where it opens, its body (the fence's indentation
/// stripped) with line numbers, and the last non-blank line before it.
struct Fenced {
    line: usize,
    body: Vec<(usize, String)>,
    before: Option<String>,
}

/// Every fenced block of a Markdown text, in order.
fn fenced_blocks(text: &str) -> Vec<Fenced> {
    let mut blocks = Vec::new();
    let mut before: Option<String> = None;
    let mut open: Option<(Fenced, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim_start();
        match open.take() {
            None if trimmed.starts_with("```") => {
                let indent = raw.len() - trimmed.len();
                let f = Fenced {
                    line: n,
                    body: Vec::new(),
                    before: before.take(),
                };
                open = Some((f, indent));
            }
            None => {
                if !raw.trim().is_empty() {
                    before = Some(raw.trim().to_string());
                }
            }
            Some((f, _)) if trimmed.starts_with("```") => {
                blocks.push(f);
                before = None;
            }
            Some((mut f, indent)) => {
                let cut = raw
                    .char_indices()
                    .take_while(|&(j, c)| j < indent && c == ' ')
                    .count();
                f.body.push((n, raw[cut..].to_string()));
                open = Some((f, indent));
            }
        }
    }
    assert!(open.is_none(), "an unclosed fenced block");
    blocks
}

/// One `$ CMD` of a transcript.
struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
    code: i32,
}

/// A transcript block: its steps, or why it is not run.
struct Transcript {
    line: usize,
    skip: Option<String>,
    steps: Vec<Step>,
}

/// The `not run` reason in a marker line, if the line is a marker.
fn marker(line: &str) -> Option<String> {
    let rest = line.strip_prefix("<!-- transcript:")?;
    let reason = rest
        .strip_suffix("-->")
        .and_then(|r| r.trim().strip_prefix("not run:"))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| {
            panic!("{DOC}: `{line}`: the only marker is `<!-- transcript: not run: REASON -->`")
        });
    Some(reason.to_string())
}

/// Every transcript of `doc`, in order.
fn transcripts(doc: &str) -> Vec<Transcript> {
    let mut out = Vec::new();
    for f in fenced_blocks(doc) {
        let skip = f.before.as_deref().and_then(marker);
        if !f.body.iter().any(|(_, l)| l.starts_with("$ ")) {
            assert!(
                skip.is_none(),
                "{DOC}:{}: a `transcript: not run` marker before a block with no `$ ` line",
                f.line
            );
            continue;
        }
        let mut steps: Vec<Step> = Vec::new();
        for (n, l) in &f.body {
            if let Some(cmd) = l.strip_prefix("$ ") {
                steps.push(Step {
                    line: *n,
                    command: cmd.to_string(),
                    expected: Vec::new(),
                    code: 0,
                });
            } else if let Some(step) = steps.last_mut() {
                step.expected.push(l.clone());
            } else if !l.trim().is_empty() {
                panic!("{DOC}:{n}: text before the first `$ ` line of a transcript: {l:?}");
            }
        }
        for step in &mut steps {
            trim_blank_end(&mut step.expected);
            if let Some(code) = step.expected.last().and_then(|l| exit_line(l)) {
                step.code = code;
                step.expected.pop();
                trim_blank_end(&mut step.expected);
            }
        }
        out.push(Transcript {
            line: f.line,
            skip,
            steps,
        });
    }
    out
}

/// The code of an `[exit N]` line.
fn exit_line(line: &str) -> Option<i32> {
    line.trim()
        .strip_prefix("[exit ")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn trim_blank_end(lines: &mut Vec<String>) {
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
}

// ---------------------------------------------------------------------------
// Masking and matching

/// What the run prints that the document shows otherwise (see the module
/// doc): replaced in the printed output only.
struct Literals(Vec<(String, &'static str)>);

impl Literals {
    fn apply(&self, line: &str) -> String {
        self.0
            .iter()
            .fold(line.to_string(), |l, (from, to)| l.replace(from, to))
    }
}

/// Both sides: instants, durations, hex ids, JSON TTLs and uids.
fn mask(line: &str) -> String {
    let line = mask_instants(line);
    let line = mask_hex(&line);
    let line = mask_after(&line, &["expires_in\":", "_remaining_secs\":"], "<secs>");
    let line = mask_after(&line, &["uid ", "\"uid\":"], "<uid>");
    mask_durations(&line)
}

fn boundary(b: &[u8], i: usize) -> bool {
    i >= b.len() || !b[i].is_ascii_alphanumeric()
}

fn boundary_before(b: &[u8], i: usize) -> bool {
    i == 0 || !b[i - 1].is_ascii_alphanumeric()
}

/// Rewrite `line` by a scanner: at each byte, `scan` returns the length of
/// the match starting there (all matches start and end at ASCII bytes).
fn replace_matches(line: &str, with: &str, scan: impl Fn(&[u8], usize) -> Option<usize>) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        match scan(b, i) {
            Some(len) if len > 0 => {
                out.push_str(&line[copied..i]);
                out.push_str(with);
                i += len;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&line[copied..]);
    out
}

/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z` or `±HH:MM`.
fn mask_instants(line: &str) -> String {
    replace_matches(line, "<instant>", |b, i| {
        const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
        if !boundary_before(b, i) || b.len() < i + SHAPE.len() {
            return None;
        }
        let fits = SHAPE.iter().zip(&b[i..]).all(|(&s, &c)| {
            if s == b'd' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        });
        if !fits {
            return None;
        }
        let mut j = i + SHAPE.len();
        if b.get(j) == Some(&b'.') {
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        match b.get(j) {
            Some(b'Z') => Some(j + 1 - i),
            Some(b'+' | b'-') if b.len() >= j + 6 && b[j + 3] == b':' => Some(j + 6 - i),
            _ => Some(j - i),
        }
    })
}

/// A run of 16 or more of `0-9a-f`, standing alone.
fn mask_hex(line: &str) -> String {
    replace_matches(line, "<hex>", |b, i| {
        if !boundary_before(b, i) {
            return None;
        }
        let len = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            .count();
        (len >= 16 && boundary(b, i + len)).then_some(len)
    })
}

/// The digits after any of `keys` (and optional spaces).
fn mask_after(line: &str, keys: &[&str], with: &str) -> String {
    let mut out = line.to_string();
    for key in keys {
        let mut from = 0;
        while let Some(at) = out[from..].find(key).map(|p| p + from) {
            let start = at + key.len();
            let value_at = start + out[start..].len() - out[start..].trim_start_matches(' ').len();
            let digits = out[value_at..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits > 0 {
                out.replace_range(value_at..value_at + digits, with);
            }
            from = value_at + if digits > 0 { with.len() } else { 0 };
        }
    }
    out
}

/// `45s`, `59m`, `6d 23h`: one or two `<digits><unit>`, standing alone.
fn mask_durations(line: &str) -> String {
    fn unit(b: &[u8], i: usize) -> Option<usize> {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let u = *b.get(i + digits)?;
        (digits > 0 && matches!(u, b's' | b'm' | b'h' | b'd') && boundary(b, i + digits + 1))
            .then_some(digits + 1)
    }
    replace_matches(line, "<dur>", |b, i| {
        if !boundary_before(b, i) {
            return None;
        }
        let first = unit(b, i)?;
        let next = i + first;
        match (b.get(next), b.get(next + 1)) {
            (Some(b' '), Some(c)) if c.is_ascii_digit() => {
                Some(first + unit(b, next + 1).map_or(0, |n| n + 1))
            }
            _ => Some(first),
        }
    })
}

/// One expected line (with `…` wildcards) against one printed line.
fn line_matches(want: &str, got: &str) -> bool {
    let parts: Vec<&str> = want.split('…').collect();
    if parts.len() == 1 {
        return want == got;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if got.len() < first.len() + last.len() || !got.starts_with(first) || !got.ends_with(last) {
        return false;
    }
    let mut rest = &got[first.len()..got.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Expected lines (a line `…` matches any number of lines) against the
/// printed ones.
fn lines_match(want: &[String], got: &[String]) -> bool {
    match want.split_first() {
        None => got.is_empty(),
        Some((w, rest)) if w.trim() == "…" => {
            (0..=got.len()).any(|k| lines_match(rest, &got[k..]))
        }
        Some((w, rest)) => got
            .split_first()
            .is_some_and(|(g, grest)| line_matches(w, g) && lines_match(rest, grest)),
    }
}

// ---------------------------------------------------------------------------
// The session

/// The shared environment of all transcripts. Dropping it (at the end, or
/// when the test panics) logs every profile out, purges the sealed store's
/// keys, stops the fake platform and deletes the temporary HOME.
struct Session {
    /// The temporary HOME's parent, deleted when the session is dropped.
    _tmp: tempfile::TempDir,
    home: PathBuf,
    app: String,
    rc: FakeRc,
    path: String,
}

impl Session {
    fn new() -> Session {
        let tmp = tempfile::Builder::new()
            .prefix("rctoken-transcripts-")
            .tempdir()
            .expect("tempdir");
        // The document shows the store's path as rctoken prints it: make
        // the temporary one free of symlinks, so the printed one is this.
        let home = std::fs::canonicalize(tmp.path())
            .expect("canonical temp dir")
            .join("home");
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_rctoken"))
            .parent()
            .expect("the binary's directory")
            .to_path_buf();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let rc = FakeRc::start_with(&["client_id=AbCdEf", "owner=256440016"]);
        let s = Session {
            _tmp: tmp,
            home,
            app: ids::app_id("transcripts", "sealed"),
            rc,
            path,
        };
        s.prepare_files();
        s
    }

    fn write(&self, name: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.home.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// The files the examples take for granted.
    fn prepare_files(&self) {
        let token = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/examples/token.json"
        ))
        .expect("docs/examples/token.json");
        self.write("token.json", &token, 0o644);
        self.write("sandbox.json", SANDBOX_JSON, 0o644);
        self.write("fake-refresh", FAKE_REFRESH, 0o755);
        self.write("sms.json", SMS_JSON, 0o644);
        self.write(".config/rc/jwt", fake_rc::JWT, 0o600);
        self.write(".config/rc/secret", fake_rc::CLIENT_SECRET, 0o600);
    }

    fn literals(&self) -> Literals {
        Literals(vec![
            (self.rc.url(), "https://platform.ringcentral.com"),
            (self.home.display().to_string(), "/home/alice"),
            (self.app.clone(), "rctoken"),
        ])
    }

    /// `sh -c SCRIPT` in the session's environment, in HOME.
    fn sh(&self, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(script)
            .current_dir(&self.home)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("RCTOKEN_APP", &self.app)
            .env("RCTOKEN_DIR", self.home.join(".local/share/rctoken"))
            .env("RCTOKEN_SERVER", self.rc.url())
            .stdin(Stdio::null());
        c
    }

    /// Run one command: its exit code and its output, stdout and stderr
    /// interleaved.
    fn run(&self, command: &str) -> (i32, String) {
        use std::os::unix::process::CommandExt;
        let mut child = self
            .sh(&format!("exec 2>&1\n{command}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let readers = [
            read_all(child.stdout.take().expect("stdout")),
            read_all(child.stderr.take().expect("stderr")),
        ];
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for sh") {
                break status;
            }
            if started.elapsed() > COMMAND_TIMEOUT {
                // SAFETY: kill(2) on the process group of a child we
                // started and have not reaped yet; no memory is touched.
                #[allow(unsafe_code)]
                unsafe {
                    libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
                }
                let _ = child.wait();
                panic!("`{command}` ran for over {COMMAND_TIMEOUT:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let [out, err] = readers.map(|r| r.join().expect("reader thread"));
        (status.code().unwrap_or(-1), out + &err)
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self
            .sh("rctoken logout --all --no-revoke")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        keyutils::purge(&keyutils::sealing_keys(&self.app));
        // Then `tmp` goes, with the store in it.
    }
}

// ---------------------------------------------------------------------------
// The tests

fn read_doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines for a failure message, indented; `mark(i)` puts a `>` before a
/// line that differs.
fn show(lines: &[String], mark: impl Fn(usize) -> bool) -> String {
    if lines.is_empty() {
        return "    (nothing)\n".into();
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("  {} {l}\n", if mark(i) { '>' } else { ' ' }))
        .collect()
}

/// Which line `i` of `mine` has no match at the same place in `other`
/// (only without a `…` line, where places correspond).
fn differs(mine: &[String], other: &[String], want_side: bool) -> impl Fn(usize) -> bool {
    let positional = !mine.iter().chain(other).any(|l| l.trim() == "…");
    move |i| {
        positional
            && match (mine.get(i), other.get(i)) {
                (Some(a), Some(b)) if want_side => !line_matches(a, b),
                (Some(a), Some(b)) => !line_matches(b, a),
                _ => true,
            }
    }
}

#[test]
fn every_transcript_of_docs_cli_md_runs_in_order_and_prints_what_it_shows() {
    // The document is checked even where the backend is declared absent.
    let doc = read_doc(DOC);
    let all = transcripts(&doc);
    let (skipped, runnable): (Vec<&Transcript>, Vec<&Transcript>) =
        all.iter().partition(|t| t.skip.is_some());
    assert!(
        !runnable.is_empty(),
        "{DOC} has no runnable transcript (fenced blocks with `$ ` lines): nothing was checked"
    );
    needs!(Kind::Sealed);
    let mut err = std::io::stderr();
    for t in &skipped {
        let _ = writeln!(
            err,
            "transcripts: NOT RUN: the block at {DOC}:{}: {}",
            t.line,
            t.skip.as_deref().unwrap_or_default()
        );
    }

    let session = Session::new();
    let literals = session.literals();
    let mut failures = Vec::new();
    let mut commands = 0;
    for t in &runnable {
        for step in &t.steps {
            commands += 1;
            let (code, output) = session.run(&step.command);
            let mut got: Vec<String> = output.lines().map(|l| mask(&literals.apply(l))).collect();
            trim_blank_end(&mut got);
            let want: Vec<String> = step.expected.iter().map(|l| mask(l)).collect();
            if code != step.code || !lines_match(&want, &got) {
                failures.push(format!(
                    "{DOC}:{}: $ {}\n  expected (exit {}):\n{}  got (exit {code}):\n{}",
                    step.line,
                    step.command,
                    step.code,
                    show(&want, differs(&want, &got, true)),
                    show(&got, differs(&got, &want, false))
                ));
            }
        }
    }
    let _ = writeln!(
        err,
        "transcripts: ran {} blocks ({commands} commands), skipped {}",
        runnable.len(),
        skipped.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {commands} commands of {DOC} printed something else than the document shows \
         (both sides masked, see tests/cli/transcripts.rs):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether `line` puts the output of `rctoken token` into a command's
/// argv: `$(rctoken token` anywhere but as the value of a plain assignment
/// at the start of the line (`token=$(rctoken token …) || exit`).
fn token_in_argv(line: &str) -> bool {
    const SUBST: &str = "$(rctoken token";
    let mut from = 0;
    while let Some(at) = line[from..].find(SUBST).map(|p| p + from) {
        let before = line[..at].trim_start();
        let assignment = before.strip_suffix('=').is_some_and(|name| {
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !assignment {
            return true;
        }
        from = at + SUBST.len();
    }
    false
}

#[test]
fn no_code_block_of_the_docs_puts_a_token_in_argv() {
    // The rule itself.
    assert!(!token_in_argv(
        "token=$(rctoken token --min-valid 300) || exit"
    ));
    assert!(!token_in_argv("  t=$(rctoken token sandbox)"));
    assert!(token_in_argv(
        r#"curl -H "Authorization: Bearer $(rctoken token)" URL"#
    ));
    assert!(token_in_argv("echo $(rctoken token)"));
    assert!(token_in_argv("a=1 curl -H \"$(rctoken token)\""));
    assert!(!token_in_argv("rctoken token | sed 's/^/Bearer /'"));

    let mut found = Vec::new();
    for name in [DOC, "README.md"] {
        let text = read_doc(name);
        let blocks = fenced_blocks(&text);
        assert!(!blocks.is_empty(), "{name} has no fenced block");
        for b in blocks {
            for (n, l) in &b.body {
                if token_in_argv(l) {
                    found.push(format!("{name}:{n}: {l}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "these lines put an access token into a command's argv, where other local users \
         can read it (/proc/PID/cmdline); pipe it instead (`rctoken token | sed \
         's/^/Authorization: Bearer /' | curl -H @- URL`) or use `rctoken api`:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_masks_and_wildcards_do_what_the_module_doc_says() {
    assert_eq!(
        mask("obtained:             2026-11-25T21:51:52Z (0s ago)"),
        "obtained:             <instant> (<dur> ago)"
    );
    assert_eq!(
        mask("* 11111      sandbox  access in 29m  refresh in 23h 59m"),
        "* 11111      sandbox  access in <dur>  refresh in <dur>"
    );
    assert_eq!(
        mask("expired 2h ago, 1 profile, 3500 s"),
        "expired <dur> ago, 1 profile, 3500 s"
    );
    assert_eq!(
        mask("`rctoken-key:rctoken:15efbd987cffdb224b0fc70c5873608a`, 11111.839cc9ebe203bb4c.0"),
        "`rctoken-key:rctoken:<hex>`, 11111.<hex>.0"
    );
    assert_eq!(
        mask(r#"{"expires_in":3598,"refresh_token_expires_in": 86398,"session_expires_in":null}"#),
        r#"{"expires_in":<secs>,"refresh_token_expires_in": <secs>,"session_expires_in":null}"#
    );
    assert_eq!(
        mask(r#"(directory, mode 0700, owner uid 1001) "uid": 0,"#),
        r#"(directory, mode 0700, owner uid <uid>) "uid": <uid>,"#
    );
    // Not durations, not ids: tokens, modes, exit codes.
    for keep in [
        "U0FOREJPWDAxfHJlZnJlc2hlZC1hY2Nlc3M",
        "mode 0600, (os error 2)",
        "8b0d2b0f-4a6e-4bc9-9d64-1f0c6b1a7e52",
        "sha256 x2s 2sx",
    ] {
        assert_eq!(mask(keep), keep);
    }
    assert!(line_matches(
        "{\"uri\":…}",
        "{\"uri\": \"/restapi\", \"id\": 1}"
    ));
    assert!(!line_matches("{\"uri\":…}", "{\"url\": 1}"));
    assert!(line_matches("a…b…c", "a-b-c"));
    assert!(!line_matches("ab…ba", "aba"));
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&v(&["a", "…", "z"]), &v(&["a", "b", "c", "z"])));
    assert!(lines_match(&v(&["a", "…"]), &v(&["a"])));
    assert!(!lines_match(&v(&["a"]), &v(&["a", "b"])));
    let t = transcripts("```\n$ a\nx\n\n[exit 3]\n\n$ b\n```\n");
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].steps[0].code, t[0].steps[0].expected.clone()),
        (3, v(&["x"]))
    );
    assert_eq!((t[0].steps[1].code, t[0].steps[1].expected.len()), (0, 0));
    let t = transcripts("<!-- transcript: not run: macOS only -->\n```\n$ a\n```\n");
    assert_eq!(t[0].skip.as_deref(), Some("macOS only"));
}
