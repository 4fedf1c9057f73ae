//! `token --refresh-with CMD`: run the caller's refresher through `sh -c`,
//! hand it the refresh token on stdin (never argv or the environment, which
//! other users' `ps` can read), and parse the token JSON it prints.
//!
//! RingCentral refresh tokens are single use, so a refresh must never start
//! while an earlier refresher of the same profile can still reach the token
//! endpoint. On Unix CMD therefore runs confined:
//!
//! - CMD and every process it starts inherit the profile's refresh lock
//!   ([`RefreshLock::hold_in_children_of`]): if rctoken dies mid-refresh,
//!   the lock stays held until the last of them exits, so no other rctoken
//!   refreshes meanwhile.
//! - CMD runs in its own process group, and on Linux dies with rctoken
//!   (`PR_SET_PDEATHSIG` = SIGKILL).
//! - On every way out of [`run`] once CMD is started (result in, error,
//!   output too large, output held open), the whole group is killed with
//!   SIGKILL before CMD is reaped.
//! - Reading stops when CMD exits: its group is killed (which closes the
//!   copies of its stdout that background children hold) and what is left
//!   is read for at most 2 s more (`DRAIN`); a process that left the
//!   group and still holds stdout then makes the refresh fail.
//!
//! Elsewhere (Windows) CMD is a plain child process.

use std::process::{Command, ExitStatus, Stdio};

use rctoken::secrecy::{ExposeSecret, SecretString};
use rctoken::{RefreshLock, TokenInfo};
use zeroize::Zeroizing;

use super::input::{self, ReadError};

/// The environment variable naming the profile's owner for the refresher.
pub const OWNER_ENV: &str = "RCTOKEN_OWNER_ID";

/// Why the refresher did not produce a token. Never holds its output.
#[derive(Debug)]
pub enum RefresherError {
    /// `sh` could not be started.
    Spawn(std::io::Error),
    /// Talking to the refresher failed.
    Io(std::io::Error),
    /// The refresher exited unsuccessfully.
    Exit(ExitStatus),
    /// It printed more than 1 MiB.
    TooLarge,
    /// It printed something that is not token JSON.
    BadOutput(String),
    /// It printed RingCentral's error response (an
    /// [`rctoken::Error::ErrorResponse`], its source): the refresh was
    /// refused. `invalid_grant` makes the refresh a login-required error.
    Refused(rctoken::Error),
    /// It exited, but a process it started outside its process group still
    /// held its stdout open after the grace period.
    StdoutHeld,
}

impl RefresherError {
    /// The refresher ran but its output was not acceptable token JSON.
    pub fn is_bad_output(&self) -> bool {
        matches!(
            self,
            RefresherError::BadOutput(_) | RefresherError::TooLarge
        )
    }

    /// What to do, for the hint line.
    pub fn hint(&self) -> &'static str {
        match self {
            RefresherError::Spawn(_) | RefresherError::Io(_) => {
                if cfg!(windows) {
                    "check that `cmd` can run CMD; the stored tokens are unchanged"
                } else {
                    "check that `sh` can run CMD; the stored tokens are unchanged"
                }
            }
            RefresherError::Exit(_) => {
                "see CMD's own messages above; the stored tokens are unchanged"
            }
            RefresherError::TooLarge | RefresherError::BadOutput(_) => {
                "CMD must print the token endpoint's JSON response on stdout; the stored tokens are unchanged"
            }
            RefresherError::Refused(_) => {
                "RingCentral refused the refresh CMD made (its error above); the stored tokens are unchanged"
            }
            RefresherError::StdoutHeld => {
                "a process CMD starts in the background must not keep CMD's stdout open (redirect it, e.g. `>/dev/null`); the stored tokens are unchanged"
            }
        }
    }
}

impl std::fmt::Display for RefresherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefresherError::Spawn(e) => {
                write!(f, "could not start the refresher with {SHELL}: {e}")
            }
            RefresherError::Io(e) => write!(f, "could not talk to the refresher: {e}"),
            RefresherError::Exit(status) => write!(f, "the refresher failed ({status})"),
            RefresherError::TooLarge => write!(
                f,
                "the refresher printed more than {} bytes",
                input::MAX_INPUT
            ),
            RefresherError::BadOutput(reason) => {
                write!(f, "the refresher printed bad token JSON: {reason}")
            }
            RefresherError::Refused(e) => write!(f, "the refresher's output: {e}"),
            RefresherError::StdoutHeld => write!(
                f,
                "the refresher exited, but a process it started still held its stdout open"
            ),
        }
    }
}

impl std::error::Error for RefresherError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RefresherError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

/// The shell that runs CMD, as the user would type it: `sh -c CMD` on
/// Unix, `cmd /D /S /C "CMD"` on Windows (with /S, cmd.exe takes what is
/// between the outer quotes verbatim; the line is passed raw, since std's
/// argument quoting follows the C runtime's rules, which cmd.exe does not).
pub const SHELL: &str = if cfg!(windows) { "cmd /C" } else { "sh -c" };

#[cfg(not(windows))]
fn shell(cmd: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    c
}

#[cfg(windows)]
fn shell(cmd: &str) -> Command {
    use std::os::windows::process::CommandExt;
    let mut c = Command::new("cmd.exe");
    c.args(["/D", "/S", "/C"]).raw_arg(format!("\"{cmd}\""));
    c
}

/// Run CMD through [`SHELL`] with `refresh_token` (exactly, no newline) on its stdin
/// and [`OWNER_ENV`] set; its stderr passes through, its stdout (at most
/// 1 MiB, read into a zeroized buffer) must be token endpoint JSON. `lock`
/// is the profile's refresh lock, which CMD's processes hold too.
pub fn run(
    cmd: &str,
    owner_id: &str,
    refresh_token: &SecretString,
    lock: &RefreshLock<'_>,
) -> Result<TokenInfo, RefresherError> {
    let mut command = shell(cmd);
    command
        .env(OWNER_ENV, owner_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    lock.hold_in_children_of(&mut command);
    imp::exchange(command, refresh_token.expose_secret().as_bytes())?.into_token()
}

/// What one run of CMD came to.
struct Exchange {
    status: ExitStatus,
    output: Result<Zeroizing<Vec<u8>>, ReadError>,
    /// Reading gave up: CMD had exited but its stdout stayed open.
    held: bool,
    /// Writing the refresh token to CMD's stdin.
    written: std::io::Result<()>,
}

impl Exchange {
    fn into_token(self) -> Result<TokenInfo, RefresherError> {
        let output = match self.output {
            Ok(buf) => buf,
            Err(ReadError::TooLarge) => return Err(RefresherError::TooLarge),
            // CMD's own failure explains more than the child it left.
            Err(ReadError::Io(_)) if self.held && !self.status.success() => {
                return Err(RefresherError::Exit(self.status));
            }
            Err(ReadError::Io(_)) if self.held => return Err(RefresherError::StdoutHeld),
            Err(ReadError::Io(e)) => return Err(RefresherError::Io(e)),
        };
        if !self.status.success() {
            return Err(RefresherError::Exit(self.status));
        }
        match self.written {
            // A CMD that does not need the refresh token may exit without reading it.
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(RefresherError::Io(e));
            }
            _ => {}
        }
        TokenInfo::from_json(&output).map_err(|e| match e {
            rctoken::Error::BadToken { reason } => RefresherError::BadOutput(reason),
            refused @ rctoken::Error::ErrorResponse { .. } => RefresherError::Refused(refused),
            other => RefresherError::BadOutput(other.to_string()),
        })
    }
}

#[cfg(unix)]
use unix as imp;

#[cfg(unix)]
mod unix {
    use std::io::{ErrorKind, Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus};
    use std::time::{Duration, Instant};

    use super::{Exchange, RefresherError, input};

    /// How long to keep reading CMD's stdout after CMD exited and its
    /// process group was killed. Killed processes close their copies at
    /// once; only a process that left the group can keep it open this long.
    pub const DRAIN: Duration = Duration::from_secs(2);

    /// How often to check whether CMD has exited while its stdout is quiet.
    const CHECK_EVERY: Duration = Duration::from_millis(20);

    pub(super) fn exchange(mut command: Command, input: &[u8]) -> Result<Exchange, RefresherError> {
        command.process_group(0);
        #[cfg(target_os = "linux")]
        sys::die_with_parent(&mut command);
        let child = command.spawn().map_err(RefresherError::Spawn)?;
        // From here on, every return kills CMD's group (Group's drop).
        let mut group = Group::new(child)?;
        let (Some(stdin), Some(stdout)) = (group.child.stdin.take(), group.child.stdout.take())
        else {
            return Err(RefresherError::Io(std::io::Error::other("no pipes to CMD")));
        };
        // Written from the same loop that reads, so a CMD that prints before
        // reading (or never reads) cannot deadlock us.
        sys::set_nonblocking(&stdin).map_err(RefresherError::Io)?;
        let mut pump = Pump {
            group: &group,
            stdout,
            stdin: (!input.is_empty()).then_some(stdin),
            input,
            written: Ok(()),
            drain_until: None,
            held: false,
        };
        let output = input::read_bounded(&mut pump);
        let Pump {
            stdout,
            stdin,
            written,
            held,
            drain_until,
            ..
        } = pump;
        // Close both pipes before waiting: a CMD still reading its stdin
        // gets EOF.
        drop((stdin, stdout));
        if output.is_ok() && drain_until.is_none() {
            // EOF while CMD still runs (it closed its stdout): wait for it,
            // as for any CMD (it is not timed out).
            group.wait_exit().map_err(RefresherError::Io)?;
        }
        let status = group.finish().map_err(RefresherError::Io)?;
        Ok(Exchange {
            status,
            output,
            held,
            written,
        })
    }

    /// CMD's process group, led by CMD's `sh`. The leader is reaped only
    /// after the group was killed, so the group id cannot have been reused
    /// by then. Dropping it kills the group and reaps the leader.
    struct Group {
        child: Child,
        pgid: libc::pid_t,
        reaped: bool,
    }

    impl Group {
        fn new(mut child: Child) -> Result<Group, RefresherError> {
            match libc::pid_t::try_from(child.id()) {
                Ok(pgid) if pgid > 1 => Ok(Group {
                    child,
                    pgid,
                    reaped: false,
                }),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(RefresherError::Io(std::io::Error::other(
                        "CMD got an unexpected process id",
                    )))
                }
            }
        }

        /// SIGKILL to every process still in the group.
        fn kill(&self) {
            sys::kill_group(self.pgid);
        }

        /// Has CMD's `sh` exited? It is not reaped.
        fn exited(&self) -> std::io::Result<bool> {
            sys::exited(self.pgid, false)
        }

        /// Wait until CMD's `sh` exits, without reaping it.
        fn wait_exit(&self) -> std::io::Result<()> {
            sys::exited(self.pgid, true).map(|_| ())
        }

        /// Kill what is left of the group, then reap CMD's `sh`.
        fn finish(mut self) -> std::io::Result<ExitStatus> {
            self.kill();
            self.reaped = true;
            self.child.wait()
        }
    }

    impl Drop for Group {
        fn drop(&mut self) {
            if !self.reaped {
                self.kill();
                let _ = self.child.wait();
            }
        }
    }

    /// CMD's stdout as a [`Read`]: each read waits (poll) for output, feeds
    /// the refresh token to CMD's stdin as the pipe takes it, and notices
    /// when CMD exits. Then it kills CMD's group and allows [`DRAIN`] more
    /// for the rest of the output, after which reads fail (`held`).
    struct Pump<'a> {
        group: &'a Group,
        stdout: ChildStdout,
        stdin: Option<ChildStdin>,
        /// What is left to write.
        input: &'a [u8],
        written: std::io::Result<()>,
        drain_until: Option<Instant>,
        held: bool,
    }

    impl Pump<'_> {
        fn feed(&mut self) {
            let Some(stdin) = self.stdin.as_mut() else {
                return;
            };
            match stdin.write(self.input) {
                Ok(n) => {
                    self.input = &self.input[n..];
                    if self.input.is_empty() {
                        self.stdin = None; // EOF for CMD
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => {
                    self.written = Err(e);
                    self.stdin = None;
                }
            }
        }
    }

    impl Read for Pump<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            loop {
                let wait = match self.drain_until {
                    None => CHECK_EVERY,
                    Some(until) => {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            self.held = true;
                            return Err(std::io::Error::new(
                                ErrorKind::TimedOut,
                                "CMD's stdout is still open after CMD exited",
                            ));
                        }
                        left
                    }
                };
                let (readable, writable) = sys::poll(
                    &self.stdout,
                    self.stdin.as_ref().map(|s| s.as_raw_fd()),
                    wait,
                )?;
                if writable {
                    self.feed();
                }
                if self.drain_until.is_none() && self.group.exited()? {
                    // CMD is done. What is left of its group could only
                    // keep us waiting (or spend the token later): kill it,
                    // which also closes their copies of CMD's stdout.
                    self.group.kill();
                    self.stdin = None;
                    self.drain_until = Some(Instant::now() + DRAIN);
                }
                if readable {
                    return self.stdout.read(buf);
                }
            }
        }
    }

    /// The system calls, each wrapped safely.
    #[allow(unsafe_code)]
    mod sys {
        use std::os::fd::{AsFd, AsRawFd, RawFd};
        use std::time::Duration;

        /// Make CMD's `sh` die (SIGKILL) when this thread, the one that
        /// spawns it, ends. That is the main thread: `refresh_holding` calls
        /// the refresh function on the caller's thread, so this means "when
        /// rctoken exits", however it exits.
        #[cfg(target_os = "linux")]
        pub(super) fn die_with_parent(command: &mut std::process::Command) {
            use std::os::unix::process::CommandExt;
            let Ok(parent) = libc::pid_t::try_from(std::process::id()) else {
                return;
            };
            // SAFETY: the closure runs in the forked child before exec and
            // calls only prctl and getppid, which are async-signal-safe;
            // building an io::Error from an errno allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // rctoken died before prctl took effect: the signal
                    // will never come, so do not run CMD at all.
                    if libc::getppid() != parent {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                    Ok(())
                });
            }
        }

        pub(super) fn set_nonblocking(fd: &impl AsFd) -> std::io::Result<()> {
            let fd = fd.as_fd().as_raw_fd();
            // SAFETY: fcntl on a descriptor borrowed for the call; F_GETFL
            // and F_SETFL take and return plain integers.
            let ok = unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        }

        /// SIGKILL to process group `pgid`. The caller has not reaped the
        /// group's leader, so the id still names that group.
        pub(super) fn kill_group(pgid: libc::pid_t) {
            debug_assert!(pgid > 1);
            // SAFETY: kill(2) takes plain integers and touches no memory of
            // ours; a negative pid names a process group (never 0 or -1:
            // `Group::new` refuses pids below 2).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }

        /// Has child `pid` exited (with `block`: wait until it has)? The
        /// child is left unreaped (`WNOWAIT`).
        pub(super) fn exited(pid: libc::pid_t, block: bool) -> std::io::Result<bool> {
            let Ok(id) = libc::id_t::try_from(pid) else {
                return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
            };
            let mut flags = libc::WEXITED | libc::WNOWAIT;
            if !block {
                flags |= libc::WNOHANG;
            }
            loop {
                // SAFETY: siginfo_t is a plain C struct for which all zero
                // bytes are a valid value.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: waitid writes at most one siginfo_t into `info`,
                // which lives across the call.
                let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) };
                if r == 0 {
                    // With WNOHANG and nothing to report, info stays zeroed.
                    return Ok(info.si_signo != 0);
                }
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }

        /// Wait at most `wait` until `read` is readable (or at EOF) or
        /// `write` (if any) writable (or closed by CMD); which of them is.
        pub(super) fn poll(
            read: &impl AsFd,
            write: Option<RawFd>,
            wait: Duration,
        ) -> std::io::Result<(bool, bool)> {
            let mut fds = [
                libc::pollfd {
                    fd: read.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                // A negative fd is ignored by poll.
                libc::pollfd {
                    fd: write.unwrap_or(-1),
                    events: libc::POLLOUT,
                    revents: 0,
                },
            ];
            let millis =
                libc::c_int::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
            // SAFETY: poll reads and writes exactly `fds.len()` pollfd
            // structs in `fds`, which lives across the call; the
            // descriptors are borrowed for the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    return Ok((false, false));
                }
                return Err(e);
            }
            Ok((fds[0].revents != 0, fds[1].revents != 0))
        }
    }
}

#[cfg(not(unix))]
use portable as imp;

/// CMD as a plain child process: a writer thread feeds its stdin while this
/// thread reads its stdout to EOF.
#[cfg(not(unix))]
mod portable {
    use std::io::Write;
    use std::process::Command;

    use super::{Exchange, RefresherError, input};

    pub(super) fn exchange(mut command: Command, input: &[u8]) -> Result<Exchange, RefresherError> {
        let mut child = command.spawn().map_err(RefresherError::Spawn)?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RefresherError::Io(std::io::Error::other("no pipes to CMD")));
        };
        let (written, output) = std::thread::scope(|s| {
            // A separate writer, so a CMD that prints before reading (or never
            // reads) cannot deadlock us.
            let writer = s.spawn(move || {
                let r = stdin.write_all(input);
                drop(stdin); // EOF
                r
            });
            let read = input::read_bounded(&mut stdout);
            if read.is_err() {
                let _ = child.kill();
            }
            drop(stdout);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
            (written, read)
        });
        let status = child.wait().map_err(RefresherError::Io)?;
        Ok(Exchange {
            status,
            output,
            held: false,
            written,
        })
    }
}
