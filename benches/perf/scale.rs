//! Part 3: how list, switch, save, load and `token` grow with the number of
//! profiles, on real keyutils.
//!
//! Each store is built once: two real profiles saved through the library
//! (the measured ones), plus N-2 profile files cloned from a real one with
//! fresh keys and generations (every tenth labelled in the index), each with
//! a small filler key of its own in @u so the kernel keyring holds N keys of
//! the namespace. Only the two real profiles are ever read from the
//! keychain. The same profiles, written as one format-1 file, show what the
//! old layout's save would cost in the same run.

use std::time::Duration;

use linux_keyutils::{Key, KeyRing, KeyRingIdentifier};
use rctoken::SaveOptions;

use crate::Cfg;
use crate::cli::TokenCmd;
use crate::fixtures::{self, BenchStore};
use crate::layout::{self, Layouts};
use crate::stats::{self, Case, Samples};

struct Row {
    n: usize,
    meta_bytes: usize,
    ops: Vec<Samples>,
    layouts: Layouts,
}

fn synthesize(b: &BenchStore, n: usize, ring: &KeyRing) -> Vec<Key> {
    let first = b.store.list().expect("list")[0].profile.clone();
    let template: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.store.layout().profile_file(&first)).expect("read profile file"),
    )
    .expect("json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.store.layout().index()).expect("read index"))
            .expect("json");
    let mut fillers = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ n as u64;
    for i in 0..n.saturating_sub(2) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("{}", 2_000_000_000u64 + i as u64);
        let gen_hex = format!("{x:016x}");
        let mut entry = template.clone();
        entry["profile"] = key.clone().into();
        entry["owner_id"] = key.clone().into();
        entry["secret"]["generation"] = gen_hex.clone().into();
        let mut bytes = serde_json::to_vec_pretty(&entry).expect("serialize");
        bytes.push(b'\n');
        std::fs::write(b.store.layout().profile_file(&key), bytes).expect("write profile");
        if i % 10 == 0 {
            index["labels"][format!("team-{i}")] = key.clone().into();
        }
        let desc = format!("rctoken:{}:{key}.{gen_hex}.0", b.app);
        fillers.push(ring.add_key(&desc, &[0x5a; 64][..]).expect("filler key"));
    }
    let mut bytes = serde_json::to_vec_pretty(&index).expect("serialize");
    bytes.push(b'\n');
    std::fs::write(b.store.layout().index(), bytes).expect("write index");
    fillers
}

/// Bytes of metadata on disk: the index and every profile file.
fn metadata_bytes(b: &BenchStore) -> usize {
    let index = std::fs::metadata(b.store.layout().index()).map_or(0, |m| m.len());
    let files: u64 = std::fs::read_dir(b.store.layout().profiles_dir())
        .expect("profiles dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    (index + files) as usize
}

fn measure(cfg: &Cfg, n: usize, ring: &KeyRing) -> Row {
    let b = BenchStore::new("scale", "keyutils");
    let real = b.fill(2);
    let fillers = synthesize(&b, n, ring);
    assert_eq!(b.store.list().expect("list").len(), n);
    let expected = {
        use secrecy::ExposeSecret;
        let t = b.store.load(rctoken::Selector::Active).expect("load");
        t.token.access_token.expose_secret().to_string()
    };
    let tok = TokenCmd::detect(&b, &expected);
    let token_a = fixtures::token(&real[0], 3600, 1);
    let rounds = if cfg.smoke {
        2
    } else {
        match n {
            0..=10 => 51,
            11..=100 => 31,
            101..=1000 => 21,
            _ => 7,
        }
    };
    let mut flip = false;
    let mut cases: Vec<Case<'_>> = vec![
        (
            "list",
            Box::new(|| assert_eq!(b.store.list().expect("list").len(), n)),
        ),
        (
            "switch",
            Box::new(|| {
                flip = !flip;
                b.store.switch(&real[usize::from(flip)]).expect("switch");
            }),
        ),
        (
            "save",
            Box::new(|| {
                b.store.save(&token_a, SaveOptions::new()).expect("save");
            }),
        ),
        (
            "load",
            Box::new(|| {
                b.store.load(&real[1]).expect("load");
            }),
        ),
        (
            "rctoken token",
            Box::new(|| {
                let r = fixtures::run_timed(&mut tok.command(&b, None));
                assert!(r.ok, "rctoken token failed: {}", r.stderr);
            }),
        ),
    ];
    let ops = stats::alternate(rounds, 1, &mut cases);
    drop(cases);

    // What the same profiles would cost a save in format 1.
    let profiles = b.store.list().expect("list");
    let layouts = layout::measure(&profiles, &real[0], if cfg.smoke { 1 } else { 7 });
    let meta_bytes = metadata_bytes(&b);

    // Cleanup: drop the synthetic profiles (BenchStore's drop removes the
    // two real ones), then their filler keys.
    for p in profiles.iter().filter(|p| !real.contains(&p.profile)) {
        std::fs::remove_file(b.store.layout().profile_file(&p.profile)).expect("rm profile");
    }
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.store.layout().index()).expect("index"))
            .expect("json");
    index["labels"] = serde_json::json!({});
    std::fs::write(b.store.layout().index(), index.to_string()).expect("rewrite index");
    for k in fillers {
        let _ = k.invalidate();
    }
    Row {
        n,
        meta_bytes,
        ops,
        layouts,
    }
}

pub fn run(cfg: &Cfg) {
    println!("\n## 3. Scale (keyutils; medians of alternated ops)");
    let max_keys = std::fs::read_to_string("/proc/sys/kernel/keys/root_maxkeys")
        .unwrap_or_default()
        .trim()
        .to_string();
    println!("root_maxkeys: {max_keys}");
    let ring = KeyRing::from_special_id(KeyRingIdentifier::User, false).expect("@u");
    let sizes: &[usize] = if cfg.smoke {
        &[10, 100]
    } else {
        &[10, 100, 1000, 10000]
    };
    let rows: Vec<Row> = sizes.iter().map(|&n| measure(cfg, n, &ring)).collect();
    println!(
        "\n### operations (library calls in this process; `rctoken token` is a new process)\n"
    );
    print!("| profiles | metadata on disk | ");
    for s in &rows[0].ops {
        print!("{} | ", s.name);
    }
    println!();
    println!("|---:|---:|{}", "---:|".repeat(rows[0].ops.len()));
    for r in &rows {
        print!("| {} | {} KiB | ", r.n, r.meta_bytes / 1024);
        for s in &r.ops {
            print!("{} | ", stats::fmt_dur(s.median()));
        }
        println!();
    }
    println!("\n### the same profiles in format 1 (one file): the metadata work of one save\n");
    println!(
        "| profiles | format-1 file | typed parse | pretty serialize | write+fsync+rename | \
         format-1 save (read+parse+pretty+write) | format-2 save (the whole save, above) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let l = &r.layouts;
        let save2 = r.ops.iter().find(|s| s.name == "save").map(|s| s.median());
        println!(
            "| {} | {} KiB | {} | {} | {} | {} | {} |",
            r.n,
            l.format1_bytes / 1024,
            stats::fmt_dur(l.parse),
            stats::fmt_dur(l.pretty),
            stats::fmt_dur(l.fsync_write),
            stats::fmt_dur(l.save_format1),
            save2.map(stats::fmt_dur).unwrap_or_default(),
        );
    }
    let at = |n: usize, op: &str| {
        rows.iter()
            .find(|r| r.n == n)
            .and_then(|r| r.ops.iter().find(|s| s.name == op))
            .map(|s| s.median())
    };
    if let (Some(list), Some(save), Some(save10)) =
        (at(1000, "list"), at(1000, "save"), at(10, "save"))
    {
        stats::verdict(
            "list at 1,000 profiles",
            stats::fmt_dur(list),
            "≤ 50 ms",
            list <= Duration::from_millis(50),
        );
        let r = save.as_secs_f64() / save10.as_secs_f64();
        stats::verdict(
            "save at 1,000 / save at 10",
            format!("{r:.2}×"),
            "≤ 3×",
            r <= 3.0,
        );
    }
}
