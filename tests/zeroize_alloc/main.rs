//! Zeroization, measured: a checking global allocator looks at every heap
//! block when it is freed, and at the old block of every `realloc` (each
//! realloc is treated as a move, the worst case), and records each block that
//! still holds one of the secret markers of the test token.
//!
//! One test runs every operation of the store (parse, save, load, list,
//! verify, refresh, export, repair, remove, drop) on each real backend in
//! turn, phase by phase, and attributes every hit to the phase and to the
//! innermost non-std function that freed the block (from a raw backtrace
//! taken inside the allocator, resolved afterwards). Hits freed by rctoken
//! (or by this test) fail the test; hits inside dependencies must match the
//! documented list `KNOWN_DEPENDENCY_SITES` (see docs/security.md), so a new
//! copy anywhere makes the test fail. A control test proves the checker
//! detects a leak and does not flag a zeroized buffer.
//!
//! Run under `.ci/with-keyring.sh` (the Secret Service phase needs the
//! session bus); keyutils needs nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

#[cfg(target_os = "linux")]
use keyring_core::api::CredentialStoreApi;
use rctoken::{Backend, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

#[macro_use]
#[path = "../support"]
mod support {
    #[macro_use]
    pub mod backends;
    #[cfg(windows)]
    pub mod credential_manager;
}

use support::backends::{self, Kind};

// ---------------------------------------------------------------------------
// The checking allocator
// ---------------------------------------------------------------------------

/// Secret markers. They occur nowhere in the program text except in the
/// token JSON below, which lives in read-only data, not on the heap.
const MARKERS: [&[u8]; 6] = [
    b"ZSECRETACCESS0123456789",
    b"ZSECRETREFRESH0123456789",
    b"ZSECRETIDTOKEN0123456789",
    b"ZSECRETCONTROL0123456789",
    b"ZSECRETCLIENT0123456789",
    b"ZSECRETJWT0123456789",
];
const MARKER_NAMES: [&str; 6] = ["access", "refresh", "id", "control", "client", "jwt"];
const CONTROL: usize = 3;
const PREFIX: &[u8] = b"ZSECRET";

const MAX_HITS: usize = 512;
const FRAMES: usize = 40;
const KIND_FREE: usize = 1;
const KIND_REALLOC: usize = 2;

struct Hit {
    phase: AtomicUsize,
    marker: AtomicUsize,
    size: AtomicUsize,
    kind: AtomicUsize,
    frames: [AtomicUsize; FRAMES],
}

impl Hit {
    const fn new() -> Self {
        Hit {
            phase: AtomicUsize::new(0),
            marker: AtomicUsize::new(0),
            size: AtomicUsize::new(0),
            kind: AtomicUsize::new(0),
            frames: [const { AtomicUsize::new(0) }; FRAMES],
        }
    }
}

static ARMED: AtomicBool = AtomicBool::new(false);
static PHASE: AtomicUsize = AtomicUsize::new(0);
static HIT_COUNT: AtomicUsize = AtomicUsize::new(0);
static HITS: [Hit; MAX_HITS] = [const { Hit::new() }; MAX_HITS];

thread_local! {
    /// Set while this thread is inside the hook (the unwinder may allocate).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

struct Checker;

/// Which marker, if any, the block holds.
fn find_marker(block: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + PREFIX.len() <= block.len() {
        if block[i] == b'Z' && block[i..].starts_with(PREFIX) {
            for (m, marker) in MARKERS.iter().enumerate() {
                if block[i..].starts_with(marker) {
                    return Some(m);
                }
            }
        }
        i += 1;
    }
    None
}

impl Checker {
    /// Inspect a block about to be freed (or left behind by a realloc).
    ///
    /// # Safety
    /// `ptr` must be valid for reads of `size` bytes.
    unsafe fn inspect(&self, ptr: *const u8, size: usize, kind: usize) {
        if !ARMED.load(Ordering::Relaxed) || size < PREFIX.len() {
            return;
        }
        if IN_HOOK.with(|f| f.replace(true)) {
            return;
        }
        // SAFETY: the caller guarantees `ptr` is valid for `size` bytes.
        let block = unsafe { std::slice::from_raw_parts(ptr, size) };
        if let Some(marker) = find_marker(block) {
            let slot = HIT_COUNT.fetch_add(1, Ordering::SeqCst);
            if let Some(hit) = HITS.get(slot) {
                hit.phase
                    .store(PHASE.load(Ordering::SeqCst), Ordering::SeqCst);
                hit.marker.store(marker, Ordering::SeqCst);
                hit.size.store(size, Ordering::SeqCst);
                hit.kind.store(kind, Ordering::SeqCst);
                let mut n = 0;
                // SAFETY: no other thread unwinds through this hook at the
                // same time in a way that matters: the unsynchronized variant
                // only avoids backtrace's global lock (which allocates).
                unsafe {
                    backtrace::trace_unsynchronized(|frame| {
                        hit.frames[n].store(frame.ip() as usize, Ordering::SeqCst);
                        n += 1;
                        n < FRAMES
                    });
                }
            }
        }
        IN_HOOK.with(|f| f.set(false));
    }
}

// SAFETY: every method forwards to `System` with the caller's layout; the
// only addition is reading a block that is still allocated.
unsafe impl GlobalAlloc for Checker {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes.
        unsafe {
            self.inspect(ptr, layout.size(), KIND_FREE);
            System.dealloc(ptr, layout)
        }
    }
    /// Every realloc moves the block, so the old block is always inspected:
    /// a secret in a growing buffer is caught whether or not the real
    /// allocator would have grown it in place.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the new layout has the old alignment and a non-zero size
        // (GlobalAlloc's contract); the copy stays within both blocks.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.inspect(ptr, layout.size(), KIND_REALLOC);
                System.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[global_allocator]
static GLOBAL: Checker = Checker;

// ---------------------------------------------------------------------------
// Recording and attribution
// ---------------------------------------------------------------------------

/// Tests in this binary share the allocator's state: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const PHASES: &[&str] = &[
    "idle",
    "parse",
    "parse-escaped",
    "open",
    "save",
    "load",
    "list",
    "verify",
    "refresh",
    "export",
    "repair",
    "remove",
    "drop",
    "control",
];

fn phase(name: &str) {
    let i = PHASES.iter().position(|p| *p == name).expect("known phase");
    PHASE.store(i, Ordering::SeqCst);
}

#[derive(Debug, Clone)]
struct Found {
    backend: &'static str,
    phase: &'static str,
    marker: &'static str,
    kind: &'static str,
    size: usize,
    /// The innermost function that is not the allocator, std or core.
    owner: String,
    /// A few frames from there outwards, for the report.
    stack: Vec<String>,
}

fn is_plumbing(name: &str) -> bool {
    let n = name.trim_start_matches('<');
    [
        "backtrace::",
        "zeroize_alloc::Checker",
        "<zeroize_alloc::Checker",
        "zeroize_alloc::find_marker",
        "__rust",
        "__rdl",
        "alloc::",
        "core::",
        "std::",
        "hashbrown::",
        "zeroize_alloc::_::__rust",
    ]
    .iter()
    .any(|p| n.starts_with(p.trim_start_matches('<')))
        || name.contains("as core::alloc::global::GlobalAlloc")
        || name.contains("as alloc::")
        || name.contains("as core::")
}

/// Take and reset the hits recorded since the last call.
fn take_hits(backend: &'static str) -> Vec<Found> {
    let n = HIT_COUNT.swap(0, Ordering::SeqCst).min(MAX_HITS);
    let was = ARMED.swap(false, Ordering::SeqCst);
    let mut out = Vec::new();
    for hit in &HITS[..n] {
        let mut names = Vec::new();
        for f in &hit.frames {
            let ip = f.swap(0, Ordering::SeqCst);
            if ip == 0 {
                break;
            }
            let mut here = Vec::new();
            backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
                if let Some(name) = sym.name() {
                    here.push(format!("{name:#}"));
                }
            });
            if here.is_empty() {
                here.push(format!("{ip:#x}"));
            }
            names.extend(here);
        }
        let first = names.iter().position(|n| !is_plumbing(n)).unwrap_or(0);
        let stack: Vec<String> = names.iter().skip(first).take(8).cloned().collect();
        out.push(Found {
            backend,
            phase: PHASES[hit.phase.load(Ordering::SeqCst)],
            marker: MARKER_NAMES[hit.marker.load(Ordering::SeqCst)],
            kind: if hit.kind.load(Ordering::SeqCst) == KIND_REALLOC {
                "realloc"
            } else {
                "free"
            },
            size: hit.size.load(Ordering::SeqCst),
            owner: stack.first().cloned().unwrap_or_default(),
            stack,
        });
    }
    ARMED.store(was, Ordering::SeqCst);
    out
}

/// Copies left by dependencies that rctoken cannot reach, as
/// (backend, innermost function prefix). Keep in sync with docs/security.md.
const KNOWN_DEPENDENCY_SITES: &[(&str, &str)] = &[
    // ureq's connection buffers (128 KiB each, request and response bytes,
    // so the request's secrets and the answer's tokens), freed unzeroized
    // when the connection is closed after its request (rctoken keeps no
    // pooled connections, so this happens at once, inside ureq).
    ("http", "ureq::pool::Pool::purge"),
];

fn is_known(f: &Found) -> bool {
    KNOWN_DEPENDENCY_SITES
        .iter()
        .any(|(backend, site)| *backend == f.backend && f.owner.starts_with(site))
}

fn report(found: &[Found]) -> String {
    let mut s = String::new();
    for f in found {
        s.push_str(&format!(
            "[{}] phase {:<13} {:<7} {:<7} {:>6} B  freed by {}\n",
            f.backend, f.phase, f.marker, f.kind, f.size, f.owner
        ));
        for frame in f.stack.iter().skip(1).take(5) {
            s.push_str(&format!("        from {frame}\n"));
        }
    }
    s
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

const TOKEN_JSON: &[u8] = br#"{"access_token":"ZSECRETACCESS0123456789","token_type":"bearer","expires_in":3600,"refresh_token":"ZSECRETREFRESH0123456789","refresh_token_expires_in":604800,"id_token":"ZSECRETIDTOKEN0123456789","scope":"ReadAccounts","owner_id":"256440016","endpoint_id":"ep-1","session_id":"sess-1"}"#;

/// The same token as a JSON encoder that escapes `/` writes it: every secret
/// goes through serde_json's unescaping scratch buffer.
const TOKEN_JSON_ESCAPED: &[u8] = br#"{"access_token":"ZSECRETACCESS0123456789\/a","token_type":"bearer","expires_in":3600,"refresh_token":"ZSECRETREFRESH0123456789\/r","refresh_token_expires_in":604800,"id_token":"ZSECRETIDTOKEN0123456789\/i","scope":"ReadAccounts","owner_id":"256440016"}"#;

/// A heap copy of `src`, as an input buffer the caller zeroizes.
fn input(src: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(src.len()));
    v.extend_from_slice(src);
    v
}

fn starts_with_marker(s: &str, m: usize) -> bool {
    s.as_bytes().starts_with(MARKERS[m])
}

fn open_store(
    tmp: &std::path::Path,
    backend: Backend,
    label: &str,
    max_item: Option<usize>,
) -> TokenStore {
    let app = format!("zeroize-{label}-{}", std::process::id());
    let mut builder = TokenStore::builder(&app).dir(tmp).backend(backend);
    if let Some(n) = max_item {
        builder = builder.max_item_bytes(n);
    }
    builder.open().expect("opens")
}

/// Every store operation, one phase each. `max_item` forces the envelope to
/// be split across several keychain items.
fn scenario(backend: Backend, label: &'static str, max_item: Option<usize>) -> Vec<Found> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let _ = take_hits(label);
    ARMED.store(true, Ordering::SeqCst);

    phase("parse");
    let json = input(TOKEN_JSON);
    let token = TokenInfo::from_json(&json).expect("parses");
    drop(json);

    phase("open");
    let store = open_store(tmp.path(), backend, label, max_item);
    let (name, _) = store.backend().expect("backend connects");
    assert_eq!(name, label);

    phase("save");
    store
        .save(&token, SaveOptions::new().label("work"))
        .expect("saves");
    if let Some(n) = max_item {
        let items = store
            .info(rctoken::Selector::Active)
            .expect("info")
            .keychain_items();
        assert!(items > 1, "{n}-byte items: split into {items}");
    }

    phase("load");
    let loaded = store.load("256440016").expect("loads");
    assert!(starts_with_marker(
        loaded.token.access_token.expose_secret(),
        0
    ));
    assert!(loaded.token.refresh_token.is_some() && loaded.token.id_token.is_some());
    drop(loaded);

    phase("list");
    assert_eq!(store.list().expect("lists").len(), 1);
    let _ = store.info(Some("work")).expect("info");

    phase("verify");
    assert!(store.verify().expect("verifies").is_clean());

    phase("refresh");
    // Ask for more validity than the token has, so the refresh fn runs.
    let refreshed = store
        .refresh(Some("work"), Duration::from_secs(7200), |rt| {
            assert!(starts_with_marker(rt.expose_secret(), 1));
            let json = input(TOKEN_JSON);
            TokenInfo::from_json(&json)
        })
        .expect("refreshes");
    drop(refreshed);

    phase("export");
    let loaded = store.load(rctoken::Selector::Active).expect("loads");
    let out = loaded.token.to_json_revealed();
    assert!(find_marker(&out) == Some(0));
    drop(out);
    drop(loaded);

    phase("repair");
    // A corrupt metadata file: repair moves it aside and rebuilds it from the
    // envelopes, decoding every secret once more.
    std::fs::write(store.layout().index(), b"{ not json").expect("corrupts");
    let fixed = store.repair().expect("repairs");
    assert!(fixed.is_clean(), "{:?}", fixed.problems);
    assert_eq!(store.list().expect("lists").len(), 1);

    phase("remove");
    store.remove("256440016").expect("removes");
    store.remove_all().expect("cleans up");

    phase("drop");
    drop(token);
    drop(store);
    // Give keychain worker threads a moment to finish their frees.
    std::thread::sleep(Duration::from_millis(200));

    phase("idle");
    take_hits(label)
}

/// The RingCentral client's HTTP path (feature `ringcentral`) against the
/// fake platform on loopback, which issues the access and refresh markers:
/// the JWT grant, a refresh through the store, a revoke. The client secret
/// and the JWT are markers too.
#[cfg(feature = "ringcentral")]
fn http_scenario() -> Vec<Found> {
    use rctoken::ringcentral::Client;
    let tmp = tempfile::tempdir().expect("tempdir");
    let marker = |m: usize| std::str::from_utf8(MARKERS[m]).expect("ascii");
    let mut server = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/fake_ringcentral.py"
        ))
        .arg("client_id=zeroize-client")
        .arg(format!("client_secret={}", marker(4)))
        .arg(format!("jwt={}", marker(5)))
        .arg(format!("access_prefix={}", marker(0)))
        .arg(format!("refresh_prefix={}", marker(1)))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the fake RingCentral server (python3)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("its port");
    let url = format!(
        "http://127.0.0.1:{}",
        line.trim().trim_start_matches("PORT ")
    );
    let _ = take_hits("http");
    ARMED.store(true, Ordering::SeqCst);

    phase("open");
    let store = open_store(
        tmp.path(),
        Backend::Memory(MemoryKeychain::new()),
        "http",
        None,
    );
    let client = Client::new(&url, "zeroize-client")
        .expect("client")
        .with_secret(secrecy::SecretString::from(marker(4)));

    phase("save");
    let jwt = secrecy::SecretString::from(marker(5));
    let token = client.login_jwt(&jwt).expect("logs in");
    drop(jwt);
    assert!(starts_with_marker(token.access_token.expose_secret(), 0));
    store.save(&token, SaveOptions::new()).expect("saves");
    drop(token);

    phase("refresh");
    let refreshed = store
        .refresh(rctoken::Selector::Active, Duration::from_secs(7200), |rt| {
            client.refresh(rt)
        })
        .expect("refreshes");

    phase("remove");
    let rt = refreshed
        .token
        .refresh_token
        .clone()
        .expect("a refresh token");
    client.revoke(&rt).expect("revokes");
    drop(rt);
    drop(refreshed);
    store.remove_all().expect("cleans up");

    phase("drop");
    drop(client);
    drop(store);
    std::thread::sleep(Duration::from_millis(200));
    phase("idle");
    let hits = take_hits("http");
    ARMED.store(false, Ordering::SeqCst);
    let _ = server.kill();
    let _ = server.wait();
    hits
}

/// Remove the sealed scenario's key (a logout leaves a sealed store's key):
/// every `user` key in /proc/keys whose description starts with `prefix`.
fn purge_sealing_keys(prefix: &str) {
    let Ok(text) = std::fs::read_to_string("/proc/keys") else {
        return;
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 8 && fields[7] == "user" && fields[8].starts_with(prefix) {
            let id = u32::from_str_radix(fields[0], 16)
                .map_or_else(|_| String::new(), |n| n.to_string());
            for args in [
                vec!["unlink", id.as_str(), "@u"],
                vec!["invalidate", id.as_str()],
            ] {
                let _ = std::process::Command::new("keyctl")
                    .args(&args)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

fn assert_only_known(all: &[Found]) {
    let text = report(all);
    eprintln!("zeroization hits ({}):\n{text}", all.len());
    let unexpected: Vec<Found> = all.iter().filter(|f| !is_known(f)).cloned().collect();
    assert!(
        unexpected.is_empty(),
        "freed heap blocks still held a secret (not a documented dependency copy):\n{}",
        report(&unexpected)
    );
}

#[test]
fn no_freed_block_holds_a_secret_on_any_backend() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut all = Vec::new();
    all.extend(scenario(
        Backend::Memory(MemoryKeychain::new()),
        "memory",
        None,
    ));
    all.extend(scenario(
        Backend::Memory(MemoryKeychain::new()),
        "memory",
        Some(64),
    ));
    // A real backend the run declares absent is left out (saying so).
    if backends::available(Kind::Keyutils) {
        all.extend(scenario(Backend::Keyutils, "keyutils", None));
        all.extend(scenario(Backend::Keyutils, "keyutils", Some(64)));
    }
    if backends::available(Kind::SecretService) {
        all.extend(scenario(Backend::SecretService, "secret-service", None));
    }
    if backends::available(Kind::Keyutils) {
        // The sealed store, its key in keyutils: the envelope is encrypted
        // and decrypted in rctoken's own buffers.
        let sealed = Backend::Sealed(rctoken::KeySource::Keyutils);
        all.extend(scenario(sealed, "sealed", None));
        ARMED.store(false, Ordering::SeqCst);
        purge_sealing_keys(&format!(
            "rctoken-key:zeroize-sealed-{}:",
            std::process::id()
        ));
    }
    #[cfg(feature = "ringcentral")]
    all.extend(http_scenario());
    ARMED.store(false, Ordering::SeqCst);
    assert_only_known(&all);
}

/// A token response whose secrets contain JSON escapes (`\/`, as PHP and
/// some other encoders write `/`). serde_json unescapes such strings in its
/// deserializer's scratch buffer, which it grows by reallocation and frees
/// without zeroizing: rctoken must not hand it escaped secrets.
#[test]
fn escaped_token_json_leaves_no_copy() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = take_hits("parse");
    ARMED.store(true, Ordering::SeqCst);
    phase("parse-escaped");
    let json = input(TOKEN_JSON_ESCAPED);
    let escaped = TokenInfo::from_json(&json).expect("parses");
    drop(json);
    assert_eq!(
        escaped.access_token.expose_secret().as_bytes(),
        b"ZSECRETACCESS0123456789/a"
    );
    assert!(
        escaped
            .id_token
            .as_ref()
            .is_some_and(|s| s.expose_secret().ends_with("/i"))
    );
    drop(escaped);
    phase("idle");
    let all = take_hits("parse");
    ARMED.store(false, Ordering::SeqCst);
    assert_only_known(&all);
}

/// A response with a secret field given twice: the value that loses must be
/// wiped too (serde_json's map drops a replaced value without zeroizing).
#[test]
fn duplicate_secret_fields_leave_no_copy() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = take_hits("parse");
    ARMED.store(true, Ordering::SeqCst);
    phase("parse-escaped");
    let json = input(
        br#"{"access_token":"ZSECRETACCESS0123456789-first","access_token":"second","token_type":"bearer","expires_in":1,"scope":"s"}"#,
    );
    let parsed = TokenInfo::from_json(&json);
    drop(json);
    drop(parsed);
    phase("idle");
    let all = take_hits("parse");
    ARMED.store(false, Ordering::SeqCst);
    assert_only_known(&all);
}

/// The Secret Service path is measured: a secret read back through the
/// same keyring-core store rctoken uses and dropped without zeroizing is
/// caught, so the clean result above is not an artefact of frees the
/// checker cannot see.
#[test]
#[cfg(target_os = "linux")]
fn control_secret_service_returns_are_seen() {
    needs!(Kind::SecretService);
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let store = zbus_secret_service_keyring_store::Store::new().expect("secret service");
    let account = format!("control-{}", std::process::id());
    let entry = store
        .build("rctoken:zeroize-control", &account, None)
        .expect("entry");
    let _ = take_hits("secret-service");
    ARMED.store(true, Ordering::SeqCst);
    phase("control");
    entry.set_secret(MARKERS[CONTROL]).expect("sets");
    let got = entry.get_secret().expect("gets");
    assert_eq!(got, MARKERS[CONTROL]);
    drop(got); // a plain Vec: not zeroized
    phase("idle");
    let hits = take_hits("secret-service");
    ARMED.store(false, Ordering::SeqCst);
    entry.delete_credential().expect("deletes");
    let control: Vec<&Found> = hits.iter().filter(|f| f.marker == "control").collect();
    assert_eq!(control.len(), 1, "{}", report(&hits));
    assert!(
        control[0]
            .owner
            .contains("control_secret_service_returns_are_seen"),
        "{}",
        report(&hits)
    );
}

/// The checker can fail: a secret dropped without zeroizing is caught (on
/// free and on a moving realloc), and a zeroized one is not.
#[test]
fn control_the_checker_detects_a_leak() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let _ = take_hits("control");
    ARMED.store(true, Ordering::SeqCst);
    phase("control");

    let leaked = String::from_utf8(MARKERS[CONTROL].to_vec()).expect("utf-8");
    drop(leaked);
    let free_hits = take_hits("control");

    ARMED.store(true, Ordering::SeqCst);
    let mut growing = Vec::with_capacity(MARKERS[CONTROL].len());
    growing.extend_from_slice(MARKERS[CONTROL]);
    growing.reserve(4096); // moves the block: the old one still holds the marker
    zeroize::Zeroize::zeroize(&mut growing);
    drop(growing);
    let realloc_hits = take_hits("control");

    ARMED.store(true, Ordering::SeqCst);
    let wiped = Zeroizing::new(String::from_utf8(MARKERS[CONTROL].to_vec()).expect("utf-8"));
    drop(wiped);
    let clean = take_hits("control");
    ARMED.store(false, Ordering::SeqCst);

    let only_control = |v: &[Found]| v.iter().filter(|f| f.marker == "control").count();
    assert_eq!(only_control(&free_hits), 1, "{}", report(&free_hits));
    assert!(
        free_hits[0]
            .owner
            .contains("control_the_checker_detects_a_leak"),
        "attributed to the test function: {}",
        report(&free_hits)
    );
    assert_eq!(only_control(&realloc_hits), 1, "{}", report(&realloc_hits));
    assert_eq!(realloc_hits[0].kind, "realloc");
    assert_eq!(only_control(&clean), 0, "{}", report(&clean));
}
