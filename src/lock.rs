//! File locks: the only module that calls `File::lock*` (enforced by
//! clippy's `disallowed_methods`, see `.clippy.toml`).
//!
//! Locks live on separate, stable lock files (the metadata file is replaced
//! by rename and cannot carry one). They use std's `File::try_lock` /
//! `try_lock_shared` (flock on Unix, LockFileEx on Windows), polled with
//! backoff until a deadline, so waiting is always bounded. A lock is released
//! when its [`FileLock`] drops.

#![allow(clippy::disallowed_methods)]

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::files;

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Take a lock on `path` (created 0600 if missing), waiting at most `timeout`.
    pub(crate) fn acquire(path: &Path, mode: Mode, timeout: Duration) -> Result<FileLock> {
        let file = files::open_checked(
            path,
            files::private_options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?
        .ok_or_else(|| {
            // Only a missing parent directory makes a creating open say this.
            Error::io(
                "opening lock file",
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            let attempt = match mode {
                Mode::Shared => file.try_lock_shared(),
                Mode::Exclusive => file.try_lock(),
            };
            match attempt {
                Ok(()) => {
                    return Ok(FileLock {
                        file,
                        path: path.to_path_buf(),
                    });
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io("locking", path, e)),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path: path.to_path_buf(),
                    waited,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl FileLock {
    /// Let the processes that `cmd` starts inherit this lock's open file
    /// description, so the lock stays held until the last of them exits or
    /// closes it, even if this process dies first (flock locks belong to the
    /// open file description, not to the process). The descriptor's
    /// close-on-exec flag is cleared only in the forked child, so children
    /// that other threads of this process start never inherit it. A no-op on
    /// platforms other than Unix.
    pub(crate) fn inherit_into(&self, cmd: &mut std::process::Command) {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = self.file.as_raw_fd();
            #[allow(unsafe_code)]
            // SAFETY: the closure runs in the forked child before exec and
            // calls only fcntl, which is async-signal-safe, on a descriptor
            // this process owns; it allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        #[cfg(not(unix))]
        let _ = cmd;
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Err(e) = self.file.unlock() {
            log::warn!("unlocking {} failed: {e}", self.path.display());
        }
    }
}
