//! Safe filesystem primitives for the store directory: private creation
//! modes from the start (never a chmod afterwards), refusal of unsafe
//! ownership, modes and symlinks, and the atomic durable replace.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, UnsafeKind};

/// Create `dir` (and missing parents) with mode 0700, then check it is safe.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => return check_meta(dir, &meta, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(|e| Error::io("creating directory", dir, e))?;
        }
        Err(e) => return Err(Error::io("inspecting directory", dir, e)),
    }
    check_safe(dir, true)
}

/// Refuse a path that is a symlink, not ours, or writable by group/others.
pub(crate) fn check_safe(path: &Path, is_dir: bool) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("inspecting", path, e))?;
    check_meta(path, &meta, is_dir)
}

/// [`check_safe`] if `path` exists (one `lstat`); an absent path is fine.
pub(crate) fn check_safe_if_exists(path: &Path, is_dir: bool) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_meta(path, &meta, is_dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("inspecting", path, e)),
    }
}

/// Open a store file with `options` (see [`private_options`]) without
/// following a symlink, and check the opened file itself (`fstat`): one open
/// and one stat, and nothing can swap the file between check and use.
/// `Ok(None)` if it does not exist (and `options` does not create it).
pub(crate) fn open_checked(path: &Path, options: &OpenOptions) -> Result<Option<File>> {
    #[cfg(not(unix))]
    check_safe_if_exists(path, false)?;
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::UnsafeStore {
                path: path.to_path_buf(),
                reason: "it is a symbolic link".into(),
                kind: UnsafeKind::Symlink,
            });
        }
        Err(e) => return Err(Error::io("opening", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("inspecting", path, e))?;
    check_meta(path, &meta, false)?;
    Ok(Some(file))
}

fn check_meta(path: &Path, meta: &std::fs::Metadata, is_dir: bool) -> Result<()> {
    let unsafe_ = |reason: &str, kind: UnsafeKind| Error::UnsafeStore {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        kind,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_("it is a symbolic link", UnsafeKind::Symlink));
    }
    if is_dir && !meta.is_dir() {
        return Err(unsafe_("it is not a directory", UnsafeKind::NotADirectory));
    }
    if !is_dir && !meta.is_file() {
        return Err(unsafe_("it is not a regular file", UnsafeKind::NotAFile));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != current_uid() {
            return Err(unsafe_(
                "it is owned by another user",
                UnsafeKind::OtherOwner,
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_(
                "it is writable by group or others",
                UnsafeKind::OpenToOthers,
            ));
        }
    }
    Ok(())
}

#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Options that open a private file: mode 0600 at creation, no symlinks
/// followed, and no blocking open of a FIFO planted in the store (a regular
/// file ignores `O_NONBLOCK`; anything else is refused after the open).
pub(crate) fn private_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    o
}

/// Read a whole file if it exists, refusing unsafe ones. `None` if absent.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    let Some(mut file) = open_checked(path, private_options().read(true))? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .map_err(|e| Error::io("reading", path, e))?;
    Ok(Some(buf))
}

/// Read a whole file if it exists and is at most `max` bytes, refusing
/// unsafe ones. `None` if absent.
pub(crate) fn read_bounded(path: &Path, max: usize) -> Result<Option<Vec<u8>>> {
    let Some(file) = open_checked(path, private_options().read(true))? else {
        return Ok(None);
    };
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("reading", path, e))?;
    if buf.len() > max {
        return Err(Error::io(
            "reading",
            path,
            std::io::Error::other(format!("larger than {max} bytes")),
        ));
    }
    Ok(Some(buf))
}

/// Atomically and durably replace `path` with `bytes`: a 0600 temp file in the
/// same directory, written, fsynced, renamed over `path`, then the directory
/// fsynced. The temp file is removed if anything fails.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_at(path, bytes, Some(crate::failpoint::Point::MetadataRename))
}

/// [`write_atomic`] for a file other than metadata (a sealed item), which
/// the metadata failpoint does not stop.
pub(crate) fn write_atomic_unchecked(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_at(path, bytes, None)
}

fn write_atomic_at(
    path: &Path,
    bytes: &[u8],
    point: Option<crate::failpoint::Point>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    check_safe_if_exists(path, false)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        random_u32()
    ));
    let result = (|| {
        let mut f: File = private_options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        if let Some(point) = point {
            crate::failpoint::check(point).map_err(|e| Error::io("renaming", &tmp, e))?;
        }
        rename_replacing(&tmp, path).map_err(|e| Error::io("renaming", &tmp, e))?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Disk space set aside for a metadata file before an operation that
/// cannot be repeated (a refresh spends the refresh token): a 0600 file at a
/// caller-chosen path, filled with `len` bytes and fsynced, so that writing
/// the real bytes over it later needs no new blocks on a full disk (on file
/// systems that overwrite in place; copy-on-write ones may still need some).
/// Removed on drop unless committed.
#[derive(Debug)]
pub(crate) struct ReservedFile {
    file: File,
    path: PathBuf,
    committed: bool,
}

/// Create (or reuse, truncating) `path` and fill it with `len` bytes.
pub(crate) fn reserve(path: &Path, len: usize) -> Result<ReservedFile> {
    let file = open_checked(
        path,
        private_options().write(true).create(true).truncate(true),
    )?
    .ok_or_else(|| Error::io("creating", path, std::io::ErrorKind::NotFound.into()))?;
    let mut reserved = ReservedFile {
        file,
        path: path.to_path_buf(),
        committed: false,
    };
    reserved
        .file
        .write_all(&vec![b' '; len])
        .and_then(|()| reserved.file.sync_all())
        .map_err(|e| Error::io("reserving space in", path, e))?;
    Ok(reserved)
}

impl ReservedFile {
    /// Write `bytes` over the reserved space, then atomically and durably
    /// rename the file to `target` (same file system).
    pub(crate) fn commit(mut self, target: &Path, bytes: &[u8]) -> Result<()> {
        use std::io::Seek;
        let path = self.path.clone();
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(bytes))
            .and_then(|()| self.file.set_len(bytes.len() as u64))
            .and_then(|()| self.file.sync_all())
            .map_err(|e| Error::io("writing", &path, e))?;
        check_safe_if_exists(target, false)?;
        crate::failpoint::check(crate::failpoint::Point::MetadataRename)
            .map_err(|e| Error::io("renaming", &path, e))?;
        rename_replacing(&path, target).map_err(|e| Error::io("renaming", &path, e))?;
        self.committed = true;
        sync_dir(target.parent().unwrap_or(Path::new(".")));
        sync_dir(path.parent().unwrap_or(Path::new(".")));
        Ok(())
    }
}

impl Drop for ReservedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Delete the temp files [`write_atomic`] leaves in `dir` when its process
/// dies mid-write (`.<name>.<pid>.<hex>.tmp`, any name). Call only while
/// holding the lock that serializes writes in `dir`. Returns how many.
pub(crate) fn remove_stale_temps_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with('.') && n.ends_with(".tmp") && e.file_type().is_ok_and(|t| t.is_file())
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Whether `path` exists (without following a symlink); `None` if that
/// cannot be told (for example, no permission to look).
pub(crate) fn exists(path: &Path) -> Option<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Some(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// Remove `path` (absent is fine) and fsync its directory.
pub(crate) fn remove_durable(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("removing", path, e)),
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// Move `path` aside to `path.corrupt-<unix time>`, keeping it. Returns the new path.
pub(crate) fn move_aside(path: &Path, now_unix: i64) -> Result<PathBuf> {
    let target = aside_path(path, now_unix);
    rename_replacing(path, &target).map_err(|e| Error::io("moving aside", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(target)
}

/// Copy `path` to `path.corrupt-<unix time>` (durably), leaving `path` in
/// place for the caller to replace atomically. Returns the copy's path.
pub(crate) fn copy_aside(path: &Path, now_unix: i64) -> Result<PathBuf> {
    let target = aside_path(path, now_unix);
    let bytes = read_bounded(path, 16 << 20)?
        .ok_or_else(|| Error::io("reading", path, std::io::ErrorKind::NotFound.into()))?;
    write_atomic_unchecked(&target, &bytes)?;
    Ok(target)
}

/// Where a corrupt `path` is kept: `path.corrupt-<unix time>`.
fn aside_path(path: &Path, now_unix: i64) -> PathBuf {
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".corrupt-{now_unix}"));
    PathBuf::from(target)
}

/// Rename `from` over `to`, replacing it atomically (`rename(2)`; on
/// Windows std's `MoveFileExW` with `MOVEFILE_REPLACE_EXISTING`).
///
/// On Windows the replace fails while another process has `to` open
/// without `FILE_SHARE_DELETE` (an antivirus scan, a backup tool, an
/// editor; rctoken's own opens, std's defaults, share delete), with a
/// sharing violation or "access denied". That is momentary, so it is
/// retried with backoff for about a second before the error is returned.
fn rename_replacing(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(windows)]
    {
        const ERROR_ACCESS_DENIED: i32 = 5;
        const ERROR_SHARING_VIOLATION: i32 = 32;
        const ERROR_LOCK_VIOLATION: i32 = 33;
        let mut pause = std::time::Duration::from_millis(5);
        let mut waited = std::time::Duration::ZERO;
        loop {
            match std::fs::rename(from, to) {
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
                    ) && waited < std::time::Duration::from_secs(1) =>
                {
                    std::thread::sleep(pause);
                    waited += pause;
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }
    #[cfg(not(windows))]
    std::fs::rename(from, to)
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir)
        && let Err(e) = d.sync_all()
    {
        log::warn!("fsync of directory {} failed: {e}", dir.display());
    }
    #[cfg(not(unix))]
    let _ = dir;
}

pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_ne_bytes(b)
}

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Fall back to time and pid: uniqueness, not secrecy, is what matters here.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ (u64::from(std::process::id()) << 32);
    }
    u64::from_ne_bytes(b)
}
