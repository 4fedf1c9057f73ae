//! The multi-host recipe of docs/cli.md ("Three replicas of a bot share
//! one login"), run as written: the login once, then the replicas' call
//! from three processes at once, each with a HOME of its own, against the
//! fake RingCentral platform.

use crate::support::cli::doc_recipe;
use crate::support::fake_rc::{self, FakeRc};

#[test]
fn three_replicas_of_a_bot_share_one_login() {
    let pg = pg_env!("replicas");
    let rc = FakeRc::start();
    // A short access token, so every replica's call needs a refresh.
    rc.control(serde_json::json!({ "expires_in": 30 }));
    let sh = |home: &std::path::Path, script: &str| {
        let mut c = pg.recipe_sh(home, script);
        c.env("RC_CLIENT_ID", fake_rc::CLIENT_ID)
            .env("RC_SERVER", rc.url());
        c
    };
    let admin = pg.path("admin");
    let rc_dir = admin.join(".config/rc");
    std::fs::create_dir_all(&rc_dir).expect("rc dir");
    crate::support::postgres::write_key(&rc_dir.join("jwt"), fake_rc::JWT);
    crate::support::postgres::write_key(&rc_dir.join("secret"), fake_rc::CLIENT_SECRET);
    let login = sh(&admin, &doc_recipe("replicas-login"))
        .output()
        .expect("login");
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    // The endpoint is slow, so the three overlap on the row lock.
    rc.control(serde_json::json!({ "expires_in": 3600, "latency_ms": 500 }));
    let call = doc_recipe("replicas-call");
    let replicas: Vec<_> = (0..3)
        .map(|i| {
            let home = pg.path(&format!("replica-{i}"));
            std::fs::create_dir_all(&home).expect("replica home");
            sh(&home, &call).spawn().expect("start a replica")
        })
        .collect();
    for r in replicas {
        let out = r.wait_with_output().expect("replica");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"uri\""));
    }
    let stats = rc.stats();
    assert_eq!(stats["jwt"], 1, "{stats}");
    assert_eq!(
        stats["refresh"], 1,
        "one refresh for the three replicas: {stats}"
    );
    assert_eq!(stats["refresh_reused"], 0, "{stats}");
    assert_eq!(stats["api"], 3, "{stats}");
    assert_eq!(stats["api_401"], 0, "{stats}");
}
