//! Child processes with roles: a test re-runs its own test binary to run
//! one test in a fresh process (another environment, another session
//! keyring, a process to SIGKILL) playing a role. Parent and child exchange
//! values through environment variables (parent → child) and marked stdout
//! lines (child → parent).
//!
//! A child is selected by its test name, which includes the module path
//! inside the test crate: name it with `test_name!` (`support::rerun`),
//! never by hand.
//!
//! ```ignore
//! #[test]
//! fn my_test() {
//!     if let Some(role) = child::role() { return my_child(&role); }
//!     let out = child::run(test_name!("my_test"), "reader", &[("K", "v")], &[]);
//!     assert_eq!(child::reported(&out, "key"), "value");
//! }
//! ```

use std::process::{Command, Output, Stdio};

use super::rerun::{check, child_args};

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

/// Report a value to the parent (see [`reported`], [`reports`]).
pub fn report(key: &str, value: &str) {
    // Own line: the harness prints the test name without a newline first.
    println!("\n{MARK}{key}={value}");
}

/// The command that re-runs exactly `test` of this binary as a child in
/// `role`, stdin closed.
pub fn command(test: &str, role: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(child_args(test))
        .env(ROLE_ENV, role)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    cmd
}

/// Run `test` as a child in `role` with extra and removed environment
/// variables; panics with its output unless it succeeds and really ran the test.
#[allow(dead_code, reason = "not every test crate uses it")]
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

/// Every value the child reported under `key`, in order.
pub fn reports<'a>(stdout: &'a str, key: &str) -> impl Iterator<Item = &'a str> + 'a {
    let prefix = format!("{MARK}{key}=");
    stdout
        .lines()
        .filter_map(move |l| l.find(&prefix).map(|i| &l[i + prefix.len()..]))
}

/// The (first) value the child reported under `key`.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn reported(out: &Output, key: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let v = reports(&text, key).next().map(str::to_string);
    v.unwrap_or_else(|| panic!("child reported no `{key}`:\n{text}"))
}
