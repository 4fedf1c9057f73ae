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
use crate::wait::{Patience, WaitFor};

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Take an exclusive lock on `path` (created 0600 if missing), waiting
    /// at most `timeout`.
    pub(crate) fn exclusive(path: &Path, timeout: &Patience) -> Result<FileLock> {
        let options = files::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .clone();
        match Self::acquire(path, &options, true, timeout)? {
            Some(lock) => Ok(lock),
            // Only a missing parent directory makes a creating open say this.
            None => Err(Error::io(
                "opening lock file",
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )),
        }
    }

    /// Take a shared lock on `path`, waiting at most `timeout`. The file is
    /// opened read-only and never created, so readers work on a read-only
    /// store (a read-only mount, or a lock file of mode 0400) and leave no
    /// file behind. `None` if the lock file does not exist: nothing was
    /// ever written under it.
    pub(crate) fn shared(path: &Path, timeout: &Patience) -> Result<Option<FileLock>> {
        let mut options = files::private_options();
        options.read(true);
        Self::acquire(path, &options, false, timeout)
    }

    fn acquire(
        path: &Path,
        options: &std::fs::OpenOptions,
        exclusive: bool,
        patience: &Patience,
    ) -> Result<Option<FileLock>> {
        let timeout = patience.limit;
        let mut told = false;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        'open: loop {
            let Some(file) = files::open_checked(path, options)? else {
                return Ok(None);
            };
            loop {
                let attempt = if exclusive {
                    file.try_lock()
                } else {
                    file.try_lock_shared()
                };
                match attempt {
                    Ok(()) if still_linked(&file, path)? => {
                        return Ok(Some(FileLock {
                            file,
                            path: path.to_path_buf(),
                        }));
                    }
                    // The holder removed the lock file (see `remove`) while
                    // this process waited on it: lock the file at the path now.
                    Ok(()) => continue 'open,
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(e)) => return Err(Error::io("locking", path, e)),
                }
                let waited = start.elapsed();
                patience.tell_if_long(waited, &mut told, WaitFor::Lock(path));
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

    /// Delete the lock file, then release the lock. Whoever waited on the
    /// deleted file notices (`still_linked`) and locks whatever is at the
    /// path next, so the lock stays mutually exclusive. On platforms other
    /// than Unix the file is kept (Windows cannot delete a file others have
    /// open, and would fail their next open).
    pub(crate) fn remove(self) -> Result<()> {
        #[cfg(unix)]
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(Error::io("removing lock file", &self.path, e));
        }
        Ok(())
    }
}

/// Whether `file` (just locked) is still the file at `path`.
#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file
        .metadata()
        .map_err(|e| Error::io("inspecting", path, e))?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspecting", path, e)),
    }
}

#[cfg(not(unix))]
fn still_linked(_file: &File, _path: &Path) -> Result<bool> {
    Ok(true)
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
