//! The `rctoken` command-line tool. The contract (commands, output, exit
//! codes) is documented in `docs/cli.md`; the code lives in `src/cli/`.
#![forbid(unsafe_code)]

mod cli;

fn main() {
    std::process::exit(cli::main());
}
