//! The Secret Service seen from outside the library: the `secret-tool`
//! command (libsecret-tools).

use std::process::{Command, Stdio};

/// Everything `secret-tool search --all service <service>` prints: the items
/// (path, label, secret, dates) on stdout, their attributes on stderr.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn search(service: &str) -> String {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", service])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run secret-tool (apt-get install libsecret-tools): {e}")
        });
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `username` attribute (rctoken's account name) of every item whose
/// `service` attribute is `service`.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn accounts(service: &str) -> Vec<String> {
    search(service)
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Number of items in `app`'s namespace (`rctoken:<app>`).
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn count(app: &str) -> usize {
    accounts(&format!("rctoken:{app}")).len()
}

/// Delete the item of `account` in `service`; whether `secret-tool` succeeded.
#[allow(dead_code, reason = "not every test crate uses it")]
pub fn clear(service: &str, account: &str) -> bool {
    Command::new("secret-tool")
        .args(["clear", "service", service, "username", account])
        .stdin(Stdio::null())
        .status()
        .expect("secret-tool")
        .success()
}
