//! The browser flow of `rctoken login --browser`: authorization code with
//! PKCE through a loopback redirect.
//!
//! 1. Listen on `127.0.0.1:PORT` (any free port for 0).
//! 2. Print the authorize URL alone on one line of stderr (a headless user
//!    opens it elsewhere) and open a browser unless `--no-open`. The URL
//!    holds no secret: the PKCE challenge and a random `state`.
//! 3. Wait (bounded) for `GET /callback?code=…&state=…`. Another path gets
//!    404 and the wait goes on; a `state` that does not match, or an
//!    `error=` from the server, ends the login (exit 4).
//! 4. Exchange the code with the PKCE verifier.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rctoken::TokenInfo;
use rctoken::ringcentral::{Client, Pkce};
use rctoken::secrecy::SecretString;

use crate::cli::exit::{Failure, NOT_VALID, OTHER, oauth_failure};

pub fn login(client: &Client, port: u16, open: bool, wait: Duration) -> Result<TokenInfo, Failure> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        Failure::new(
            OTHER,
            format!("cannot listen on 127.0.0.1:{port} for the browser's redirect: {e}"),
            "pick a free port with --port N (the one the app's redirect URI names)",
        )
    })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let pkce = Pkce::new();
    let state = random_state()?;
    let url = client.authorize_url(&redirect_uri, &state, &pkce);
    eprintln!("{url}");
    if open {
        open_browser(&url);
    }
    listener.set_nonblocking(true).map_err(|e| io_failure(&e))?;
    let deadline = Instant::now() + wait;
    let code = loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(code) = answer(stream, &state)? {
                    break code;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(Failure::new(
                        NOT_VALID,
                        format!(
                            "no redirect from the browser came within {} s",
                            wait.as_secs()
                        ),
                        "run `rctoken login --browser` again and finish the login in the browser (or raise --wait)",
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(io_failure(&e)),
        }
    };
    client
        .exchange_code(&code, &redirect_uri, &pkce)
        .map_err(|e| oauth_failure(&e))
}

/// Read one request and answer it: `Some(code)` for the callback with the
/// right `state`, `None` for anything else (404, the wait goes on).
fn answer(stream: TcpStream, state: &str) -> Result<Option<SecretString>, Failure> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new((&stream).take(8192));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return Ok(None);
    }
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut out = &stream;
    if path != "/callback" {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return Ok(None);
    }
    let mut code = None;
    let mut got_state = None;
    let mut error = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "code" => code = Some(SecretString::from(v)),
            "state" => got_state = Some(v),
            "error" => error = Some(v),
            _ => {}
        }
    }
    let reply = |ok: bool, text: &str| {
        let body = format!("<!doctype html><title>rctoken</title><p>{text}</p>");
        let status = if ok { "200 OK" } else { "400 Bad Request" };
        let _ = (&stream).write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    };
    if let Some(error) = error {
        reply(false, "The login was refused. You can close this window.");
        return Err(Failure::new(
            NOT_VALID,
            format!("RingCentral refused the login: {}", clean(&error)),
            "run `rctoken login --browser` again, and allow the app",
        ));
    }
    if got_state.as_deref() != Some(state) {
        reply(
            false,
            "This redirect does not belong to this login. You can close this window.",
        );
        return Err(Failure::new(
            NOT_VALID,
            "the browser's redirect carries another `state` than this login's: it is not the answer to this login (a stale tab, or a forged request)",
            "run `rctoken login --browser` again and use the URL it prints",
        ));
    }
    let Some(code) = code else {
        reply(
            false,
            "The redirect has no code. You can close this window.",
        );
        return Err(Failure::new(
            NOT_VALID,
            "the browser's redirect has no authorization code",
            "run `rctoken login --browser` again",
        ));
    };
    reply(
        true,
        "Logged in. You can close this window and return to the terminal.",
    );
    Ok(Some(code))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (c, None) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn random_state() -> Result<String, Failure> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Failure::new(
            OTHER,
            format!("the OS gave no randomness for the login's state: {e}"),
            "retry; if it persists, check the system's random source",
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Open `url` in the user's browser, best effort (the URL is on stderr
/// anyway).
fn open_browser(url: &str) {
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("rundll32");
        c.arg("url.dll,FileProtocolHandler");
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let _ = cmd
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn io_failure(e: &std::io::Error) -> Failure {
    Failure::new(
        OTHER,
        format!("waiting for the browser's redirect failed: {e}"),
        "run `rctoken login --browser` again",
    )
}
