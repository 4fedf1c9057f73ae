//! Part 3: how list, switch, save, load and `token` grow with the number of
//! profiles, on real keyutils.
//!
//! Saving 10,000 profiles one by one would rewrite the metadata 10,000 times,
//! so each store is built once: two real profiles saved through the library
//! (the measured ones), plus N-2 profiles cloned from a real metadata entry
//! with fresh generations, each with a small filler key of its own in @u so
//! the kernel keyring holds N keys of the namespace. Only the two real
//! profiles are ever read from the keychain.

use std::time::Duration;

use linux_keyutils::{Key, KeyRing, KeyRingIdentifier};
use rctoken::SaveOptions;

use crate::Cfg;
use crate::cli::TokenCmd;
use crate::fixtures::{self, BenchStore};
use crate::layout::{self, Doc, Layouts};
use crate::stats::{self, Case, Samples};

struct Row {
    n: usize,
    meta_bytes: usize,
    ops: Vec<Samples>,
    layouts: Layouts,
}

fn synthesize(b: &BenchStore, n: usize, ring: &KeyRing) -> Vec<Key> {
    let path = b.store.metadata_path().to_path_buf();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read metadata")).expect("json");
    let profiles = doc["profiles"].as_object_mut().expect("profiles");
    let template = profiles.values().next().expect("a real profile").clone();
    let mut fillers = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ n as u64;
    for i in 0..n.saturating_sub(2) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("{}", 2_000_000_000u64 + i as u64);
        let gen_hex = format!("{x:016x}");
        let mut entry = template.clone();
        entry["owner_id"] = key.clone().into();
        entry["secret"]["generation"] = gen_hex.clone().into();
        entry["label"] = if i % 10 == 0 {
            format!("team-{i}").into()
        } else {
            serde_json::Value::Null
        };
        profiles.insert(key.clone(), entry);
        let desc = format!("rctoken:{}:{key}.{gen_hex}.0", b.app);
        fillers.push(ring.add_key(&desc, &[0x5a; 64][..]).expect("filler key"));
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("serialize");
    bytes.push(b'\n');
    std::fs::write(&path, bytes).expect("write metadata");
    fillers
}

fn measure(cfg: &Cfg, n: usize, ring: &KeyRing) -> Row {
    let b = BenchStore::new("scale", "keyutils");
    let real = b.fill(2);
    let fillers = synthesize(&b, n, ring);
    assert_eq!(b.store.list().expect("list").len(), n);
    let expected = {
        use secrecy::ExposeSecret;
        let t = b.store.load_active().expect("load");
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

    // Where a save's metadata time goes at this size, and candidate layouts.
    let bytes = std::fs::read(b.store.metadata_path()).expect("metadata");
    let layouts = layout::measure(&bytes, &real[0], if cfg.smoke { 1 } else { 7 });

    // Cleanup: drop the synthetic profiles (BenchStore's drop removes the
    // two real ones), then their filler keys.
    let mut doc: Doc = serde_json::from_slice(&bytes).expect("typed parse");
    doc.profiles.retain(|k, _| real.contains(k));
    doc.active = doc.active.filter(|a| real.contains(a));
    std::fs::write(
        b.store.metadata_path(),
        serde_json::to_vec_pretty(&doc).expect("ser"),
    )
    .expect("rewrite metadata");
    for k in fillers {
        let _ = k.invalidate();
    }
    Row {
        n,
        meta_bytes: bytes.len(),
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
    print!("| profiles | metadata.json | ");
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
    println!("\n### metadata work of one save: where it goes, and two candidate layouts\n");
    println!(
        "| profiles | typed parse | pretty serialize | write+fsync+rename | \
         current (read+parse+pretty+write) | lazy compact single file | (its size) | \
         file per profile: save | file per profile: list |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let l = &r.layouts;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} KiB | {} | {} |",
            r.n,
            stats::fmt_dur(l.parse),
            stats::fmt_dur(l.pretty),
            stats::fmt_dur(l.fsync_write),
            stats::fmt_dur(l.save_current),
            stats::fmt_dur(l.save_lazy),
            l.lazy_bytes / 1024,
            stats::fmt_dur(l.save_per_profile),
            stats::fmt_dur(l.list_per_profile),
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
