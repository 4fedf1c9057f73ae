//! Part 2 and 5: `rctoken token` against `secret-tool lookup` and a minimal
//! keyring-core reader on the same gnome-keyring, alternated; where the time
//! of one Secret Service read goes; and peak RSS of each process.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::Cfg;
use crate::fixtures::{self, BenchStore, Ran};
use crate::stats::{self, Samples};

/// The `rctoken` CLI built with this bench, pointed at a bench store.
pub struct TokenCmd {
    exe: std::path::PathBuf,
}

impl TokenCmd {
    /// Check that `rctoken token` prints `expected` for store `b`.
    pub fn detect(b: &BenchStore, expected: &str) -> TokenCmd {
        let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_rctoken"));
        let tok = TokenCmd { exe };
        let out = tok
            .command(b, None)
            .stdout(Stdio::piped())
            .output()
            .expect("run rctoken");
        assert!(
            out.status.success() && out.stdout == format!("{expected}\n").into_bytes(),
            "`rctoken token` did not print the stored token ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        tok
    }

    pub fn label(&self) -> &'static str {
        "rctoken token"
    }

    /// `rctoken [store args] token`, with `backend` overriding the store's.
    pub fn command(&self, b: &BenchStore, backend: Option<&str>) -> Command {
        let mut args = b.cli_args();
        if let Some(be) = backend {
            args[3] = be.to_string();
        }
        let mut c = Command::new(&self.exe);
        c.args(args)
            .arg("token")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        c
    }
}

/// Child mode `ss-read SERVICE ACCOUNT`: the floor, one keyring-core Secret
/// Service read in a fresh process. Prints the length and its two phases.
pub fn child_ss_read(args: &[String]) -> i32 {
    let t0 = std::time::Instant::now();
    let store = zbus_secret_service_keyring_store::Store::new().expect("connect");
    let t1 = std::time::Instant::now();
    let secret = keyring_core::api::CredentialStoreApi::build(&*store, &args[0], &args[1], None)
        .and_then(|e| e.get_secret())
        .expect("get");
    let t2 = std::time::Instant::now();
    println!("len {}", secret.len());
    println!("t connect+session {}", (t1 - t0).as_micros());
    println!("t search+get {}", (t2 - t1).as_micros());
    0
}

/// Child mode `ss-phases dh|plain SERVICE ACCOUNT`: one read, phase by phase,
/// on the secret-service crate that keyring-core's store wraps.
pub fn child_ss_phases(args: &[String]) -> i32 {
    use secret_service::EncryptionType;
    use secret_service::blocking::SecretService;
    use std::collections::HashMap;
    let enc = if args[0] == "plain" {
        EncryptionType::Plain
    } else {
        EncryptionType::Dh
    };
    let mut at = std::time::Instant::now();
    let mut lap = |name: &str| {
        let now = std::time::Instant::now();
        println!("t {name} {}", (now - at).as_micros());
        at = now;
    };
    let conn = zbus::blocking::Connection::session().expect("session bus");
    lap("1 bus connect+auth+Hello");
    let ss = SecretService::connect_with_existing(enc, conn).expect("service");
    lap("2 service proxy+OpenSession");
    let attrs = HashMap::from([
        ("service", args[1].as_str()),
        ("username", args[2].as_str()),
    ]);
    let found = ss.search_items(attrs).expect("search");
    lap("3 SearchItems");
    let item = found.unlocked.first().expect("item found unlocked");
    let secret = item.get_secret().expect("get");
    lap("4 GetSecret+decrypt");
    assert!(!secret.is_empty());
    0
}

fn median_of(rs: &[Ran]) -> Duration {
    let mut s = Samples::new("");
    s.times = rs.iter().map(|r| r.wall).collect();
    s.median()
}

fn samples(name: &str, rs: &[Ran]) -> Samples {
    let mut s = Samples::new(name);
    s.times = rs.iter().map(|r| r.wall).collect();
    s
}

/// Peak RSS in KiB of one run of `cmd` under GNU time (`%M`). A child's
/// `ru_maxrss` as seen by this process would include this process's own RSS
/// (the posix_spawn child shares its memory until exec), so a small
/// intermediary that forks is needed: `/usr/bin/time` is that.
fn peak_rss_kib(cmd: &Command) -> u64 {
    let mut t = Command::new("/usr/bin/time");
    t.args(["-f", "maxrss %M"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let out = t.stdin(Stdio::null()).output().expect("run /usr/bin/time");
    assert!(out.status.success(), "{cmd:?} failed under /usr/bin/time");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("maxrss "))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .expect("maxrss line")
}

fn memory(cfg: &Cfg, tok: &TokenCmd, b: &BenchStore, st_service: &str, st_args: [&str; 4]) {
    println!("\n### 5. peak RSS (GNU time %M, max resident set of the process)\n");
    if !std::path::Path::new("/usr/bin/time").exists() {
        println!("skipped: /usr/bin/time missing (.ci/bench.sh installs package `time`)");
        return;
    }
    let mut secret_tool = Command::new("secret-tool");
    secret_tool.arg("lookup").args(st_args);
    let mut floor = fixtures::child("ss-read");
    floor.args([st_service, "y"]);
    let cases: [(&str, Command); 4] = [
        (tok.label(), tok.command(b, Some("auto"))),
        ("secret-tool lookup", secret_tool),
        ("floor: minimal keyring-core read", floor),
        (
            "/bin/true (GNU time's own baseline)",
            Command::new("/bin/true"),
        ),
    ];
    println!("| process | median | max |");
    println!("|---|---:|---:|");
    let mut token_peak = 0;
    for (i, (name, cmd)) in cases.iter().enumerate() {
        let mut v: Vec<u64> = (0..cfg.n(10, 1)).map(|_| peak_rss_kib(cmd)).collect();
        v.sort();
        let (med, max) = (v[v.len() / 2], v[v.len() - 1]);
        println!(
            "| {name} | {:.2} MiB | {:.2} MiB |",
            med as f64 / 1024.0,
            max as f64 / 1024.0
        );
        if i == 0 {
            token_peak = max;
        }
    }
    stats::verdict(
        &format!("peak RSS of {}", tok.label()),
        format!("{:.2} MiB", token_peak as f64 / 1024.0),
        "≤ 10 MiB",
        token_peak <= 10 * 1024,
    );
}

/// Parse `t NAME MICROS` lines of a phased child into (name, µs).
fn phases(out: &[u8]) -> Vec<(String, u64)> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("t ")?;
            let (name, us) = l.rsplit_once(' ')?;
            Some((name.to_string(), us.parse().ok()?))
        })
        .collect()
}

fn print_phases(title: &str, runs: &[Ran]) {
    let all: Vec<Vec<(String, u64)>> = runs.iter().map(|r| phases(&r.stdout)).collect();
    let Some(first) = all.first() else { return };
    println!("\n### {title} (median of {} processes)\n", runs.len());
    println!("| phase | median |");
    println!("|---|---:|");
    for (i, (name, _)) in first.iter().enumerate() {
        let mut s = Samples::new(name.clone());
        s.times = all
            .iter()
            .filter_map(|p| p.get(i))
            .map(|(_, us)| Duration::from_micros(*us))
            .collect();
        println!("| {name} | {} |", stats::fmt_dur(s.median()));
    }
}

pub fn run(cfg: &Cfg) {
    println!("\n## 2. `rctoken token` vs `secret-tool lookup` (same gnome-keyring) and 5. memory");
    if !fixtures::secret_service_available() {
        println!("skipped: no Secret Service (run inside .ci/with-keyring.sh)");
        return;
    }
    let b = BenchStore::new("cli", "secret-service");
    let keys = b.fill(10);
    let expected = b.store.load(rctoken::Selector::Active).expect("load").token;
    let expected = expected.access_token.expose_secret().to_string();
    let (service, account) = b.item_of(&keys[0]);
    let raw = zbus_secret_service_keyring_store::Store::new().expect("connect");
    let item_len = keyring_core::api::CredentialStoreApi::build(&*raw, &service, &account, None)
        .and_then(|e| e.get_secret())
        .expect("item")
        .len();
    // A secret-tool item of the same size, which the floor reads too.
    let st_service = format!("rctoken-bench-st:{}", b.app);
    let st_args = ["service", st_service.as_str(), "username", "y"];
    let mut store_cmd = Command::new("secret-tool")
        .arg("store")
        .arg("--label=rctoken bench")
        .args(st_args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("secret-tool store (package libsecret-tools)");
    store_cmd
        .stdin
        .take()
        .expect("stdin")
        .write_all("s".repeat(item_len).as_bytes())
        .expect("write secret");
    assert!(store_cmd.wait().expect("secret-tool store").success());

    let tok = TokenCmd::detect(&b, &expected);
    println!(
        "items: {item_len} bytes each; token command: {}; backend auto (picks the Secret Service)",
        tok.label()
    );
    let rounds = cfg.n(30, 2);
    let names = [
        tok.label(),
        "secret-tool lookup",
        "floor: minimal keyring-core read",
        "process floor: this binary, no work",
    ];
    let mut runs: Vec<Vec<Ran>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds + 1 {
        for k in 0..names.len() {
            let i = (round + k) % names.len();
            let r = match i {
                0 => {
                    let r = fixtures::run_timed(&mut tok.command(&b, Some("auto")));
                    assert!(
                        r.stdout == format!("{expected}\n").into_bytes(),
                        "`rctoken token` did not print the stored token; stderr: {}",
                        r.stderr
                    );
                    r
                }
                1 => {
                    let r = fixtures::run_timed(
                        Command::new("secret-tool").arg("lookup").args(st_args),
                    );
                    assert!(
                        r.ok && r.stdout.len() >= item_len,
                        "secret-tool lookup failed"
                    );
                    r
                }
                2 => {
                    let r = fixtures::run_timed(
                        fixtures::child("ss-read").args([st_service.as_str(), "y"]),
                    );
                    assert!(r.ok, "floor read failed");
                    r
                }
                _ => fixtures::run_timed(&mut fixtures::child("noop")),
            };
            if round > 0 {
                runs[i].push(r); // round 0 is warm-up
            }
        }
    }
    // secret-tool first: it is the baseline of the ratios.
    let rows: Vec<Samples> = [1, 0, 2, 3]
        .iter()
        .map(|&i| samples(names[i], &runs[i]))
        .collect();
    stats::print_table("one token read per process, alternated", &rows);
    let r = median_of(&runs[0]).as_secs_f64() / median_of(&runs[1]).as_secs_f64();
    stats::verdict(
        &format!("{} / secret-tool lookup", tok.label()),
        format!("{r:.3}×"),
        "≤ 1.0×",
        r <= 1.0,
    );
    print_phases("floor process phases (keyring-core)", &runs[2]);

    // Where one read's time goes, on the crate keyring-core's store wraps.
    let mut ph_dh = Vec::new();
    let mut ph_plain = Vec::new();
    for _ in 0..cfg.n(30, 1) {
        for (mode, out) in [("dh", &mut ph_dh), ("plain", &mut ph_plain)] {
            let r = fixtures::run_timed(fixtures::child("ss-phases").args([
                mode,
                st_service.as_str(),
                "y",
            ]));
            assert!(r.ok, "ss-phases {mode} failed");
            out.push(r);
        }
    }
    print_phases(
        "one Secret Service read, DH session (what keyring-core uses)",
        &ph_dh,
    );
    print_phases("the same with a plain session (for comparison)", &ph_plain);

    memory(cfg, &tok, &b, &st_service, st_args);
    let _ = Command::new("secret-tool")
        .arg("clear")
        .args(st_args)
        .status();
}
