//! The metadata parser through a real store directory: whatever bytes
//! `metadata.json` holds, `list()` never panics and returns the profiles or
//! `CorruptMetadata` / `UnsupportedVersion`, and never rewrites the file.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rctoken::{Backend, Error, MemoryKeychain, TokenStore};

fn store() -> &'static (tempfile::TempDir, TokenStore) {
    static STORE: OnceLock<(tempfile::TempDir, TokenStore)> = OnceLock::new();
    STORE.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::builder("fuzz-metadata")
            .dir(tmp.path())
            .backend(Backend::Memory(MemoryKeychain::new()))
            .open()
            .expect("opens");
        (tmp, store)
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, store) = store();
    let path = store.metadata_path();
    std::fs::write(path, data).expect("writes");
    match store.list() {
        Ok(_) | Err(Error::CorruptMetadata { .. }) | Err(Error::UnsupportedVersion { .. }) => {}
        Err(other) => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(std::fs::read(path).expect("reads"), data, "never rewritten");
});
