//! Filesystem hardening of the store directory:
//! - the directory (0700) and its files (0600) get their mode at creation,
//!   whatever the umask, and nothing is chmod-ed afterwards (an LD_PRELOAD
//!   shim records every creation mode and every chmod of a child process
//!   running with umask 000);
//! - a store directory or metadata file that is group/world-writable, owned
//!   by another user, or a symlink is refused with `Error::UnsafeStore`, and
//!   a refused write leaves the file (or the symlink's target) untouched;
//! - profile keys, owner ids and labels never become paths: nothing is ever
//!   created outside the store directory;
//! - keychain item names are unambiguous: keys that escape alike in naive
//!   schemes load back their own tokens.
//!
//! Handing a file to another user takes root: the tests that do are named
//! `*_as_root` and fail at once when not run as root. CI runs them as root
//! (`as_root` filter) and the others as an unprivileged user.
//!
//! Modes, owners, symlinks and FIFOs are Unix's: those tests (and the
//! `cli` module) are `cfg(unix)`. The two about names run everywhere, on
//! Windows on the Credential Manager too.

#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::process::Command;

use rctoken::{Backend, Error, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
use secrecy::{ExposeSecret, SecretString};

use crate::support::backends::{self, Kind};
#[cfg(unix)]
use crate::support::rerun;

#[cfg(unix)]
const NOBODY: u32 = 65534;

fn token(access: &str, owner: Option<&str>) -> TokenInfo {
    let mut t = TokenInfo::new(SecretString::from(access), 3600, "ReadAccounts");
    t.refresh_token = Some(SecretString::from(format!("{access}-refresh").as_str()));
    t.owner_id = owner.map(str::to_string);
    t
}

fn open(dir: &Path, backend: Backend) -> rctoken::Result<TokenStore> {
    TokenStore::builder(&format!("fs-{}", std::process::id()))
        .dir(dir)
        .backend(backend)
        .open()
}

fn memory() -> Backend {
    Backend::Memory(MemoryKeychain::new())
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

#[cfg(unix)]
fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), None).expect("chown (only root may chown)");
}

#[cfg(unix)]
/// The first line of every test that needs root (its name says `as_root`):
/// handing a file to another user takes root, and such a test must fail as
/// another user, never pass without having checked anything. CI runs these
/// as root (`as_root` filter) and every other test as an unprivileged user.
fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test chowns files to another user and must run as root (euid is {euid}): \
         run it as root, e.g. `cargo test --all-features --test fs_hardening as_root`"
    );
}

#[cfg(unix)]
fn is_unsafe<T: std::fmt::Debug>(r: rctoken::Result<T>, what: &str) -> Error {
    match r {
        Err(e @ Error::UnsafeStore { .. }) => e,
        other => panic!("{what}: expected UnsafeStore, got {other:?}"),
    }
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable") {
            let p = entry.expect("entry").path();
            out.push(p.strip_prefix(dir).expect("inside").to_path_buf());
            if std::fs::symlink_metadata(&p).expect("stat").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Modes at creation
// ---------------------------------------------------------------------------

#[cfg(unix)]
fn assert_private_tree(store: &Path) {
    assert_eq!(mode(store), 0o700, "store dir");
    for rel in tree(store) {
        let p = store.join(&rel);
        let meta = std::fs::symlink_metadata(&p).expect("stat");
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(meta.mode() & 0o7777, want, "{}", p.display());
        assert!(!meta.file_type().is_symlink(), "{}", p.display());
    }
}

#[cfg(unix)]
/// Right after the first save, in this process (umask as inherited).
#[test]
fn store_dir_and_files_are_private_from_the_first_save() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("nested").join("store");
    let store = open(&store_dir, memory()).expect("opens");
    assert_eq!(mode(&store_dir), 0o700);
    assert_eq!(
        mode(&tmp.path().join("nested")),
        0o700,
        "created parents too"
    );
    store
        .save(&token("a", Some("1")), SaveOptions::new())
        .expect("saves");
    let names: Vec<PathBuf> = tree(&store_dir);
    for expected in ["metadata.json", "metadata.lock", "refresh-locks"] {
        assert!(
            names.iter().any(|n| n == Path::new(expected)),
            "{expected} in {names:?}"
        );
    }
    assert_private_tree(&store_dir);
}

#[cfg(unix)]
fn shim(tmp: &Path, source: &str, name: &str) -> PathBuf {
    let so = tmp.join(format!("{name}.so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&so)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(source))
        .arg("-ldl")
        .status()
        .expect("cc runs (gcc is needed for this test)");
    assert!(status.success(), "compiling {source}");
    so
}

#[cfg(unix)]
/// The child half of `modes_do_not_depend_on_umask_and_nothing_is_chmodded`:
/// run by that test (re-executing this binary); does nothing otherwise.
#[test]
#[ignore = "run by modes_do_not_depend_on_umask_and_nothing_is_chmodded"]
fn child_creates_a_store() {
    let Some(dir) = std::env::var_os("RCTOKEN_FS_CHILD_DIR") else {
        return;
    };
    let store = open(Path::new(&dir), memory()).expect("opens");
    store
        .save(&token("a", Some("1")), SaveOptions::new().label("one"))
        .expect("saves");
    store
        .save(&token("b", Some("2")), SaveOptions::new())
        .expect("saves");
    store.switch("2").expect("switches");
    store.remove("1").expect("removes");
    // Corrupt it in place (no O_CREAT: the shim would log this test's own mode).
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(store.layout().index())
        .and_then(|mut f| f.write_all(b"{ corrupt"))
        .expect("corrupts");
    // Memory keychain is empty in this process: repair starts fresh.
    store.repair().expect("repairs");
}

#[cfg(unix)]
#[test]
fn modes_do_not_depend_on_umask_and_nothing_is_chmodded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let so = shim(tmp.path(), "tests/shim/modes.c", "modes");
    let log = tmp.path().join("modes.log");
    let store_dir = tmp.path().join("a").join("store");
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(&exe)
        .args(rerun::child_args(test_name!("child_creates_a_store")))
        .env("RCTOKEN_FS_CHILD_DIR", &store_dir)
        .env("LD_PRELOAD", &so)
        .env("SHIM_LOG", &log)
        .output()
        .expect("child runs");
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child test ran"
    );
    assert_private_tree(&store_dir);
    assert!(
        tree(&store_dir)
            .iter()
            .any(|p| p.to_string_lossy().contains(".corrupt-")),
        "moved-aside copy exists (and is private)"
    );

    let log = std::fs::read_to_string(&log).expect("shim log");
    let store_str = store_dir.to_string_lossy().into_owned();
    let mut creations = 0;
    for line in log.lines() {
        let mut parts = line.splitn(3, ' ');
        let (what, m, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        assert!(
            what != "chmod" && what != "fchmod",
            "nothing is chmod-ed after creation: {line}"
        );
        // Relative names (openat on a dir fd) would hide the directory; the
        // store uses absolute paths, so every store path is seen in full.
        if path.starts_with(&store_str)
            || path.starts_with(&*tmp.path().join("a").to_string_lossy())
        {
            creations += 1;
            let want = if what == "mkdir" { "700" } else { "600" };
            assert_eq!(m, want, "created with its final mode: {line}");
        }
    }
    assert!(
        creations >= 5,
        "the shim saw the creations (dirs, locks, temp files):\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("open 600 ") && l.contains(".metadata.json.")),
        "the metadata temp file is created 0600:\n{log}"
    );
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn unsafe_store_dir_is_refused() {
    for m in [0o770, 0o720, 0o702, 0o777, 0o1777] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        open(&dir, memory()).expect("creates");
        set_mode(&dir, m);
        let e = is_unsafe(open(&dir, memory()), &format!("dir mode {m:o}"));
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        assert!(
            e.to_string().contains(&*dir.to_string_lossy()),
            "names the dir: {e}"
        );
    }
    // Readable by others is allowed (like ssh), writable is not.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    open(&dir, memory()).expect("creates");
    set_mode(&dir, 0o755);
    open(&dir, memory()).expect("0755 is accepted");

    // A symlink to a private directory.
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = tmp.path().join("real");
    open(&real, memory()).expect("creates");
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    is_unsafe(open(&link, memory()), "symlinked store dir");
}

#[cfg(unix)]
#[test]
fn store_dir_owned_by_another_user_is_refused_as_root() {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    open(&dir, memory()).expect("creates");
    chown(&dir, NOBODY);
    let e = is_unsafe(open(&dir, memory()), "dir owned by nobody");
    assert!(e.to_string().contains("owned by another user"), "{e}");
}

#[cfg(unix)]
/// A refused operation leaves the metadata byte-for-byte as it was.
fn assert_refused_and_untouched(store: &TokenStore, path: &Path, before: &[u8], what: &str) {
    is_unsafe(store.list(), &format!("{what}: list"));
    is_unsafe(
        store.save(&token("x", Some("9")), SaveOptions::new()),
        &format!("{what}: save"),
    );
    is_unsafe(store.switch("1"), &format!("{what}: switch"));
    is_unsafe(store.remove("1"), &format!("{what}: remove"));
    let after = std::fs::read(path).expect("still there");
    assert_eq!(after, before, "{what}: untouched");
}

#[cfg(unix)]
#[test]
fn unsafe_metadata_file_is_refused_and_untouched() {
    for m in [0o620, 0o602, 0o666, 0o622] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = open(tmp.path(), memory()).expect("opens");
        store
            .save(&token("a", Some("1")), SaveOptions::new())
            .expect("saves");
        let path = store.layout().index().to_path_buf();
        set_mode(&path, m);
        let before = std::fs::read(&path).expect("reads");
        assert_refused_and_untouched(&store, &path, &before, &format!("mode {m:o}"));
        assert_eq!(mode(&path), m, "mode left as found");
        let report = store.verify().expect("verify reports it");
        assert!(
            report
                .problems
                .iter()
                .any(|p| matches!(p, rctoken::Problem::Unsafe { .. })),
            "{report:?}"
        );
        // Repair never fixes an unsafe file: it reports it or refuses.
        match store.repair() {
            Ok(r) => assert!(!r.is_clean(), "{r:?}"),
            Err(e) => assert!(matches!(e, Error::UnsafeStore { .. }), "{e:?}"),
        }
        assert_eq!(std::fs::read(&path).expect("reads"), before);
        assert_eq!(mode(&path), m, "repair left the mode as found");
    }
}

#[cfg(unix)]
#[test]
fn metadata_owned_by_another_user_is_refused_and_untouched_as_root() {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path(), memory()).expect("opens");
    store
        .save(&token("a", Some("1")), SaveOptions::new())
        .expect("saves");
    let path = store.layout().index().to_path_buf();
    chown(&path, NOBODY);
    let before = std::fs::read(&path).expect("reads");
    assert_refused_and_untouched(&store, &path, &before, "owned by nobody");
    assert_eq!(
        std::fs::metadata(&path).expect("stat").uid(),
        NOBODY,
        "ownership left as found"
    );
}

#[cfg(unix)]
#[test]
fn symlinked_metadata_is_refused_and_its_target_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir, memory()).expect("opens");
    store
        .save(&token("a", Some("1")), SaveOptions::new())
        .expect("saves");
    // An attacker (or a dotfiles manager) replaces metadata.json by a link
    // to another file; a valid metadata copy, so only the link is wrong.
    let target = tmp.path().join("victim.json");
    std::fs::copy(store.layout().index(), &target).expect("copies");
    set_mode(&target, 0o600);
    let before = std::fs::read(&target).expect("reads");
    let mtime = std::fs::metadata(&target).expect("stat").mtime_nsec();
    std::fs::remove_file(store.layout().index()).expect("removes");
    std::os::unix::fs::symlink(&target, store.layout().index()).expect("symlink");

    let e = is_unsafe(store.list(), "symlink: list");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    is_unsafe(store.load("1"), "symlink: load");
    is_unsafe(
        store.save(&token("b", Some("2")), SaveOptions::new()),
        "symlink: save",
    );
    is_unsafe(store.set_label("1", Some("l")), "symlink: set_label");
    is_unsafe(store.remove("1"), "symlink: remove");
    match store.repair() {
        Ok(r) => assert!(!r.is_clean(), "{r:?}"),
        Err(e) => assert!(matches!(e, Error::UnsafeStore { .. }), "{e:?}"),
    }
    assert_eq!(
        std::fs::read(&target).expect("reads"),
        before,
        "target untouched"
    );
    assert_eq!(
        std::fs::metadata(&target).expect("stat").mtime_nsec(),
        mtime,
        "target not rewritten"
    );
    assert!(
        std::fs::symlink_metadata(store.layout().index())
            .expect("still a link")
            .file_type()
            .is_symlink()
    );

    // A dangling link: nothing is created at its target.
    let nowhere = tmp.path().join("created-by-nobody.json");
    std::fs::remove_file(store.layout().index()).expect("removes");
    std::os::unix::fs::symlink(&nowhere, store.layout().index()).expect("symlink");
    is_unsafe(
        store.save(&token("b", Some("2")), SaveOptions::new()),
        "dangling symlink: save",
    );
    assert!(!nowhere.exists(), "no file created through the link");
}

#[cfg(unix)]
#[test]
fn symlinked_profile_files_and_dir_are_refused_and_targets_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir, memory()).expect("opens");
    store
        .save(&token("a", Some("1")), SaveOptions::new())
        .expect("saves");
    // The profile's file replaced by a link to a valid copy of itself.
    let target = tmp.path().join("victim.json");
    std::fs::copy(store.layout().profile_file("1"), &target).expect("copies");
    set_mode(&target, 0o600);
    let before = std::fs::read(&target).expect("reads");
    std::fs::remove_file(store.layout().profile_file("1")).expect("removes");
    std::os::unix::fs::symlink(&target, store.layout().profile_file("1")).expect("symlink");
    let e = is_unsafe(store.load("1"), "profile link: load");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    is_unsafe(store.list(), "profile link: list");
    is_unsafe(
        store.save(&token("b", Some("1")), SaveOptions::new()),
        "profile link: save",
    );
    is_unsafe(store.remove("1"), "profile link: remove");
    match store.repair() {
        Ok(r) => assert!(!r.is_clean(), "{r:?}"),
        Err(e) => assert!(matches!(e, Error::UnsafeStore { .. }), "{e:?}"),
    }
    assert_eq!(
        std::fs::read(&target).expect("reads"),
        before,
        "target untouched"
    );
    std::fs::remove_file(store.layout().profile_file("1")).expect("unlink");
    std::fs::copy(&target, store.layout().profile_file("1")).expect("restore");

    // The whole profiles directory replaced by a link to a copy of itself.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    set_mode(&elsewhere, 0o700);
    std::fs::copy(store.layout().profile_file("1"), elsewhere.join("1.json")).expect("copies");
    let before = std::fs::read(elsewhere.join("1.json")).expect("reads");
    std::fs::remove_dir_all(store.layout().profiles_dir()).expect("rm");
    std::os::unix::fs::symlink(&elsewhere, store.layout().profiles_dir()).expect("symlink");
    is_unsafe(store.list(), "dir link: list");
    is_unsafe(store.load("1"), "dir link: load");
    is_unsafe(
        store.save(&token("c", Some("1")), SaveOptions::new()),
        "dir link: save",
    );
    is_unsafe(
        store.save(&token("c", Some("2")), SaveOptions::new()),
        "dir link: save new",
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).expect("ls").count(),
        1,
        "nothing written through the link"
    );
    assert_eq!(
        std::fs::read(elsewhere.join("1.json")).expect("reads"),
        before
    );
}

#[cfg(unix)]
/// A FIFO planted where a store file belongs is refused, and opening it
/// never blocks waiting for a writer (the open is non-blocking and the
/// opened file is checked with fstat).
#[test]
fn fifos_in_place_of_store_files_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir, memory()).expect("opens");
    store
        .save(&token("a", Some("1")), SaveOptions::new())
        .expect("saves");
    let mkfifo = |p: &Path| {
        let _ = std::fs::remove_file(p);
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    };
    for (what, path) in [
        ("index", store.layout().index().to_path_buf()),
        ("profile file", store.layout().profile_file("1")),
        ("lock file", store.layout().metadata_lock().to_path_buf()),
    ] {
        let saved = std::fs::read(&path).expect("read");
        mkfifo(&path);
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = store_dir.clone();
        std::thread::spawn(move || {
            let s = open(&dir, memory()).expect("opens");
            let _ = tx.send(s.load("1").map(|_| ()));
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{what}: opening a FIFO blocked"));
        let e = r.expect_err(what);
        assert!(matches!(e, Error::UnsafeStore { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("not a regular file"), "{what}: {e}");
        std::fs::remove_file(&path).expect("rm fifo");
        std::fs::write(&path, saved).expect("restore");
        set_mode(&path, 0o600);
    }
    assert_eq!(store.list().expect("list").len(), 1);
}

#[cfg(unix)]
#[test]
fn symlinked_lock_files_are_not_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir, memory()).expect("opens");
    let target = tmp.path().join("lock-target");
    std::fs::write(&target, b"precious").expect("writes");
    let target_mode = mode(&target);
    std::os::unix::fs::symlink(&target, store.layout().metadata_lock()).expect("symlink");
    let e = store.list().expect_err("a symlinked lock file is refused");
    assert!(matches!(e, Error::UnsafeStore { .. }), "{e:?}");
    let e = store
        .save(&token("a", Some("1")), SaveOptions::new())
        .expect_err("refused");
    assert!(matches!(e, Error::UnsafeStore { .. }), "{e:?}");
    assert_eq!(std::fs::read(&target).expect("reads"), b"precious");
    assert_eq!(mode(&target), target_mode, "mode untouched");

    // The refresh-lock directory as a symlink to a directory elsewhere.
    std::fs::remove_file(store.layout().metadata_lock()).expect("removes");
    let _ = std::fs::remove_dir_all(store_dir.join("refresh-locks"));
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    set_mode(&elsewhere, 0o700);
    std::os::unix::fs::symlink(&elsewhere, store_dir.join("refresh-locks")).expect("symlink");
    is_unsafe(
        store.save(&token("a", Some("1")), SaveOptions::new()),
        "symlinked refresh-locks dir",
    );
    assert!(
        tree(&elsewhere).is_empty(),
        "nothing created through the link"
    );
}

// ---------------------------------------------------------------------------
// Names never become paths
// ---------------------------------------------------------------------------

#[test]
fn hostile_names_never_become_paths() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store_dir = tmp.path().join("a").join("b").join("store");
    let store = open(&store_dir, memory()).expect("opens");
    let keys = [
        "../../../escape",
        "..",
        ".",
        "/abs/path",
        "a/b",
        "a\\b",
        "..\\..\\win",
        "~",
        "-rf",
        "%2e%2e",
        "name with spaces",
        "ünïcödé/ключ",
        "*",
        "$(touch pwned)",
    ];
    for (i, key) in keys.iter().enumerate() {
        // As owner_id (the default key) and as an explicit profile key.
        store
            .save(&token(&format!("own{i}"), Some(key)), SaveOptions::new())
            .unwrap_or_else(|e| panic!("owner id {key:?}: {e}"));
        let label = format!("{key} label");
        store
            .save(
                &token(&format!("exp{i}"), None),
                SaveOptions::new()
                    .profile(format!("p{i}-{key}"))
                    .label(label),
            )
            .unwrap_or_else(|e| panic!("profile {key:?}: {e}"));
    }
    for bad in ["a\0b", "a\nb", "\u{1b}[31m", "tab\there", "\u{7f}", "\r"] {
        for result in [
            store.save(&token("z", Some(bad)), SaveOptions::new()),
            store.save(&token("z", None), SaveOptions::new().profile(bad)),
            store.save(&token("z", Some("ok")), SaveOptions::new().label(bad)),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidName { .. })),
                "{bad:?}: {result:?}"
            );
        }
    }
    for bad_app in ["../x", "a/b", ".hidden", "", "a\\b"] {
        assert!(matches!(
            TokenStore::builder(bad_app).dir(&store_dir).open(),
            Err(Error::InvalidName { .. })
        ));
    }
    // Nothing outside the store directory: tmp holds only a/b/store.
    let outside: Vec<PathBuf> = tree(tmp.path())
        .into_iter()
        .filter(|p| !p.starts_with("a/b/store"))
        .collect();
    assert_eq!(outside, vec![PathBuf::from("a"), PathBuf::from("a/b")]);
    // Inside it: only the known names, refresh locks one level down.
    for rel in tree(&store_dir) {
        // `/`-separated on every platform.
        let s = rel
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "/");
        let ok = s == "metadata.json"
            || s == "metadata.lock"
            || s == "refresh-locks"
            || s == "profiles"
            || (s.starts_with("profiles/")
                && rel.components().count() == 2
                && s.ends_with(".json")
                && !s["profiles/".len()..s.len() - 5].contains('.'))
            || (s.starts_with("refresh-locks/")
                && rel.components().count() == 2
                && s.ends_with(".lock")
                && !s["refresh-locks/".len()..s.len() - 5].contains('.'));
        assert!(ok, "unexpected path in the store: {s:?}");
    }
    // Every profile loads back its own token.
    for (i, key) in keys.iter().enumerate() {
        let t = store.load(key).expect("loads");
        assert_eq!(t.token.access_token.expose_secret(), format!("own{i}"));
        let t = store.load(format!("{key} label")).expect("loads by label");
        assert_eq!(t.token.access_token.expose_secret(), format!("exp{i}"));
    }
}

/// Removes every profile of a store when dropped, also while unwinding.
struct RemoveAllOnDrop<'a>(&'a TokenStore);

impl Drop for RemoveAllOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove_all();
    }
}

/// Keys that a naive escaping would map to one item name stay distinct, on
/// the in-memory keychain and on real keyutils keys (on Windows: real
/// Credential Manager credentials).
#[test]
fn keychain_item_names_are_unambiguous() {
    let keys = [
        "a.b", "a%2Eb", "a%2eb", "a/b", "a%2Fb", "a_b", "a-b", "a b", "a%20b", "A.B", "a.b.0",
        "a:b", "a%3Ab", "%", "%%", "a..b",
    ];
    let mut backends = vec![("memory", memory())];
    if backends::available(Kind::Keyutils) {
        backends.push(("keyutils", Backend::Keyutils));
    }
    #[cfg(windows)]
    if backends::available(Kind::WindowsCredentialManager) {
        backends.push((
            "windows-credential-manager",
            Backend::WindowsCredentialManager,
        ));
    }
    for (name, backend) in backends {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::builder(&format!("fs-names-{name}-{}", std::process::id()))
            .dir(tmp.path())
            .backend(backend)
            .open()
            .expect("opens");
        // Keyutils keys outlive the test: remove them even if it fails
        // midway (a non-root user has only 20000 bytes of keys in all).
        let _cleanup = RemoveAllOnDrop(&store);
        for (i, key) in keys.iter().enumerate() {
            store
                .save(
                    &token(&format!("tok{i}"), None),
                    SaveOptions::new().profile(*key),
                )
                .expect("saves");
        }
        for (i, key) in keys.iter().enumerate() {
            let t = store.load(key).expect("loads");
            assert_eq!(
                t.token.access_token.expose_secret(),
                format!("tok{i}"),
                "[{name}] {key:?} loads its own token"
            );
        }
        let report = store.verify().expect("verifies");
        assert!(report.is_clean(), "[{name}] {report:?}");
        assert_eq!(report.profiles_checked, keys.len());
        // Removing one leaves every other intact.
        store.remove("a.b").expect("removes");
        for (i, key) in keys.iter().enumerate().skip(1) {
            let t = store.load(key).expect("still loads");
            assert_eq!(t.token.access_token.expose_secret(), format!("tok{i}"));
        }
        store.remove_all().expect("cleans up");
    }
}

// ---------------------------------------------------------------------------
// The CLI: exit 7 on an unsafe store; modes independent of the umask
// ---------------------------------------------------------------------------

#[cfg(unix)]
#[cfg(feature = "cli")]
mod cli {
    use super::*;

    const TOKEN: &str = r#"{"access_token":"fs-access","token_type":"bearer","expires_in":3600,"scope":"s","owner_id":"42"}"#;

    fn rctoken(dir: &Path, app: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let script = match stdin {
            // umask 000: a file created 0666 & ~umask would be world-writable.
            Some(_) => "umask 000; printf '%s' \"$RCTOKEN_TEST_INPUT\" | exec \"$@\"",
            None => "umask 000; exec \"$@\" </dev/null",
        };
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_rctoken"))
            .args(["--app", app, "--backend", "keyutils", "--dir"])
            .arg(dir)
            .args(args)
            .env("RCTOKEN_TEST_INPUT", stdin.unwrap_or(""))
            .output()
            .expect("runs")
    }

    fn assert_exit_7(out: &std::process::Output, path: &Path, what: &str) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{what}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: error + hint: {stderr}");
        assert!(
            lines[0].contains(&*path.to_string_lossy()),
            "{what}: names {path:?}: {stderr}"
        );
    }

    #[test]
    fn cli_creates_private_files_under_umask_000_and_refuses_unsafe_stores() {
        needs!(Kind::Keyutils);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let app = format!("fs-cli-{}", std::process::id());
        let out = rctoken(&dir, &app, &["import"], Some(TOKEN));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_private_tree(&dir);

        // Group-writable metadata: every command exits 7, file untouched.
        let meta = dir.join("metadata.json");
        let before = std::fs::read(&meta).expect("reads");
        set_mode(&meta, 0o664);
        for args in [&["list"][..], &["status"], &["token"], &["import"]] {
            let out = rctoken(&dir, &app, args, Some(TOKEN));
            assert_exit_7(&out, &meta, &format!("{args:?} on 0664 metadata"));
        }
        assert_eq!(std::fs::read(&meta).expect("reads"), before);
        assert_eq!(mode(&meta), 0o664, "no silent chmod");
        set_mode(&meta, 0o600);

        // World-writable directory.
        set_mode(&dir, 0o777);
        assert_exit_7(&rctoken(&dir, &app, &["list"], None), &dir, "0777 dir");
        set_mode(&dir, 0o700);

        // A symlink: refused, and a refused import leaves the target alone.
        let target = tmp.path().join("victim");
        std::fs::rename(&meta, &target).expect("moves");
        std::os::unix::fs::symlink(&target, &meta).expect("symlink");
        let victim = std::fs::read(&target).expect("reads");
        assert_exit_7(&rctoken(&dir, &app, &["list"], None), &meta, "symlink list");
        assert_exit_7(
            &rctoken(&dir, &app, &["import"], Some(TOKEN)),
            &meta,
            "symlink import",
        );
        assert_eq!(
            std::fs::read(&target).expect("reads"),
            victim,
            "target untouched"
        );
        std::fs::remove_file(&meta).expect("removes link");
        std::fs::rename(&target, &meta).expect("restores");
        let out = rctoken(&dir, &app, &["logout", "--all"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn cli_refuses_metadata_owned_by_another_user_as_root() {
        require_root();
        needs!(Kind::Keyutils);
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let app = format!("fs-cli-root-{}", std::process::id());
        let out = rctoken(&dir, &app, &["import"], Some(TOKEN));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta = dir.join("metadata.json");
        chown(&meta, NOBODY);
        assert_exit_7(
            &rctoken(&dir, &app, &["list"], None),
            &meta,
            "owned by nobody",
        );
        // Hand it back, so logout can delete the keys it imported.
        chown(&meta, 0);
        let out = rctoken(&dir, &app, &["logout", "--all"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
