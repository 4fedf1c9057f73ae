//! Tokens whose three secrets carry one tag (`acc-<tag>`, `ref-<tag>`,
//! `id-<tag>`), so a load proves they all come from one save: no torn read
//! across processes, crashes and faults.

use rctoken::secrecy::{ExposeSecret, SecretString};
use rctoken::{StoredToken, TokenInfo};

/// A token whose three secrets all carry `tag`: `acc-<tag>`, `ref-<tag>`,
/// `id-<tag>`, so a load can prove they come from one save.
pub fn tagged(tag: &str, expires_in: i64) -> TokenInfo {
    let mut t = TokenInfo::new(
        SecretString::from(format!("acc-{tag}")),
        expires_in,
        "ReadAccounts",
    );
    t.refresh_token = Some(SecretString::from(format!("ref-{tag}")));
    t.refresh_token_expires_in = Some(604_800);
    t.id_token = Some(SecretString::from(format!("id-{tag}")));
    t.endpoint_id = Some("rel-endpoint".into());
    t
}

/// The common tag of a token's three secrets; panics if they differ (a torn read).
pub fn tag_of(t: &TokenInfo) -> String {
    let access = t.access_token.expose_secret();
    let refresh = t
        .refresh_token
        .as_ref()
        .map(|s| s.expose_secret())
        .unwrap_or_default();
    let id = t
        .id_token
        .as_ref()
        .map(|s| s.expose_secret())
        .unwrap_or_default();
    let a = access.strip_prefix("acc-").unwrap_or("<bad access>");
    let r = refresh.strip_prefix("ref-").unwrap_or("<bad refresh>");
    let i = id.strip_prefix("id-").unwrap_or("<bad id>");
    assert!(
        a == r && r == i,
        "torn read: access/refresh/id tags differ: {a:?} {r:?} {i:?}"
    );
    a.to_string()
}

/// The tag of a loaded token (see [`tag_of`]).
pub fn loaded_tag(s: &StoredToken) -> String {
    tag_of(&s.token)
}
