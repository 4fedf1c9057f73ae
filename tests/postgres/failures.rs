//! The database failing: unreachable, a password that would leak through
//! argv, the password file, and a server restarted during a save loop.

use crate::support::cli::{run, run_with_stdin, valid_token};

#[test]
fn an_unreachable_database_is_exit_11_with_what_to_do() {
    let pg = pg_env!("unreachable");
    let r = run(pg
        .cmd()
        .env("RCTOKEN_DATABASE_URL", "host=/nonexistent-rctoken dbname=x")
        .arg("list"))
    .fails(11);
    assert!(r.stderr.contains("could not connect"), "{r:?}");
    assert!(r.stderr.contains("PostgreSQL server is up"), "{r:?}");
    // A password on the command line is refused before anything runs.
    let r = run(pg.cmd().env_remove("RCTOKEN_DATABASE_URL").args([
        "--database-url",
        "postgresql://u:hunter2@127.0.0.1/x",
        "list",
    ]))
    .fails(2);
    assert!(r.stderr.contains(".pgpass"), "{r:?}");
    assert!(!r.stderr.contains("hunter2"), "{r:?}");
    let r = run(pg
        .cmd()
        .env("RCTOKEN_DATABASE_URL", "host=/tmp sslmode=sometimes")
        .arg("list"))
    .fails(11);
    assert!(r.stderr.contains("sslmode"), "{r:?}");
}

#[test]
fn a_password_comes_from_the_password_file_as_with_libpq() {
    let pg = pg_env!("pgpass");
    let tcp =
        std::env::var("RCTOKEN_TEST_PG_TCP").expect("RCTOKEN_TEST_PG_TCP (the loopback listener)");
    let password = std::env::var("RCTOKEN_TEST_PG_PASSWORD").expect("RCTOKEN_TEST_PG_PASSWORD");
    let (host, port) = tcp.split_once(':').expect("host:port");
    let user = pg.psql("SELECT current_user");
    let url = format!("postgresql://{user}@{host}:{port}/rctoken?sslmode=disable");
    let pass = pg.path("pgpass");
    std::fs::write(&pass, format!("{host}:{port}:rctoken:{user}:{password}\n")).expect("pgpass");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let with = |file: Option<&std::path::Path>| {
        let mut c = pg.cmd();
        c.env("RCTOKEN_DATABASE_URL", &url).env_remove("PGPASSWORD");
        match file {
            Some(f) => c.env("PGPASSFILE", f),
            None => c.env("PGPASSFILE", pg.path("no-such-file")),
        };
        c
    };
    run_with_stdin(
        with(Some(&pass)).arg("import"),
        valid_token("AT-pgpass-SECRET", "RT-pgpass-SECRET", "5001").as_bytes(),
    )
    .ok();
    assert_eq!(
        run(with(Some(&pass)).arg("token")).ok().stdout.trim(),
        "AT-pgpass-SECRET"
    );
    run(with(None).arg("token")).fails(11);
    // A password file others can read is ignored, as libpq ignores it.
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    run(with(Some(&pass)).arg("token")).fails(11);
    // TLS that the server does not offer: refused, never sent in clear.
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let tls = format!("postgresql://{user}@{host}:{port}/rctoken?sslmode=verify-full");
    run(with(Some(&pass))
        .env("RCTOKEN_DATABASE_URL", &tls)
        .arg("token"))
    .fails(11);
}

#[test]
fn a_server_restart_during_a_save_loop_tears_nothing_and_loses_nothing() {
    let pg = pg_env!("restart", alone);
    let bin = std::env::var("RCTOKEN_TEST_PGBIN").expect("RCTOKEN_TEST_PGBIN");
    let data = std::env::var("RCTOKEN_TEST_PGDATA").expect("RCTOKEN_TEST_PGDATA");
    let saves = std::thread::scope(|s| {
        let saver = s.spawn(|| {
            (0..60)
                .map(|i| {
                    let token = valid_token(
                        &format!("AT-restart-{i}"),
                        &format!("RT-restart-{i}"),
                        &format!("{}", 6000 + i),
                    );
                    let r = pg.run_stdin(&["import"], &token);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    (i, r)
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(std::time::Duration::from_millis(400));
        let restarted = std::process::Command::new(format!("{bin}/pg_ctl"))
            .args(["-D", &data, "-m", "fast", "-w", "-t", "60", "restart"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl restart");
        assert!(restarted.success(), "the server did not restart");
        saver.join().expect("the save loop")
    });
    let failed = saves.iter().filter(|(_, r)| r.code != 0).count();
    for (i, r) in &saves {
        match r.code {
            0 => {}
            11 => crate::support::cli::two_line_error(&r.stderr),
            other => panic!("save {i} exited {other}: {r:?}"),
        }
    }
    assert!(
        failed > 0,
        "no save met the restart: the test proved nothing"
    );
    assert!(failed < saves.len(), "no save went through");
    // Every save that succeeded is there, whole; one that failed is there
    // whole or not at all.
    for (i, r) in &saves {
        let got = pg.run(&["export", "--reveal", &format!("{}", 6000 + i)]);
        if r.code == 0 || got.code == 0 {
            let v = got.ok().json();
            assert_eq!(v["access_token"], format!("AT-restart-{i}"));
            assert_eq!(v["refresh_token"], format!("RT-restart-{i}"));
        } else {
            got.fails(3);
        }
    }
}

#[test]
fn hosts_starting_at_once_on_an_empty_database_create_the_schema_once() {
    let pg = pg_env!("migrate");
    let db = format!("rctoken_migrate_{}", std::process::id());
    pg.psql(&format!("CREATE DATABASE {db}"));
    let url = pg.url.replace("dbname=rctoken", &format!("dbname={db}"));
    assert_ne!(url, pg.url, "the test URL names dbname=rctoken");
    let hosts: Vec<_> = (0..8).map(|h| pg.host(&format!("m{h}"))).collect();
    let children: Vec<_> = hosts
        .iter()
        .map(|host| {
            pg.on_host(host)
                .env("RCTOKEN_DATABASE_URL", &url)
                .args(["list", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start a host")
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let version = std::process::Command::new("psql")
        .arg(&url)
        .args([
            "-X",
            "-qAtc",
            "SELECT count(*), max(version) FROM rctoken_schema",
        ])
        .output()
        .expect("psql");
    pg.psql(&format!("DROP DATABASE {db}"));
    for out in &outs {
        assert!(
            out.status.success(),
            "a host failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    }
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), "1|1");
}
