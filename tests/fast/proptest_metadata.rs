//! Property tests of the metadata parsers, through a real store directory:
//! whatever bytes `metadata.json` (the index) or a profile's file holds
//! (random bytes, arbitrary JSON, well-formed documents of format 1 and 2
//! with fields of the wrong type, byte flips and truncations of a valid
//! file), `list()` and `load()` never panic and return either the profiles
//! or `CorruptMetadata` / `UnsupportedVersion` naming the file, and never
//! rewrite it.
//!
//! 256 cases per property by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use rctoken::{Backend, Error, MemoryKeychain, SaveOptions, TokenInfo, TokenStore};
use serde_json::{Map, Value};

use crate::support::props::config;

fn check(bytes: &[u8]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::builder("prop-meta")
        .dir(tmp.path())
        .backend(Backend::Memory(MemoryKeychain::new()))
        .open()
        .expect("opens");
    let path = store.layout().index().to_path_buf();
    std::fs::write(&path, bytes).expect("writes");
    // A panic here fails the property (proptest catches and shrinks it).
    match store.list() {
        Ok(profiles) => {
            let active = profiles.iter().filter(|p| p.active).count();
            assert!(active <= 1, "at most one active profile");
        }
        Err(Error::CorruptMetadata { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(!reason.contains('\n'), "{reason:?}");
        }
        Err(Error::UnsupportedVersion { path: p, found, .. }) => {
            assert_eq!(p, path);
            assert!(found > rctoken::FORMAT_VERSION);
        }
        // A mutated `app_id`: the store of another app, refused untouched.
        Err(Error::ForeignStore {
            path: p,
            app,
            owner,
        }) => {
            assert_eq!(p, path);
            assert_eq!(app, "prop-meta");
            assert_ne!(owner, "prop-meta");
        }
        Err(other) => panic!("unexpected error: {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("reads"),
        bytes,
        "never rewritten"
    );
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        Just(Value::String("2026-01-01T00:00:00Z".into())),
        Just(Value::String("bearer".into())),
        Just(Value::String("0123456789abcdef".into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const PROFILE_FIELDS: &[&str] = &[
    "label",
    "owner_id",
    "endpoint_id",
    "scope",
    "token_type",
    "expires_in",
    "refresh_token_expires_in",
    "session_expires_in",
    "session_expiration_time",
    "session_id",
    "session_idle_timeout",
    "obtained_at",
    "access_token_expires_at",
    "refresh_token_expires_at",
    "session_expires_at",
    "has_refresh_token",
    "has_id_token",
    "secret",
];

/// A metadata-shaped document whose fields hold values of any type.
fn metadata_shaped() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(Value::from(1)),
            Just(Value::from(0)),
            Just(Value::from(2)),
            any_json()
        ],
        prop::option::of(any_json()),
        prop::collection::btree_map(
            any::<String>(),
            prop::collection::vec(prop::option::of(any_json()), PROFILE_FIELDS.len()),
            0..3,
        ),
    )
        .prop_map(|(version, active, profiles)| {
            let mut doc = Map::new();
            doc.insert("format_version".into(), version);
            if let Some(a) = active {
                doc.insert("active".into(), a);
            }
            let mut ps = Map::new();
            for (key, values) in profiles {
                let mut p = Map::new();
                for (field, v) in PROFILE_FIELDS.iter().zip(values) {
                    if let Some(v) = v {
                        p.insert((*field).to_string(), v);
                    }
                }
                ps.insert(key, Value::Object(p));
            }
            doc.insert("profiles".into(), Value::Object(ps));
            serde_json::to_vec(&Value::Object(doc)).expect("serializes")
        })
}

/// Write `bytes` as the file of profile `1` of a store that also holds a
/// valid profile `2`; `list()` and `load("1")` must report the file.
fn check_profile(bytes: &[u8]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::builder("prop-meta")
        .dir(tmp.path())
        .backend(Backend::Memory(MemoryKeychain::new()))
        .open()
        .expect("opens");
    let files = valid_store();
    std::fs::write(store.layout().index(), &files[0]).expect("index");
    std::fs::create_dir(store.layout().profiles_dir()).expect("profiles dir");
    std::fs::write(store.layout().profile_file("2"), &files[2]).expect("profile 2");
    let path = store.layout().profile_file("1");
    std::fs::write(&path, bytes).expect("writes");
    let results = [
        store.list().map(|_| ()),
        store.load("1").map(|_| ()),
        store.info(Some("1")).map(|_| ()),
    ];
    for r in results {
        match r {
            // `load` may get past the file and find no secret (memory
            // backend, fresh), or a mutated backend name: the file parsed
            // as a valid profile.
            Ok(()) | Err(Error::SecretMissing { .. } | Error::WrongBackend { .. }) => {}
            Err(Error::CorruptMetadata { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(!reason.contains('\n'), "{reason:?}");
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(
        std::fs::read(&path).expect("reads"),
        bytes,
        "never rewritten"
    );
}

/// An index-shaped (format 2) document whose fields hold values of any type.
fn index_shaped() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(Value::from(2)), any_json()],
        prop::option::of(any_json()),
        prop::option::of(prop_oneof![
            prop::collection::btree_map(any::<String>(), any_json(), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            any_json(),
        ]),
    )
        .prop_map(|(version, active, labels)| {
            let mut doc = Map::new();
            doc.insert("format_version".into(), version);
            if let Some(a) = active {
                doc.insert("active".into(), a);
            }
            if let Some(l) = labels {
                doc.insert("labels".into(), l);
            }
            serde_json::to_vec(&Value::Object(doc)).expect("serializes")
        })
}

/// A real store with two labelled profiles: its index, and the files of
/// profiles `1` and `2`.
/// Only the bytes are kept: the store's directory is removed at once.
fn valid_store() -> &'static [Vec<u8>; 3] {
    static STORE: std::sync::OnceLock<[Vec<u8>; 3]> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::builder("prop-meta")
            .dir(tmp.path())
            .backend(Backend::Memory(MemoryKeychain::new()))
            .open()
            .expect("opens");
        for owner in ["1", "2"] {
            let t = TokenInfo::from_json(
                format!(
                    r#"{{"access_token":"a","token_type":"bearer","expires_in":3600,"refresh_token":"r",
                    "refresh_token_expires_in":604800,"scope":"s","owner_id":"{owner}",
                    "session_expiration_time":"2026-01-01T00:00:00.5+02:00","session_id":"x"}}"#
                )
                .as_bytes(),
            )
            .expect("valid");
            store
                .save(&t, SaveOptions::new().label(format!("l{owner}")))
                .expect("saves");
        }
        let files = [
            std::fs::read(store.layout().index()).expect("reads"),
            std::fs::read(store.layout().profile_file("1")).expect("reads"),
            std::fs::read(store.layout().profile_file("2")).expect("reads"),
        ];
        drop(tmp);
        files
    })
}

fn mutate(
    mut bytes: Vec<u8>,
    flips: Vec<(prop::sample::Index, u8)>,
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    for (at, b) in flips {
        let i = at.index(bytes.len());
        bytes[i] = b;
    }
    if let Some(c) = cut {
        bytes.truncate(c.index(bytes.len()));
    }
    bytes
}

/// A real index of a store with two labelled profiles, for mutation.
fn valid_metadata() -> &'static [u8] {
    &valid_store()[0]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_json(v in any_json()) {
        check(&serde_json::to_vec(&v).expect("serializes"));
    }

    #[test]
    fn metadata_shaped_documents(bytes in metadata_shaped()) {
        check(&bytes);
    }

    #[test]
    fn index_shaped_documents(bytes in index_shaped()) {
        check(&bytes);
    }

    #[test]
    fn mutations_of_a_valid_file(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        check(&mutate(valid_metadata().to_vec(), flips, cut));
    }

    #[test]
    fn random_bytes_as_a_profile_file(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_profile(&bytes);
    }

    #[test]
    fn arbitrary_json_as_a_profile_file(v in any_json()) {
        check_profile(&serde_json::to_vec(&v).expect("serializes"));
    }

    #[test]
    fn mutations_of_a_valid_profile_file(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        check_profile(&mutate(valid_store()[1].clone(), flips, cut));
    }
}

#[test]
fn the_valid_seed_profile_file_loads() {
    check_profile(&valid_store()[1]);
    // And a damaged one is reported, so the property can fail.
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = TokenStore::builder("prop-meta")
        .dir(tmp.path())
        .backend(Backend::Memory(MemoryKeychain::new()))
        .open()
        .expect("opens");
    std::fs::create_dir(store.layout().profiles_dir()).expect("dir");
    std::fs::write(store.layout().profile_file("1"), b"{").expect("write");
    assert!(matches!(store.list(), Err(Error::CorruptMetadata { .. })));
}

#[test]
fn the_valid_seed_file_lists() {
    check(valid_metadata());
}
