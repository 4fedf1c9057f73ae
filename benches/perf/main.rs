//! rctoken benchmarks (`harness = false`): medians and ratios measured side
//! by side, alternated, in one run. Nothing here fails on time.
//!
//! ```text
//! .ci/bench.sh                       # everything, release build, real backends
//! .ci/bench.sh overhead scale        # only some parts
//! .ci/bench-smoke.sh                 # CI: tiny counts, checks it all still runs
//! ```
//!
//! Parts: `overhead` (1), `cli` (2 and 5), `scale` (3), `contention` (4).
//! The binary also re-executes itself as child processes:
//! `perf child <mode> ...` (see `child`).

#[cfg(target_os = "linux")]
mod cli;
#[cfg(target_os = "linux")]
mod contention;
#[cfg(target_os = "linux")]
mod fixtures;
#[cfg(target_os = "linux")]
mod layout;
#[cfg(target_os = "linux")]
mod overhead;
#[cfg(target_os = "linux")]
mod scale;
#[cfg(target_os = "linux")]
mod stats;

/// Run settings.
pub struct Cfg {
    /// Tiny iteration counts; only checks that everything runs.
    pub smoke: bool,
}

impl Cfg {
    /// `full` iterations normally, `smoke` in smoke mode.
    pub fn n(&self, full: usize, smoke: usize) -> usize {
        if self.smoke { smoke } else { full }
    }
}

#[cfg(target_os = "linux")]
fn child(mode: &str, args: &[String]) -> i32 {
    match mode {
        "noop" => 0,
        "ss-read" => cli::child_ss_read(args),
        "ss-phases" => cli::child_ss_phases(args),
        "refresh" => contention::child_refresh(args),
        "save-loop" => contention::child_save_loop(args),
        other => {
            eprintln!("unknown child mode `{other}`");
            2
        }
    }
}

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        let mode = args.get(1).cloned().unwrap_or_default();
        std::process::exit(child(&mode, args.get(2..).unwrap_or(&[])));
    }
    let cfg = Cfg {
        smoke: args.iter().any(|a| a == "--smoke"),
    };
    stats::set_smoke(cfg.smoke);
    // `cargo bench` passes `--bench`; any other bare word picks parts.
    let parts: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |p: &str| parts.is_empty() || parts.contains(&p);
    println!(
        "# rctoken benchmarks{}",
        if cfg.smoke {
            " (smoke mode: counts are tiny, figures meaningless)"
        } else {
            ""
        }
    );
    fixtures::print_machine();
    if want("overhead") {
        overhead::run(&cfg);
    }
    if want("cli") {
        cli::run(&cfg);
    }
    if want("scale") {
        scale::run(&cfg);
    }
    if want("contention") {
        contention::run(&cfg);
    }
    println!("\nbench: all parts ran");
}

#[cfg(not(target_os = "linux"))]
fn main() {
    let smoke = Cfg { smoke: true };
    let _ = smoke.n(0, 0);
    println!("rctoken benchmarks need Linux (Secret Service and keyutils); nothing to run");
}
