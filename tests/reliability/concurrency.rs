//! Many processes, one store (issue 4 §1 and §6), on real backends.
//!
//! - 16 processes × 50 mixed operations (imports of a distinct and of shared
//!   profiles, switch, token load, logout, list): no update is lost, no read
//!   is torn, the metadata file always parses (a checker thread reads it
//!   without any lock the whole time), and every operation succeeds or
//!   fails only as expected for it: with `NoSuchProfile` or
//!   `NoActiveProfile` where another process's logout can win a race (what
//!   the CLI reports with exit 3; `tests/cli` checks the CLI's codes).
//! - Single-flight refresh: 16 processes refresh one expired token at once;
//!   the refresh function runs exactly once and all 16 get its token.
//! - A refresh lock held by a stuck refresher makes a second refresh time
//!   out (`LockTimeout`) without calling its function, while loads and the
//!   refresh of another profile go ahead.
#![cfg(target_os = "linux")]

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rctoken::secrecy::ExposeSecret;
use rctoken::{Error, SaveOptions, TokenStore};

use crate::rel::{
    KillOnDrop, Lines, Rng, backend, cleanup, monotonic_ns, open, outside_count, variant,
};
use crate::support::backends::Kind as Backend;
use crate::support::child::{self, arg as env, role};
use crate::support::tagged::{loaded_tag, tagged};
use crate::support::{ids, keyutils};

const CHILD_LIMIT: Duration = Duration::from_secs(300);
const SHARED: &str = "shared";
const VICTIM: &str = "victim";

fn own(i: usize) -> String {
    format!("d{i}")
}

/// Wait until `path` exists (a start barrier or a signal between processes).
fn wait_for_file(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn child_store() -> TokenStore {
    let store = open(
        Path::new(&env("REL_DIR")),
        &env("REL_APP"),
        &env("REL_BACKEND"),
    );
    store.backend().expect("connect to the keychain");
    store
}

/// Connect, say ready, wait for the common start signal.
fn child_start(store: &TokenStore) {
    let _ = store;
    child::report("ready", "");
    wait_for_file(Path::new(&env("REL_GO")), CHILD_LIMIT);
}

// ---------------------------------------------------------------------------
// 16 × 50 mixed operations

/// The operations of the mix, and the outcomes each may end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    ImportOwn,
    ImportShared,
    ImportVictim,
    Switch,
    Token,
    LogoutOwn,
    LogoutVictim,
    List,
}

impl Kind {
    fn pick(rng: &mut Rng) -> Kind {
        match rng.below(100) {
            0..20 => Kind::ImportOwn,
            20..32 => Kind::ImportShared,
            32..40 => Kind::ImportVictim,
            40..50 => Kind::Switch,
            50..75 => Kind::Token,
            75..83 => Kind::LogoutOwn,
            83..95 => Kind::LogoutVictim,
            _ => Kind::List,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::ImportOwn => "import-own",
            Kind::ImportShared => "import-shared",
            Kind::ImportVictim => "import-victim",
            Kind::Switch => "switch",
            Kind::Token => "token",
            Kind::LogoutOwn => "logout-own",
            Kind::LogoutVictim => "logout-victim",
            Kind::List => "list",
        }
    }

    fn from_name(s: &str) -> Kind {
        [
            Kind::ImportOwn,
            Kind::ImportShared,
            Kind::ImportVictim,
            Kind::Switch,
            Kind::Token,
            Kind::LogoutOwn,
            Kind::LogoutVictim,
            Kind::List,
        ]
        .into_iter()
        .find(|k| k.name() == s)
        .expect("known kind")
    }

    /// Outcomes this op may end with (see [`outcome`]): success, or no
    /// such profile / none active where another process's logout can win
    /// a race.
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Kind::ImportOwn | Kind::ImportShared | Kind::ImportVictim | Kind::List => &["ok"],
            Kind::Switch | Kind::Token | Kind::LogoutOwn | Kind::LogoutVictim => {
                &["ok", "NoSuchProfile", "NoActiveProfile"]
            }
        }
    }
}

/// `ok`, or the error's variant.
fn outcome<T>(r: &Result<T, Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => variant(e),
    }
}

#[test]
#[ignore = "child process of concurrency tests"]
fn mixed_ops_child() {
    if role().as_deref() != Some("mixed") {
        return;
    }
    let store = child_store();
    let i: usize = env("REL_INDEX").parse().expect("index");
    let n: usize = env("REL_OPS").parse().expect("ops");
    let procs: usize = env("REL_PROCS").parse().expect("procs");
    let mut rng = Rng::new(env("REL_SEED").parse().expect("seed"));
    let me = own(i);
    let mut mine: Option<String> = None;
    child_start(&store);
    for j in 0..n {
        // The last op saves the own profile, so every process's final write
        // is checked.
        let kind = if j + 1 == n {
            Kind::ImportOwn
        } else {
            Kind::pick(&mut rng)
        };
        let tag = format!("{i}-{j}");
        let c = match kind {
            Kind::ImportOwn => {
                let r = store.save(
                    &tagged(&tag, 3600),
                    SaveOptions::new().profile(&me).switch(rng.below(2) == 0),
                );
                if r.is_ok() {
                    mine = Some(tag.clone());
                }
                outcome(&r)
            }
            Kind::ImportShared | Kind::ImportVictim => {
                let key = if kind == Kind::ImportShared {
                    SHARED
                } else {
                    VICTIM
                };
                let start = monotonic_ns();
                let r = store.save(&tagged(&tag, 3600), SaveOptions::new().profile(key));
                let end = monotonic_ns();
                if r.is_ok() {
                    child::report("wrote", &format!("{key} {tag} {start} {end}"));
                }
                outcome(&r)
            }
            Kind::Switch => {
                let target = random_profile(&mut rng, procs);
                outcome(&store.switch(&target))
            }
            Kind::Token => {
                let target = match rng.below(6) {
                    0 => None,
                    1 => Some(me.clone()),
                    _ => Some(random_profile(&mut rng, procs)),
                };
                let r = store.load(target.as_deref());
                if let Ok(t) = &r {
                    // No torn read: all three secrets from one save.
                    let got = loaded_tag(t);
                    if let Some(key) = &target {
                        assert_eq!(&t.info.profile, key, "loaded another profile");
                    }
                    if t.info.profile == me {
                        assert_eq!(Some(&got), mine.as_ref(), "own profile: lost update");
                    }
                } else if target.as_deref() == Some(me.as_str()) {
                    assert!(
                        mine.is_none(),
                        "own profile vanished: {:?}",
                        r.as_ref().err()
                    );
                }
                outcome(&r)
            }
            Kind::LogoutOwn => {
                let r = store.remove(&me);
                assert_eq!(
                    r.is_ok(),
                    mine.is_some(),
                    "own logout: {:?}",
                    r.as_ref().err()
                );
                mine = None;
                outcome(&r)
            }
            Kind::LogoutVictim => outcome(&store.remove(VICTIM)),
            Kind::List => outcome(&store.list()),
        };
        child::report("op", &format!("{} {c}", kind.name()));
    }
    child::report("own", mine.as_deref().unwrap_or("none"));
    child::report("done", "");
}

fn random_profile(rng: &mut Rng, procs: usize) -> String {
    match rng.below(4) {
        0 => SHARED.to_string(),
        1 => VICTIM.to_string(),
        _ => own(rng.below(procs as u64) as usize),
    }
}

/// A reader that parses metadata.json and every profile file without any
/// lock, in a loop, until stopped. Returns (successful parses, failures with reasons).
fn metadata_checker(
    path: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let mut ok = 0;
        let mut bad = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match std::fs::read(&path) {
                Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(v) if v["format_version"] == 2 && v["labels"].is_object() => {
                        ok += 1;
                        // And every profile file, read as another process
                        // would, without a lock.
                        let dir = path.with_file_name("profiles");
                        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                            let name = e.file_name().to_string_lossy().into_owned();
                            if name.starts_with('.') {
                                continue;
                            }
                            match std::fs::read(e.path()) {
                                Ok(b) => match serde_json::from_slice::<serde_json::Value>(&b) {
                                    Ok(p) if p["profile"].is_string() => ok += 1,
                                    Ok(p) => bad.push(format!("{name}: unexpected shape: {p}")),
                                    Err(e) => bad.push(format!("{name}: does not parse: {e}")),
                                },
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                                Err(e) => bad.push(format!("{name}: unreadable: {e}")),
                            }
                        }
                    }
                    Ok(v) => bad.push(format!("unexpected shape: {v}")),
                    Err(e) => bad.push(format!("does not parse: {e}")),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => bad.push(format!("unreadable: {e}")),
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        (ok, bad)
    })
}

#[derive(Debug)]
struct Write1 {
    tag: String,
    start: u64,
    end: u64,
}

fn mixed(backend_name: &str, procs: usize, ops: usize) {
    let started = Instant::now();
    let app = ids::app_id("conc", backend_name);
    let _purge = keyutils::Purge(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let store = open(&dir, &app, backend_name);
    let go = tmp.path().join("go");
    let stop = Arc::new(AtomicBool::new(false));
    let checker = metadata_checker(store.layout().index().to_path_buf(), stop.clone());
    let mut seed_rng = Rng::seeded();

    let mut children = Vec::new();
    for i in 0..procs {
        let mut cmd = child::command(test_name!("mixed_ops_child"), "mixed");
        cmd.env("REL_DIR", &dir)
            .env("REL_APP", &app)
            .env("REL_BACKEND", backend_name)
            .env("REL_GO", &go)
            .env("REL_INDEX", i.to_string())
            .env("REL_OPS", ops.to_string())
            .env("REL_PROCS", procs.to_string())
            .env("REL_SEED", seed_rng.next().to_string())
            .stdout(Stdio::piped());
        let mut c = KillOnDrop(cmd.spawn().expect("spawn"));
        let lines = Lines::new(&mut c.0);
        children.push((c, lines));
    }
    for (_, lines) in children.iter_mut() {
        lines.wait_report("ready", CHILD_LIMIT);
    }
    std::fs::write(&go, b"go").expect("go");

    let mut outcomes: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    let mut writes: HashMap<&str, Vec<Write1>> = HashMap::new();
    let mut own_final = Vec::new();
    for (i, (mut c, mut lines)) in children.into_iter().enumerate() {
        lines.wait_report("done", CHILD_LIMIT);
        let status = c.0.wait().expect("wait");
        assert!(
            status.success(),
            "process {i} failed ({status}): {:?}",
            lines.seen
        );
        let out = lines.text();
        for op in child::reports(&out, "op") {
            let (kind, o) = op.split_once(' ').expect("op line");
            let kind = Kind::from_name(kind);
            assert!(
                kind.allowed().contains(&o),
                "process {i}: {kind:?} ended with {o}, expected one of {:?}",
                kind.allowed()
            );
            *outcomes.entry((kind, o.to_string())).or_default() += 1;
        }
        for w in child::reports(&out, "wrote") {
            let f: Vec<&str> = w.split(' ').collect();
            let key = if f[0] == SHARED { SHARED } else { VICTIM };
            writes.entry(key).or_default().push(Write1 {
                tag: f[1].to_string(),
                start: f[2].parse().expect("start"),
                end: f[3].parse().expect("end"),
            });
        }
        let last = child::reports(&out, "own")
            .next()
            .expect("own line")
            .to_string();
        own_final.push(last);
    }
    stop.store(true, Ordering::Relaxed);
    let (parses, bad) = checker.join().expect("checker");
    assert!(bad.is_empty(), "metadata did not always parse: {bad:?}");
    assert!(parses > 0, "the checker never saw the metadata");

    // No lost update: each process's last save of its own profile is there.
    for (i, last) in own_final.iter().enumerate() {
        let t = store.load(own(i)).expect("own profile present");
        assert_eq!(&loaded_tag(&t), last, "process {i}: lost update");
    }
    // The shared profile holds one of the values written, and not one that
    // a write starting after it had ended must have replaced.
    let shared = &writes[SHARED];
    let final_shared = loaded_tag(&store.load(SHARED).expect("shared present"));
    let w = shared
        .iter()
        .find(|w| w.tag == final_shared)
        .unwrap_or_else(|| panic!("shared holds {final_shared}, never written"));
    assert!(
        !shared.iter().any(|o| o.start > w.end),
        "shared holds {final_shared}, but a later save replaced it: lost update"
    );
    // The victim is gone or holds a value written.
    let victim = match store.load(VICTIM) {
        Ok(t) => {
            let tag = loaded_tag(&t);
            assert!(
                writes
                    .get(VICTIM)
                    .is_some_and(|v| v.iter().any(|w| w.tag == tag)),
                "victim holds {tag}, never written"
            );
            tag
        }
        Err(Error::NoSuchProfile(_)) => "gone".into(),
        Err(e) => panic!("victim: {e:?}"),
    };
    match store.info(rctoken::Selector::Active) {
        Ok(_) | Err(Error::NoActiveProfile) => {}
        Err(e) => panic!("active profile: {e:?}"),
    }
    // Metadata and keychain agree: nothing missing, no orphans.
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);
    let referenced: usize = store
        .list()
        .expect("list")
        .iter()
        .map(|p| p.keychain_items() as usize)
        .sum();
    let start = Instant::now();
    while outside_count(&store, &app, backend_name) != referenced
        && start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        outside_count(&store, &app, backend_name),
        referenced,
        "keychain vs metadata"
    );

    let total: usize = outcomes.values().sum();
    assert_eq!(total, procs * ops);
    eprintln!(
        "mixed[{backend_name}]: {procs} processes × {ops} ops = {total} in {:?}; metadata parsed {parses}×; \
         shared writes {}, final {final_shared}; victim {victim}; outcomes {outcomes:?}",
        started.elapsed(),
        shared.len()
    );
    cleanup(&store, &app, backend_name);
}

#[test]
fn sixteen_processes_mixed_ops_keyutils() {
    needs!(Backend::Keyutils);
    let _heavy = crate::heavy();
    // Start with the quota the tests before left freed (the kernel frees
    // deleted keys a moment later).
    keyutils::settle();
    mixed("keyutils", 16, 50);
}

#[test]
fn sixteen_processes_mixed_ops_sealed() {
    needs!(Backend::Keyutils);
    let _heavy = crate::heavy();
    mixed("sealed", 16, 50);
}

#[test]
fn sixteen_processes_mixed_ops_secret_service() {
    needs!(Backend::SecretService);
    let _heavy = crate::heavy();
    mixed("secret-service", 16, 50);
}

// ---------------------------------------------------------------------------
// Single-flight refresh

const P: &str = "refreshed";

#[test]
#[ignore = "child process of concurrency tests"]
fn refresh_child() {
    if role().as_deref() != Some("refresher") {
        return;
    }
    let store = child_store();
    let i = env("REL_INDEX");
    let counter = env("REL_COUNTER");
    child_start(&store);
    let got = store
        .refresh(Some(P), Duration::from_secs(60), |rt| {
            let mut f = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&counter)
                .expect("counter");
            f.write_all(format!("{i} {}\n", rt.expose_secret()).as_bytes())
                .expect("count");
            // Stay inside long enough for every other process to queue up.
            std::thread::sleep(Duration::from_millis(200));
            Ok::<_, std::io::Error>(tagged(&format!("by-{i}"), 3600))
        })
        .expect("refresh");
    child::report("got", got.token.access_token.expose_secret());
    child::report("done", "");
}

fn single_flight(backend_name: &str) {
    let procs = 16;
    let app = ids::app_id("flight", backend_name);
    let _purge = keyutils::Purge(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let store = open(&dir, &app, backend_name);
    store
        .save(&tagged("0", 0), SaveOptions::new().profile(P))
        .expect("save expired token");
    let go = tmp.path().join("go");
    let counter = tmp.path().join("counter");
    let mut children = Vec::new();
    for i in 0..procs {
        let mut cmd = child::command(test_name!("refresh_child"), "refresher");
        cmd.env("REL_DIR", &dir)
            .env("REL_APP", &app)
            .env("REL_BACKEND", backend_name)
            .env("REL_GO", &go)
            .env("REL_INDEX", i.to_string())
            .env("REL_COUNTER", &counter)
            .stdout(Stdio::piped());
        let mut c = KillOnDrop(cmd.spawn().expect("spawn"));
        let lines = Lines::new(&mut c.0);
        children.push((c, lines));
    }
    for (_, lines) in children.iter_mut() {
        lines.wait_report("ready", CHILD_LIMIT);
    }
    std::fs::write(&go, b"go").expect("go");
    let mut got = Vec::new();
    for (mut c, mut lines) in children {
        lines.wait_report("done", CHILD_LIMIT);
        assert!(c.0.wait().expect("wait").success(), "{:?}", lines.seen);
        let out = lines.text();
        got.push(child::reports(&out, "got").next().expect("got").to_string());
    }
    let calls = std::fs::read_to_string(&counter).expect("counter");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls.len(),
        1,
        "the refresh function ran {} times",
        calls.len()
    );
    let (winner, rt) = calls[0].split_once(' ').expect("counter line");
    assert_eq!(rt, "ref-0", "it got the stored refresh token");
    let expected = format!("acc-by-{winner}");
    assert!(got.iter().all(|g| *g == expected), "{got:?}");
    assert_eq!(
        loaded_tag(&store.load(P).expect("load")),
        format!("by-{winner}")
    );
    eprintln!("single-flight[{backend_name}]: {procs} processes, 1 call, all got {expected}");
    cleanup(&store, &app, backend_name);
}

#[test]
fn sixteen_concurrent_refreshes_call_the_function_once_keyutils() {
    needs!(Backend::Keyutils);
    let _heavy = crate::heavy();
    single_flight("keyutils");
}

#[test]
fn sixteen_concurrent_refreshes_call_the_function_once_sealed() {
    needs!(Backend::Keyutils);
    let _heavy = crate::heavy();
    single_flight("sealed");
}

#[test]
fn sixteen_concurrent_refreshes_call_the_function_once_secret_service() {
    needs!(Backend::SecretService);
    let _heavy = crate::heavy();
    single_flight("secret-service");
}

// ---------------------------------------------------------------------------
// A refresher stuck inside its function holds the profile's refresh lock.

#[test]
#[ignore = "child process of concurrency tests"]
fn stuck_refresher_child() {
    if role().as_deref() != Some("stuck") {
        return;
    }
    let store = child_store();
    let entered = PathBuf::from(env("REL_ENTERED"));
    let release = PathBuf::from(env("REL_RELEASE"));
    let got = store
        .refresh(Some(P), Duration::from_secs(60), |_| {
            std::fs::write(&entered, b"in").expect("entered");
            wait_for_file(&release, CHILD_LIMIT);
            Ok::<_, std::io::Error>(tagged("held", 3600))
        })
        .expect("refresh");
    child::report("got", got.token.access_token.expose_secret());
    child::report("done", "");
}

#[test]
fn a_held_refresh_lock_times_out_other_refreshes_without_calling_them() {
    needs!(Backend::Keyutils);
    let backend_name = "keyutils";
    let app = ids::app_id("refresh-lock", backend_name);
    let _purge = keyutils::Purge(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let store = open(&dir, &app, backend_name);
    for key in [P, "other"] {
        store
            .save(&tagged("0", 0), SaveOptions::new().profile(key))
            .expect("save expired");
    }
    let entered = tmp.path().join("entered");
    let release = tmp.path().join("release");
    let mut cmd = child::command(test_name!("stuck_refresher_child"), "stuck");
    cmd.env("REL_DIR", &dir)
        .env("REL_APP", &app)
        .env("REL_BACKEND", backend_name)
        .env("REL_ENTERED", &entered)
        .env("REL_RELEASE", &release)
        .stdout(Stdio::piped());
    let mut holder = KillOnDrop(cmd.spawn().expect("spawn"));
    let mut lines = Lines::new(&mut holder.0);
    wait_for_file(&entered, CHILD_LIMIT);

    let impatient = TokenStore::builder(&app)
        .dir(&dir)
        .backend(backend(backend_name))
        .lock_timeout(Duration::from_millis(200))
        .open()
        .expect("open");
    let called = Cell::new(false);
    let r = impatient.refresh(Some(P), Duration::from_secs(60), |_| {
        called.set(true);
        Ok::<_, std::io::Error>(tagged("unguarded", 3600))
    });
    assert!(
        matches!(r, Err(Error::LockTimeout { .. })),
        "{:?}",
        r.map(|t| loaded_tag(&t))
    );
    assert!(!called.get(), "refreshed without the lock");
    // A save of that profile waits for the refresh too.
    let r = impatient.save(&tagged("racing", 3600), SaveOptions::new().profile(P));
    assert!(matches!(r, Err(Error::LockTimeout { .. })), "{r:?}");
    // Reads are not blocked, and see the old token.
    assert_eq!(loaded_tag(&impatient.load(P).expect("load")), "0");
    // Another profile refreshes independently.
    let other_calls = AtomicUsize::new(0);
    let t = impatient
        .refresh(Some("other"), Duration::from_secs(60), |_| {
            other_calls.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(tagged("other-new", 3600))
        })
        .expect("independent refresh");
    assert_eq!(loaded_tag(&t), "other-new");
    assert_eq!(other_calls.load(Ordering::Relaxed), 1);

    std::fs::write(&release, b"go").expect("release");
    lines.wait_report("done", CHILD_LIMIT);
    assert!(holder.0.wait().expect("wait").success());
    assert!(
        child::reports(&lines.text(), "got").any(|g| g == "acc-held"),
        "{:?}",
        lines.seen
    );
    assert_eq!(loaded_tag(&store.load(P).expect("load")), "held");
    cleanup(&store, &app, backend_name);
}
