//! Part 1: what the store costs over a raw keychain call of the same bytes,
//! on the same backend, in the same run (alternated).

use std::sync::Arc;

use keyring_core::CredentialStore;
use linux_keyutils::{KeyRing, KeyRingIdentifier};
use rctoken::SaveOptions;

use crate::Cfg;
use crate::fixtures::{self, BenchStore};
use crate::stats;

const PROFILES: usize = 10;

pub fn run(cfg: &Cfg) {
    println!("\n## 1. Library overhead over the raw keychain ({PROFILES} profiles)");
    keyutils(cfg);
    if fixtures::secret_service_available() {
        secret_service(cfg);
    } else {
        println!("\nSecret Service: skipped (no session bus; run inside .ci/with-keyring.sh)");
    }
}

/// The metadata file's write as `files::write_atomic` does it: 0600 temp,
/// write, fsync, rename, fsync of the directory. A breakdown row for saves.
pub fn write_atomic_like(dir: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let tmp = dir.join(".bench-meta.tmp");
    let target = dir.join("bench-meta.json");
    let mut f = std::fs::File::create(&tmp).expect("create temp");
    f.write_all(bytes).expect("write temp");
    f.sync_all().expect("fsync temp");
    std::fs::rename(&tmp, &target).expect("rename");
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

fn keyutils(cfg: &Cfg) {
    let b = BenchStore::new("overhead-ku", "keyutils");
    let keys = b.fill(PROFILES);
    let active = keys[0].clone();
    let (service, account) = b.item_of(&active);
    let ring = KeyRing::from_special_id(KeyRingIdentifier::User, false).expect("@u");
    let desc = format!("{service}:{account}");
    let bytes = {
        let k = ring.search(&desc).expect("the store's item is in @u");
        k.read_to_vec().expect("read item")
    };
    println!(
        "\nkeyutils: active profile item {} bytes, raw read of the same key",
        bytes.len()
    );
    let rounds = cfg.n(2000, 20);

    let mut buf = vec![0u8; 32767];
    let loads = stats::alternate(
        rounds,
        cfg.n(50, 1),
        &mut [
            (
                "raw keyutils search+read",
                Box::new(|| {
                    let k = ring.search(&desc).expect("search");
                    let n = k.read(&mut buf).expect("read");
                    assert_eq!(n, bytes.len());
                }) as Box<dyn FnMut()>,
            ),
            (
                "store.load(rctoken::Selector::Active)",
                Box::new(|| {
                    let t = b
                        .store
                        .load(rctoken::Selector::Active)
                        .expect("load_active");
                    assert_eq!(t.info.profile, active);
                }),
            ),
            (
                "store.info(rctoken::Selector::Active) (metadata only)",
                Box::new(|| {
                    b.store.info(rctoken::Selector::Active).expect("info");
                }),
            ),
        ],
    );
    stats::print_table("keyutils: load the active profile", &loads);
    let over = stats::diff_us(loads[1].median(), loads[0].median());
    stats::verdict(
        "keyutils load overhead at 10 profiles",
        format!("{over:.1} µs"),
        "≤ 50 µs",
        over <= 50.0,
    );

    // Saves: the store re-saves one profile (new key, metadata commit with
    // fsync, old key invalidated); raw replaces a key of the same size.
    let raw_desc = format!("rctoken-bench-raw:{}:x", b.app);
    let token = fixtures::token(&keys[1], 3600, 7);
    // What a save writes: the profile's own file.
    let meta_bytes = std::fs::read(b.store.layout().profile_file(&keys[1])).expect("profile file");
    let scratch = tempfile::tempdir().expect("temp");
    let mut i = 0u64;
    let saves = stats::alternate(
        cfg.n(200, 5),
        cfg.n(5, 1),
        &mut [
            (
                "raw keyutils add_key (replace)",
                Box::new(|| {
                    ring.add_key(&raw_desc, &bytes[..]).expect("add_key");
                }) as Box<dyn FnMut()>,
            ),
            (
                "raw add new key + invalidate old",
                Box::new(|| {
                    i += 1;
                    let new = ring
                        .add_key(&format!("{raw_desc}.{i}"), &bytes[..])
                        .expect("add_key");
                    if let Ok(old) = ring.search(&format!("{raw_desc}.{}", i - 1)) {
                        old.invalidate().expect("invalidate");
                    }
                    let _ = new;
                }),
            ),
            (
                "metadata write+fsync+rename (same bytes)",
                Box::new(|| write_atomic_like(scratch.path(), &meta_bytes)),
            ),
            (
                "store.save() (re-save a profile)",
                Box::new(|| {
                    b.store
                        .save(&token, SaveOptions::new())
                        .expect("store save");
                }),
            ),
        ],
    );
    stats::print_table("keyutils: save", &saves);
    for d in [raw_desc.clone(), format!("{raw_desc}.{i}")] {
        if let Ok(k) = ring.search(&d) {
            let _ = k.invalidate();
        }
    }
}

fn secret_service(cfg: &Cfg) {
    let b = BenchStore::new("overhead-ss", "secret-service");
    let keys = b.fill(PROFILES);
    let active = keys[0].clone();
    let (service, account) = b.item_of(&active);
    let raw: Arc<CredentialStore> =
        zbus_secret_service_keyring_store::Store::new().expect("connect to the Secret Service");
    let bytes = raw
        .build(&service, &account, None)
        .and_then(|e| e.get_secret())
        .expect("the store's item via keyring-core");
    println!(
        "\nSecret Service: active profile item {} bytes; raw keyring-core reads the same item \
         on one reused connection (as the store does)",
        bytes.len()
    );
    // Warm the store's own connection.
    b.store
        .load(rctoken::Selector::Active)
        .expect("warm-up load");
    let worker = Worker::new();
    let rounds = cfg.n(300, 5);
    let loads = stats::alternate(
        rounds,
        cfg.n(20, 1),
        &mut [
            (
                "raw keyring-core get_secret",
                Box::new(|| {
                    let e = raw.build(&service, &account, None).expect("build");
                    assert_eq!(e.get_secret().expect("get").len(), bytes.len());
                }) as Box<dyn FnMut()>,
            ),
            (
                "store.load(rctoken::Selector::Active)",
                Box::new(|| {
                    let t = b
                        .store
                        .load(rctoken::Selector::Active)
                        .expect("load_active");
                    assert_eq!(t.info.profile, active);
                }),
            ),
            (
                "raw get on a new thread per call (the store before its worker thread)",
                Box::new(|| {
                    let (raw, service, account) = (raw.clone(), service.clone(), account.clone());
                    std::thread::spawn(move || {
                        raw.build(&service, &account, None)
                            .and_then(|e| e.get_secret())
                            .expect("get")
                    })
                    .join()
                    .expect("thread");
                }),
            ),
            (
                "raw get on one long-lived worker thread",
                Box::new(|| {
                    let (raw, service, account) = (raw.clone(), service.clone(), account.clone());
                    worker.run(move || {
                        raw.build(&service, &account, None)
                            .and_then(|e| e.get_secret())
                            .expect("get");
                    });
                }),
            ),
            (
                "spawn+join of an empty thread",
                Box::new(|| std::thread::spawn(|| ()).join().expect("thread")),
            ),
            (
                "store.info(rctoken::Selector::Active) (metadata only)",
                Box::new(|| {
                    b.store.info(rctoken::Selector::Active).expect("info");
                }),
            ),
        ],
    );
    stats::print_table("Secret Service: load the active profile", &loads);
    let r = loads[1].median().as_secs_f64() / loads[0].median().as_secs_f64();
    stats::verdict(
        "Secret Service load ratio",
        format!("{r:.3}×"),
        "≤ 1.10×",
        r <= 1.10,
    );

    let raw_service = format!("rctoken-bench-raw:{}", b.app);
    let token = fixtures::token(&keys[1], 3600, 7);
    // What a save writes: the profile's own file.
    let meta_bytes = std::fs::read(b.store.layout().profile_file(&keys[1])).expect("profile file");
    let scratch = tempfile::tempdir().expect("temp");
    raw.build(&raw_service, "x", None)
        .and_then(|e| e.set_secret(&bytes))
        .expect("raw item");
    let mut i = 0u64;
    let saves = stats::alternate(
        cfg.n(60, 3),
        cfg.n(3, 1),
        &mut [
            (
                "raw keyring-core set_secret (existing item)",
                Box::new(|| {
                    raw.build(&raw_service, "x", None)
                        .and_then(|e| e.set_secret(&bytes))
                        .expect("set");
                }) as Box<dyn FnMut()>,
            ),
            (
                "raw create new item + delete old",
                Box::new(|| {
                    i += 1;
                    raw.build(&raw_service, &format!("gen{i}"), None)
                        .and_then(|e| e.set_secret(&bytes))
                        .expect("create");
                    if i > 1 {
                        raw.build(&raw_service, &format!("gen{}", i - 1), None)
                            .and_then(|e| e.delete_credential())
                            .expect("delete");
                    }
                }),
            ),
            (
                "metadata write+fsync+rename (same bytes)",
                Box::new(|| write_atomic_like(scratch.path(), &meta_bytes)),
            ),
            (
                "store.save() (re-save a profile)",
                Box::new(|| {
                    b.store
                        .save(&token, SaveOptions::new())
                        .expect("store save");
                }),
            ),
        ],
    );
    stats::print_table("Secret Service: save", &saves);
    for acct in ["x".to_string(), format!("gen{i}")] {
        let _ = raw
            .build(&raw_service, &acct, None)
            .and_then(|e| e.delete_credential());
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One long-lived thread that runs jobs and answers when each is done: the
/// alternative to a thread per keychain call (keeps the timeout possible).
struct Worker {
    jobs: std::sync::mpsc::Sender<(Job, std::sync::mpsc::SyncSender<()>)>,
}

impl Worker {
    fn new() -> Worker {
        let (tx, rx) = std::sync::mpsc::channel::<(Job, std::sync::mpsc::SyncSender<()>)>();
        std::thread::spawn(move || {
            for (job, done) in rx {
                job();
                let _ = done.send(());
            }
        });
        Worker { jobs: tx }
    }

    fn run(&self, job: impl FnOnce() + Send + 'static) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.jobs.send((Box::new(job), tx)).expect("worker alive");
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("worker answered");
    }
}
