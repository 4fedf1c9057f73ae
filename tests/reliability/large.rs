//! Secrets of any size (issue 4 §4): 64 KiB access, refresh and id tokens
//! (distinct content each) on kernel keyutils (split across several keys of
//! at most 4096 bytes, the most a keyutils update takes), on the Secret
//! Service with a small configured item limit (many items), on the Windows
//! Credential Manager (under Wine in CI) in credentials of at most 2560
//! bytes, its limit, and on the memory backend with that limit. Checked
//! from outside the library (`keyctl`, `/proc/keys`, `secret-tool`, the
//! Secret Service client directly, the Credential Manager's own list):
//! an exact round trip, a re-save that leaves no item of the old generation,
//! a logout that leaves none at all, a missing middle item read as
//! `SecretMissing`, and an item of another generation swapped in read as
//! `CorruptSecret` — both reported by `verify` and dropped by `repair`.

#[cfg(target_os = "linux")]
use keyring_core::api::CredentialStoreApi;
use rctoken::secrecy::{ExposeSecret, SecretString};
use rctoken::{Backend, Error, MemoryKeychain, Problem, SaveOptions, TokenInfo, TokenStore};

use crate::rel::Rng;
#[cfg(any(target_os = "linux", windows))]
use crate::rel::{cleanup, open};
#[cfg(any(target_os = "linux", windows))]
use crate::support::backends::Kind;
use crate::support::ids;
#[cfg(target_os = "linux")]
use crate::support::{keyutils, secret_service};

const KIB64: usize = 64 * 1024;

/// `len` bytes of printable content derived from `seed`, different for
/// every seed (so a mix-up of the three tokens or two saves shows).
fn blob(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = Rng::new(h);
    let mut s = String::with_capacity(len);
    s.push_str(seed);
    while s.len() < len {
        s.push(ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char);
    }
    s.truncate(len);
    s
}

fn big_token(seed: &str) -> TokenInfo {
    let mut t = TokenInfo::new(
        SecretString::from(blob(&format!("access-{seed}-"), KIB64)),
        3600,
        "ReadAccounts",
    );
    t.refresh_token = Some(SecretString::from(blob(&format!("refresh-{seed}-"), KIB64)));
    t.refresh_token_expires_in = Some(604_800);
    t.id_token = Some(SecretString::from(blob(&format!("id-{seed}-"), KIB64)));
    t
}

fn assert_round_trip(store: &TokenStore, key: &str, seed: &str) {
    let got = store.load(key).expect("load").token;
    let want = big_token(seed);
    // Compare without printing 64 KiB on failure.
    let same = |a: &SecretString, b: &SecretString| a.expose_secret() == b.expose_secret();
    assert!(
        same(&got.access_token, &want.access_token),
        "access token differs"
    );
    assert!(
        same(
            got.refresh_token.as_ref().expect("refresh"),
            want.refresh_token.as_ref().expect("refresh")
        ),
        "refresh token differs"
    );
    assert!(
        same(
            got.id_token.as_ref().expect("id"),
            want.id_token.as_ref().expect("id")
        ),
        "id token differs"
    );
    assert_eq!(got.access_token.expose_secret().len(), KIB64);
}

fn save(store: &TokenStore, key: &str, seed: &str) -> rctoken::ProfileInfo {
    store
        .save(&big_token(seed), SaveOptions::new().profile(key))
        .expect("save 3 × 64 KiB")
}

fn accounts(info: &rctoken::ProfileInfo) -> Vec<String> {
    (0..info.keychain_items())
        .map(|i| format!("{}.{}.{i}", info.profile, info.generation()))
        .collect()
}

/// A missing middle item and a swapped-in item of another generation are
/// detected, reported and repaired. `remove_item(account)` deletes an item
/// from outside; `read_item`/`write_item` copy raw item bytes from outside.
#[cfg(any(target_os = "linux", windows))]
fn damage_and_repair(
    store: &TokenStore,
    remove_item: &dyn Fn(&str),
    read_item: &dyn Fn(&str) -> Vec<u8>,
    write_item: &dyn Fn(&str, &[u8]),
) {
    // Missing middle item.
    let info = save(store, "hole", "hole-1");
    let acc = accounts(&info);
    assert!(acc.len() >= 3, "need a middle item: {acc:?}");
    remove_item(&acc[acc.len() / 2]);
    assert!(
        matches!(store.load("hole"), Err(Error::SecretMissing { .. })),
        "a missing middle item must read as SecretMissing"
    );

    // An item of another generation swapped in.
    let first = save(store, "swap", "swap-1");
    let stale = read_item(&accounts(&first)[1]);
    let second = save(store, "swap", "swap-2");
    assert_ne!(first.generation(), second.generation());
    write_item(&accounts(&second)[1], &stale);
    match store.load("swap") {
        Err(Error::CorruptSecret { .. }) => {}
        other => panic!(
            "a swapped-in item must read as CorruptSecret, got {:?}",
            other.map(|_| "a token")
        ),
    }

    let report = store.verify().expect("verify");
    let mut found: Vec<String> = report
        .problems
        .iter()
        .map(|p| match p {
            Problem::SecretMissing { profile } => format!("missing {profile}"),
            Problem::SecretUnreadable { profile, .. } => format!("unreadable {profile}"),
            other => panic!("unexpected problem {other:?}"),
        })
        .collect();
    found.sort();
    assert_eq!(found, ["missing hole", "unreadable swap"]);
    let repaired = store.repair().expect("repair");
    assert!(repaired.is_clean(), "{:?}", repaired.problems);
    for key in ["hole", "swap"] {
        assert!(matches!(store.load(key), Err(Error::NoSuchProfile(_))));
    }
}

// ---------------------------------------------------------------------------
// keyutils

/// Needs root: 3 × 64 KiB of secrets can never fit in a non-root user's
/// keyutils quota of 20,000 bytes (that case is tests/keyutils_quota/keyutils_user.rs).
#[cfg(target_os = "linux")]
#[test]
fn sixty_four_kib_tokens_on_keyutils_as_root() {
    needs!(Kind::Keyutils);
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "must run as root (euid is {euid}): 3 x 64 KiB exceed a non-root keyutils quota; \
         .ci/test.sh runs the *_as_root tests as root"
    );
    let app = ids::app_id("large", "keyutils");
    let _purge = keyutils::Purge(app.clone());
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path(), &app, "keyutils");
    let id = |account: &str| keyutils::key_id(&app, account).expect("key exists");

    let info = save(&store, "big", "one");
    assert!(
        info.keychain_items() >= 6,
        "3 × 64 KiB need several keys: {}",
        info.keychain_items()
    );
    assert_round_trip(&store, "big", "one");
    // Each key, read back with keyctl, is within what KEYCTL_UPDATE takes.
    let mut total = 0;
    for account in accounts(&info) {
        let bytes = keyutils::read(&id(&account));
        assert!(bytes.len() <= 4096, "{account}: {} bytes", bytes.len());
        total += bytes.len();
    }
    assert!(
        total > 3 * KIB64,
        "all three tokens are stored ({total} bytes)"
    );
    let seen: Vec<String> = keyutils::items(&app).into_iter().map(|(a, _)| a).collect();
    let mut want = accounts(&info);
    want.sort();
    assert_eq!(seen, want, "/proc/keys shows exactly these keys");

    // Re-save: only the new generation's keys remain.
    let info2 = save(&store, "big", "two");
    assert_ne!(info.generation(), info2.generation());
    assert_round_trip(&store, "big", "two");
    let seen: Vec<String> = keyutils::items_settle(&app, info2.keychain_items() as usize)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let mut want = accounts(&info2);
    want.sort();
    assert_eq!(seen, want, "old generation's keys deleted");
    let report = store.verify().expect("verify");
    assert!(
        report.orphan_scan && report.is_clean(),
        "{:?}",
        report.problems
    );

    // Logout deletes every key.
    store.remove("big").expect("logout");
    assert_eq!(
        keyutils::items_settle(&app, 0),
        vec![],
        "keys left after logout"
    );

    damage_and_repair(
        &store,
        // Unlinking drops the key from @u at once (invalidation waits for
        // the kernel's garbage collector; see faults_keyutils.rs).
        &|account| keyutils::unlink(&id(account)),
        &|account| keyutils::read(&id(account)),
        &|account, bytes| {
            keyutils::add(&format!("rctoken:{app}:{account}"), bytes);
        },
    );
    cleanup(&store, &app, "keyutils");
}

// ---------------------------------------------------------------------------
// Secret Service

#[cfg(target_os = "linux")]
#[test]
fn sixty_four_kib_tokens_on_the_secret_service_in_4_kib_items() {
    needs!(Kind::SecretService);
    let app = ids::app_id("large", "secret-service");
    let service = format!("rctoken:{app}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::builder(&app)
        .dir(tmp.path())
        .backend(Backend::SecretService)
        .max_item_bytes(4096)
        .open()
        .expect("open");

    let info = save(&store, "big", "one");
    assert!(
        info.keychain_items() >= 48,
        "3 × 64 KiB in 4 KiB items: {}",
        info.keychain_items()
    );
    assert_round_trip(&store, "big", "one");
    assert_eq!(secret_service::count(&app), info.keychain_items() as usize);

    // The Secret Service's own client sees items of at most 4096 bytes.
    let ss = zbus_secret_service_keyring_store::Store::new().expect("secret service");
    let entry = |account: &str| ss.build(&service, account, None).expect("entry");
    for account in accounts(&info) {
        let bytes = entry(&account).get_secret().expect("item present");
        assert!(bytes.len() <= 4096, "{account}: {} bytes", bytes.len());
    }

    let info2 = save(&store, "big", "two");
    assert_round_trip(&store, "big", "two");
    assert_eq!(
        secret_service::count(&app),
        info2.keychain_items() as usize,
        "old generation's items deleted"
    );
    let report = store.verify().expect("verify");
    assert!(
        report.orphan_scan && report.is_clean(),
        "{:?}",
        report.problems
    );

    store.remove("big").expect("logout");
    assert_eq!(secret_service::count(&app), 0, "items left after logout");

    damage_and_repair(
        &store,
        &|account| {
            let ok = secret_service::clear(&service, account);
            assert!(ok, "secret-tool clear {account}");
        },
        &|account| entry(account).get_secret().expect("read item"),
        &|account, bytes| entry(account).set_secret(bytes).expect("write item"),
    );
    cleanup(&store, &app, "secret-service");
}

// ---------------------------------------------------------------------------
// The Windows Credential Manager

/// The Credential Manager's largest credential blob
/// (CRED_MAX_CREDENTIAL_BLOB_SIZE).
const CRED_MAX: usize = 2560;

/// Tokens of 3000, 6000 and 2000 bytes, then 3 × 64 KiB, on the real
/// Credential Manager: each round trip exact, in credentials of at most
/// 2560 bytes that exist exactly as the metadata says (counted and read
/// from outside), a re-save leaving none of the old generation, a logout
/// none at all, and a missing or swapped item detected and repaired.
#[cfg(windows)]
#[test]
fn large_tokens_on_the_credential_manager_in_2560_byte_credentials() {
    use crate::support::credential_manager as cm;
    needs!(Kind::WindowsCredentialManager);
    // Not while another test's writers are killed mid-write: Wine's
    // CredEnumerateW, which the outside view uses, is not safe against that.
    let _heavy = crate::heavy();
    let name = "windows-credential-manager";
    let app = ids::app_id("large", name);
    let service = format!("rctoken:{app}");
    let tmp = tempfile::tempdir().expect("tempdir");
    // Opened with the backend's own item limit (no max_item_bytes).
    let store = open(tmp.path(), &app, name);
    // Every credential of the namespace (account, blob length), from outside.
    let outside = || cm::items(&service);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let names = |items: Vec<(String, usize)>| items.into_iter().map(|(a, _)| a).collect();

    // 3000 / 6000 / 2000 bytes: 11,000 bytes of secrets.
    let mut mixed = TokenInfo::new(
        SecretString::from(blob("access-mixed-", 3000)),
        3600,
        "ReadAccounts",
    );
    mixed.refresh_token = Some(SecretString::from(blob("refresh-mixed-", 6000)));
    mixed.refresh_token_expires_in = Some(604_800);
    mixed.id_token = Some(SecretString::from(blob("id-mixed-", 2000)));
    let info = store
        .save(&mixed, SaveOptions::new().profile("mixed"))
        .expect("save 3000/6000/2000");
    let got = store.load("mixed").expect("load").token;
    let same = |a: Option<&SecretString>, b: Option<&SecretString>| {
        a.map(|s| s.expose_secret().to_string()) == b.map(|s| s.expose_secret().to_string())
    };
    assert!(
        same(Some(&got.access_token), Some(&mixed.access_token)),
        "access token differs"
    );
    assert!(
        same(got.refresh_token.as_ref(), mixed.refresh_token.as_ref()),
        "refresh token differs"
    );
    assert!(
        same(got.id_token.as_ref(), mixed.id_token.as_ref()),
        "id token differs"
    );
    assert_eq!(got.access_token.expose_secret().len(), 3000);
    let items = outside();
    assert!(
        items.len() >= 11_000usize.div_ceil(CRED_MAX),
        "11,000 bytes need at least 5 credentials: {items:?}"
    );
    assert_eq!(items.len(), info.keychain_items() as usize, "{items:?}");
    assert_eq!(sorted(names(items.clone())), sorted(accounts(&info)));
    for (account, len) in &items {
        assert!(*len <= CRED_MAX, "{account}: {len} bytes");
    }
    let total: usize = items.iter().map(|(_, len)| len).sum();
    assert!(
        total > 11_000,
        "all three tokens are stored ({total} bytes)"
    );

    // 3 × 64 KiB next to it.
    let big = save(&store, "big", "one");
    assert!(big.keychain_items() >= 77, "{} items", big.keychain_items());
    assert_round_trip(&store, "big", "one");
    let mut want = accounts(&info);
    want.extend(accounts(&big));
    assert_eq!(
        names(outside()),
        sorted(want),
        "exactly the referenced credentials"
    );

    // Re-save: only the new generation's credentials remain.
    let big2 = save(&store, "big", "two");
    assert_ne!(big.generation(), big2.generation());
    assert_round_trip(&store, "big", "two");
    let mut want = accounts(&info);
    want.extend(accounts(&big2));
    assert_eq!(
        names(outside()),
        sorted(want),
        "old generation's credentials deleted"
    );
    let report = store.verify().expect("verify");
    assert!(report.is_clean(), "{:?}", report.problems);

    // Logout deletes every credential of the profile, then of the other.
    store.remove("big").expect("logout");
    assert_eq!(
        names(outside()),
        sorted(accounts(&info)),
        "big's credentials left"
    );
    store.remove("mixed").expect("logout");
    assert_eq!(outside(), vec![], "credentials left after logout");

    damage_and_repair(
        &store,
        &|account| assert!(cm::delete(&service, account), "delete {account}"),
        &|account| cm::secret(&service, account).expect("read item"),
        &|account, bytes| cm::set(&service, account, bytes),
    );
    cleanup(&store, &app, name);
}

// ---------------------------------------------------------------------------
// Memory with the Windows Credential Manager limit

#[test]
fn sixty_four_kib_tokens_in_2560_byte_items() {
    let keychain = MemoryKeychain::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::builder(&ids::app_id("large", "memory"))
        .dir(tmp.path())
        .backend(Backend::Memory(keychain.clone()))
        .max_item_bytes(CRED_MAX)
        .open()
        .expect("open");
    let info = save(&store, "big", "one");
    assert!(
        info.keychain_items() >= 77,
        "{} items",
        info.keychain_items()
    );
    assert_eq!(keychain.len(), info.keychain_items() as usize);
    assert_round_trip(&store, "big", "one");
    let info2 = save(&store, "big", "two");
    assert_round_trip(&store, "big", "two");
    assert_eq!(
        keychain.len(),
        info2.keychain_items() as usize,
        "old items deleted"
    );
    assert!(store.verify().expect("verify").is_clean());
    store.remove("big").expect("logout");
    assert!(keychain.is_empty(), "items left after logout");
}
