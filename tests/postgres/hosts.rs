//! Single flight across hosts: many processes on several machines that
//! share nothing but the database refresh one token once; a lock holder
//! that dies releases the lock with its connection, and the next host
//! recovers through RingCentral's grace window.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Tok, run};
use crate::support::fake_rc::{self, FakeRc};
use crate::support::refresher::{Does, Refresher};

const OLD_ACCESS: &str = "AT-pg-hosts-OLD-SECRET";
const OLD_REFRESH: &str = "RT-pg-hosts-OLD-SECRET";
const NEW_ACCESS: &str = "AT-pg-hosts-NEW-SECRET";

#[test]
fn sixty_four_processes_on_four_hosts_refresh_once() {
    let pg = pg_env!("sixty_four");
    let expired = Tok {
        access: OLD_ACCESS,
        expires_in: 0,
        refresh: Some((OLD_REFRESH, 604_800)),
        owner: Some("4001"),
    }
    .json();
    pg.run_stdin(&["import"], &expired).ok();
    let new = Tok {
        access: NEW_ACCESS,
        expires_in: 3600,
        refresh: Some(("RT-pg-hosts-NEW-SECRET", 604_800)),
        owner: Some("4001"),
    }
    .json();
    // A refresher slow enough that every other process queues on the lock.
    let refresher = Refresher::new(pg.tmp.path(), "counting");
    let cmd = refresher.cmd(&Does {
        sleep_ms: 1500,
        ..Does::print(&new)
    });
    let hosts: Vec<_> = (0..4).map(|h| pg.host(&h.to_string())).collect();
    let children: Vec<Child> = hosts
        .iter()
        .flat_map(|host| (0..16).map(move |_| host))
        .map(|host| {
            pg.on_host(host)
                .args(["token", "--refresh-with", &cmd])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start rctoken on a host")
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for out in &outs {
        assert!(
            out.status.success(),
            "a process failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), NEW_ACCESS);
    }
    assert_eq!(outs.len(), 64);
    assert_eq!(
        refresher.runs(),
        1,
        "the token endpoint was asked more than once"
    );
    // Each host had a store of its own on this machine: none was created.
    for host in &hosts {
        assert!(!host.home.join(".local").exists());
    }
}

/// Wait until some session of this database is idle in a transaction (a
/// refresh holding its row lock while the token endpoint answers).
pub(crate) fn wait_for_lock_holder(pg: &crate::support::postgres::Pg) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = pg.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' \
             AND application_name = 'rctoken'",
        );
        if n != "0" {
            return;
        }
        assert!(Instant::now() < deadline, "no refresh took the row lock");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_lock_holder_lets_the_next_host_recover_through_the_grace_window() {
    let pg = pg_env!("killed_holder");
    let rc = FakeRc::start();
    let jwt = pg.path("jwt");
    let secret = pg.path("secret");
    crate::support::postgres::write_key(&jwt, fake_rc::JWT);
    crate::support::postgres::write_key(&secret, fake_rc::CLIENT_SECRET);
    let args = rc.login_args(&jwt, &secret);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pg.run(&args).ok();
    // The endpoint takes 3 s, so the holder is killed after sending its
    // request and before the answer: its refresh token is spent.
    // (Tokens issued from now on live long enough for --min-valid 7200.)
    rc.control(serde_json::json!({ "latency_ms": 3000, "expires_in": 7300 }));
    let mut holder = pg
        .cmd()
        .args(["token", "--min-valid", "7200"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the holder");
    wait_for_lock_holder(&pg);
    std::thread::sleep(Duration::from_millis(1000));
    holder.kill().expect("SIGKILL the holder");
    holder.wait().expect("reap");
    // Its connection is gone, so is its lock: the next host refreshes with
    // the same (spent) refresh token, and the grace window gives it the
    // pair the holder never stored.
    let next = run(pg.cmd().args(["token", "--min-valid", "7200"])).ok();
    let token = next.stdout.trim().to_string();
    assert!(token.starts_with("AT-"), "{next:?}");
    let stats = rc.stats();
    assert_eq!(stats["refresh"], 1, "{stats}");
    assert_eq!(stats["refresh_reused"], 1, "{stats}");
    // The stored token is the session's current one: the API takes it.
    run(pg
        .cmd()
        .args(["api", "/restapi/v1.0/account/~/extension/~"]))
    .ok();
    assert_eq!(rc.count("api_401"), 0);
    assert_eq!(pg.run(&["token"]).ok().stdout.trim(), token);
}

#[test]
fn a_host_cut_off_mid_refresh_loses_its_lock_and_the_others_proceed() {
    use std::io::BufRead;
    let pg = pg_env!("cut_host");
    let expired = Tok {
        access: OLD_ACCESS,
        expires_in: 0,
        refresh: Some((OLD_REFRESH, 604_800)),
        owner: Some("4002"),
    }
    .json();
    pg.run_stdin(&["import"], &expired).ok();
    // Host A reaches the server only through its link (a forwarder of the
    // socket); the others directly.
    let words: Vec<(String, String)> = pg
        .url
        .split_whitespace()
        .filter_map(|w| w.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let get = |k: &str| {
        words
            .iter()
            .find(|(w, _)| w == k)
            .map(|(_, v)| v.clone())
            .expect(k)
    };
    let (sock_dir, port) = (get("host"), get("port"));
    let link_dir = pg.path("link");
    std::fs::create_dir(&link_dir).expect("link dir");
    let mut link = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/socket_proxy.py"
        ))
        .arg(link_dir.join(format!(".s.PGSQL.{port}")))
        .arg(format!("{sock_dir}/.s.PGSQL.{port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the link");
    let mut ready = String::new();
    std::io::BufReader::new(link.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("READY");
    assert_eq!(ready.trim(), "READY");
    let via_link = pg.url.replace(
        &format!("host={sock_dir}"),
        &format!("host={}", link_dir.display()),
    );

    let slow = Refresher::new(pg.tmp.path(), "slow");
    let new_a = Tok {
        access: "AT-pg-cut-A-SECRET",
        expires_in: 3600,
        refresh: Some(("RT-pg-cut-A-SECRET", 604_800)),
        owner: Some("4002"),
    }
    .json();
    // A's refresh finishes well within its lock timeout; it is the cut
    // that keeps its commit from the server, which ends the transaction
    // once it has been idle for A's lock timeout.
    let a_cmd = slow.cmd(&Does {
        sleep_ms: 2500,
        ..Does::print(&new_a)
    });
    let host_a = pg.host("a");
    let a = pg
        .on_host(&host_a)
        .env("RCTOKEN_DATABASE_URL", &via_link)
        .args(["--lock-timeout", "4", "token", "--refresh-with", &a_cmd])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start host A");
    wait_for_lock_holder(&pg);
    // Cut A's link while it holds the row lock.
    let pid = link.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .expect("kill")
            .success()
    );

    // Host B waits for the lock; the server ends A's idle transaction
    // after A's lock timeout, and B refreshes.
    let fast = Refresher::new(pg.tmp.path(), "fast");
    let new_b = Tok {
        access: "AT-pg-cut-B-SECRET",
        expires_in: 3600,
        refresh: Some(("RT-pg-cut-B-SECRET", 604_800)),
        owner: Some("4002"),
    }
    .json();
    let b_cmd = fast.cmd(&Does::print(&new_b));
    let host_b = pg.host("b");
    let b =
        run(pg
            .on_host(&host_b)
            .args(["--lock-timeout", "20", "token", "--refresh-with", &b_cmd]))
        .ok();
    assert_eq!(b.stdout.trim(), "AT-pg-cut-B-SECRET");
    assert_eq!(fast.runs(), 1);

    // The link comes back: A learns its transaction is gone, says so, and
    // stores nothing over B's result.
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = a.wait_with_output().expect("wait for A");
    let _ = link.kill();
    let _ = link.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "host A: {stderr}");
    crate::support::cli::two_line_error(&stderr);
    assert!(stderr.contains("database"), "{stderr}");
    assert_eq!(slow.runs(), 1);
    assert_eq!(pg.run(&["token"]).ok().stdout.trim(), "AT-pg-cut-B-SECRET");
}
