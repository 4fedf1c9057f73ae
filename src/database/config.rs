//! How the PostgreSQL engine finds its server: a connection string (URL or
//! `key=value` words) completed the way libpq completes one, from the
//! `PG*` environment variables and the password file, and the TLS that
//! `sslmode` asks for (rustls; it always checks the certificate).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// Where and how to connect, ready for `postgres`.
pub(crate) struct Settings {
    pub config: postgres::Config,
    /// TLS, unless `sslmode=disable` (or the server is on a Unix socket,
    /// where tokio-postgres never negotiates TLS).
    pub tls: Option<rustls::ClientConfig>,
    /// The server in words, without the password: `user@host:port/db`.
    pub shown: String,
}

/// Read `url`, then fill what it leaves unset as libpq does: `PGHOST`,
/// `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGAPPNAME`,
/// `PGCONNECT_TIMEOUT`, `PGSSLMODE`, `PGSSLROOTCERT`, then the password
/// file (`PGPASSFILE`, else `~/.pgpass`, ignored unless private).
pub(crate) fn settings(url: &str) -> Result<Settings> {
    settings_from(url, &|name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

fn bad(reason: impl Into<String>) -> Error {
    Error::DatabaseConfig {
        reason: reason.into(),
    }
}

pub(crate) fn settings_from(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings> {
    // tokio-postgres knows `sslmode` disable/prefer/require only, and no
    // `sslrootcert`: take those two out, and pass it the rest.
    let (rest, mut sslmode, mut rootcert) = take_tls_words(url)?;
    let mut config = postgres::Config::from_str(&rest)
        .map_err(|e| bad(format!("the connection string does not parse: {e}")))?;
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(hosts) => {
                for h in hosts.split(',') {
                    config.host(h);
                }
            }
            None => {
                config.host(&default_socket_dir());
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(port) = env("PGPORT")
    {
        let port = port
            .parse::<u16>()
            .map_err(|_| bad(format!("PGPORT `{port}` is not a port number")))?;
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"));
        let user = user.ok_or_else(|| bad("no database user: name one in the URL or PGUSER"))?;
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let db = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or("").to_string());
        config.dbname(&db);
    }
    if config.get_application_name().is_none() {
        config.application_name(&env("PGAPPNAME").unwrap_or_else(|| "rctoken".into()));
    }
    if config.get_connect_timeout().is_none() {
        let secs = match env("PGCONNECT_TIMEOUT") {
            Some(s) => s.parse::<u64>().map_err(|_| {
                bad(format!(
                    "PGCONNECT_TIMEOUT `{s}` is not a number of seconds"
                ))
            })?,
            None => 10,
        };
        config.connect_timeout(Duration::from_secs(secs.max(2)));
    }
    if sslmode.is_none() {
        sslmode = env("PGSSLMODE");
    }
    if rootcert.is_none() {
        rootcert = env("PGSSLROOTCERT");
    }
    let mode = sslmode.as_deref().unwrap_or("prefer");
    let tls_mode = match mode {
        "disable" => postgres::config::SslMode::Disable,
        "allow" | "prefer" => postgres::config::SslMode::Prefer,
        "require" | "verify-ca" | "verify-full" => postgres::config::SslMode::Require,
        other => {
            return Err(bad(format!(
                "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    config.ssl_mode(tls_mode);
    // A password in the string or PGPASSWORD wins, as in libpq.
    if config.get_password().is_none() {
        if let Some(p) = env("PGPASSWORD") {
            config.password(&p);
        } else if let Some(p) = password_from_file(&config, env)? {
            config.password(&p);
        }
    }
    let tls = match tls_mode {
        postgres::config::SslMode::Disable => None,
        _ => Some(tls_config(rootcert.as_deref())?),
    };
    let shown = show(&config);
    Ok(Settings { config, tls, shown })
}

/// Split `sslmode` and `sslrootcert` off a URL's query or a `key=value`
/// string; the rest is for tokio-postgres.
fn take_tls_words(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let mut mode = None;
    let mut root = None;
    let mut take = |k: &str, v: &str| -> bool {
        match k {
            "sslmode" => mode = Some(v.to_string()),
            "sslrootcert" => root = Some(v.to_string()),
            _ => return false,
        }
        true
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), None, None));
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                !take(k, &percent_decoded(v))
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    if url.contains('\'') {
        return Err(bad(
            "quoted values in a key=value connection string are not supported; use a postgresql:// URL",
        ));
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            !take(k.trim(), v.trim())
        })
        .collect();
    Ok((kept.join(" "), mode, root))
}

fn percent_decoded(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's compiled-in socket directory on Debian, else `/tmp`.
fn default_socket_dir() -> String {
    if Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql".into()
    } else {
        "/tmp".into()
    }
}

/// The first line of the password file that matches host, port, database
/// and user (`*` matches anything; `\:` and `\\` escape), as libpq reads
/// it. A file that group or others can read is ignored with a warning,
/// as libpq does.
fn password_from_file(
    config: &postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>> {
    let path = match env("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None => match directories::BaseDirs::new() {
            Some(b) => b.home_dir().join(".pgpass"),
            None => return Ok(None),
        },
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            log::warn!(
                "password file {} has group or world access; it is ignored (chmod 600 it)",
                path.display()
            );
            return Ok(None);
        }
    }
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(_)) => "localhost".into(),
        None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or("");
    let user = config.get_user().unwrap_or("");
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = pgpass_fields(line);
        if fields.len() != 5 {
            continue;
        }
        let hit = |field: &str, value: &str| field == "*" || field == value;
        if hit(&fields[0], &host)
            && hit(&fields[1], &port)
            && hit(&fields[2], db)
            && hit(&fields[3], user)
        {
            return Ok(Some(fields[4].clone()));
        }
    }
    Ok(None)
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// rustls, checking the server's certificate and name against the root
/// certificates in `rootcert` (a PEM file), else `~/.postgresql/root.crt`
/// if it exists, else the Mozilla roots.
fn tls_config(rootcert: Option<&str>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let file = rootcert.map(PathBuf::from).or_else(|| {
        let p = directories::BaseDirs::new()?
            .home_dir()
            .join(".postgresql/root.crt");
        p.is_file().then_some(p)
    });
    let mut roots = rustls::RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(&path)
                .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("sslrootcert {}: {e}", path.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `user@host:port/db`, never the password.
fn show(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or("?"),
        config.get_dbname().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn libpq_variables_fill_what_the_url_leaves_unset() {
        let env = env_of(&[
            ("PGHOST", "db.example"),
            ("PGPORT", "6432"),
            ("PGUSER", "bot"),
            ("PGDATABASE", "tokens"),
            ("PGSSLMODE", "disable"),
            ("PGPASSFILE", "/nonexistent"),
        ]);
        let s = settings_from("postgresql://", &env).unwrap();
        assert_eq!(s.shown, "bot@db.example:6432/tokens");
        assert!(s.tls.is_none());
        let s = settings_from("postgresql://me@other:5433/x?sslmode=verify-full", &env).unwrap();
        assert_eq!(s.shown, "me@other:5433/x");
        assert!(s.tls.is_some());
        assert_eq!(s.config.get_ssl_mode(), postgres::config::SslMode::Require);
    }

    #[test]
    fn a_bad_sslmode_is_refused() {
        let env = env_of(&[("USER", "me")]);
        let e = settings_from("host=/tmp sslmode=sometimes", &env)
            .err()
            .unwrap();
        assert!(e.to_string().contains("sslmode `sometimes`"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn the_password_file_matches_as_libpq_does() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:nope\ndb.example:5432:*:bot:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = file.to_str().unwrap();
        let vars = [("PGPASSFILE", f), ("PGSSLMODE", "disable")];
        let env = env_of(&vars);
        let s = settings_from("postgresql://bot@db.example/x", &env).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"pa:ss"[..]));
        let s = settings_from("postgresql://else@db.example/x", &env).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"fallback"[..]));
        // Readable by others: ignored, as libpq ignores it.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = settings_from("postgresql://bot@db.example/x", &env).unwrap();
        assert_eq!(s.config.get_password(), None);
    }
}
