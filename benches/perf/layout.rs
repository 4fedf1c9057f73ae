//! Where the metadata part of a save goes as profiles grow, and what two
//! candidate layouts would cost, measured on the same profiles:
//!
//! - current: one pretty JSON file, parsed fully and rewritten on each save;
//! - lazy: the same single file, compact, with each profile kept as raw JSON
//!   and only the labels parsed (uniqueness check), one entry replaced;
//! - per-profile: one small file per profile (save rewrites only its own;
//!   list reads them all).
//!
//! Every variant writes like `files::write_atomic` (temp, fsync, rename,
//! fsync of the directory).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rctoken::ProfileInfo;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::overhead::write_atomic_like;
use crate::stats::Samples;

/// The metadata document as the library reads and writes it.
#[derive(Serialize, Deserialize)]
pub struct Doc {
    pub format_version: u64,
    #[serde(default)]
    pub active: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileInfo>,
}

#[derive(Serialize, Deserialize)]
struct LazyDoc {
    format_version: u64,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Box<RawValue>>,
}

#[derive(Deserialize)]
struct LabelOnly {
    #[serde(default)]
    label: Option<String>,
}

/// Medians (per variant) of the metadata work of one save, and of a list.
pub struct Layouts {
    pub parse: Duration,
    pub pretty: Duration,
    pub fsync_write: Duration,
    pub save_current: Duration,
    pub save_lazy: Duration,
    pub lazy_bytes: usize,
    pub save_per_profile: Duration,
    pub list_per_profile: Duration,
}

fn median(reps: usize, mut f: impl FnMut()) -> Duration {
    let mut s = Samples::new("");
    for _ in 0..reps {
        let t = Instant::now();
        f();
        s.times.push(t.elapsed());
    }
    s.median()
}

/// Measure on a copy of the metadata file `bytes`, re-saving profile `key`.
pub fn measure(bytes: &[u8], key: &str, reps: usize) -> Layouts {
    let scratch = tempfile::tempdir().expect("temp");
    let dir = scratch.path();
    let doc: Doc = serde_json::from_slice(bytes).expect("typed parse");
    let one = doc.profiles[key].clone();

    let parse = median(reps, || {
        let d: Doc = serde_json::from_slice(bytes).expect("typed parse");
        assert!(!d.profiles.is_empty());
    });
    let pretty = median(reps, || {
        assert!(!serde_json::to_vec_pretty(&doc).expect("ser").is_empty());
    });
    let fsync_write = median(reps, || write_atomic_like(dir, bytes));
    let path = dir.join("bench-meta.json");
    std::fs::write(&path, bytes).expect("seed file");
    let save_current = median(reps, || {
        let mut d: Doc = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("p");
        d.profiles.insert(key.to_string(), one.clone());
        let mut out = serde_json::to_vec_pretty(&d).expect("ser");
        out.push(b'\n');
        write_atomic_like(dir, &out);
    });

    let lazy_path = dir.join("lazy.json");
    // The same document written compact (entries compact too).
    let lazy_bytes = serde_json::to_vec(&doc).expect("ser");
    std::fs::write(&lazy_path, &lazy_bytes).expect("seed lazy");
    let save_lazy = median(reps, || {
        let raw = std::fs::read(&lazy_path).expect("read");
        let mut d: LazyDoc = serde_json::from_slice(&raw).expect("lazy parse");
        let mut labels = std::collections::HashSet::new();
        for v in d.profiles.values() {
            let l: LabelOnly = serde_json::from_str(v.get()).expect("label");
            if let Some(l) = l.label {
                assert!(labels.insert(l), "labels unique");
            }
        }
        let entry = RawValue::from_string(serde_json::to_string(&one).expect("ser")).expect("raw");
        d.profiles.insert(key.to_string(), entry);
        let out = serde_json::to_vec(&d).expect("ser");
        write_atomic_like(dir, &out);
    });

    let (save_per_profile, list_per_profile) = per_profile(&doc, key, reps, dir);
    Layouts {
        parse,
        pretty,
        fsync_write,
        save_current,
        save_lazy,
        lazy_bytes: lazy_bytes.len(),
        save_per_profile,
        list_per_profile,
    }
}

fn per_profile(doc: &Doc, key: &str, reps: usize, scratch: &Path) -> (Duration, Duration) {
    let dir = scratch.join("profiles");
    std::fs::create_dir(&dir).expect("profiles dir");
    for (k, p) in &doc.profiles {
        std::fs::write(
            dir.join(format!("{k}.json")),
            serde_json::to_vec(p).expect("ser"),
        )
        .expect("write profile");
    }
    let one = serde_json::to_vec(&doc.profiles[key]).expect("ser");
    let save = median(reps, || write_atomic_like(&dir, &one));
    let list = median(reps, || {
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "json") {
                let _: ProfileInfo =
                    serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("parse");
                n += 1;
            }
        }
        assert!(n >= doc.profiles.len());
    });
    (save, list)
}
