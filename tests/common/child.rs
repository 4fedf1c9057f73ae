//! Child processes: a test re-executes its own test binary to run one test
//! in a fresh process (different environment, different keyrings), and
//! exchanges values through environment variables and marked stdout lines.
//!
//! Pattern:
//! ```ignore
//! #[test]
//! fn my_test() {
//!     if let Some(role) = child::role() { return my_child(&role); }
//!     let out = child::run("my_test", "reader", &[("K", "v")], &[]);
//!     ...
//! }
//! ```

use std::process::{Command, Output};

/// Set in a child: which part of the test it plays.
pub const ROLE_ENV: &str = "RCTOKEN_TEST_CHILD_ROLE";
/// Marks a line of child output meant for the parent.
pub const MARK: &str = "@@child@@ ";

/// The role of this process, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A value the parent passed.
pub fn arg(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child: {name} not set"))
}

/// Report a value to the parent.
pub fn report(key: &str, value: &str) {
    // Own line: the harness prints the test name without a newline first.
    println!("\n{MARK}{key}={value}");
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

/// The command that re-runs exactly `test` of this binary as a child.
pub fn command(test: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(child_args(test))
        .env(ROLE_ENV, role)
        .env("RUST_BACKTRACE", "0");
    cmd
}

/// Run `test` as a child in `role` with extra and removed environment
/// variables; panics with its output unless it succeeds and really ran the test.
pub fn run(test: &str, role: &str, env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut cmd = command(test, role);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    check(cmd.output().expect("spawn child test process"))
}

/// Panic unless the child succeeded and ran exactly one test.
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

/// The value the child reported under `key`.
pub fn reported(out: &Output, key: &str) -> String {
    let prefix = format!("{MARK}{key}=");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split_once(&prefix).map(|(_, v)| v.to_string()))
        .unwrap_or_else(|| {
            panic!(
                "child reported no `{key}`:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
}
