//! The `rctoken` command-line tool.
fn main() {
    std::process::exit(rctoken_cli_stub());
}
fn rctoken_cli_stub() -> i32 {
    0
}
