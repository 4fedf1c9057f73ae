//! Errors of the RingCentral client, classified by what a caller does next.
//! Messages carry the server's error code and description, never a secret.

/// What kind of failure, by what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorKind {
    /// The grant is dead (`invalid_grant`: the refresh token expired, was
    /// revoked or spent; a JWT that is not valid): log in again.
    LoginAgain,
    /// The app's credentials were refused (`invalid_client`, 401 at the
    /// token endpoint, OAU-146/OAU-153): fix the client id or secret.
    BadClient,
    /// 429 for longer than the wait bound allows.
    RateLimited,
    /// The server could not be reached, timed out or answered 5xx (after
    /// the bounded retries).
    Unavailable,
    /// Any other 4xx: the request was refused as it was.
    BadRequest,
    /// The server answered 2xx with something that is not a token.
    BadResponse,
    /// The server URL is not acceptable (not https, not loopback).
    BadServer,
}

/// An error of the RingCentral client.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct OAuthError {
    /// What kind of failure.
    pub kind: OAuthErrorKind,
    /// The HTTP status, if the server answered.
    pub status: Option<u16>,
    /// RingCentral's error code (`errors[0].errorCode`, e.g. `OAU-213`) or
    /// the OAuth `error` field.
    pub code: Option<String>,
    /// Seconds the server asked to wait (429).
    pub retry_after: Option<u64>,
    message: String,
}

impl OAuthError {
    pub(crate) fn new(kind: OAuthErrorKind, message: impl Into<String>) -> Self {
        OAuthError {
            kind,
            status: None,
            code: None,
            retry_after: None,
            message: message.into(),
        }
    }
}

/// The error a non-2xx token endpoint answer means.
pub(crate) fn from_response(status: u16, body: &[u8], retry_after: Option<u64>) -> OAuthError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(clean)
    };
    let oauth = field("error");
    let code = error_code(body).or_else(|| oauth.clone());
    let description = field("error_description")
        .or_else(|| field("message"))
        .unwrap_or_default();
    let kind = match (status, oauth.as_deref()) {
        (429, _) => OAuthErrorKind::RateLimited,
        (_, Some("invalid_grant")) => OAuthErrorKind::LoginAgain,
        (_, Some("invalid_client" | "unauthorized_client")) | (401, _) => OAuthErrorKind::BadClient,
        (500..=599 | 408, _) => OAuthErrorKind::Unavailable,
        _ => OAuthErrorKind::BadRequest,
    };
    let mut message = format!("RingCentral answered {status}");
    if let Some(c) = &code {
        message.push_str(&format!(" {c}"));
    }
    if !description.is_empty() {
        message.push_str(&format!(": {description}"));
    }
    OAuthError {
        kind,
        status: Some(status),
        code,
        retry_after,
        message,
    }
}

/// RingCentral's error code in a JSON error body: `errorCode`, or
/// `errors[0].errorCode`.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.get("errorCode")
        .or_else(|| json.get("errors")?.get(0)?.get("errorCode"))
        .and_then(|v| v.as_str())
        .map(clean)
}

/// One line, bounded: server text goes into messages as data.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        let e = from_response(
            400,
            br#"{"error":"invalid_grant","errors":[{"errorCode":"OAU-213","message":"Token not found"}],"error_description":"Token not found"}"#,
            None,
        );
        assert_eq!(e.kind, OAuthErrorKind::LoginAgain);
        assert_eq!(e.code.as_deref(), Some("OAU-213"));
        assert_eq!(
            e.to_string(),
            "RingCentral answered 400 OAU-213: Token not found"
        );
        assert_eq!(
            from_response(429, b"{}", Some(3)).kind,
            OAuthErrorKind::RateLimited
        );
        assert_eq!(
            from_response(503, b"<html>", None).kind,
            OAuthErrorKind::Unavailable
        );
        assert_eq!(
            from_response(401, br#"{"error":"invalid_client"}"#, None).kind,
            OAuthErrorKind::BadClient
        );
        assert_eq!(
            from_response(400, b"", None).kind,
            OAuthErrorKind::BadRequest
        );
    }
}
