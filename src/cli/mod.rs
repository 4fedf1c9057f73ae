//! The `rctoken` command line: parsing (`args`), one module per command
//! group (`commands`), each command's examples (`examples`), exit codes and
//! error reports (`exit`), rendering (`output`), bounded input (`input`), the
//! `--refresh-with` runner (`refresher`) and keeping secrets out of core
//! dumps (`harden`).

mod args;
mod commands;
mod examples;
mod exit;
mod harden;
mod input;
mod output;
mod refresher;

/// Run the command line; returns the process exit code. A panic anywhere
/// becomes a generic two-line error and exit 1.
pub fn main() -> i32 {
    // First, before anything could hold a secret (or a token pasted into
    // the arguments by mistake is parsed): no core dumps.
    harden::no_core_dumps();
    exit::install_panic_hook();
    match std::panic::catch_unwind(run) {
        Ok(code) => code.into(),
        Err(_) => exit::internal_error().into(),
    }
}

fn run() -> u8 {
    // Test-only: prove the panic handling (tests are built with --all-features).
    #[cfg(feature = "failpoints")]
    if std::env::var_os("RCTOKEN_CLI_TEST_PANIC").is_some() {
        panic!("test panic carrying SECRET-IN-PANIC-MESSAGE");
    }
    // Test-only: make the next metadata commit fail (a refresh whose result
    // cannot be stored).
    #[cfg(feature = "failpoints")]
    if std::env::var_os("RCTOKEN_CLI_TEST_FAIL_COMMIT").is_some() {
        rctoken::testing::failpoint::fail_next(rctoken::testing::failpoint::Point::MetadataRename);
    }
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(e) => return exit::clap_failure(e),
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
