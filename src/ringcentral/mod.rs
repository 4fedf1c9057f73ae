//! RingCentral's OAuth endpoints (feature `ringcentral`): the JWT grant, the
//! authorization code grant with PKCE, refresh and revoke, and
//! authenticated API requests, over HTTPS with ureq and rustls.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rctoken::ringcentral::Client;
//! use rctoken::{SaveOptions, TokenStore};
//! use secrecy::SecretString;
//!
//! let client = Client::new("production", "CLIENT_ID")?
//!     .with_secret(SecretString::from("CLIENT_SECRET".to_string()));
//! let store = TokenStore::open("my-app")?;
//! let jwt = SecretString::from(std::fs::read_to_string("jwt.txt")?);
//! store.save(&client.login_jwt(&jwt)?, SaveOptions::new())?;
//! // Later, in any number of processes at once: one refresh reaches the server.
//! let token = store.refresh(rctoken::Selector::Active, std::time::Duration::from_secs(60), |rt| client.refresh(rt))?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! Only `https://` servers are accepted, except loopback addresses
//! (`127.0.0.0/8`, `[::1]`), which tests use. `HTTPS_PROXY` and `NO_PROXY`
//! are honoured. Client authentication follows RingCentral's SDKs: HTTP
//! Basic with a client secret; without one (a PKCE public app) the
//! `client_id` goes in the form body. Secrets sent and received are held in
//! zeroizing buffers on rctoken's side (ureq's own I/O buffers are not; see
//! docs/security.md).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::model::TokenInfo;

mod error;
mod form;
mod pkce;

pub use error::{OAuthError, OAuthErrorKind};
pub use pkce::Pkce;

/// RingCentral's production server.
pub const PRODUCTION: &str = "https://platform.ringcentral.com";
/// RingCentral's sandbox server.
pub const SANDBOX: &str = "https://platform.devtest.ringcentral.com";

const TOKEN_PATH: &str = "/restapi/oauth/token";
const REVOKE_PATH: &str = "/restapi/oauth/revoke";
const AUTHORIZE_PATH: &str = "/restapi/oauth/authorize";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The largest token endpoint response read (a token response is ~5 KiB).
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
/// The largest API response read.
const MAX_API_RESPONSE: u64 = 64 << 20;

/// A RingCentral app's client: its server, client id and optional secret.
/// Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    server: String,
    client_id: String,
    client_secret: Option<SecretString>,
    agent: ureq::Agent,
    retries: u32,
    max_wait: Duration,
    timeout: Duration,
    notice: Option<std::sync::Arc<dyn Fn(Duration) + Send + Sync>>,
    endpoint_id: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// An API response: status, content type and body.
#[derive(Debug)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// RingCentral's error code (`errorCode`, or `errors[0].errorCode`) when
    /// the body is a JSON error.
    pub error_code: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Client {
    /// A client of `server` (`production`, `sandbox`, or a URL: `https://`,
    /// or `http://` to a loopback address) for the app `client_id`.
    ///
    /// # Errors
    /// [`OAuthErrorKind::BadServer`] for a server that is not one of these.
    pub fn new(server: &str, client_id: &str) -> Result<Client, OAuthError> {
        let server = resolve_server(server)?;
        if client_id.is_empty() || client_id.chars().any(|c| c.is_control() || c == ':') {
            return Err(OAuthError::new(
                OAuthErrorKind::BadClient,
                "the client id is empty or holds a control character or `:`",
            ));
        }
        let timeout = Duration::from_secs(30);
        Ok(Client {
            server,
            client_id: client_id.to_string(),
            client_secret: None,
            agent: agent(timeout),
            retries: 2,
            max_wait: Duration::from_secs(60),
            timeout,
            notice: None,
            endpoint_id: None,
        })
    }

    /// Authenticate as a confidential app with this client secret.
    pub fn with_secret(mut self, secret: SecretString) -> Client {
        self.client_secret = Some(secret);
        self
    }

    /// Bound each request (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self.agent = agent(timeout);
        self
    }

    /// How long a 429 answer's `Retry-After` may make a call wait in all
    /// (default 60 s); beyond it the call fails.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Client {
        self.max_wait = max_wait;
        self
    }

    /// Call `notice` with the wait before sleeping for a 429's
    /// `Retry-After` (a command line prints one line on stderr).
    pub fn with_wait_notice(mut self, notice: impl Fn(Duration) + Send + Sync + 'static) -> Client {
        self.notice = Some(std::sync::Arc::new(notice));
        self
    }

    /// Send this `endpoint_id` with refreshes (the one the login returned,
    /// so the session keeps its endpoint).
    pub fn with_endpoint_id(mut self, endpoint_id: Option<String>) -> Client {
        self.endpoint_id = endpoint_id;
        self
    }

    /// The server's base URL (no trailing slash).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret, if the app has one.
    pub fn client_secret(&self) -> Option<&SecretString> {
        self.client_secret.as_ref()
    }

    /// The JWT grant: exchange a JWT credential for tokens.
    ///
    /// # Errors
    /// See [`OAuthErrorKind`].
    pub fn login_jwt(&self, jwt: &SecretString) -> Result<TokenInfo, OAuthError> {
        self.token_request(&[
            ("grant_type", JWT_GRANT),
            ("assertion", jwt.expose_secret().trim()),
        ])
    }

    /// Refresh with `refresh_token`. RingCentral's refresh tokens are
    /// single use; a retry after a lost answer gets the same new token
    /// within the server's grace window, so timeouts are retried.
    ///
    /// # Errors
    /// [`OAuthErrorKind::LoginAgain`] when the refresh token is dead
    /// (`invalid_grant`); see [`OAuthErrorKind`] for the rest.
    pub fn refresh(&self, refresh_token: &SecretString) -> Result<TokenInfo, OAuthError> {
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        if let Some(ep) = &self.endpoint_id {
            fields.push(("endpoint_id", ep));
        }
        self.token_request(&fields)
    }

    /// [`refresh`](Self::refresh) on a thread pool, for the async facade:
    /// `store.refresh(profile, min_valid, |rt| client.refresh_async(rt))`.
    #[cfg(feature = "async")]
    pub fn refresh_async(
        &self,
        refresh_token: SecretString,
    ) -> impl std::future::Future<Output = Result<TokenInfo, OAuthError>> + Send + 'static {
        let client = self.clone();
        blocking::unblock(move || client.refresh(&refresh_token))
    }

    /// The URL to send a user to for the authorization code grant.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, pkce: &Pkce) -> String {
        let query = form::encode(&[
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", redirect_uri),
            ("state", state),
            ("code_challenge", &pkce.challenge()),
            ("code_challenge_method", "S256"),
        ]);
        format!("{}{AUTHORIZE_PATH}?{}", self.server, query.as_str())
    }

    /// The authorization code grant, with the PKCE verifier.
    ///
    /// # Errors
    /// See [`OAuthErrorKind`].
    pub fn exchange_code(
        &self,
        code: &SecretString,
        redirect_uri: &str,
        pkce: &Pkce,
    ) -> Result<TokenInfo, OAuthError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier().expose_secret()),
        ])
    }

    /// Revoke `token` (access or refresh token), which ends the whole
    /// session. One try, with a short timeout: a caller deletes its copy
    /// whatever the answer.
    ///
    /// # Errors
    /// Any failure to reach the server or a non-2xx answer.
    pub fn revoke(&self, token: &SecretString) -> Result<(), OAuthError> {
        let mut fields = vec![("token", token.expose_secret())];
        if self.client_secret.is_none() {
            fields.push(("client_id", self.client_id.as_str()));
        }
        let body = form::encode(&fields);
        let short = agent(self.timeout.min(Duration::from_secs(5)));
        let url = format!("{}{REVOKE_PATH}", self.server);
        let mut req = short
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json");
        if let Some(auth) = self.basic() {
            req = req.header("Authorization", auth.as_str());
        }
        let resp = req.send(body.as_bytes()).map_err(transport)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut resp = resp;
        let bytes = read_zeroizing(resp.body_mut(), MAX_TOKEN_RESPONSE).unwrap_or_default();
        Err(error::from_response(status, &bytes, None))
    }

    /// An authenticated API request: `method` `path` (relative to the
    /// server, starting with `/`) with `access_token` as the bearer token.
    /// Non-2xx answers are returned, not errors.
    ///
    /// # Errors
    /// [`OAuthErrorKind::BadRequest`] for a path that is not relative to
    /// the server; network failures.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        access_token: &SecretString,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<ApiResponse, OAuthError> {
        if !path.starts_with('/') || path.starts_with("//") || path.contains(['\r', '\n']) {
            return Err(OAuthError::new(
                OAuthErrorKind::BadRequest,
                "the API path must be relative to the server and start with `/` (an absolute URL \
                 to another host is refused, so the token only goes to its own server)",
            ));
        }
        let url = format!("{}{path}", self.server);
        let method = ureq::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| OAuthError::new(OAuthErrorKind::BadRequest, "not an HTTP method"))?;
        let bearer = Zeroizing::new(format!("Bearer {}", access_token.expose_secret()));
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", bearer.as_str())
            .header("Accept", "application/json");
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("host") {
                return Err(OAuthError::new(
                    OAuthErrorKind::BadRequest,
                    format!("the header {name} is set by rctoken"),
                ));
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        if body.is_some()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            builder = builder.header("Content-Type", "application/json");
        }
        let req = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| {
                OAuthError::new(OAuthErrorKind::BadRequest, format!("bad request: {e}"))
            })?;
        let mut resp = self.agent.run(req).map_err(transport)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_API_RESPONSE)
            .read_to_vec()
            .map_err(transport)?;
        let error_code = (!(200..300).contains(&status))
            .then(|| error::error_code(&body))
            .flatten();
        Ok(ApiResponse {
            status,
            content_type,
            error_code,
            body,
        })
    }

    fn basic(&self) -> Option<Zeroizing<String>> {
        use base64ct::{Base64, Encoding};
        let secret = self.client_secret.as_ref()?;
        let pair = Zeroizing::new(format!("{}:{}", self.client_id, secret.expose_secret()));
        Some(Zeroizing::new(format!(
            "Basic {}",
            Base64::encode_string(pair.as_bytes())
        )))
    }

    /// POST a grant to the token endpoint, with bounded retries of 5xx,
    /// timeouts and connection failures, and waits for 429.
    fn token_request(&self, grant: &[(&str, &str)]) -> Result<TokenInfo, OAuthError> {
        let mut fields: Vec<(&str, &str)> = grant.to_vec();
        if self.client_secret.is_none() {
            fields.push(("client_id", &self.client_id));
        }
        let body = form::encode(&fields);
        let auth = self.basic();
        let url = format!("{}{TOKEN_PATH}", self.server);
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .agent
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Accept", "application/json");
            if let Some(auth) = &auth {
                req = req.header("Authorization", auth.as_str());
            }
            let e: OAuthError = match req.send(body.as_bytes()) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let bytes = read_zeroizing(resp.body_mut(), MAX_TOKEN_RESPONSE);
                    match bytes {
                        Ok(bytes) if (200..300).contains(&status) => {
                            return TokenInfo::from_json(&bytes).map_err(|e| {
                                OAuthError::new(
                                    OAuthErrorKind::BadResponse,
                                    format!("the token endpoint answered with a token that is not valid: {e}"),
                                )
                            });
                        }
                        Ok(bytes) => error::from_response(status, &bytes, retry_after),
                        Err(e) => e,
                    }
                }
                Err(e) => transport(e),
            };
            let wait = match e.kind {
                OAuthErrorKind::RateLimited => {
                    let wait = Duration::from_secs(e.retry_after.unwrap_or(5));
                    if started.elapsed() + wait > self.max_wait {
                        return Err(e);
                    }
                    log::warn!(
                        "RingCentral's token endpoint asks to wait {}s (429, rate limit); waiting",
                        wait.as_secs()
                    );
                    if let Some(notice) = &self.notice {
                        notice(wait);
                    }
                    wait
                }
                OAuthErrorKind::Unavailable if attempt <= self.retries => {
                    Duration::from_millis(500 << (attempt - 1))
                }
                _ => return Err(e),
            };
            std::thread::sleep(wait);
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        // No pooled connections: a connection's buffers (which held the
        // request's secrets) are freed when its request ends, not kept for
        // the process's lifetime. A CLI makes one or two requests anyway.
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .user_agent(concat!("rctoken/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Read a response body of at most `limit` bytes into a zeroizing buffer
/// that grows by copying into a new zeroizing buffer (a plain `Vec` would
/// reallocate and leave the old block, with the tokens, to the allocator).
fn read_zeroizing(body: &mut ureq::Body, limit: u64) -> Result<Zeroizing<Vec<u8>>, OAuthError> {
    use std::io::Read;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let first = body
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(16 << 10)
        .min(limit)
        .max(1);
    let mut buf = Zeroizing::new(vec![0u8; first]);
    let mut len = 0;
    let mut reader = body.as_reader();
    loop {
        if len == buf.len() {
            if len >= limit {
                return Err(OAuthError::new(
                    OAuthErrorKind::BadResponse,
                    "the server's answer is too large",
                ));
            }
            let mut bigger = Zeroizing::new(vec![0u8; (len * 2).min(limit)]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger;
        }
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(OAuthError::new(
                    OAuthErrorKind::Unavailable,
                    format!("the server's answer could not be read: {e}"),
                ));
            }
        }
    }
    buf.truncate(len);
    Ok(buf)
}

fn transport(e: ureq::Error) -> OAuthError {
    OAuthError::new(
        OAuthErrorKind::Unavailable,
        format!("the server could not be reached: {e}"),
    )
}

/// `production`, `sandbox`, or a URL that is `https://`, or `http://` to a
/// loopback address; without a trailing slash.
fn resolve_server(server: &str) -> Result<String, OAuthError> {
    let bad = |why: &str| {
        OAuthError::new(
            OAuthErrorKind::BadServer,
            format!("the server `{server}` {why}: give production, sandbox or an https:// URL"),
        )
    };
    let url = match server {
        "production" => return Ok(PRODUCTION.into()),
        "sandbox" => return Ok(SANDBOX.into()),
        s => s.trim_end_matches('/'),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("is not a URL"))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) || url.contains(['\r', '\n']) {
        return Err(bad(
            "must be a scheme and a host, with no path, query or user",
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(format!("https://{rest}")),
        "http" if is_loopback(rest) => Ok(format!("http://{rest}")),
        "http" => Err(bad(
            "is plain http, which is only accepted for 127.0.0.0/8 and [::1]",
        )),
        _ => Err(bad("has a scheme other than https")),
    }
}

fn is_loopback(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_https_or_loopback() {
        assert_eq!(resolve_server("production").unwrap(), PRODUCTION);
        assert_eq!(resolve_server("sandbox").unwrap(), SANDBOX);
        assert_eq!(
            resolve_server("https://platform.ringcentral.biz/").unwrap(),
            "https://platform.ringcentral.biz"
        );
        assert_eq!(
            resolve_server("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(resolve_server("http://[::1]:9").unwrap(), "http://[::1]:9");
        for bad in [
            "http://platform.ringcentral.com",
            "http://localhost:80",
            "http://10.0.0.1",
            "ftp://x",
            "platform.ringcentral.com",
            "https://x/restapi",
            "https://user@x",
            "https://",
        ] {
            assert_eq!(
                resolve_server(bad).unwrap_err().kind,
                OAuthErrorKind::BadServer,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_client_secret_never_shows_in_debug() {
        let c = Client::new("production", "id")
            .unwrap()
            .with_secret(SecretString::from("S3CRET-client".to_string()));
        assert!(!format!("{c:?}").contains("S3CRET"));
        assert!(c.basic().unwrap().starts_with("Basic "));
    }
}
