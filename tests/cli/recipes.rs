//! The recipes of docs/cli.md marked `<!-- recipe: NAME -->`, run as
//! written against the fake RingCentral platform: a fresh HOME with the JWT
//! and client secret in `~/.config/rc/`, `RC_CLIENT_ID` and `RC_SERVER` set,
//! and `rctoken` first on PATH. Each test also checks what reached the
//! server, so a recipe that stopped working fails here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::backends::Kind;
use crate::support::fake_rc::{self, FakeRc};
use crate::support::keyutils;

use crate::support::cli::doc_recipe as recipe;

struct Home {
    rc: FakeRc,
    tmp: tempfile::TempDir,
    app: String,
}

impl Home {
    fn new(tag: &str) -> Home {
        let tmp = tempfile::Builder::new()
            .prefix("rctoken-recipe-")
            .tempdir()
            .unwrap();
        let rc_dir = tmp.path().join("home/.config/rc");
        std::fs::create_dir_all(&rc_dir).unwrap();
        std::fs::write(rc_dir.join("jwt"), fake_rc::JWT).unwrap();
        std::fs::write(rc_dir.join("secret"), fake_rc::CLIENT_SECRET).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                rc_dir.join("secret"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        Home {
            rc: FakeRc::start(),
            tmp,
            app: format!("rcrecipe-{tag}-{}", std::process::id()),
        }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn command(&self, program: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_rctoken"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(program);
        c.env("HOME", self.home())
            .env("PATH", path)
            .env("RCTOKEN_APP", &self.app)
            .env("RCTOKEN_DIR", self.tmp.path().join("store"))
            .env("RCTOKEN_BACKEND", "sealed")
            .env("RC_CLIENT_ID", fake_rc::CLIENT_ID)
            .env("RC_SERVER", self.rc.url())
            .env_remove("RCTOKEN_KEY_FILE")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.command(program).args(args).output().expect("run");
        assert!(
            out.status.success(),
            "{program} {args:?}: {:?}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn login(&self) {
        let rc = self.home().join(".config/rc");
        let args = self.rc.login_args(&rc.join("jwt"), &rc.join("secret"));
        self.run(
            env!("CARGO_BIN_EXE_rctoken"),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = self
            .command(env!("CARGO_BIN_EXE_rctoken"))
            .args(["logout", "--all", "--no-revoke"])
            .output();
        keyutils::purge(&keyutils::sealing_keys(&self.app));
    }
}

#[test]
fn the_jwt_recipe_logs_in_calls_the_api_and_logs_out() {
    needs!(Kind::Keyutils);
    let h = Home::new("jwt");
    let out = h.run("sh", &["-e", "-c", &recipe("jwt")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"uri\""));
    assert_eq!(
        (h.rc.count("jwt"), h.rc.count("api"), h.rc.count("revoke")),
        (1, 1, 1)
    );
}

#[test]
fn the_cron_recipe_writes_one_file_per_run() {
    needs!(Kind::Keyutils);
    let h = Home::new("cron");
    h.login();
    let script = h.tmp.path().join("rc-sync.sh");
    std::fs::write(&script, recipe("cron")).unwrap();
    h.run("sh", &[script.to_str().unwrap()]);
    let files: Vec<_> = std::fs::read_dir(h.home().join("rc-sync"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let body = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(body.contains("\"uri\""), "{body}");
    assert_eq!(h.rc.count("api"), 1);
}

#[test]
fn the_python_recipe_gets_the_token_through_a_pipe() {
    needs!(Kind::Keyutils);
    let h = Home::new("py");
    h.login();
    let script = h.tmp.path().join("recipe.py");
    std::fs::write(&script, recipe("python")).unwrap();
    let out = h.run("python3", &[script.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"uri\""));
    assert_eq!(h.rc.count("api"), 1);
}

#[test]
fn the_node_recipe_gets_the_token_through_a_pipe() {
    needs!(Kind::Keyutils);
    let h = Home::new("node");
    h.login();
    let script = h.tmp.path().join("recipe.js");
    std::fs::write(&script, recipe("node")).unwrap();
    let out = h.run("node", &[script.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"uri\""));
    assert_eq!(h.rc.count("api"), 1);
}

/// The README's Quick start, as a new user runs it on a headless box (no
/// session bus): its first command after the build imports the example
/// token and shows the profile on the sealed store; the README's removal
/// command then removes it.
#[test]
fn the_readme_quick_start_imports_shows_and_removes_the_sample_profile() {
    needs!(Kind::Keyutils);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let quick = &readme[readme.find("## Quick start").expect("a Quick start")..];
    let block = &quick[quick.find("```sh\n").expect("a first command") + 6..];
    let first = block[..block.find("\n```").unwrap()].trim();
    let rest = first
        .strip_prefix("cargo build --release && ")
        .unwrap_or_else(|| panic!("the first command starts with the build: {first}"));
    let removal = quick
        .split('`')
        .find(|s| s.starts_with("./target/release/rctoken logout"))
        .expect("the README says how to remove the sample profile");
    let bin = env!("CARGO_BIN_EXE_rctoken");
    let h = Home::new("readme");
    let run = |script: &str| {
        let script = script.replace("./target/release/rctoken", bin);
        let mut c = h.command("sh");
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RCTOKEN_BACKEND")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("CREDENTIALS_DIRECTORY")
            .args(["-e", "-c", &script]);
        let out = c.output().expect("sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{script}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let shown = run(rest);
    assert!(shown.contains("saved profile 256440016"), "{shown}");
    assert!(
        shown.contains("backend in use:       sealed (auto: no session bus"),
        "{shown}"
    );
    let removed = run(removal);
    assert!(
        removed.contains("logged out profile 256440016"),
        "{removed}"
    );
    let listed = run(&format!("{bin} list --json"));
    assert_eq!(listed, "[]\n");
}
