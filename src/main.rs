//! The `rctoken` command-line tool. The contract (commands, output, exit
//! codes) is documented in `docs/cli.md`; the code lives in `src/cli/`.
//!
//! Unsafe code is denied, and allowed only where std has no wrapper for a
//! system call: the `sys` module of `cli::refresher` (CMD's process
//! group). Each unsafe block there says why it is sound.
#![deny(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
