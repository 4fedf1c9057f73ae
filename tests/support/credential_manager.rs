//! The Windows Credential Manager seen from outside rctoken: generic
//! credentials read and deleted by their target name, through the
//! keyring-core store rctoken itself uses (`windows-native-keyring-store`),
//! but naming each credential as Windows does instead of through
//! rctoken's service and account.
//!
//! rctoken's item `ACCOUNT` of service `rctoken:APP` is the generic
//! credential with target name `ACCOUNT.rctoken:APP` (the store's default
//! delimiters: no prefix, `.`, no suffix).
//!
//! Listing is `CredEnumerateW` called here directly, every field read
//! unaligned: Wine packs the credentials it returns without padding, and a
//! debug build of the store's own `search` aborts on the misaligned
//! pointers. Under Wine, once a process was killed inside `CredWriteW`,
//! `CredEnumerateW` fails for good; the list then comes from the registry
//! keys Wine keeps credentials in, and [`undo_torn_wine_writes`] removes
//! the torn credential, which real Windows cannot leave.
#![cfg(windows)]

use std::collections::HashMap;

use keyring_core::Entry;
use keyring_core::api::CredentialStoreApi;

/// The account of every generic credential of `service` (target name
/// `ACCOUNT.SERVICE`), sorted: what the Credential Manager holds for it,
/// asked of Windows itself.
pub fn accounts(service: &str) -> Vec<String> {
    let suffix = format!(".{service}");
    let mut out: Vec<String> = generic_targets()
        .into_iter()
        .filter_map(|t| t.strip_suffix(&suffix).map(str::to_string))
        .collect();
    out.sort();
    out
}

/// The target names of all generic credentials of this user.
fn generic_targets() -> Vec<String> {
    match cred_enumerate() {
        Ok(targets) => targets,
        // Wine keeps each credential as a registry key and writes its values
        // one by one, so a process killed in CredWriteW leaves a key with
        // some missing; CredEnumerateW then fails for good with
        // ERROR_FILE_NOT_FOUND. Its keys still name every credential.
        Err(err) => {
            wine_registry_targets().unwrap_or_else(|| panic!("CredEnumerateW failed: error {err}"))
        }
    }
}

/// CredEnumerateW: the generic credentials' target names, or its error.
#[allow(unsafe_code)]
fn cred_enumerate() -> Result<Vec<String>, u32> {
    use windows_sys::Win32::Foundation::{ERROR_NOT_FOUND, GetLastError};
    use windows_sys::Win32::Security::Credentials::{
        CRED_TYPE_GENERIC, CREDENTIALW, CredEnumerateW, CredFree,
    };
    let mut count: u32 = 0;
    let mut creds: *mut *mut CREDENTIALW = std::ptr::null_mut();
    // SAFETY: CredEnumerateW writes a count and a pointer to an array of
    // that many credential pointers, which CredFree releases below.
    if unsafe { CredEnumerateW(std::ptr::null(), 0, &mut count, &mut creds) } == 0 {
        // SAFETY: no preconditions.
        let err = unsafe { GetLastError() };
        return if err == ERROR_NOT_FOUND {
            Ok(Vec::new())
        } else {
            Err(err)
        };
    }
    let mut out = Vec::new();
    for i in 0..count as usize {
        // SAFETY: `i < count` entries of the array CredEnumerateW returned;
        // the pointers, the structs and their strings may be misaligned
        // (Wine), so everything is read unaligned and nothing is referenced.
        let (kind, name) = unsafe {
            let cred: CREDENTIALW = creds.add(i).read_unaligned().read_unaligned();
            let mut name = Vec::new();
            if !cred.TargetName.is_null() {
                let mut k = 0;
                loop {
                    let c = cred.TargetName.add(k).read_unaligned();
                    if c == 0 {
                        break;
                    }
                    name.push(c);
                    k += 1;
                }
            }
            (cred.Type, name)
        };
        if kind == CRED_TYPE_GENERIC {
            out.push(String::from_utf16_lossy(&name));
        }
    }
    // SAFETY: the buffer CredEnumerateW allocated, freed once.
    unsafe { CredFree(creds as *const std::ffi::c_void) };
    Ok(out)
}

/// Under Wine: the target names of the generic credentials, from the names
/// of the registry keys Wine keeps them in (`HKCU\Software\Wine\Credential
/// Manager\Generic: TARGET`), complete or not. `None` where there is no
/// such key (Windows).
#[allow(unsafe_code)]
fn wine_registry_targets() -> Option<Vec<String>> {
    use windows_sys::Win32::Foundation::ERROR_SUCCESS;
    use windows_sys::Win32::System::Registry::{
        HKEY, HKEY_CURRENT_USER, KEY_READ, RegCloseKey, RegEnumKeyExW, RegOpenKeyExW,
    };
    let path: Vec<u16> = "Software\\Wine\\Credential Manager\0"
        .encode_utf16()
        .collect();
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path and a place for the key handle.
    if unsafe { RegOpenKeyExW(HKEY_CURRENT_USER, path.as_ptr(), 0, KEY_READ, &mut key) }
        != ERROR_SUCCESS
    {
        return None;
    }
    let mut out = Vec::new();
    let mut buf = vec![0u16; 32_768];
    for index in 0.. {
        let mut len = buf.len() as u32;
        // SAFETY: `buf` holds `len` UTF-16 units; the optional outputs are null.
        let rc = unsafe {
            RegEnumKeyExW(
                key,
                index,
                buf.as_mut_ptr(),
                &mut len,
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != ERROR_SUCCESS {
            break;
        }
        let name = String::from_utf16_lossy(&buf[..len as usize]);
        if let Some(target) = name.strip_prefix("Generic: ") {
            out.push(target.to_string());
        }
    }
    // SAFETY: the key opened above, closed once.
    unsafe { RegCloseKey(key) };
    Some(out)
}

/// Under Wine, undo the writes of `service`'s credentials that a kill tore,
/// and return how many. Wine's `CredWriteW` writes a credential as a
/// registry key, value by value (`Flags`, `Type`, the target name, …,
/// `Password` last), so a process killed in between leaves either
/// - a key `CredReadW` cannot read, after which `CredEnumerateW` fails for
///   everyone (error 2) until the key is gone, or
/// - a key with every value but `Password`, which `CredReadW` reads as a
///   credential with an empty secret (rctoken never writes one: every
///   item starts with its header).
///
/// Real Windows writes a credential in one call to its security service
/// and can leave neither. This deletes each such key, the state a kill just
/// before the write leaves. Only `service`'s credentials are looked at for
/// the second kind (another test may be writing its own right now); any
/// unreadable one is removed while enumeration fails, as that breaks
/// listing for every test. 0 on Windows (no Wine registry keys).
#[allow(dead_code, reason = "not every test crate uses it")]
#[allow(unsafe_code)]
pub fn undo_torn_wine_writes(service: &str) -> usize {
    use windows_sys::Win32::Foundation::ERROR_SUCCESS;
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, RegDeleteKeyW};
    let Some(targets) = wine_registry_targets() else {
        return 0;
    };
    let enumeration_fails = cred_enumerate().is_err();
    let suffix = format!(".{service}");
    let mut undone = 0;
    for target in targets {
        let torn = match entry(&target).get_secret() {
            Err(keyring_core::Error::NoEntry) => false,
            Err(_) => enumeration_fails || target.ends_with(&suffix),
            Ok(_) => target.ends_with(&suffix) && !wine_has_password(&target),
        };
        if !torn {
            continue;
        }
        let path = wine_key_path(&target);
        // SAFETY: a NUL-terminated path under HKCU; the key has no subkeys.
        let rc = unsafe { RegDeleteKeyW(HKEY_CURRENT_USER, path.as_ptr()) };
        assert_eq!(
            rc, ERROR_SUCCESS,
            "deleting Wine's torn credential {target:?}"
        );
        undone += 1;
    }
    if let Err(e) = cred_enumerate() {
        panic!(
            "CredEnumerateW still fails (error {e}) after {undone} torn credential(s) were removed"
        );
    }
    undone
}

/// The NUL-terminated path, under HKCU, of the registry key in which Wine
/// keeps the generic credential `target`.
fn wine_key_path(target: &str) -> Vec<u16> {
    format!("Software\\Wine\\Credential Manager\\Generic: {target}\0")
        .encode_utf16()
        .collect()
}

/// Does Wine's registry key of credential `target` hold its `Password`
/// value (the last one `CredWriteW` writes)?
#[allow(unsafe_code)]
fn wine_has_password(target: &str) -> bool {
    use windows_sys::Win32::Foundation::ERROR_SUCCESS;
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, RRF_RT_ANY, RegGetValueW};
    let path = wine_key_path(target);
    let value: Vec<u16> = "Password\0".encode_utf16().collect();
    let mut size: u32 = 0;
    // SAFETY: NUL-terminated key path and value name; no data buffer, so
    // only the size is written.
    let rc = unsafe {
        RegGetValueW(
            HKEY_CURRENT_USER,
            path.as_ptr(),
            value.as_ptr(),
            RRF_RT_ANY,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut size,
        )
    };
    rc == ERROR_SUCCESS
}

/// The target name of rctoken's item `account` of `service`.
pub fn target(service: &str, account: &str) -> String {
    format!("{account}.{service}")
}

/// The credential with this exact target name.
fn entry(target: &str) -> Entry {
    let store = windows_native_keyring_store::Store::new().expect("the Credential Manager store");
    let modifiers = HashMap::from([("target", target)]);
    store
        .build("", "", Some(&modifiers))
        .unwrap_or_else(|e| panic!("credential {target:?}: {e}"))
}

/// Does the Credential Manager answer? (Asks for a credential nobody has.)
pub fn probe() -> Result<(), String> {
    match entry("rctoken-test-probe.does-not-exist").get_secret() {
        Err(keyring_core::Error::NoEntry) => Ok(()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("CredReadW failed: {e}")),
    }
}

/// The blob of rctoken's item `account` of `service`, if it exists.
pub fn secret(service: &str, account: &str) -> Option<Vec<u8>> {
    let target = target(service, account);
    match entry(&target).get_secret() {
        Ok(bytes) => Some(bytes),
        Err(keyring_core::Error::NoEntry) => None,
        Err(e) => panic!("reading credential {target:?} from outside: {e}"),
    }
}

/// Whether rctoken's item `account` of `service` exists.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn exists(service: &str, account: &str) -> bool {
    secret(service, account).is_some()
}

/// Delete rctoken's item `account` of `service`; whether it existed.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn delete(service: &str, account: &str) -> bool {
    let target = target(service, account);
    match entry(&target).delete_credential() {
        Ok(()) => true,
        Err(keyring_core::Error::NoEntry) => false,
        Err(e) => panic!("deleting credential {target:?} from outside: {e}"),
    }
}

/// Write rctoken's item `account` of `service` behind its back.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn set(service: &str, account: &str, data: &[u8]) {
    let target = target(service, account);
    entry(&target)
        .set_secret(data)
        .unwrap_or_else(|e| panic!("writing credential {target:?} from outside: {e}"));
}

/// Every item of `service` as (account, blob length), sorted.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn items(service: &str) -> Vec<(String, usize)> {
    accounts(service)
        .into_iter()
        .filter_map(|a| secret(service, &a).map(|b| (a, b.len())))
        .collect()
}

/// Best-effort deletion of every credential of `service` (cleanup after a
/// failed test; never panics, as it may run while unwinding).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn purge(service: &str) {
    let Ok(accounts) = std::panic::catch_unwind(|| accounts(service)) else {
        return;
    };
    for a in accounts {
        let target = target(service, &a);
        if let Ok(store) = windows_native_keyring_store::Store::new() {
            let modifiers = HashMap::from([("target", target.as_str())]);
            if let Ok(e) = store.build("", "", Some(&modifiers)) {
                let _ = e.delete_credential();
            }
        }
    }
}
