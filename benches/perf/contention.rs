//! Part 4: sixteen processes refreshing the same expired token (single
//! flight across processes), and saves to distinct profiles from 8 processes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rctoken::SaveOptions;

use crate::Cfg;
use crate::fixtures::{self, BenchStore};
use crate::stats::{self, Samples};

const PROCS: usize = 16;
const SAVERS: usize = 8;

fn arg<'a>(args: &'a [String], flag: &str) -> &'a str {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or_default()
}

/// Child mode `refresh --app A --dir D --backend B --profile K --latency-ms L`:
/// refresh profile K if it is valid for less than 60 s; the refresh function
/// stands in for the token endpoint and takes L ms. Prints `refreshed` when
/// this process called it, else `fresh`.
pub fn child_refresh(args: &[String]) -> i32 {
    let store = fixtures::open(
        arg(args, "--app"),
        arg(args, "--dir").as_ref(),
        arg(args, "--backend"),
    );
    let latency = Duration::from_millis(arg(args, "--latency-ms").parse().unwrap_or(0));
    let key = arg(args, "--profile");
    let mut called = false;
    let result = store.refresh(Some(key), Duration::from_secs(60), |_refresh_token| {
        called = true;
        std::thread::sleep(latency);
        Ok::<_, std::io::Error>(fixtures::token(key, 3600, 99))
    });
    match result {
        Ok(_) => {
            println!("{}", if called { "refreshed" } else { "fresh" });
            0
        }
        Err(e) => {
            eprintln!("refresh failed: {e}");
            1
        }
    }
}

/// Child mode `save-loop --app A --dir D --backend B --profile K --count N`.
pub fn child_save_loop(args: &[String]) -> i32 {
    let store = fixtures::open(
        arg(args, "--app"),
        arg(args, "--dir").as_ref(),
        arg(args, "--backend"),
    );
    let key = arg(args, "--profile");
    let count: usize = arg(args, "--count").parse().unwrap_or(1);
    for i in 0..count {
        if let Err(e) = store.save(&fixtures::token(key, 3600, i as u64), SaveOptions::new()) {
            eprintln!("save failed: {e}");
            return 1;
        }
    }
    0
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

/// Start all commands at once, wait for all; (wall time, their stdouts).
fn run_all(mut cmds: Vec<Command>) -> (Duration, Vec<String>) {
    let start = Instant::now();
    let children: Vec<Child> = cmds.iter_mut().map(spawn).collect();
    let mut outs = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait for child");
        assert!(out.status.success(), "child failed");
        outs.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    (start.elapsed(), outs)
}

fn refresh_cmd(b: &BenchStore, key: &str, latency_ms: u64) -> Command {
    let mut c = fixtures::child("refresh");
    c.args(b.cli_args())
        .args(["--profile", key, "--latency-ms", &latency_ms.to_string()]);
    c
}

fn refreshes(b: &BenchStore, key: &str, cfg: &Cfg, latency_ms: u64) {
    // Smoke mode keeps the Secret Service part small: gnome-keyring 42.1 was
    // seen to crash under bursts of concurrent sessions (docs/benchmarks.md).
    let procs = if cfg.smoke && b.backend == "secret-service" {
        4
    } else {
        PROCS
    };
    let expire = |salt: u64| {
        b.store
            .save(&fixtures::token(key, 0, salt), SaveOptions::new())
            .expect("save expired token");
    };
    let mut one = Samples::new("1 process, expired token (refreshes)");
    let mut many = Samples::new(format!("{procs} processes, same expired token"));
    let mut floor = Samples::new(format!("{procs} processes, valid token (no refresh)"));
    for round in 0..cfg.n(10, 1) {
        expire(round as u64);
        let (t, outs) = run_all(vec![refresh_cmd(b, key, latency_ms)]);
        assert_eq!(outs, ["refreshed"]);
        one.times.push(t);

        expire(round as u64 + 1000);
        let (t, outs) = run_all(
            (0..procs)
                .map(|_| refresh_cmd(b, key, latency_ms))
                .collect(),
        );
        let called = outs.iter().filter(|o| *o == "refreshed").count();
        assert_eq!(called, 1, "single flight: exactly one process refreshes");
        many.times.push(t);

        let (t, outs) = run_all(
            (0..procs)
                .map(|_| refresh_cmd(b, key, latency_ms))
                .collect(),
        );
        assert!(outs.iter().all(|o| o == "fresh"));
        floor.times.push(t);
    }
    stats::print_table(
        &format!(
            "{}: refresh with a token endpoint taking {latency_ms} ms",
            b.backend
        ),
        &[one.clone(), many.clone(), floor],
    );
    let r = many.median().as_secs_f64() / one.median().as_secs_f64();
    stats::verdict(
        &format!(
            "{}: {procs} contended / 1 uncontended refresh, endpoint {latency_ms} ms",
            b.backend
        ),
        format!("{r:.2}×"),
        "≤ 1.5×",
        r <= 1.5,
    );
}

fn save_throughput(b: &BenchStore, cfg: &Cfg) {
    let per = cfg.n(25, 2);
    let cmd = |k: usize| {
        let mut c = fixtures::child("save-loop");
        c.args(b.cli_args()).args([
            "--profile",
            &format!("{}", 3_000_000_001u64 + k as u64),
            "--count",
            &per.to_string(),
        ]);
        c
    };
    let line = |procs: usize| {
        let mut s = Samples::new("");
        for _ in 0..cfg.n(3, 1) {
            let (t, _) = run_all((0..procs).map(cmd).collect());
            s.times.push(t);
        }
        let t = s.median();
        let saves = (procs * per) as f64;
        println!(
            "| {procs} | {} | {:.0} saves/s | {} per save |",
            stats::fmt_dur(t),
            saves / t.as_secs_f64(),
            stats::fmt_dur(t / (procs * per) as u32)
        );
    };
    println!(
        "\n### {}: saves to distinct profiles ({per} per process, median of runs)\n",
        b.backend
    );
    println!("| processes | wall | throughput | wall per save |");
    println!("|---:|---:|---:|---:|");
    line(1);
    line(SAVERS);
}

pub fn run(cfg: &Cfg) {
    println!("\n## 4. Contention");
    let mut backends = vec!["keyutils"];
    if fixtures::secret_service_available() {
        backends.push("secret-service");
    }
    for backend in backends {
        let b = BenchStore::new("contention", backend);
        let key = b.fill(1).remove(0);
        let latencies: &[u64] = if cfg.smoke { &[0] } else { &[0, 100] };
        for &l in latencies {
            refreshes(&b, &key, cfg, l);
        }
        save_throughput(&b, cfg);
    }
}
