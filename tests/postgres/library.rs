//! The library API on PostgreSQL, through the builder: the same calls as
//! on files; threads of one process and stores of several share one
//! refresh; concurrent writers and readers never see a torn pair, and
//! writers killed mid-save leave every profile whole.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rctoken::{Backend, KeySource, SaveOptions, TokenInfo, TokenStore};
use secrecy::ExposeSecret;

use crate::support::cli::{Tok, run_with_stdin};

fn open(pg: &crate::support::postgres::Pg) -> TokenStore {
    TokenStore::builder(&pg.app)
        .database_url(&pg.url)
        .backend(Backend::Sealed(KeySource::File(pg.key_file())))
        .lock_timeout(Duration::from_secs(30))
        .open()
        .expect("open the PostgreSQL store")
}

fn tok(access: &str, refresh: &str, owner: &str, expires_in: i64) -> TokenInfo {
    TokenInfo::from_json(
        Tok {
            access,
            expires_in,
            refresh: Some((refresh, 604_800)),
            owner: Some(owner),
        }
        .json()
        .as_bytes(),
    )
    .expect("token JSON")
}

#[test]
fn threads_and_stores_of_the_library_share_one_refresh() {
    let pg = pg_env!("library");
    let first = open(&pg);
    let saved = first
        .save(
            &tok("AT-lib-OLD", "RT-lib-OLD", "7001", 0),
            SaveOptions::new().label("bot"),
        )
        .expect("save");
    assert!(saved.active);
    assert_eq!(saved.secrets_backend(), "postgres");
    assert!(!pg.path(".local").exists());
    let calls = AtomicUsize::new(0);
    let stores: Vec<TokenStore> = (0..4).map(|_| open(&pg)).collect();
    std::thread::scope(|s| {
        for store in &stores {
            for _ in 0..4 {
                let calls = &calls;
                s.spawn(move || {
                    let got = store
                        .refresh("bot", Duration::from_secs(60), |rt| {
                            assert_eq!(rt.expose_secret(), "RT-lib-OLD");
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(300));
                            Ok::<_, std::io::Error>(tok("AT-lib-NEW", "RT-lib-NEW", "7001", 3600))
                        })
                        .expect("refresh");
                    assert_eq!(got.token.access_token.expose_secret(), "AT-lib-NEW");
                });
            }
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1, "16 callers, one refresh");
    let loaded = first.load("bot").expect("load");
    assert_eq!(
        loaded.token.refresh_token.expect("rt").expose_secret(),
        "RT-lib-NEW"
    );
    assert!(loaded.info.refreshed);
    // The rest of the API, as on files.
    first
        .save(
            &tok("AT-lib-2", "RT-lib-2", "7002", 3600),
            SaveOptions::new(),
        )
        .expect("save a second");
    assert_eq!(first.list().expect("list").len(), 2);
    first.switch("7002").expect("switch");
    assert_eq!(
        first
            .info(rctoken::Selector::Active)
            .expect("active")
            .profile,
        "7002"
    );
    first.set_label("7002", Some("other")).expect("label");
    assert!(matches!(
        first.set_label("7001", Some("other")),
        Err(rctoken::Error::NameTaken { .. })
    ));
    assert!(first.verify().expect("verify").is_clean());
    first.remove("bot").expect("remove");
    assert!(matches!(
        first.load("bot"),
        Err(rctoken::Error::NoSuchProfile(_))
    ));
    assert_eq!(first.remove_all().expect("remove all"), 1);
    assert!(first.list().expect("list").is_empty());
}

#[test]
fn writers_killed_mid_save_and_concurrent_readers_never_see_a_torn_pair() {
    let pg = pg_env!("torn");
    let save = |i: usize| {
        let json = Tok {
            access: &format!("AT-torn-{i}"),
            expires_in: 3600,
            refresh: Some((&format!("RT-torn-{i}"), 604_800)),
            owner: Some("8001"),
        }
        .json();
        pg.cmd()
            .arg("import")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(|mut c| {
                use std::io::Write;
                let _ = c.stdin.take().expect("stdin").write_all(json.as_bytes());
                c
            })
            .expect("start a writer")
    };
    run_with_stdin(
        pg.cmd().arg("import"),
        Tok {
            access: "AT-torn-0",
            expires_in: 3600,
            refresh: Some(("RT-torn-0", 604_800)),
            owner: Some("8001"),
        }
        .json()
        .as_bytes(),
    )
    .ok();
    let mut killed = 0;
    for round in 1..=40 {
        let mut writers: Vec<_> = (0..4).map(|w| save(round * 10 + w)).collect();
        // Kill two of them at some instant of their save.
        std::thread::sleep(Duration::from_millis(5 * (round as u64 % 7)));
        for w in writers.iter_mut().take(2) {
            if w.kill().is_ok() {
                killed += 1;
            }
        }
        for w in writers.iter_mut() {
            let _ = w.wait();
        }
        let v = pg.run(&["export", "--reveal"]).ok().json();
        let access = v["access_token"].as_str().expect("access").to_string();
        let refresh = v["refresh_token"].as_str().expect("refresh").to_string();
        assert_eq!(
            access.trim_start_matches("AT-"),
            refresh.trim_start_matches("RT-"),
            "a torn pair after round {round}"
        );
    }
    assert!(killed > 0);
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM rctoken_profiles WHERE app = '{}'",
            pg.app
        )),
        "1"
    );
    assert!(
        pg.run(&["doctor"])
            .ok()
            .stdout
            .contains("ok: no problems found")
    );
}
