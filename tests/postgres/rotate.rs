//! `rctoken rotate-key --new-key-file FILE` on PostgreSQL: every envelope
//! re-sealed under the new key in one transaction, so a store is wholly
//! under one key whenever it is looked at (also when the rotation is
//! killed), a refresh under way is waited for and its result re-sealed,
//! and every refusal changes nothing.

use std::time::{Duration, Instant};

use crate::support::cli::{Tok, run, valid_token};
use crate::support::postgres::{Pg, random_key, write_key};
use crate::support::refresher::{Does, Refresher};

/// The store's key id and each row's generation and envelope digest.
fn state(pg: &Pg) -> String {
    pg.psql(&format!(
        "SELECT encode(s.key_id, 'hex') || ':' || coalesce(string_agg(p.profile || '/' || \
         p.generation || '/' || md5(p.envelope), ',' ORDER BY p.profile), '') \
         FROM rctoken_stores s LEFT JOIN rctoken_profiles p USING (app) \
         WHERE s.app = '{}' GROUP BY s.key_id",
        pg.app
    ))
}

/// The key ids the envelopes' headers name (bytes 5..13 of `RCSE`), distinct.
fn envelope_key_ids(pg: &Pg) -> String {
    pg.psql(&format!(
        "SELECT string_agg(DISTINCT encode(substring(envelope FROM 6 FOR 8), 'hex'), ',') \
         FROM rctoken_profiles WHERE app = '{}'",
        pg.app
    ))
}

fn store_key_id(pg: &Pg) -> String {
    pg.psql(&format!(
        "SELECT encode(key_id, 'hex') FROM rctoken_stores WHERE app = '{}'",
        pg.app
    ))
}

/// `rctoken ARGS` with `key` as the key file.
fn with_key(pg: &Pg, key: &std::path::Path, args: &[&str]) -> crate::support::cli::Run {
    run(pg.cmd().env("RCTOKEN_KEY_FILE", key).args(args))
}

#[test]
fn rotating_reseals_every_row_at_once_and_the_refusals_change_nothing() {
    let pg = pg_env!("rotate");
    pg.run_stdin(&["import"], &valid_token("AT-rot-A", "RT-rot-A", "3001"))
        .ok();
    pg.run_stdin(&["import"], &valid_token("AT-rot-B", "RT-rot-B", "3002"))
        .ok();
    let old_id = store_key_id(&pg);
    assert_eq!(envelope_key_ids(&pg), old_id);
    let before = state(&pg);
    let new = pg.path("new-key");
    write_key(&new, &random_key());
    let new_arg = new.display().to_string();

    // Refused, changing nothing: no key file to rotate to (a keyutils key
    // is one machine's), the key already in use, a configured key that is
    // not the store's, a loose new key file.
    let r = pg.run(&["rotate-key"]).fails(7);
    assert!(r.stderr.contains("--new-key-file"), "{r:?}");
    let current = pg.key_file().display().to_string();
    let r = pg.run(&["rotate-key", "--new-key-file", &current]).fails(7);
    assert!(r.stderr.contains("already in use"), "{r:?}");
    let other = pg.path("other-key");
    write_key(&other, &random_key());
    let r = with_key(&pg, &other, &["rotate-key", "--new-key-file", &new_arg]).fails(7);
    assert!(r.stderr.contains("sealed under key"), "{r:?}");
    let loose = pg.path("loose-key");
    write_key(&loose, &random_key());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let loose_arg = loose.display().to_string();
    pg.run(&["rotate-key", "--new-key-file", &loose_arg])
        .fails(7);
    assert_eq!(
        state(&pg),
        before,
        "a refused rotation changed the database"
    );

    // The rotation: every envelope re-sealed for the same row and
    // generation, and the store's key id is the new key's.
    let done = pg.run(&["rotate-key", "--new-key-file", &new_arg]).ok();
    assert!(
        done.stdout.contains("re-sealed 2 of 2") && done.stdout.contains(&new_arg),
        "{done:?}"
    );
    assert!(done.stdout.contains("RCTOKEN_KEY_FILE"), "{done:?}");
    let new_id = store_key_id(&pg);
    assert_ne!(new_id, old_id);
    assert_eq!(
        envelope_key_ids(&pg),
        new_id,
        "every envelope is under the new key"
    );
    let after = state(&pg);
    let generations = |s: &str| -> Vec<String> {
        s.split_once(':')
            .unwrap()
            .1
            .split(',')
            .map(|row| row.rsplit_once('/').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(
        generations(&after),
        generations(&before),
        "same rows, same generations"
    );
    assert_ne!(after, before);

    // The old key no longer opens anything (exit 7, nothing written); the
    // new one opens every profile.
    let r = pg.run(&["token", "3001"]).fails(7);
    assert!(r.stderr.contains("sealed under key"), "{r:?}");
    pg.run_stdin(&["import"], &valid_token("AT-rot-C", "RT-rot-C", "3003"))
        .fails(7);
    assert_eq!(
        with_key(&pg, &new, &["token", "3001"]).ok().stdout.trim(),
        "AT-rot-A"
    );
    assert_eq!(
        with_key(&pg, &new, &["token", "3002"]).ok().stdout.trim(),
        "AT-rot-B"
    );
    with_key(&pg, &new, &["doctor"]).ok();

    // Running the same command again (still configured with the old key)
    // finds it done.
    let again = pg.run(&["rotate-key", "--new-key-file", &new_arg]).ok();
    assert!(
        again.stdout.contains("re-sealed 0 of 2") && again.stdout.contains("(already)"),
        "{again:?}"
    );
    assert_eq!(state(&pg), after);
}

/// A refresh holding a profile's row lock: a rotation with a shorter lock
/// timeout gives up changing nothing; one that waits re-seals the refreshed
/// row, so the refresh's result opens under the new key.
#[test]
fn a_rotation_waits_for_a_refresh_and_reseals_its_result() {
    let pg = pg_env!("rotate_refresh");
    let expired = Tok {
        access: "AT-rr-OLD",
        expires_in: 0,
        refresh: Some(("RT-rr-OLD", 604_800)),
        owner: Some("3101"),
    }
    .json();
    pg.run_stdin(&["import"], &expired).ok();
    pg.run_stdin(
        &["import", "--no-switch"],
        &valid_token("AT-rr-B", "RT-rr-B", "3102"),
    )
    .ok();
    let new = pg.path("new-key");
    write_key(&new, &random_key());
    let new_arg = new.display().to_string();
    let refresher = Refresher::new(pg.tmp.path(), "slow");
    let cmd = refresher.cmd(&Does {
        sleep_ms: 8000,
        ..Does::print(&valid_token("AT-rr-NEW", "RT-rr-NEW", "3101"))
    });
    let refresh = pg
        .cmd()
        .args(["token", "3101", "--refresh-with", &cmd])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the refresh");
    crate::hosts::wait_for_lock_holder(&pg);
    let before = state(&pg);
    let r = pg
        .run(&[
            "--lock-timeout",
            "1",
            "rotate-key",
            "--new-key-file",
            &new_arg,
        ])
        .fails(11);
    assert!(r.stderr.contains("lock"), "{r:?}");
    // Had it waited for the refresh (8 s) instead, it would have succeeded.
    assert_eq!(
        state(&pg),
        before,
        "a rotation that gave up changed the database"
    );
    // This one waits for the refresh (the default lock timeout is longer
    // than the refresher's sleep).
    let done = pg.run(&["rotate-key", "--new-key-file", &new_arg]).ok();
    assert!(done.stdout.contains("re-sealed 2 of 2"), "{done:?}");
    let out = refresh.wait_with_output().expect("the refresh");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "AT-rr-NEW");
    assert_eq!(refresher.runs(), 1);
    assert_eq!(envelope_key_ids(&pg), store_key_id(&pg));
    let got = with_key(&pg, &new, &["export", "3101", "--reveal"]).ok();
    assert!(
        got.stdout.contains("RT-rr-NEW"),
        "the refreshed pair was re-sealed"
    );
}

/// Killed at any instant, the store is wholly under the old key or wholly
/// under the new one, and every profile opens with the key the store
/// records; running it again finishes it. Kills are timed from the moment
/// the rotation visibly holds the rows (they are locked), so they land
/// inside its transaction, and some from its start.
#[test]
fn a_rotation_killed_at_any_instant_leaves_the_store_under_one_key() {
    let pg = pg_env!("rotate_kill");
    const PROFILES: usize = 400;
    {
        let store = rctoken::TokenStore::builder(&pg.app)
            .database_url(&pg.url)
            .backend(rctoken::Backend::Sealed(rctoken::KeySource::File(
                pg.key_file(),
            )))
            .open()
            .expect("open the PostgreSQL store");
        for i in 0..PROFILES {
            let json = valid_token(&format!("AT-rk-{i}"), &format!("RT-rk-{i}"), &owner(i));
            let token = rctoken::TokenInfo::from_json(json.as_bytes()).expect("token");
            store
                .save(&token, rctoken::SaveOptions::new().switch(false))
                .expect("save");
        }
    }
    // Rows of the app that another transaction holds locked.
    let locked = || -> usize {
        let free: usize = pg
            .psql(&format!(
                "SELECT count(*) FROM (SELECT 1 FROM rctoken_profiles WHERE app = '{}' \
                 FOR UPDATE SKIP LOCKED) t",
                pg.app
            ))
            .parse()
            .expect("a count");
        PROFILES - free
    };
    let mut current = (store_key_id(&pg), pg.key_file());
    // Kills that came while the rotation held the rows, and of those the
    // ones that landed before its commit (rolled back).
    let (mut inside, mut inside_rolled_back) = (0, 0);
    for round in 0..12u64 {
        let target = pg.path(&format!("key-{round}"));
        write_key(&target, &random_key());
        let from = current.1.clone();
        let rotate = || {
            let mut c = pg.cmd();
            c.env("RCTOKEN_KEY_FILE", &from)
                .args(["rotate-key", "--new-key-file"])
                .arg(&target)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            c
        };
        let mut child = rotate().spawn().expect("start the rotation");
        let mut seen_inside = false;
        if round % 4 == 0 {
            std::thread::sleep(Duration::from_millis(round * 5));
        } else {
            let deadline = Instant::now() + Duration::from_secs(30);
            while locked() == 0 && child.try_wait().expect("try_wait").is_none() {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the rotation never began"
                );
            }
            if child.try_wait().expect("try_wait").is_none() {
                inside += 1;
                seen_inside = true;
                std::thread::sleep(Duration::from_millis((round % 4) * 15));
            }
        }
        let _ = child.kill();
        child.wait().expect("reap");
        // The server sees the connection drop and rolls back; wait until
        // it has released the rows.
        let deadline = Instant::now() + Duration::from_secs(30);
        while locked() != 0 {
            assert!(Instant::now() < deadline, "round {round}: rows stay locked");
            std::thread::sleep(Duration::from_millis(20));
        }
        let id = store_key_id(&pg);
        assert_eq!(
            envelope_key_ids(&pg),
            id,
            "round {round}: envelopes under two keys"
        );
        if id == current.0 {
            inside_rolled_back += usize::from(seen_inside);
        } else {
            current = (id, target.clone());
        }
        for i in [0, PROFILES / 2, PROFILES - 1] {
            let got = with_key(&pg, &current.1, &["token", &owner(i)]).ok();
            assert_eq!(got.stdout.trim(), format!("AT-rk-{i}"), "round {round}");
        }
        if current.1 != target {
            // Not committed: running it again finishes it.
            run(&mut rotate()).ok();
            current = (store_key_id(&pg), target.clone());
            assert_eq!(envelope_key_ids(&pg), current.0, "round {round}");
        }
    }
    eprintln!(
        "{inside} of 12 kills came while the rotation held the rows; {inside_rolled_back} of \
         them before its commit"
    );
    assert!(
        inside_rolled_back > 0,
        "no kill landed inside a rotation's transaction ({inside} came while it held the rows, \
         none before its commit): the test did not test anything"
    );
}

fn owner(i: usize) -> String {
    format!("{}", 3200 + i)
}

/// The fleet recipe of docs/cli.md, run as written (one host), then a read
/// under the configuration it ends with.
#[test]
fn the_rotation_recipe_runs_as_written() {
    let pg = pg_env!("rotate_recipe");
    pg.run_stdin(&["import"], &valid_token("AT-recipe", "RT-recipe", "3301"))
        .ok();
    let old_id = store_key_id(&pg);
    let script = format!(
        "{}\nrctoken token\n",
        crate::support::cli::doc_recipe("pg-rotate")
    );
    let out = pg.recipe_sh(pg.tmp.path(), &script).output().expect("sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-sealed 1 of 1"), "{stdout}");
    assert!(stdout.ends_with("AT-recipe\n"), "{stdout}");
    assert_ne!(store_key_id(&pg), old_id);
    assert_eq!(envelope_key_ids(&pg), store_key_id(&pg));
}
