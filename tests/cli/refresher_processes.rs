//! The processes of `rctoken token --refresh-with CMD` (Linux, both real
//! backends), watched from outside:
//!
//! - rctoken SIGKILLed mid-refresh: CMD's shell dies with it
//!   (PR_SET_PDEATHSIG), and a second `rctoken token --refresh-with` does not
//!   start its CMD while any process of the first CMD (here: a background
//!   child standing for the token request in flight) still runs, because
//!   those processes hold the refresh lock until they exit;
//! - a background child of CMD that keeps CMD's stdout open does not make
//!   rctoken wait for it, and is killed with CMD's process group;
//! - a child that left the group (setsid) and keeps stdout open makes
//!   rctoken give up after a bound, with an error, the tokens unchanged;
//! - giving up on CMD early (too much output) kills its whole group;
//! - rctoken is not dumpable and its core size limit is 0 (seen by CMD
//!   through /proc), and a SIGQUIT during a refresh dumps no core.
//!
//! Timing: only generous upper bounds against hangs, never tight timings.
//! Every process a test starts or learns of is killed when it ends.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::backends::Kind;
use crate::support::cli::Tok;
use crate::support::cli::{self, Env, Run, read};

on_both_backends!(
    killed_rctoken_keeps_the_refresh_single_flight_until_cmd_has_exited,
    background_child_holding_stdout_does_not_delay_the_refresh,
    escaped_child_holding_stdout_makes_rctoken_give_up,
    oversized_output_kills_cmd_and_its_group,
    rctoken_has_no_core_size_and_sigquit_dumps_no_core,
);

const OLD_AT: &str = "AT-old-pr0c5ecr3t";
const OLD_RT: &str = "RT-old-pr0c5ecr3t";
const NEW_AT: &str = "AT-new-pr0c5ecr3t";
const NEW_RT: &str = "RT-new-pr0c5ecr3t";

/// A generous bound for anything that should take a moment: only a hang
/// (or the bug under test) exceeds it.
const HANG: Duration = Duration::from_secs(60);

/// Import an expired access token with a valid refresh token, and write the
/// new token JSON that the refresher scripts print to `new.json`.
fn setup(env: &Env) {
    let expired = Tok {
        access: OLD_AT,
        expires_in: 0,
        refresh: Some((OLD_RT, 604_800)),
        owner: Some("8008"),
    };
    env.import(&expired.json(), &[]);
    let new = Tok {
        access: NEW_AT,
        expires_in: 3600,
        refresh: Some((NEW_RT, 604_800)),
        owner: Some("8008"),
    };
    std::fs::write(env.path("new.json"), new.json()).unwrap();
}

/// Write `body` (with `{d}` standing for the test's temp dir) as a script
/// and return a CMD that `exec`s it, so the script's `$$` is rctoken's
/// direct child and its `$PPID` is rctoken.
fn script(env: &Env, name: &str, body: &str) -> String {
    let path = env.path(&format!("{name}.sh"));
    std::fs::write(
        &path,
        body.replace("{d}", &env.tmp.path().display().to_string()),
    )
    .unwrap();
    format!("exec sh '{}'", path.display())
}

/// `rctoken token --refresh-with CMD` on the test's backend.
fn token_with(env: &Env, cmd: &str) -> Command {
    let mut c = env.cmd();
    c.args(["token", "--refresh-with", cmd]);
    c
}

/// `prefix… rctoken token --refresh-with CMD`: the same command run through
/// a wrapper that `exec`s it (so the pid stays rctoken's).
fn wrapped(env: &Env, prefix: &[&str], cmd: &str) -> Command {
    let base = token_with(env, cmd);
    let mut c = Command::new(prefix[0]);
    c.args(&prefix[1..])
        .arg(base.get_program())
        .args(base.get_args())
        .stdin(Stdio::null());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// The lines of the `events` file the scripts append to.
fn events(env: &Env) -> Vec<String> {
    read(&env.path("events"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Poll `f` every 20 ms until it holds or `limit` passed; whether it held.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// State, parent pid and start time (clock ticks after boot) of a process,
/// from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "PID (COMM) ": field 3 (state) is at index 0, field 22 at 19.
    let rest: Vec<&str> = s[s.rfind(')')? + 1..].split_whitespace().collect();
    Some((
        rest.first()?.chars().next()?,
        rest.get(1)?.parse().ok()?,
        rest.get(19)?.parse().ok()?,
    ))
}

/// A process, named by pid and start time so that a reused pid is never
/// mistaken for it, or killed in its place.
#[derive(Clone, Copy, Debug)]
struct Proc {
    pid: i32,
    start: u64,
}

impl Proc {
    /// The running process `pid`.
    #[track_caller]
    fn of(pid: i32) -> Proc {
        let (_, _, start) = stat(pid).unwrap_or_else(|| panic!("no process {pid}"));
        Proc { pid, start }
    }

    /// "PID START" as a script recorded it (`$! $(cut -d' ' -f22 /proc/$!/stat)`).
    #[track_caller]
    fn parse(line: &str) -> Proc {
        let mut w = line.split_whitespace();
        let mut next = || w.next().and_then(|s| s.parse().ok());
        match (next(), next()) {
            (Some(pid), Some(start)) => Proc {
                pid: pid as i32,
                start,
            },
            _ => panic!("not \"PID START\": {line:?}"),
        }
    }

    /// Still running: not exited, not a zombie.
    fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, _, start))
            if start == self.start && state != 'Z' && state != 'X')
    }

    fn parent(&self) -> Option<i32> {
        stat(self.pid)
            .filter(|&(_, _, start)| start == self.start)
            .map(|(_, ppid, _)| ppid)
    }

    fn kill(&self) {
        if self.alive() {
            // SAFETY: kill(2) with a pid checked just above to still be this
            // process; it touches no memory of ours.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// Processes of CMD that a failing test could leave behind; killed on drop.
#[derive(Default)]
struct Strays(Vec<Proc>);

impl Drop for Strays {
    fn drop(&mut self) {
        for p in &self.0 {
            p.kill();
        }
    }
}

/// A running rctoken, its stdout and stderr going to files (a pipe would
/// stay open as long as any process of CMD holds it); killed and reaped on
/// drop.
struct Rctoken {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Rctoken {
    /// Start `cmd`, its output going to NAME.stdout and NAME.stderr in `dir`.
    fn spawn(dir: &Path, mut cmd: Command, name: &str) -> Rctoken {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("spawn rctoken");
        Rctoken { child, out, err }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&mut self, signal: i32) -> ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped (so its pid
        // cannot have been reused); it touches no memory of ours.
        unsafe { libc::kill(self.pid(), signal) };
        self.finish_within(HANG).0
    }

    /// Wait for it to exit, at most `limit` (a bound against hangs).
    #[track_caller]
    fn finish_within(&mut self, limit: Duration) -> (ExitStatus, Run) {
        let mut status = None;
        let done = wait_until(limit, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        let run = |code| Run {
            code,
            stdout: read(&self.out),
            stderr: read(&self.err),
        };
        match status {
            Some(s) if done => (s, run(s.code().unwrap_or(-1))),
            _ => panic!("rctoken still running after {limit:?}: {:#?}", run(-1)),
        }
    }
}

impl Drop for Rctoken {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The defect this guards against: rctoken killed while CMD ran left CMD
/// running, reparented to init, with the refresh lock released, and the next
/// rctoken spent the same single-use refresh token while the first request
/// was still in flight.
fn killed_rctoken_keeps_the_refresh_single_flight_until_cmd_has_exited(kind: Kind) {
    let env = Env::new("refresh-killed", kind);
    let mut strays = Strays::default();
    setup(&env);
    // Each run records its start and the refresh token it got; its
    // background child stands for the token request in flight: it runs
    // until the test creates `release` (or ~30 s passed) and records its
    // end just before it exits.
    let cmd = script(
        &env,
        "refresher",
        r#"echo "start $$" >> '{d}/events'
cat > '{d}/stdin.'$$
(
  i=0
  while [ ! -e '{d}/release' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
  echo "end $$" >> '{d}/events'
) &
echo "request $$ $!" >> '{d}/events'
wait
cat '{d}/new.json'
"#,
    );
    let mut first = Rctoken::spawn(env.tmp.path(), token_with(&env, &cmd), "first");
    let mut request = None;
    let started = wait_until(HANG, || {
        request = events(&env).iter().find_map(|l| {
            let mut w = l.strip_prefix("request ")?.split(' ');
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        });
        request.is_some()
    });
    assert!(started, "the first CMD never started: {:?}", events(&env));
    let (sh, bg) = request.unwrap();
    let (sh, bg) = (Proc::of(sh), Proc::of(bg));
    strays.0.extend([sh, bg]);
    assert_eq!(sh.parent(), Some(first.pid()), "sh is rctoken's child");

    let status = first.signal(libc::SIGKILL);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "killed mid-refresh");
    let mut second = Rctoken::spawn(env.tmp.path(), token_with(&env, &cmd), "second");

    let mut problems = Vec::new();
    // PR_SET_PDEATHSIG: the first CMD's shell dies with rctoken.
    if !wait_until(Duration::from_secs(10), || !sh.alive()) {
        problems.push("the first CMD's sh still runs 10 s after rctoken was killed");
    }
    // The test itself: the request must still be in flight here.
    assert!(bg.alive(), "the first CMD's request ended before release");
    // Give the second rctoken time to start its CMD, if it (wrongly) can.
    wait_until(Duration::from_secs(2), || {
        events(&env)
            .iter()
            .filter(|l| l.starts_with("start "))
            .count()
            > 1
    });
    std::fs::write(env.path("release"), "").unwrap();
    let (_, run) = second.finish_within(HANG);

    let ev = events(&env);
    let at = |line: &str| ev.iter().position(|l| l == line);
    let first_end = at(&format!("end {}", sh.pid));
    let second_start = ev
        .iter()
        .position(|l| l.starts_with("start ") && *l != format!("start {}", sh.pid));
    match (first_end, second_start) {
        (Some(end), Some(start)) if end < start => {}
        _ => problems.push("the second CMD started while the first CMD's request was running"),
    }
    assert!(problems.is_empty(), "{problems:?}; events: {ev:?}");

    // The first rctoken never saved, so the second refreshed with the
    // stored refresh token, and its result is stored.
    let run = run.ok().reveals_none(&[OLD_AT, OLD_RT, NEW_RT]);
    assert_eq!(run.stdout, format!("{NEW_AT}\n"));
    let second_pid = ev[second_start.unwrap()].strip_prefix("start ").unwrap();
    assert_eq!(read(&env.path(&format!("stdin.{second_pid}"))), OLD_RT);
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{NEW_AT}\n"));
    // Every process of the first CMD is gone.
    assert!(!sh.alive() && !bg.alive(), "{sh:?} {bg:?}");
}

/// The defect: `sleep 15 & cat token.json` made rctoken wait 15 s, because
/// the background `sleep` kept CMD's stdout open.
fn background_child_holding_stdout_does_not_delay_the_refresh(kind: Kind) {
    let env = Env::new("refresh-background", kind);
    let mut strays = Strays::default();
    setup(&env);
    let cmd = script(
        &env,
        "refresher",
        r#"cat > /dev/null
sleep 30 &
echo "$! $(cut -d' ' -f22 /proc/$!/stat)" > '{d}/background'
cat '{d}/new.json'
"#,
    );
    let started = Instant::now();
    let mut rctoken = Rctoken::spawn(env.tmp.path(), token_with(&env, &cmd), "token");
    let (_, run) = rctoken.finish_within(HANG);
    let took = started.elapsed();
    let bg = Proc::parse(&read(&env.path("background")));
    strays.0.push(bg);

    let run = run.ok().reveals_none(&[OLD_AT, OLD_RT, NEW_RT]);
    assert_eq!(run.stdout, format!("{NEW_AT}\n"));
    // Well under the background child's 30 s; a generous bound.
    assert!(took < Duration::from_secs(10), "rctoken took {took:?}");
    // Killed with CMD's process group once CMD exited.
    assert!(
        wait_until(Duration::from_secs(10), || !bg.alive()),
        "CMD's background child survived rctoken"
    );
    assert_eq!(env.run(&["token"]).ok().stdout, format!("{NEW_AT}\n"));
}

/// A child that left CMD's process group (setsid) is not killed with it; if
/// it keeps CMD's stdout open, rctoken stops waiting after a bound and
/// fails, keeping the stored tokens.
fn escaped_child_holding_stdout_makes_rctoken_give_up(kind: Kind) {
    let env = Env::new("refresh-escaped", kind);
    let mut strays = Strays::default();
    setup(&env);
    // CMD prints its JSON only once the escapee is in its own session, so
    // the group kill cannot catch it before setsid.
    let cmd = script(
        &env,
        "refresher",
        r#"cat > /dev/null
setsid sh -c 'echo "$$ $(cut -d" " -f22 /proc/$$/stat)" > {d}/escaped; exec sleep 30' < /dev/null 2> /dev/null &
while [ ! -s '{d}/escaped' ]; do sleep 0.01; done
cat '{d}/new.json'
"#,
    );
    let started = Instant::now();
    let mut rctoken = Rctoken::spawn(env.tmp.path(), token_with(&env, &cmd), "token");
    let recorded = wait_until(HANG, || !read(&env.path("escaped")).is_empty());
    assert!(recorded, "the escapee never started");
    let escapee = Proc::parse(&read(&env.path("escaped")));
    strays.0.push(escapee);
    let (_, run) = rctoken.finish_within(HANG);
    let took = started.elapsed();

    let run = run.fails(1).reveals_none(&[OLD_AT, OLD_RT, NEW_AT, NEW_RT]);
    assert!(run.stderr.contains("stdout"), "{}", run.stderr);
    assert!(took < Duration::from_secs(10), "rctoken took {took:?}");
    // The test itself: the escapee really survived the group kill.
    assert!(escapee.alive(), "the escapee did not escape");
    let v = env.run(&["export", "--reveal"]).ok().json();
    assert_eq!(v["access_token"], OLD_AT);
    assert_eq!(v["refresh_token"], OLD_RT);
}

/// When rctoken gives up on CMD before it exits (here: more than 1 MiB of
/// output), CMD and everything in its process group are killed, not left
/// running to reach the token endpoint later.
fn oversized_output_kills_cmd_and_its_group(kind: Kind) {
    let env = Env::new("refresh-oversized", kind);
    let mut strays = Strays::default();
    setup(&env);
    let cmd = script(
        &env,
        "refresher",
        r#"echo "$$ $(cut -d' ' -f22 /proc/$$/stat)" > '{d}/cmd'
cat > /dev/null
sleep 30 &
echo "$! $(cut -d' ' -f22 /proc/$!/stat)" > '{d}/background'
head -c 1100000 /dev/zero
sleep 30
"#,
    );
    let started = Instant::now();
    let mut rctoken = Rctoken::spawn(env.tmp.path(), token_with(&env, &cmd), "token");
    let (_, run) = rctoken.finish_within(HANG);
    let took = started.elapsed();
    let sh = Proc::parse(&read(&env.path("cmd")));
    let bg = Proc::parse(&read(&env.path("background")));
    strays.0.extend([sh, bg]);

    run.fails(6).reveals_none(&[OLD_AT, OLD_RT]);
    assert!(took < Duration::from_secs(10), "rctoken took {took:?}");
    assert!(
        wait_until(Duration::from_secs(10), || !sh.alive() && !bg.alive()),
        "CMD ({}) or its background child ({}) survived rctoken",
        sh.alive(),
        bg.alive()
    );
    let v = env.run(&["export", "--reveal"]).ok().json();
    assert_eq!(v["refresh_token"], OLD_RT);
}

/// The defect: a SIGQUIT during a refresh wrote a core file holding both
/// tokens. CMD reads rctoken's (its parent's) limits: the core size limit is
/// 0, soft and hard, although rctoken started with it raised. Then a
/// SIGQUIT during a refresh dumps no core.
fn rctoken_has_no_core_size_and_sigquit_dumps_no_core(kind: Kind) {
    let env = Env::new("refresh-core", kind);
    let mut strays = Strays::default();
    setup(&env);
    let cmd = script(
        &env,
        "inspect",
        r#"cat > /dev/null
echo $PPID > '{d}/ppid'
cat /proc/$PPID/limits > '{d}/limits'
cat '{d}/new.json'
"#,
    );
    // Raise the soft core limit to the hard one, so that a limit of 0 is
    // rctoken's doing.
    let hard = read_hard_core_limit();
    assert_ne!(hard, "0", "the hard core limit is 0: this test cannot tell");
    let raise = r#"ulimit -c "$(ulimit -H -c)" && exec "$@""#;
    let mut rctoken = Rctoken::spawn(
        env.tmp.path(),
        wrapped(&env, &["sh", "-c", raise, "sh"], &cmd),
        "token",
    );
    let pid = rctoken.pid();
    let (_, run) = rctoken.finish_within(HANG);
    assert_eq!(run.ok().stdout, format!("{NEW_AT}\n"));
    assert_eq!(read(&env.path("ppid")).trim(), pid.to_string());
    let limits = read(&env.path("limits"));
    let core: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .unwrap_or_else(|| panic!("no core line: {limits}"))
        .split_whitespace()
        .collect();
    assert_eq!(core, ["0", "0", "bytes"], "rctoken's core limit: {limits}");

    sigquit_dumps_no_core(&env, &mut strays, raise);
}

fn read_hard_core_limit() -> String {
    let out = Command::new("sh")
        .args(["-c", "ulimit -H -c"])
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// SIGQUIT to rctoken while CMD runs, with the soft core limit raised: no
/// core. Only where the kernel writes cores to a file relative to the
/// process's working directory (here a temp dir), so that a failure leaves
/// no core anywhere else; a control process shows that cores are written.
fn sigquit_dumps_no_core(env: &Env, strays: &mut Strays, raise: &str) {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    if pattern.is_empty() || pattern.starts_with('|') || pattern.contains('/') {
        eprintln!("SIGQUIT check not run: core_pattern {pattern:?} writes outside the test's dir");
        return;
    }
    let control_dir = env.path("control-cwd");
    let rctoken_dir = env.path("rctoken-cwd");
    std::fs::create_dir(&control_dir).unwrap();
    std::fs::create_dir(&rctoken_dir).unwrap();

    let control = Command::new("sh")
        .args(["-c", raise, "sh", "sh", "-c", "kill -QUIT $$"])
        .current_dir(&control_dir)
        .status()
        .expect("sh");
    assert!(
        control.core_dumped(),
        "control: a SIGQUIT with the core limit raised dumped no core ({control:?}), \
         so this machine cannot show rctoken's"
    );

    let cmd = script(
        env,
        "waiting",
        r#"echo "$$ $(cut -d' ' -f22 /proc/$$/stat)" > '{d}/waiting'
cat > /dev/null
i=0
while [ ! -e '{d}/release' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
cat '{d}/new.json'
"#,
    );
    let _ = std::fs::remove_file(env.path("release"));
    setup(env); // expired again: the first part stored a fresh token
    let mut c = wrapped(env, &["sh", "-c", raise, "sh"], &cmd);
    c.current_dir(&rctoken_dir);
    let mut rctoken = Rctoken::spawn(env.tmp.path(), c, "sigquit");
    let waiting = wait_until(HANG, || !read(&env.path("waiting")).is_empty());
    assert!(waiting, "CMD never started");
    strays.0.push(Proc::parse(&read(&env.path("waiting"))));
    let status = rctoken.signal(libc::SIGQUIT);
    std::fs::write(env.path("release"), "").unwrap();
    assert_eq!(status.signal(), Some(libc::SIGQUIT), "{status:?}");
    assert!(!status.core_dumped(), "rctoken dumped core: {status:?}");
    let files: Vec<_> = std::fs::read_dir(&rctoken_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.is_empty(), "files in rctoken's cwd: {files:?}");
}

/// rctoken is not dumpable (PR_SET_DUMPABLE 0), as seen by CMD, which runs
/// as the same user: the kernel makes a non-dumpable process's /proc files
/// root's and refuses other processes of the user to read its environ (or
/// memory, or attach with ptrace). CMD's own shell, dumpable, is the
/// control. Only an unprivileged user sees this (root may read anything),
/// so as root the test runs rctoken and CMD as `nobody` (uid 65534), with
/// its own store and keyutils (the Secret Service bus is root's); its
/// subject is the process, not the backend.
#[test]
fn rctoken_is_not_dumpable() {
    needs!(Kind::Keyutils);
    // SAFETY: geteuid(2) has no preconditions and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("user");
    std::fs::create_dir(&dir).unwrap();
    let mut prefix: Vec<&str> = Vec::new();
    if root {
        use std::os::unix::fs::PermissionsExt;
        // nobody may pass through the temp dir into its own `user` dir.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        prefix = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ];
    }
    let app = format!("cli-dumpable-{}", std::process::id());
    let store = dir.join("store");
    let rctoken = |args: &[&str]| {
        let mut c = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(cli::bin());
                c
            }
            None => Command::new(cli::bin()),
        };
        c.env_remove("RCTOKEN_APP")
            .env_remove("RCTOKEN_BACKEND")
            .env_remove("RCTOKEN_DIR")
            .args(["--app", &app, "--backend", "keyutils", "--dir"])
            .arg(&store)
            .args(args);
        c
    };
    /// Logs out (deleting the keyutils items) when the test ends.
    struct Logout(Command);
    impl Drop for Logout {
        fn drop(&mut self) {
            let _ = self.0.output();
        }
    }
    let _logout = Logout(rctoken(&["logout", "--all"]));

    let expired = Tok {
        access: OLD_AT,
        expires_in: 0,
        refresh: Some((OLD_RT, 604_800)),
        owner: Some("8008"),
    };
    let run = cli::run_with_stdin(&mut rctoken(&["import"]), expired.json().as_bytes());
    assert_eq!(run.code, 0, "import: {run:#?}");
    let new = Tok {
        access: NEW_AT,
        expires_in: 3600,
        refresh: Some((NEW_RT, 604_800)),
        owner: Some("8008"),
    };
    std::fs::write(dir.join("new.json"), new.json()).unwrap();
    let d = dir.display();
    let script = dir.join("inspect.sh");
    std::fs::write(
        &script,
        format!(
            r#"cat > /dev/null
id -u > '{d}/uid'
echo $PPID > '{d}/ppid'
stat -c %u /proc/$PPID/status > '{d}/rctoken-owner'
stat -c %u /proc/$$/status > '{d}/cmd-owner'
if head -c 1 /proc/$PPID/environ > /dev/null 2>&1; then echo readable; else echo refused; fi > '{d}/rctoken-environ'
if head -c 1 /proc/$$/environ > /dev/null 2>&1; then echo readable; else echo refused; fi > '{d}/cmd-environ'
cat '{d}/new.json'
"#
        ),
    )
    .unwrap();
    let cmd = format!("exec sh '{}'", script.display());
    let mut c = rctoken(&["token", "--refresh-with", &cmd]);
    c.stdin(Stdio::null());
    let mut child = Rctoken::spawn(tmp.path(), c, "token");
    let pid = child.pid();
    let (_, run) = child.finish_within(HANG);
    let got = |name: &str| read(&dir.join(name)).trim().to_string();
    assert_eq!(run.ok().stdout, format!("{NEW_AT}\n"));
    assert_eq!(got("ppid"), pid.to_string(), "CMD's parent is rctoken");
    let uid = got("uid");
    assert_ne!(uid, "0", "CMD must run unprivileged for this check");
    // The control: a dumpable process of the user is the user's.
    assert_eq!(got("cmd-owner"), uid, "control");
    assert_eq!(got("cmd-environ"), "readable", "control");
    assert_eq!(
        got("rctoken-owner"),
        "0",
        "rctoken's /proc files are not root's: dumpable"
    );
    assert_eq!(got("rctoken-environ"), "refused", "rctoken is dumpable");
}
