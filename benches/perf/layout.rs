//! What the metadata part of a save would cost in format 1 (one JSON file
//! holding every profile, parsed fully and rewritten on each save), measured
//! on the same profiles as the format-2 store of the same row, so the old
//! and the new layout are compared in one run.
//!
//! Writes are done like `files::write_atomic` (temp, fsync, rename, fsync
//! of the directory).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rctoken::ProfileInfo;
use serde::{Deserialize, Serialize};

use crate::overhead::write_atomic_like;
use crate::stats::Samples;

/// The format-1 metadata document.
#[derive(Serialize, Deserialize)]
pub struct Doc {
    pub format_version: u64,
    #[serde(default)]
    pub active: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileInfo>,
}

/// Medians of the metadata work of one format-1 save.
pub struct Layouts {
    pub parse: Duration,
    pub pretty: Duration,
    pub fsync_write: Duration,
    pub save_format1: Duration,
    pub format1_bytes: usize,
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

/// Measure on `profiles` written as one format-1 file, re-saving profile `key`.
pub fn measure(profiles: &[ProfileInfo], key: &str, reps: usize) -> Layouts {
    let scratch = tempfile::tempdir().expect("temp");
    let dir = scratch.path();
    let doc = Doc {
        format_version: 1,
        active: Some(key.to_string()),
        profiles: profiles
            .iter()
            .map(|p| (p.profile.clone(), p.clone()))
            .collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("ser");
    bytes.push(b'\n');
    let one = doc.profiles[key].clone();

    let parse = median(reps, || {
        let d: Doc = serde_json::from_slice(&bytes).expect("typed parse");
        assert!(!d.profiles.is_empty());
    });
    let pretty = median(reps, || {
        assert!(!serde_json::to_vec_pretty(&doc).expect("ser").is_empty());
    });
    let fsync_write = median(reps, || write_atomic_like(dir, &bytes));
    let path = dir.join("bench-meta.json");
    std::fs::write(&path, &bytes).expect("seed file");
    let save_format1 = median(reps, || {
        let mut d: Doc = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("p");
        d.profiles.insert(key.to_string(), one.clone());
        let mut out = serde_json::to_vec_pretty(&d).expect("ser");
        out.push(b'\n');
        write_atomic_like(dir, &out);
    });
    Layouts {
        parse,
        pretty,
        fsync_write,
        save_format1,
        format1_bytes: bytes.len(),
    }
}
