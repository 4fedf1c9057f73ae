//! rctoken's `export --format rc-python|rc-js` and `import --format auto`
//! against RingCentral's own SDKs, pointed at the fake platform: each SDK
//! accepts rctoken's export (`set_data` / `setData`), finds the token
//! valid and calls the API with it (no refresh); then it refreshes, and
//! rctoken accepts the SDK's data and uses it.
//!
//! The SDKs (`ringcentral` from PyPI in a venv, `@ringcentral/sdk` from
//! npm) are installed by `.ci/lib/sdks.sh`; the tests find them through
//! `RCTOKEN_TEST_SDK_DIR`. Without it they fail, unless the run declares
//! them absent (`RCTOKEN_TEST_ABSENT_SDKS=1`), when they say they did not
//! run.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::support::backends::Kind;
use crate::support::fake_rc::{self, FakeRc};
use crate::support::keyutils;

const PATH: &str = "/restapi/v1.0/account/~/extension/~";

/// The SDK directory, or `None` (after saying so) if the run declared the
/// SDKs absent.
fn sdk_dir() -> Option<PathBuf> {
    if std::env::var_os("RCTOKEN_TEST_ABSENT_SDKS").is_some() {
        let _ = writeln!(
            std::io::stderr(),
            "{}: NOT RUN (RCTOKEN_TEST_ABSENT_SDKS is set)",
            std::thread::current().name().unwrap_or("a test")
        );
        return None;
    }
    let dir = std::env::var_os("RCTOKEN_TEST_SDK_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "RingCentral's SDKs are not installed: run `. .ci/lib/sdks.sh && ensure_sdks DIR` and \
             set RCTOKEN_TEST_SDK_DIR=DIR (CI does), or declare them absent: RCTOKEN_TEST_ABSENT_SDKS=1"
        )
    });
    assert!(
        dir.join("py/bin/python").exists(),
        "{}: no py/ venv",
        dir.display()
    );
    assert!(
        dir.join("node/node_modules/@ringcentral/sdk").exists(),
        "{}: no node/ SDK",
        dir.display()
    );
    Some(dir)
}

struct World {
    rc: FakeRc,
    tmp: tempfile::TempDir,
    app: String,
}

impl World {
    fn new(tag: &str) -> World {
        let tmp = tempfile::Builder::new()
            .prefix("rctoken-sdk-")
            .tempdir()
            .unwrap();
        let w = World {
            rc: FakeRc::start(),
            tmp,
            app: format!("rcsdk-{tag}-{}", std::process::id()),
        };
        std::fs::write(w.tmp.path().join("jwt"), fake_rc::JWT).unwrap();
        std::fs::write(w.tmp.path().join("secret"), fake_rc::CLIENT_SECRET).unwrap();
        w
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rctoken"));
        c.env("RCTOKEN_APP", &self.app)
            .env("RCTOKEN_DIR", self.tmp.path().join("store"))
            .env("RCTOKEN_BACKEND", "sealed")
            .env_remove("RCTOKEN_KEY_FILE")
            .args(args);
        c
    }

    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rctoken");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn login(&self) {
        let args = self.rc.login_args(
            &self.tmp.path().join("jwt"),
            &self.tmp.path().join("secret"),
        );
        let out = self.run(&args.iter().map(String::as_str).collect::<Vec<_>>(), b"");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run an SDK script with the exported data on stdin; it prints the
    /// SDK's data after its refresh on stdout.
    fn sdk(&self, program: PathBuf, args: &[&str], script: &str, data: &[u8]) -> Vec<u8> {
        let path = self.tmp.path().join("script");
        std::fs::write(&path, script).unwrap();
        let mut child = Command::new(program)
            .args(args)
            .arg(&path)
            .env("RC_SERVER", self.rc.url())
            .env("RC_CLIENT_ID", fake_rc::CLIENT_ID)
            .env("RC_PATH", PATH)
            .env("RC_SECRET_FILE", self.tmp.path().join("secret"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the SDK");
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the SDK script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Export in `format`, hand it to the SDK, then import what the SDK
    /// holds after its refresh, and use it.
    fn round_trip(&self, format: &str, program: PathBuf, args: &[&str], script: &str) {
        self.login();
        let exported = self.run(&["export", "--reveal", "--format", format], b"");
        assert_eq!(exported.status.code(), Some(0));
        let (refresh0, api0) = (self.rc.count("refresh"), self.rc.count("api"));
        let after = self.sdk(program, args, script, &exported.stdout);
        assert_eq!(
            self.rc.count("api"),
            api0 + 2,
            "[{format}] the SDK called the API twice"
        );
        assert_eq!(
            self.rc.count("refresh"),
            refresh0 + 1,
            "[{format}] one refresh, by the SDK"
        );
        // rctoken takes the SDK's data (detected) and uses it.
        let out = self.run(&["import"], &after);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.run(&["api", PATH], b"");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            self.rc.count("refresh"),
            refresh0 + 1,
            "[{format}] rctoken did not need to refresh"
        );
        let tok = self.run(&["token"], b"");
        let sdk_json: serde_json::Value = serde_json::from_slice(&after).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&tok.stdout).trim(),
            sdk_json["access_token"].as_str().unwrap(),
            "[{format}] rctoken holds the SDK's new token"
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.run(&["logout", "--all", "--no-revoke"], b"");
        keyutils::purge(&keyutils::sealing_keys(&self.app));
    }
}

const PYTHON: &str = r#"
import json, os, sys
from ringcentral import SDK
secret = open(os.environ["RC_SECRET_FILE"]).read().strip()
sdk = SDK(os.environ["RC_CLIENT_ID"], secret, os.environ["RC_SERVER"])
platform = sdk.platform()
platform.auth().set_data(json.load(sys.stdin))
assert platform.auth().access_token_valid(), "the exported token is valid to the SDK"
platform.get(os.environ["RC_PATH"])
platform.refresh()
platform.get(os.environ["RC_PATH"])
print(json.dumps(platform.auth().data()))
"#;

const NODE: &str = r#"
const { SDK } = require("@ringcentral/sdk");
const fs = require("fs");
(async () => {
  const secret = fs.readFileSync(process.env.RC_SECRET_FILE, "utf8").trim();
  const sdk = new SDK({ server: process.env.RC_SERVER, clientId: process.env.RC_CLIENT_ID, clientSecret: secret });
  const platform = sdk.platform();
  await platform.auth().setData(JSON.parse(fs.readFileSync(0, "utf8")));
  if (!(await platform.auth().accessTokenValid())) throw new Error("the exported token is not valid to the SDK");
  await platform.get(process.env.RC_PATH);
  await platform.refresh();
  await platform.get(process.env.RC_PATH);
  process.stdout.write(JSON.stringify(await platform.auth().data()));
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[test]
fn ringcentral_python_takes_the_export_and_rctoken_takes_its_data_after_it_refreshed() {
    needs!(Kind::Keyutils);
    let Some(dir) = sdk_dir() else { return };
    let w = World::new("py");
    w.round_trip("rc-python", dir.join("py/bin/python"), &[], PYTHON);
}

#[test]
fn ringcentral_js_takes_the_export_and_rctoken_takes_its_data_after_it_refreshed() {
    needs!(Kind::Keyutils);
    let Some(dir) = sdk_dir() else { return };
    let w = World::new("js");
    w.round_trip_node(&dir);
}

impl World {
    fn round_trip_node(&self, dir: &std::path::Path) {
        // node resolves `require` from NODE_PATH.
        let wrapper = self.tmp.path().join("node-with-path");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nNODE_PATH='{}' exec node \"$@\"\n",
                dir.join("node/node_modules").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700)).unwrap();
        self.round_trip("rc-js", wrapper, &[], NODE);
    }
}
