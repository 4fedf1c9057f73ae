//! What the file store promises, on PostgreSQL: profiles per owner_id,
//! labels, switch, list without the key, the same commands and exit codes,
//! and no plaintext secret anywhere in the database.

use crate::support::cli::valid_token;

const A_ACCESS: &str = "AT-pg-SECRET-7f3a91";
const A_REFRESH: &str = "RT-pg-SECRET-2c8e44";
const B_ACCESS: &str = "AT-pg-SECRET-b05d17";
const B_REFRESH: &str = "RT-pg-SECRET-9e61aa";

#[test]
fn the_cli_cycle_on_postgres_keeps_no_plaintext_secret_in_the_database() {
    let pg = pg_env!("cycle");
    let a = valid_token(A_ACCESS, A_REFRESH, "1001");
    let b = valid_token(B_ACCESS, B_REFRESH, "1002");
    let saved = pg.run_stdin(&["import", "--label", "work"], &a).ok();
    assert!(saved.stdout.contains("secrets in postgres"), "{saved:?}");
    pg.run_stdin(&["import", "--label", "home", "--no-switch"], &b)
        .ok();

    // Listing needs no key: it never opens an envelope.
    let listed = crate::support::cli::run(
        pg.cmd()
            .env_remove("RCTOKEN_KEY_FILE")
            .args(["list", "--json"]),
    )
    .ok();
    let v = listed.json();
    let rows = v.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(rows[0]["profile"], "1001");
    assert_eq!(rows[0]["label"], "work");
    assert_eq!(rows[0]["active"], true);
    assert_eq!(rows[1]["label"], "home");
    assert_eq!(rows[1]["active"], false);

    assert_eq!(pg.run(&["token"]).ok().stdout.trim(), A_ACCESS);
    assert_eq!(pg.run(&["token", "home"]).ok().stdout.trim(), B_ACCESS);
    pg.run(&["switch", "home"]).ok();
    assert_eq!(pg.run(&["token"]).ok().stdout.trim(), B_ACCESS);
    // A label is unique, and may not be another profile's key.
    let c = valid_token("AT-pg-c", "RT-pg-c", "1003");
    pg.run_stdin(&["import", "--label", "work"], &c).fails(2);
    pg.run_stdin(&["import", "--label", "1001"], &c).fails(2);
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM rctoken_profiles WHERE app = '{}'",
            pg.app
        )),
        "2"
    );
    pg.run(&["token", "nobody"]).fails(3);

    // The database and its backups never hold a plaintext secret.
    let dump = pg.dump();
    let text = String::from_utf8_lossy(&dump);
    assert!(text.contains(&pg.app), "the dump holds this app's rows");
    for secret in [A_ACCESS, A_REFRESH, B_ACCESS, B_REFRESH] {
        assert!(
            !dump.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in the pg_dump"
        );
    }
    // doctor opens every envelope.
    let doctor = pg.run(&["doctor"]).ok();
    assert!(doctor.stdout.contains("database"), "{doctor:?}");

    pg.run(&["logout", "work"]).ok();
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM rctoken_profiles WHERE app = '{}'",
            pg.app
        )),
        "1"
    );
    pg.run(&["logout", "--all"]).ok();
    assert_eq!(
        pg.psql(&format!(
            "SELECT (SELECT count(*) FROM rctoken_profiles WHERE app = '{0}') + (SELECT count(*) FROM rctoken_stores WHERE app = '{0}')",
            pg.app
        )),
        "0"
    );
    // No file was written on this machine for the store.
    assert!(!pg.path(".local").exists(), "a store directory was created");
}

#[test]
fn a_wrong_key_file_is_refused_and_never_overwrites() {
    let pg = pg_env!("wrong_key");
    pg.run_stdin(&["import"], &valid_token(A_ACCESS, A_REFRESH, "2001"))
        .ok();
    let before = pg.psql(&format!(
        "SELECT generation || md5(envelope) FROM rctoken_profiles WHERE app = '{}'",
        pg.app
    ));
    let other = pg.path("other-key");
    crate::support::postgres::write_key(&other, &crate::support::postgres::random_key());
    let with_other = |args: &[&str], input: &str| {
        crate::support::cli::run_with_stdin(
            pg.cmd().env("RCTOKEN_KEY_FILE", &other).args(args),
            input.as_bytes(),
        )
    };
    let read = with_other(&["token"], "").fails(7);
    assert!(read.stderr.contains("sealed under key"), "{read:?}");
    // Neither a new profile nor a re-save goes in under another key.
    with_other(&["import"], &valid_token(B_ACCESS, B_REFRESH, "2001")).fails(7);
    with_other(&["import"], &valid_token(B_ACCESS, B_REFRESH, "2002")).fails(7);
    // A refresh under the wrong key is refused before the refresh token is
    // spent: the refresher never runs.
    let refresher = crate::support::refresher::Refresher::new(pg.tmp.path(), "never");
    let cmd = refresher.cmd(&crate::support::refresher::Does::print(&valid_token(
        B_ACCESS, B_REFRESH, "2001",
    )));
    with_other(
        &["token", "--min-valid", "99999", "--refresh-with", &cmd],
        "",
    )
    .fails(7);
    assert_eq!(
        refresher.runs(),
        0,
        "the refresh token was spent under the wrong key"
    );
    let after = pg.psql(&format!(
        "SELECT generation || md5(envelope) FROM rctoken_profiles WHERE app = '{}'",
        pg.app
    ));
    assert_eq!(before, after, "the row changed under the wrong key");
    assert_eq!(pg.run(&["token"]).ok().stdout.trim(), A_ACCESS);
    // No key file at all: refused as well, with what to configure.
    let none =
        crate::support::cli::run(pg.cmd().env_remove("RCTOKEN_KEY_FILE").arg("token")).fails(7);
    assert!(none.stderr.contains("RCTOKEN_KEY_FILE"), "{none:?}");
}

#[test]
fn an_envelope_moved_to_another_profile_does_not_open() {
    let pg = pg_env!("moved");
    pg.run_stdin(&["import"], &valid_token(A_ACCESS, A_REFRESH, "3001"))
        .ok();
    pg.run_stdin(&["import"], &valid_token(B_ACCESS, B_REFRESH, "3002"))
        .ok();
    // Swap the sealed envelopes of the two rows (and their generations,
    // so only the binding to the profile is left to notice).
    pg.psql(&format!(
        "UPDATE rctoken_profiles p SET envelope = q.envelope, generation = q.generation, info = replace(p.info, p.generation, q.generation) \
         FROM rctoken_profiles q WHERE p.app = '{0}' AND q.app = '{0}' AND p.profile = '3001' AND q.profile = '3002'",
        pg.app
    ));
    let r = pg.run(&["token", "3001"]).fails(7);
    assert!(r.stderr.contains("fails authentication"), "{r:?}");
    assert!(!r.stdout.contains(B_ACCESS));
    assert_eq!(pg.run(&["token", "3002"]).ok().stdout.trim(), B_ACCESS);
}
