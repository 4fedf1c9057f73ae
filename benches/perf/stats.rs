//! Timing helpers: alternated sampling, medians, quartiles and a plain table
//! printer. Nothing here asserts anything about time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Samples of one measured case.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub name: String,
    pub times: Vec<Duration>,
}

impl Samples {
    pub fn new(name: impl Into<String>) -> Self {
        Samples {
            name: name.into(),
            times: Vec::new(),
        }
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut t = self.times.clone();
        t.sort();
        t
    }

    /// The `q` quantile (0.0..=1.0), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        let t = self.sorted();
        if t.is_empty() {
            return Duration::ZERO;
        }
        let i = ((t.len() - 1) as f64 * q).round() as usize;
        t[i.min(t.len() - 1)]
    }

    pub fn median(&self) -> Duration {
        let t = self.sorted();
        match t.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => t[n / 2],
            n => (t[n / 2 - 1] + t[n / 2]) / 2,
        }
    }
}

/// One case of an alternated run.
pub type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>);

/// Run every case `rounds` times, alternating: each round runs every case
/// once, starting from a different case each round so no case always
/// follows the same neighbour. `warmup` untimed rounds come first.
pub fn alternate(rounds: usize, warmup: usize, cases: &mut [Case<'_>]) -> Vec<Samples> {
    let n = cases.len();
    let mut out: Vec<Samples> = cases.iter().map(|(name, _)| Samples::new(*name)).collect();
    for _ in 0..warmup {
        for (_, f) in cases.iter_mut() {
            f();
        }
    }
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let start = Instant::now();
            (cases[i].1)();
            out[i].times.push(start.elapsed());
        }
    }
    out
}

/// Human units: ns, µs, ms or s with 3 significant figures.
pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `a / b` as a ratio string.
pub fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "n/a".into();
    }
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

/// Signed `a - b` in microseconds.
pub fn diff_us(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() - b.as_secs_f64()) * 1e6
}

/// Print a table of samples: median, p25, p75, n, and the ratio of each
/// median to the first row's (the baseline).
pub fn print_table(title: &str, rows: &[Samples]) {
    println!("\n### {title}\n");
    println!("| case | median | p25 | p75 | n | vs `{}` |", rows[0].name);
    println!("|---|---:|---:|---:|---:|---:|");
    let base = rows[0].median();
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt_dur(r.median()),
            fmt_dur(r.quantile(0.25)),
            fmt_dur(r.quantile(0.75)),
            r.times.len(),
            ratio(r.median(), base)
        );
    }
}

static SMOKE: AtomicBool = AtomicBool::new(false);

/// In smoke mode figures are meaningless and verdicts are not given.
pub fn set_smoke(on: bool) {
    SMOKE.store(on, Ordering::Relaxed);
}

/// Print a verdict line against a target. Benchmarks never fail on time;
/// this only labels the figure.
pub fn verdict(what: &str, figure: String, target: &str, met: bool) {
    let judged = if SMOKE.load(Ordering::Relaxed) {
        "not judged (smoke)"
    } else if met {
        "MET"
    } else {
        "MISSED"
    };
    println!("RESULT {what}: {figure} (target {target}) -> {judged}");
}
