//! `rctoken login`, `token`, `api` and `logout` against the fake RingCentral
//! platform (`tests/support/fake_ringcentral.py`): the JWT grant, automatic
//! single-flight refresh over HTTP (16 processes, one refresh, on every
//! Linux backend), a 401 that refreshes once and retries once, a dead
//! refresh token that stops the retrying, revocation at logout, bad
//! credentials, 429 and 5xx, and no secret in any file or output.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::support::backends::Kind;
use crate::support::fake_rc::{self, FakeRc};
use crate::support::keyutils;

/// One test's fake server, store directory, app id and backend.
struct World {
    rc: FakeRc,
    tmp: tempfile::TempDir,
    app: String,
    backend: &'static str,
}

impl World {
    fn new(tag: &str, backend: &'static str) -> World {
        let tmp = tempfile::Builder::new()
            .prefix("rctoken-oauth-")
            .tempdir()
            .expect("tempdir");
        let app = format!("rcoauth-{tag}-{}", std::process::id());
        let w = World {
            rc: FakeRc::start(),
            tmp,
            app,
            backend,
        };
        write_private(&w.path("jwt"), fake_rc::JWT);
        write_private(&w.path("secret"), fake_rc::CLIENT_SECRET);
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rctoken"));
        c.env("RCTOKEN_APP", &self.app)
            .env("RCTOKEN_DIR", self.path("store"))
            .env("RCTOKEN_BACKEND", self.backend)
            .env_remove("RCTOKEN_KEY_FILE")
            .env_remove("RCTOKEN_CLIENT_ID")
            .env_remove("RCTOKEN_SERVER")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run rctoken")
    }

    fn login(&self) -> Output {
        let args = self.rc.login_args(&self.path("jwt"), &self.path("secret"));
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Make the stored access token expire: log in while the server issues
    /// 1-second tokens, wait it out, then go back to hour-long ones.
    fn login_expired(&self) {
        self.rc.control(serde_json::json!({"expires_in": 1}));
        let out = self.login();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        self.rc.control(serde_json::json!({"expires_in": 3600}));
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.run(&["logout", "--all", "--no-revoke"]);
        keyutils::purge(&keyutils::sealing_keys(&self.app));
        keyutils::purge(&keyutils::namespace(&self.app));
    }
}

fn write_private(path: &std::path::Path, text: &str) {
    crate::sealed::write_mode(path, text.as_bytes(), 0o600);
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A JWT or client secret file that group or others can read is named
/// with its mode and the fix (the login goes on: the secret is out
/// already); a 0600 one is not mentioned.
#[cfg(unix)]
#[test]
fn a_secret_file_others_can_read_is_warned_about() {
    needs!(Kind::Keyutils);
    let w = World::new("loose", "sealed");
    let out = w.login();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    crate::sealed::write_mode(&w.path("jwt"), fake_rc::JWT.as_bytes(), 0o644);
    crate::sealed::write_mode(&w.path("secret"), fake_rc::CLIENT_SECRET.as_bytes(), 0o640);
    let out = w.login();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    for line in [
        "warning: the file with the JWT has mode 0644: group or others may access it; `chmod 600` it",
        "warning: the file with the client secret has mode 0640: group or others may access it; `chmod 600` it",
    ] {
        assert!(err.lines().any(|l| l == line), "{line:?} not in {err}");
    }
    assert!(
        !contains(&out.stderr, fake_rc::JWT),
        "the secret is not echoed"
    );
}

#[test]
fn login_with_a_jwt_then_token_refreshes_by_itself_and_keeps_no_secret_in_files() {
    needs!(Kind::Keyutils);
    let w = World::new("login", "sealed");
    let out = w.login();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "logged in at {} as profile {}, active; secrets in sealed\n",
            w.rc.url(),
            fake_rc::OWNER
        )
    );
    assert_eq!(w.rc.count("jwt"), 1);
    // The metadata names the app; the secret is not in it.
    let status = w.run(&["status", "--json"]);
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let first = w.run(&["token"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let at1 = stdout(&first).trim().to_string();
    assert!(at1.starts_with("AT-"), "{at1}");
    assert_eq!(w.rc.count("refresh"), 0, "a valid token is not refreshed");
    // Asking for more validity than is left refreshes, over HTTP, with
    // the client secret from the keychain and no flags.
    let second = w.run(&["token", "--min-valid", "7200"]);
    assert_eq!(
        code(&second),
        4,
        "the endpoint issues 1-hour tokens: {}",
        stderr(&second)
    );
    assert_eq!(w.rc.count("refresh"), 1, "one refresh");
    assert_eq!(
        w.rc.count("refresh_with_endpoint"),
        1,
        "the stored endpoint_id sent back"
    );
    let third = w.run(&["token"]);
    let at2 = stdout(&third).trim().to_string();
    assert!(at2.starts_with("AT-") && at2 != at1, "a new token: {at2}");
    assert_eq!(
        w.rc.count("refresh"),
        1,
        "no storm: the fresh token is used"
    );
    // No secret in any file of the store.
    for (path, bytes) in crate::sealed::files_under(&w.path("store")) {
        for secret in [fake_rc::JWT, fake_rc::CLIENT_SECRET, &at1, &at2] {
            assert!(
                !contains(&bytes, secret),
                "{} holds a secret",
                path.display()
            );
        }
    }
    let meta = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(!meta.contains(fake_rc::CLIENT_SECRET), "{meta}");
}

/// 16 processes run `rctoken token` on an expired token at once: one
/// refresh request reaches the server and all 16 print the same new token.
fn sixteen_processes_one_refresh(backend: &'static str) {
    let w = World::new(&format!("sixteen-{backend}"), backend);
    w.login_expired();
    let children: Vec<_> = (0..16)
        .map(|_| {
            w.cmd(&["token"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for o in &outs {
        assert_eq!(code(o), 0, "[{backend}] {}", stderr(o));
    }
    let tokens: std::collections::BTreeSet<String> =
        outs.iter().map(|o| stdout(o).trim().to_string()).collect();
    assert_eq!(
        tokens.len(),
        1,
        "[{backend}] all print the same token: {tokens:?}"
    );
    assert_eq!(
        w.rc.count("refresh") + w.rc.count("refresh_reused"),
        1,
        "[{backend}] exactly one refresh request reached the server"
    );
}

#[test]
fn sixteen_processes_refresh_an_expired_token_once_on_keyutils() {
    needs!(Kind::Keyutils);
    sixteen_processes_one_refresh("keyutils");
}

#[test]
fn sixteen_processes_refresh_an_expired_token_once_on_the_sealed_store() {
    needs!(Kind::Keyutils);
    sixteen_processes_one_refresh("sealed");
}

#[test]
fn sixteen_processes_refresh_an_expired_token_once_on_the_secret_service() {
    needs!(Kind::SecretService);
    sixteen_processes_one_refresh("secret-service");
}

#[test]
fn api_refreshes_once_on_a_401_and_stops_once_the_refresh_token_is_dead() {
    needs!(Kind::Keyutils);
    let w = World::new("api", "sealed");
    assert_eq!(code(&w.login()), 0);
    let path = "/restapi/v1.0/account/~/extension/~";
    let out = w.run(&["api", path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON body");
    assert_eq!(body["uri"], path);
    assert_eq!(body["method"], "GET");
    // POST with --data: the method follows.
    let out = w.run(&["api", path, "--data", r#"{"x":1}"#]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["method"],
        "POST"
    );
    let (api0, refresh0) = (w.rc.count("api"), w.rc.count("refresh"));
    assert_eq!(refresh0, 0);

    // The server stops taking the access token: one 401, one refresh, one retry.
    w.rc.control(serde_json::json!({"invalidate_access": true}));
    let out = w.run(&["api", path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(w.rc.count("refresh"), 1);
    assert_eq!(w.rc.count("api"), api0 + 2, "the request and its one retry");

    // Every token dead: one 401, one refresh refused, then it stops with
    // "log in again" (exit 4) and calls the server no more.
    w.rc.control(serde_json::json!({"kill_sessions": true}));
    let (api1, errors1) = (w.rc.count("api"), w.rc.count("token_errors"));
    let out = w.run(&["api", path]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("log in again"), "{}", stderr(&out));
    assert_eq!(w.rc.count("api"), api1 + 1, "no retry without a new token");
    assert_eq!(
        w.rc.count("token_errors"),
        errors1 + 1,
        "one refresh attempt"
    );

    // An absolute URL to another host is refused before anything is sent,
    // and so is --server naming another server than the profile's.
    let api2 = w.rc.count("api");
    let out = w.run(&["api", "https://example.com/x"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = w.run(&["api", path, "--server", "https://platform.ringcentral.com"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its token is not sent to"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.rc.count("api"), api2, "nothing was sent");
}

#[test]
fn api_http_errors_exit_10_with_the_status_and_error_code() {
    needs!(Kind::Keyutils);
    let w = World::new("api-err", "sealed");
    assert_eq!(code(&w.login()), 0);
    // A refresh token that is dead and an access token the server refuses,
    // on a profile without the app (imported): 401 is the answer, exit 10.
    let exported = w.run(&["export", "--reveal"]);
    assert_eq!(code(&exported), 0);
    let other = World::new("api-imp", "sealed");
    let mut c = other.cmd(&["import"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&exported.stdout)
        .unwrap();
    assert_eq!(code(&child.wait_with_output().unwrap()), 0);
    w.rc.control(serde_json::json!({"invalidate_access": true}));
    let url = w.rc.url();
    let out = other.run(&["api", "/restapi/v1.0/account/~", "--server", &url]);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(stderr(&out).contains("401 OAU-129"), "{}", stderr(&out));
    assert!(contains(&out.stdout, "OAU-129"), "the body is on stdout");
}

#[test]
fn logout_revokes_at_the_server_first_and_deletes_anyway() {
    needs!(Kind::Keyutils);
    let w = World::new("logout", "sealed");
    assert_eq!(code(&w.login()), 0);
    let out = w.run(&["logout"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked profile"), "{}", stdout(&out));
    assert_eq!(w.rc.count("revoke"), 1);
    // The session is over at the server too.
    assert_eq!(code(&w.run(&["list"])), 0);

    // --no-revoke: nothing reaches the server.
    assert_eq!(code(&w.login()), 0);
    let out = w.run(&["logout", "--no-revoke"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(w.rc.count("revoke"), 1);

    // The server is gone: the profile is deleted here anyway, and it says so.
    assert_eq!(code(&w.login()), 0);
    let url = w.rc.url();
    let mut w = w;
    w.rc.stop();
    let out = w.run(&["logout"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "could not revoke profile {} at {url}",
            fake_rc::OWNER
        )),
        "{}",
        stdout(&out)
    );
    let list = w.run(&["list", "--json"]);
    assert_eq!(stdout(&list).trim(), "[]");
}

#[test]
fn bad_credentials_bad_servers_rate_limits_and_outages() {
    needs!(Kind::Keyutils);
    let w = World::new("bad", "sealed");
    let jwt = w.path("jwt");
    let url = w.rc.url();
    // A wrong client secret: exit 9, the secret not echoed.
    write_private(&w.path("wrong"), "not-the-secret-XYZ");
    let wrong = w.path("wrong");
    let login = |secret: &std::path::Path, server: &str| {
        w.run(&[
            "login",
            "--jwt",
            jwt.to_str().unwrap(),
            "--client-id",
            fake_rc::CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--server",
            server,
        ])
    };
    let out = login(&wrong, &url);
    assert_eq!(code(&out), 9, "{}", stderr(&out));
    assert!(stderr(&out).contains("client secret"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not-the-secret"), "{}", stderr(&out));
    // A JWT the server refuses: log in again is what the user must do.
    std::fs::write(w.path("badjwt"), "eyJ-not-valid").unwrap();
    let out = w.run(&[
        "login",
        "--jwt",
        w.path("badjwt").to_str().unwrap(),
        "--client-id",
        fake_rc::CLIENT_ID,
        "--client-secret-file",
        w.path("secret").to_str().unwrap(),
        "--server",
        &url,
    ]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    // Plain http to anything but loopback: refused before any request.
    let secret = w.path("secret");
    let out = login(&secret, "http://platform.ringcentral.com");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("only accepted for 127.0.0.0/8"),
        "{}",
        stderr(&out)
    );
    // 429 with Retry-After: waited out, one line on stderr, then success.
    w.rc.control(serde_json::json!({"fail": [[429, 1]]}));
    let out = login(&secret, &url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("waiting 1s"), "{}", stderr(&out));
    // Two 5xx: retried (bounded), then success.
    w.rc.control(serde_json::json!({"fail": [[503, null], [500, null]]}));
    let out = login(&secret, &url);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Five 5xx: past the retries, exit 9, and the stored token is unchanged.
    let before = stdout(&w.run(&["token"]));
    w.rc.control(serde_json::json!({"fail": [[500, null], [500, null], [500, null], [500, null], [500, null]]}));
    let out = w.run(&["token", "--min-valid", "7200"]);
    assert_eq!(code(&out), 9, "{}", stderr(&out));
    w.rc.control(serde_json::json!({"fail": []}));
    assert_eq!(
        stdout(&w.run(&["token"])),
        before,
        "the stored tokens are unchanged"
    );
    // A refresh that meets a 429 waits too, and says so.
    w.rc.control(serde_json::json!({"fail": [[429, 1]]}));
    let out = w.run(&["token", "--min-valid", "7200"]);
    assert_eq!(
        code(&out),
        4,
        "refreshed, but 1-hour tokens: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("waiting 1s"), "{}", stderr(&out));
    assert_eq!(w.rc.count("refresh"), 1);
}

/// Play the browser for `rctoken login --browser --no-open`: read the URL it
/// prints, follow the fake authorize endpoint's redirect, and hand the
/// callback (through `tamper`) to rctoken's loopback listener.
fn browser_login(w: &World, tamper: impl Fn(String) -> String) -> (Output, u16) {
    use std::io::BufRead;
    let secret = w.path("secret");
    let url = w.rc.url();
    let mut child = w
        .cmd(&[
            "login",
            "--browser",
            "--no-open",
            "--wait",
            "20",
            "--client-id",
            fake_rc::CLIENT_ID,
            "--client-secret-file",
            secret.to_str().unwrap(),
            "--server",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line)
        .expect("the authorize URL on stderr");
    let authorize = line.trim().to_string();
    assert!(
        authorize.starts_with(&format!(
            "{url}/restapi/oauth/authorize?response_type=code&client_id="
        )),
        "{authorize}"
    );
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    // A stray request (a browser's favicon) is answered 404; the wait goes on.
    let callback_base = {
        let (status, location) = fake_rc::browser_get(&authorize);
        assert_eq!(status, 302);
        location.expect("a redirect")
    };
    let favicon = callback_base.split("/callback").next().unwrap().to_string() + "/favicon.ico";
    assert_eq!(fake_rc::browser_get(&favicon).0, 404);
    let (status, _) = fake_rc::browser_get(&tamper(callback_base));
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().unwrap();
    let out = Output {
        status: out.status,
        stdout: out.stdout,
        stderr: format!("{line}{rest}").into_bytes(),
    };
    (out, status)
}

#[test]
fn browser_login_with_pkce_through_the_loopback_redirect_and_a_checked_state() {
    needs!(Kind::Keyutils);
    let w = World::new("browser", "sealed");
    let (out, status) = browser_login(&w, |u| u);
    assert_eq!(status, 200, "the browser is told it worked");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("logged in at "),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        w.rc.count("code"),
        1,
        "one code exchange, with the PKCE verifier"
    );
    assert_eq!(code(&w.run(&["token"])), 0);

    // A redirect with another state is refused: exit 4, nothing saved.
    let w = World::new("browser-state", "sealed");
    let (out, status) = browser_login(&w, |u| {
        let (base, state) = u.rsplit_once("state=").unwrap();
        format!("{base}state=x{state}")
    });
    assert_eq!(status, 400);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("another `state`"), "{}", stderr(&out));
    assert_eq!(w.rc.count("code"), 0, "the code was never exchanged");
    assert_eq!(stdout(&w.run(&["list", "--json"])).trim(), "[]");
}

/// The library, through the async facade: `client.refresh_async` plugs into
/// `AsyncTokenStore::refresh` in one line, and 8 concurrent tasks on an
/// expired token send one refresh.
#[test]
#[cfg(feature = "async")]
fn the_async_facade_refreshes_over_https_once_for_many_tasks() {
    needs!(Kind::Keyutils);
    let w = World::new("async", "sealed");
    w.login_expired();
    let store = rctoken::TokenStore::builder(&w.app)
        .dir(w.path("store"))
        .backend(rctoken::Backend::Sealed(rctoken::KeySource::Keyutils))
        .open()
        .expect("open");
    let stored = store.load(rctoken::Selector::Active).expect("load");
    let client = rctoken::ringcentral::Client::new(&w.rc.url(), fake_rc::CLIENT_ID)
        .unwrap()
        .with_secret(
            stored
                .client_secret
                .clone()
                .expect("the client secret is kept"),
        );
    let store = rctoken::AsyncTokenStore::from(store);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tokens: Vec<String> = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let t = store
                        .refresh(
                            rctoken::Selector::Active,
                            std::time::Duration::from_secs(60),
                            |rt| client.refresh_async(rt),
                        )
                        .await
                        .expect("refresh");
                    use rctoken::secrecy::ExposeSecret;
                    t.token.access_token.expose_secret().to_string()
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert!(tokens.windows(2).all(|p| p[0] == p[1]), "one token for all");
    assert_eq!(w.rc.count("refresh"), 1);
}
