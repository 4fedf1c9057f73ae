//! The fake RingCentral platform (`tests/support/fake_ringcentral.py`, on
//! 127.0.0.1) for the tests of `rctoken login`, `token`, `api` and
//! `logout`: started per test, killed on drop; counts what reached it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-client-SECRET-4f1d2c";
pub const JWT: &str = "eyJ-test-JWT-SECRET-9a8b7c";
pub const OWNER: &str = "1000001";

pub struct FakeRc {
    child: Child,
    pub port: u16,
}

impl FakeRc {
    /// A server for a confidential app (Basic auth with [`CLIENT_SECRET`]).
    pub fn start() -> FakeRc {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> FakeRc {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/fake_ringcentral.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg(format!("client_id={CLIENT_ID}"))
            .arg(format!("client_secret={CLIENT_SECRET}"))
            .arg(format!("jwt={JWT}"))
            .arg(format!("owner={OWNER}"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fake RingCentral server (python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the fake server said {line:?}"));
        FakeRc { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn http(&self, method: &str, path: &str, body: &str) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    /// The request counts (`jwt`, `refresh`, `refresh_reused`, `revoke`,
    /// `api`, `api_401`, `token_errors`, `code`).
    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.http("GET", "/_stats", "")).expect("stats JSON")
    }

    pub fn count(&self, what: &str) -> u64 {
        self.stats()[what].as_u64().expect("a count")
    }

    /// `rctoken login` with the JWT and the client secret in these files,
    /// at this server.
    #[allow(dead_code, reason = "not every test crate uses it")]
    pub fn login_args(&self, jwt: &std::path::Path, secret: &std::path::Path) -> Vec<String> {
        [
            "login",
            "--jwt",
            &jwt.display().to_string(),
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            &secret.display().to_string(),
            "--server",
            &self.url(),
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// Stop the server (as an outage would).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Change the server's behaviour (see the script's docstring).
    pub fn control(&self, json: serde_json::Value) {
        self.http("POST", "/_control", &json.to_string());
    }
}

/// A plain GET of an `http://127.0.0.1:PORT/...` URL, as a browser would
/// send it: the status and the `Location` header, if any.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn browser_get(url: &str) -> (u16, Option<String>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    // A browser needs a well-formed reply: a status line, CRLF-separated
    // headers, a blank line, and exactly Content-Length bytes of body.
    let (head, body) = out
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response (no CRLF CRLF): {out:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    assert!(
        status_line.starts_with("HTTP/1.") && !status_line.contains('\\'),
        "bad status line: {status_line:?}"
    );
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut location = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?} in {out:?}"));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => assert_eq!(
                value.trim().parse::<usize>().ok(),
                Some(body.len()),
                "Content-Length of {out:?}"
            ),
            "location" => location = Some(value.trim().to_string()),
            _ => {}
        }
    }
    (status, location)
}

impl Drop for FakeRc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
