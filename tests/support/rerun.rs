//! Re-running one test of this test binary in a new process: a test picks
//! the test to run by its full name ([`test_name!`]), and [`alone`] runs the
//! calling test in a process of its own. `support::child` builds child
//! processes with roles on this.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Set in a process that runs one test alone (see [`alone`]): that test's name.
#[allow(dead_code, reason = "not every test crate uses it")]
const ALONE_ENV: &str = "RCTOKEN_TEST_ALONE";

/// The full name of test `name` of the calling module, as the test harness
/// knows it (the module path inside the test crate, then `name`).
#[macro_export]
macro_rules! test_name {
    ($name:expr) => {
        &$crate::support::rerun::in_module(module_path!(), $name)
    };
}

/// `module::name` from `crate::module` and `name`: the test harness leaves
/// out the crate.
pub fn in_module(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

/// The test-harness arguments that select exactly `test` (ignored or not).
pub fn child_args(test: &str) -> [&str; 5] {
    [
        test,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ]
}

/// Panic unless the child succeeded and ran exactly one test.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn check(out: Output) -> Output {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child failed ({}):\n--- stdout\n{text}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run the calling test `test` in a process of its own, for tests that
/// change process-global state another test of the binary would see (an
/// armed failpoint is consumed by whichever save comes next, on any thread).
/// In the test process it runs this binary with only `test` selected,
/// panics (with the child's output) unless that passed, and returns `true`:
/// the caller then returns. In that child it returns `false`: the caller
/// goes on with the test.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn alone(test: &str) -> bool {
    if std::env::var(ALONE_ENV).as_deref() == Ok(test) {
        return false;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(child_args(test))
        .env(ALONE_ENV, test)
        .stdin(Stdio::null())
        .output()
        .expect("spawn the test's own process");
    let out = check(out);
    // Its "did not run" lines (see `support::backends`) belong to this run.
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if line.contains("NOT RUN") {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
    true
}
