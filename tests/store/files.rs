//! The files of a store directory, seen from outside the store.

use std::path::{Path, PathBuf};

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Panic if any file under `dir` contains any of `secrets`.
pub fn assert_no_secret_in_files(dir: &Path, secrets: &[&str]) {
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).expect("read");
        for s in secrets {
            assert!(
                !contains(&bytes, s.as_bytes()),
                "{} contains a secret",
                f.display()
            );
        }
    }
}

/// Byte substring search.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
