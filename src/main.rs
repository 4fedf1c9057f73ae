//! The `rctoken` command-line tool. The contract (commands, output, exit
//! codes) is documented in `docs/cli.md`; the code lives in `src/cli/`.
//!
//! Unsafe code is denied, and allowed only in the two modules that make
//! system calls std has no wrapper for: `cli::harden` (no core dumps) and
//! the `sys` module of `cli::refresher` (CMD's process group). Each unsafe
//! block there says why it is sound.
#![deny(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
