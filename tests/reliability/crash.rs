//! Crash consistency (issue 4 §3 b, c, d): a writer process doing a tight
//! loop of save / refresh / logout+save on one profile is SIGKILLed at a
//! random moment, hundreds of times, on both real Linux backends (and,
//! `TerminateProcess`d, on the Windows Credential Manager under Wine). After
//! every kill the store must be loadable, hold exactly the old or the new
//! token set (access, refresh, id and the metadata all from one save), a
//! logout may only leave the profile loadable or gone/secret-missing, and
//! whatever drift the kill left (orphans of an interrupted save, a profile
//! whose items a logout already deleted) is reported by `verify` and fixed by
//! `repair`, after which `verify` is clean and the keychain, seen from
//! outside, holds exactly the items the metadata references.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rctoken::secrecy::ExposeSecret;
use rctoken::{Error, Problem, SaveOptions, TokenStore};

use crate::rel::{KillOnDrop, Lines, Rng, backend, cleanup, open, outside_accounts, outside_count};
use crate::support::backends::Kind;
use crate::support::child::{self, arg as env, role};
use crate::support::tagged::{loaded_tag, tagged};
use crate::support::{ids, keyutils};

const PROFILE: &str = "crash-profile";
/// Minimum validity asked of `refresh`: longer than any token lives, so the
/// writer's refresh always calls its function and saves.
const ALWAYS_REFRESH: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The token of save number `n`: every secret tagged `n`, and `expires_in`
/// derived from `n` so the metadata is provably from the same save too.
fn token(n: u64) -> rctoken::TokenInfo {
    tagged(&n.to_string(), 3600 + n as i64)
}

/// Child: the writer. Loops forever: op `n % 3` is 0 = save, 1 = refresh,
/// 2 = logout then save. Appends `B n kind` before and `E n` after each op
/// to the progress file (one write(2) each, O_APPEND).
#[test]
#[ignore = "child process of crash tests"]
fn crash_writer_child() {
    if role().as_deref() != Some("crash-writer") {
        return;
    }
    let max_item = std::env::var("REL_MAX_ITEM")
        .ok()
        .map(|n| n.parse().expect("max item"));
    // Op n happens at T0 + n × 2 min by this writer's clock, also across
    // writer restarts (n only grows): a token that op n−1 refreshed is then
    // older than MIN_REFRESH_INTERVAL, so every refresh op really refreshes.
    let op_time = |n: u64| time::OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(2 * n as i64);
    let mut n: u64 = env("REL_START").parse().expect("start");
    let clock = std::sync::Arc::new(rctoken::testing::ManualClock::new(op_time(n)));
    let mut builder = TokenStore::builder(&env("REL_APP"))
        .dir(Path::new(&env("REL_DIR")))
        .backend(backend(&env("REL_BACKEND")))
        .lock_timeout(Duration::from_secs(60))
        .clock(clock.clone());
    if let Some(m) = max_item {
        builder = builder.max_item_bytes(m);
    }
    let store = builder.open().expect("open store");
    store.backend().expect("connect to the keychain");
    let mut progress = OpenOptions::new()
        .append(true)
        .create(true)
        .open(env("REL_PROGRESS"))
        .expect("progress file");
    child::report("ready", "");
    let save = |n: u64| {
        store
            .save(&token(n), SaveOptions::new().profile(PROFILE).switch(true))
            .expect("save");
    };
    loop {
        n += 1;
        clock.set(op_time(n));
        let kind = n % 3;
        progress
            .write_all(format!("B {n} {kind}\n").as_bytes())
            .expect("progress");
        match kind {
            0 => save(n),
            1 => {
                let r = store.refresh(Some(PROFILE), ALWAYS_REFRESH, |rt| {
                    let old: u64 = rt
                        .expose_secret()
                        .strip_prefix("ref-")
                        .and_then(|s| s.parse().ok())
                        .expect("refresh token of a save");
                    assert!(old < n, "refresh token from the future");
                    Ok::<_, std::io::Error>(token(n))
                });
                match r {
                    Ok(t) => assert_eq!(loaded_tag(&t), n.to_string()),
                    Err(Error::NoSuchProfile(_)) => save(n),
                    Err(e) => panic!("refresh: {e:?}"),
                }
            }
            _ => {
                match store.remove(PROFILE) {
                    Ok(_) | Err(Error::NoSuchProfile(_)) => {}
                    Err(e) => panic!("logout: {e:?}"),
                }
                save(n)
            }
        }
        progress
            .write_all(format!("E {n}\n").as_bytes())
            .expect("progress");
    }
}

#[derive(Default, Debug)]
struct Stats {
    kills: usize,
    ops_completed: usize,
    loaded_old: usize,
    loaded_new: usize,
    absent: usize,
    secret_missing: usize,
    orphans: usize,
    /// Credentials a kill inside Wine's CredWriteW left half-written (see
    /// `undo_torn_wine_writes`), removed by the test.
    #[cfg(windows)]
    torn_wine_writes: usize,
    dangling: usize,
    repairs: usize,
}

/// What the progress file says: ops completed since the last check, the
/// last one completed, the one in flight (n, kind), and the highest n used.
fn parse_progress(
    text: &str,
    committed: &mut Option<u64>,
    stats: &mut Stats,
) -> (Option<(u64, u64)>, u64) {
    let mut inflight = None;
    let mut max_n = 0;
    for line in text.lines() {
        let f: Vec<u64> = line[2..]
            .split(' ')
            .map(|x| x.parse().expect("progress number"))
            .collect();
        match &line[..1] {
            "B" => {
                assert!(inflight.is_none(), "op began before the previous ended");
                inflight = Some((f[0], f[1]));
                max_n = max_n.max(f[0]);
            }
            "E" => {
                assert_eq!(inflight.map(|i| i.0), Some(f[0]), "progress out of order");
                *committed = Some(f[0]);
                inflight = None;
                stats.ops_completed += 1;
            }
            other => panic!("bad progress line {other}"),
        }
    }
    (inflight, max_n)
}

/// Check every invariant after a kill, repair, and return the profile's
/// committed save number afterwards (`None`: no profile).
fn check_after_kill(
    store: &TokenStore,
    app: &str,
    backend_name: &str,
    committed: Option<u64>,
    inflight: Option<(u64, u64)>,
    stats: &mut Stats,
) -> Option<u64> {
    let ctx = format!(
        "kill #{} (committed {committed:?}, in flight {inflight:?})",
        stats.kills
    );
    // The metadata parses.
    let listed = store
        .list()
        .unwrap_or_else(|e| panic!("{ctx}: metadata unreadable: {e:?}"))
        .iter()
        .any(|p| p.profile == PROFILE);
    let logout_in_flight = inflight.is_some_and(|(_, kind)| kind == 2);
    let mut missing = false;
    match store.load(PROFILE) {
        Ok(t) => {
            let tag = loaded_tag(&t);
            let n: u64 = tag.parse().expect("numeric tag");
            assert_eq!(
                t.info.expires_in,
                3600 + n as i64,
                "{ctx}: metadata and secrets from different saves"
            );
            if Some(n) == committed {
                stats.loaded_old += 1;
            } else {
                assert_eq!(
                    Some(n),
                    inflight.map(|i| i.0),
                    "{ctx}: loaded save {n}, neither the old nor the new one"
                );
                stats.loaded_new += 1;
            }
        }
        Err(Error::NoSuchProfile(_)) => {
            assert!(
                committed.is_none() || logout_in_flight,
                "{ctx}: the profile vanished without a logout"
            );
            assert!(!listed);
            stats.absent += 1;
        }
        Err(Error::SecretMissing { .. }) => {
            assert!(
                logout_in_flight,
                "{ctx}: secrets missing without a logout in flight"
            );
            assert!(listed);
            missing = true;
            stats.secret_missing += 1;
        }
        Err(e) => panic!("{ctx}: store not loadable: {e:?}"),
    }

    // Drift is only what a kill may leave, and verify sees all of it:
    // it lists every backend here.
    let report = store.verify().expect("verify");
    assert!(report.orphan_scan, "{ctx}: verify did not scan for orphans");
    let own_prefix = format!("{PROFILE}.");
    for p in &report.problems {
        match p {
            Problem::Orphan { account } => {
                assert!(
                    account.starts_with(&own_prefix),
                    "{ctx}: foreign orphan {account}"
                );
                stats.orphans += 1;
            }
            Problem::SecretMissing { profile } if missing && profile == PROFILE => {}
            // The index is written before a first save's profile file and
            // before a remove deletes it: a kill in between leaves it naming
            // a profile that does not exist, which readers ignore.
            Problem::DanglingReference { profile, .. } if !listed && profile == PROFILE => {
                stats.dangling += 1;
            }
            other => panic!("{ctx}: unexpected problem {other:?}"),
        }
    }
    if let Some(outside) = outside_accounts(app, backend_name) {
        // Seen from outside, every item of the namespace is either one the
        // metadata references or an orphan verify reported: none escapes.
        let mut known: Vec<String> = report
            .problems
            .iter()
            .filter_map(|p| match p {
                Problem::Orphan { account } => Some(account.clone()),
                _ => None,
            })
            .collect();
        if let Some(info) = store
            .list()
            .expect("list")
            .into_iter()
            .find(|p| p.profile == PROFILE)
        {
            known.extend(
                (0..info.keychain_items()).map(|i| format!("{PROFILE}.{}.{i}", info.generation())),
            );
        }
        for account in outside {
            if known.contains(&account) {
                continue;
            }
            panic!("{ctx}: item {account} is neither referenced nor reported as an orphan");
        }
    }
    if missing {
        assert!(
            report
                .problems
                .iter()
                .any(|p| matches!(p, Problem::SecretMissing { .. })),
            "{ctx}: verify missed the missing secret"
        );
    }
    if !report.is_clean() {
        let fixed = store.repair().expect("repair");
        assert!(fixed.is_clean(), "{ctx}: repair left {:?}", fixed.problems);
        stats.repairs += 1;
    }
    let after = store.verify().expect("verify after repair");
    assert!(
        after.is_clean(),
        "{ctx}: verify after repair: {:?}",
        after.problems
    );

    // From outside: the keychain holds exactly the referenced items.
    let now = store.list().expect("list");
    let info = now.iter().find(|p| p.profile == PROFILE);
    let expected = info.map_or(0, |p| p.keychain_items() as usize);
    let start = Instant::now();
    let count = || outside_count(store, app, backend_name);
    let mut seen = count();
    while seen != expected && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        seen = count();
    }
    assert_eq!(
        seen, expected,
        "{ctx}: keychain items vs metadata after repair"
    );

    match store.load(PROFILE) {
        Ok(t) => Some(loaded_tag(&t).parse().expect("tag")),
        Err(Error::NoSuchProfile(_)) => {
            assert!(info.is_none());
            None
        }
        Err(e) => panic!("{ctx}: not loadable after repair: {e:?}"),
    }
}

/// One store and the writer processes killed over it.
struct Victim {
    _purge: keyutils::Purge,
    #[cfg(windows)]
    _purge_credentials: PurgeCredentials,
    tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    app: String,
    backend_name: String,
    max_item: Option<usize>,
    rng: Rng,
    next_start: u64,
    kills: usize,
}

impl Victim {
    fn new(backend_name: &str, max_item: Option<usize>) -> Victim {
        let tmp = tempfile::tempdir().expect("tempdir");
        let app = ids::app_id("crash", backend_name);
        Victim {
            _purge: keyutils::Purge(app.clone()),
            #[cfg(windows)]
            _purge_credentials: PurgeCredentials(format!("rctoken:{app}")),
            dir: tmp.path().join("store"),
            tmp,
            app,
            backend_name: backend_name.to_string(),
            max_item,
            rng: Rng::seeded(),
            next_start: 0,
            kills: 0,
        }
    }

    fn store(&self) -> TokenStore {
        open(&self.dir, &self.app, &self.backend_name)
    }

    /// Start a writer, SIGKILL it 0..max_delay_ms after it is connected, and
    /// return what its progress file says.
    fn spawn_and_kill(&mut self, max_delay_ms: u64) -> String {
        let progress = self.tmp.path().join(format!("progress-{}", self.kills));
        let mut cmd = child::command(test_name!("crash_writer_child"), "crash-writer");
        cmd.env("REL_DIR", &self.dir)
            .env("REL_APP", &self.app)
            .env("REL_BACKEND", &self.backend_name)
            .env("REL_PROGRESS", &progress)
            .env("REL_START", self.next_start.to_string())
            .stdout(Stdio::piped());
        if let Some(n) = self.max_item {
            cmd.env("REL_MAX_ITEM", n.to_string());
        }
        let mut writer = KillOnDrop(cmd.spawn().expect("spawn writer"));
        Lines::new(&mut writer.0).wait_report("ready", Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(self.rng.below(max_delay_ms * 1000)));
        if let Some(status) = writer.0.try_wait().expect("try_wait") {
            panic!(
                "writer exited by itself ({status}) before kill #{}: it failed",
                self.kills
            );
        }
        writer.0.kill().expect("SIGKILL");
        let status = writer.0.wait().expect("reap");
        assert!(!status.success(), "writer survived SIGKILL");
        self.kills += 1;
        let text = std::fs::read_to_string(&progress).unwrap_or_default();
        // The next writer continues the numbering after every n used.
        for line in text.lines().filter(|l| l.starts_with('B')) {
            let n: u64 = line[2..]
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("progress number");
            self.next_start = self.next_start.max(n);
        }
        text
    }

    /// Temp files in the store directory and its profiles directory
    /// (metadata writes cut short).
    fn temp_files(&self) -> usize {
        [self.dir.clone(), self.dir.join("profiles")]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    }
}

/// Deletes what a failed test left of a namespace in the Credential Manager.
#[cfg(windows)]
struct PurgeCredentials(String);

#[cfg(windows)]
impl Drop for PurgeCredentials {
    fn drop(&mut self) {
        crate::support::credential_manager::purge(&self.0);
    }
}

/// `max_delay_ms`: kills land 0..max_delay_ms after the writer is connected
/// (twice that after every 10 kills in which no op completed).
/// `max_item`: the writer splits envelopes into items of at most that size,
/// so a kill can also land between the items of one save or one logout.
fn crash_loop(backend_name: &str, kills: usize, max_delay_ms: u64, max_item: Option<usize>) {
    let started = Instant::now();
    let mut v = Victim::new(backend_name, max_item);
    let store = v.store();
    let mut stats = Stats::default();
    let mut committed: Option<u64> = None;
    // The window widens while no op has completed: kills must also land
    // after a commit, and a loaded machine (Wine on a busy CI box) can
    // take longer than `max_delay_ms` for a single save.
    let mut window_ms = max_delay_ms;
    for _ in 0..kills {
        if stats.ops_completed == 0 && stats.kills > 0 && stats.kills % 10 == 0 {
            window_ms *= 2;
        }
        let text = v.spawn_and_kill(window_ms);
        stats.kills += 1;
        // Wine's CredWriteW is not atomic as Windows' is: a kill inside it
        // leaves a credential real Windows cannot (unreadable, which breaks
        // listing for everyone, or with an empty secret). Undone as a kill
        // just before the write would have been.
        #[cfg(windows)]
        if backend_name == "windows-credential-manager" {
            stats.torn_wine_writes += crate::support::credential_manager::undo_torn_wine_writes(
                &format!("rctoken:{}", v.app),
            );
        }
        let (inflight, _) = parse_progress(&text, &mut committed, &mut stats);
        committed = check_after_kill(
            &store,
            &v.app,
            backend_name,
            committed,
            inflight,
            &mut stats,
        );
    }
    eprintln!(
        "crash[{backend_name}, items ≤ {max_item:?} B]: {stats:?}, kill window {window_ms} ms, stale temp files: {}, took {:?}",
        v.temp_files(),
        started.elapsed()
    );
    assert!(stats.ops_completed > 0, "the writer never completed an op");
    assert!(
        stats.loaded_old + stats.loaded_new + stats.absent + stats.secret_missing == kills,
        "every kill was checked"
    );
    cleanup(&store, &v.app, backend_name);
}

/// A writer killed inside the atomic metadata write leaves its temp file
/// behind; nothing else ever deletes it, so a store that sees many crashes
/// accumulates them. Every metadata write happens under the exclusive
/// metadata lock, so `repair` (which holds it) can remove them safely.
#[cfg(target_os = "linux")]
#[test]
fn repair_removes_metadata_temp_files_left_by_killed_writers() {
    needs!(Kind::Keyutils);
    let _heavy = crate::heavy();
    let mut v = Victim::new("keyutils", None);
    let store = v.store();
    loop {
        assert!(v.kills < 500, "no kill ever landed inside a metadata write");
        v.spawn_and_kill(30);
        if v.temp_files() > 0 {
            break;
        }
        // Fix what the kill left before the next writer starts.
        store.repair().expect("repair");
    }
    let before = v.temp_files();
    let report = store.repair().expect("repair");
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(
        v.temp_files(),
        0,
        "{before} temp file(s) of killed metadata writes survive repair (after {} kills)",
        v.kills
    );
    cleanup(&store, &v.app, "keyutils");
}

#[cfg(target_os = "linux")]
#[test]
fn sigkill_during_save_refresh_logout_keyutils() {
    needs!(Kind::Keyutils);
    let _heavy = crate::heavy();
    crash_loop("keyutils", 200, 30, None);
}

#[cfg(target_os = "linux")]
#[test]
fn sigkill_between_the_items_of_split_envelopes_keyutils() {
    needs!(Kind::Keyutils);
    let _heavy = crate::heavy();
    // About five items per save: kills also land mid-write and mid-delete.
    crash_loop("keyutils", 150, 30, Some(200));
}

#[cfg(target_os = "linux")]
#[test]
fn sigkill_during_save_refresh_logout_sealed() {
    needs!(Kind::Keyutils);
    let _heavy = crate::heavy();
    // The sealed store, its key in keyutils: every item is a file written
    // by atomic replace, so kills land mid-seal and mid-rename too.
    crash_loop("sealed", 150, 30, None);
}

#[cfg(target_os = "linux")]
#[test]
fn sigkill_during_save_refresh_logout_secret_service() {
    needs!(Kind::SecretService);
    let _heavy = crate::heavy();
    // Secret Service calls are slower: a wider window lets ops complete too.
    crash_loop("secret-service", 100, 100, None);
}

/// The Credential Manager (Wine's in CI, where a process costs ~0.5 s, so
/// fewer kills), whole envelopes and envelopes split into items of at most
/// 200 bytes, so kills also land between the items of one save or one
/// logout.
#[cfg(windows)]
#[test]
fn terminate_during_save_refresh_logout_windows_credential_manager() {
    needs!(Kind::WindowsCredentialManager);
    let _heavy = crate::heavy();
    crash_loop("windows-credential-manager", 40, 300, None);
    crash_loop("windows-credential-manager", 40, 300, Some(200));
}

/// The kills leave credentials of interrupted saves (a new generation
/// written but never committed, an old one committed away but not yet
/// deleted): `verify` must list them (the store's search by target-name
/// pattern), so `repair` finds and deletes every one and none stays in the
/// user's Credential Manager for good.
#[cfg(windows)]
#[test]
fn killed_saves_leave_no_credential_that_verify_cannot_see() {
    needs!(Kind::WindowsCredentialManager);
    let _heavy = crate::heavy();
    crash_loop("windows-credential-manager", 40, 30, Some(200));
}
