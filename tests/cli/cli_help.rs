//! The command line describing itself: each command's `--help` (examples,
//! nothing pointing at a document the binary does not ship with) and
//! `--version`, the completion scripts (run in bash, zsh and fish) and the
//! man page (rendered by man, checked by groff). Nothing here opens a
//! store. The shells, man and groff are installed by `.ci/lib/deps.sh`; a
//! test whose tool is missing fails and says so. Those tests are Unix
//! only (the shells and tools are Unix programs).

#[cfg(unix)]
use std::collections::BTreeSet;
use std::process::Command;
#[cfg(unix)]
use std::process::Stdio;

#[cfg(unix)]
use crate::support::cli::run_with_stdin;
use crate::support::cli::{Run, bin, run};

/// `rctoken ARGS`, with no RCTOKEN_* settings from the environment.
fn rctoken(args: &[&str]) -> Run {
    run(Command::new(bin())
        .env_remove("RCTOKEN_APP")
        .env_remove("RCTOKEN_BACKEND")
        .env_remove("RCTOKEN_DIR")
        .args(args))
}

/// The commands `rctoken --help` lists, clap's `help` aside.
fn commands() -> Vec<String> {
    let help = rctoken(&["--help"]).ok().stdout;
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    for c in [
        "import",
        "token",
        "logout",
        "login",
        "api",
        "completion",
        "man",
    ] {
        assert!(commands.iter().any(|x| x == c), "{c} in {commands:?}");
    }
    commands
}

/// The example lines (`  rctoken …`) of a command's help.
fn examples(help: &str) -> Vec<&str> {
    help.lines()
        .skip_while(|l| *l != "Examples:")
        .skip(1)
        .take_while(|l| !l.starts_with("Exit codes:"))
        .filter(|l| l.starts_with("  rctoken ") || l.starts_with("  $ rctoken "))
        .collect()
}

#[test]
fn every_command_help_shows_examples_and_stands_alone() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let help = rctoken(args).ok().stdout;
        assert!(help.contains("Exit codes:") && help.contains("Environment:"));
        assert!(!help.contains("docs/cli.md"), "{args:?}: {help}");
    }
    for c in commands() {
        for args in [
            &[c.as_str(), "--help"][..],
            &[c.as_str(), "-h"],
            &["help", &c],
        ] {
            let help = rctoken(args).ok().stdout;
            let examples = examples(&help);
            assert!(examples.len() >= 2, "{args:?}: {help}");
            assert!(
                examples.iter().all(|l| !l.contains("Bearer $(")),
                "{args:?}: a token in an argv: {help}"
            );
            assert!(help.contains("Exit codes:"), "{args:?}: {help}");
            assert!(!help.contains("docs/cli.md"), "{args:?}: {help}");
        }
    }
}

#[test]
fn every_command_version_names_rctoken() {
    let version = format!("rctoken {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(rctoken(&["--version"]).ok().stdout, version);
    for c in commands() {
        for flag in ["--version", "-V"] {
            assert_eq!(rctoken(&[&c, flag]).ok().stdout, version, "{c} {flag}");
        }
        // Its usage line still names it `rctoken COMMAND`.
        for args in [&[c.as_str(), "--help"][..], &["help", &c]] {
            let help = rctoken(args).ok().stdout;
            assert!(help.contains(&format!("\nUsage: rctoken {c} ")), "{help}");
        }
    }
}

#[cfg(unix)]
/// Run a tool the tests need (`bash`, `zsh`, `fish`, `man`, `groff`) with
/// `input` on its stdin.
fn tool(cmd: &mut Command, input: &str) -> Run {
    let name = cmd.get_program().to_string_lossy().into_owned();
    if let Err(e) = Command::new(&name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!("cannot run `{name}` ({e}): .ci/lib/deps.sh installs it");
    }
    run_with_stdin(cmd, input.as_bytes())
}

fn completion(shell: &str) -> String {
    let script = rctoken(&["completion", shell]).ok().stdout;
    assert!(!script.trim().is_empty(), "{shell}: empty script");
    script
}

#[cfg(unix)]
fn strings(words: &[&str]) -> BTreeSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The backends `--backend` offers (the hidden test backend is not one).
#[cfg(unix)]
const BACKENDS: [&str; 6] = [
    "auto",
    "secret-service",
    "keyutils",
    "sealed",
    "macos-keychain",
    "windows-credential-manager",
];

#[cfg(unix)]
#[test]
fn bash_completion_completes_commands_options_and_values() {
    let script = completion("bash");
    assert!(script.contains("complete -F _rctoken"), "{script}");
    tool(Command::new("bash").arg("-n"), &script).ok();

    // Source it as a user would and call what it registered for rctoken,
    // as bash does on TAB: COMP_WORDS, COMP_CWORD, and (command, current
    // word, previous word) as arguments. Each answer ends with `--`.
    let probe = r#"
        source <("$RCTOKEN" completion bash) || exit 1
        fn=$(complete -p rctoken | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
        [ -n "$fn" ] || { echo "no completion function for rctoken" >&2; exit 1; }
        tab() {
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
            "$fn" rctoken "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
            printf '%s\n' "${COMPREPLY[@]}" --
        }
        tab rctoken lo
        tab rctoken ''
        tab rctoken --backend ''
        tab rctoken completion ''
        tab rctoken token --min
        tab rctoken list --dir /tmp --js
    "#;
    let out = tool(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", probe])
            .env("RCTOKEN", bin()),
        "",
    )
    .ok();
    let answers: Vec<BTreeSet<String>> = out
        .stdout
        .split("--\n")
        .map(|a| {
            a.lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(answers.len(), 7, "{}", out.stdout);
    assert_eq!(answers[0], strings(&["login", "logout"]));
    for c in commands() {
        assert!(
            answers[1].contains(&c),
            "rctoken <TAB> lacks {c}: {:?}",
            answers[1]
        );
    }
    assert_eq!(answers[2], strings(&BACKENDS));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(answers[3].contains(shell), "{:?}", answers[3]);
    }
    assert_eq!(answers[4], strings(&["--min-valid"]));
    assert_eq!(answers[5], strings(&["--json"]));
}

#[cfg(unix)]
#[test]
fn zsh_completion_parses_and_registers_for_rctoken() {
    let script = completion("zsh");
    assert!(script.starts_with("#compdef rctoken"), "{script}");
    for c in commands() {
        assert!(script.contains(&format!("'{c}:")), "zsh script lacks {c}");
    }
    tool(Command::new("zsh").args(["-f", "-n"]), &script).ok();
    // Loaded after compinit, it tells compsys to complete rctoken with it.
    let probe = r#"
        autoload -Uz compinit && compinit -u -D || exit 1
        source <("$RCTOKEN" completion zsh) || exit 1
        print -r -- "$_comps[rctoken]"
    "#;
    let tmp = tempfile::tempdir().unwrap();
    let out = tool(
        Command::new("zsh")
            .args(["-f", "-c", probe])
            .env("RCTOKEN", bin())
            .env("ZDOTDIR", tmp.path())
            .env("HOME", tmp.path()),
        "",
    )
    .ok();
    assert_eq!(out.stdout, "_rctoken\n", "{out:#?}");
}

#[cfg(unix)]
#[test]
fn fish_completion_completes_commands_and_values() {
    let script = completion("fish");
    tool(Command::new("fish").arg("--no-execute"), &script).ok();
    // `complete -C LINE` prints what TAB would offer after LINE. (Before
    // the command, fish offers option values only as `--backend=VALUE`.)
    let probe = r#"
        $RCTOKEN completion fish | source; or exit 1
        complete -C 'rctoken lo'; printf '%s\n' --
        complete -C 'rctoken '; printf '%s\n' --
        complete -C 'rctoken list --backend '; printf '%s\n' --
        complete -C 'rctoken token --min'
    "#;
    let tmp = tempfile::tempdir().unwrap();
    let out = tool(
        Command::new("fish")
            .args(["--no-config", "-c", probe])
            .env("RCTOKEN", bin())
            .env("HOME", tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join("config"))
            .env("XDG_DATA_HOME", tmp.path().join("data")),
        "",
    )
    .ok();
    // Each offer is "word<TAB>description".
    let answers: Vec<BTreeSet<String>> = out
        .stdout
        .split("--\n")
        .map(|a| {
            a.lines()
                .filter_map(|l| l.split('\t').next())
                .map(String::from)
                .collect()
        })
        .collect();
    assert_eq!(answers.len(), 4, "{}", out.stdout);
    assert_eq!(answers[0], strings(&["login", "logout"]));
    for c in commands() {
        assert!(
            answers[1].contains(&c),
            "rctoken <TAB> lacks {c}: {:?}",
            answers[1]
        );
    }
    assert_eq!(answers[2], strings(&BACKENDS));
    assert_eq!(answers[3], strings(&["--min-valid"]));
}

#[test]
fn powershell_completion_names_every_command() {
    let script = completion("powershell");
    assert!(
        script.contains("Register-ArgumentCompleter -Native -CommandName 'rctoken'"),
        "{script}"
    );
    for c in commands() {
        assert!(
            script.contains(&format!("[CompletionResult]::new('{c}'")),
            "powershell script lacks {c}"
        );
    }
}

#[test]
fn completion_of_an_unknown_shell_is_a_usage_error() {
    for args in [&["completion", "tcsh"][..], &["completion"]] {
        let out = rctoken(args).fails(2);
        assert!(
            out.stderr
                .contains("hint: usage: rctoken completion [OPTIONS] <SHELL>"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[cfg(unix)]
/// groff's complaints about a page (all warnings on), on stderr.
fn groff_warnings(page: &str) -> Run {
    tool(
        Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]),
        page,
    )
}

#[cfg(unix)]
#[test]
fn man_page_renders_without_warnings_and_covers_every_command() {
    let page = rctoken(&["man"]).ok().stdout;
    assert!(page.contains("\n.TH RCTOKEN 1 "), "{page}");
    // The check sees warnings: a page calling an undefined macro has one.
    let broken = format!("{page}.NOSUCHMACRO\n");
    assert_ne!(groff_warnings(&broken).stderr, "");
    let groff = groff_warnings(&page).ok();
    assert_eq!(groff.stderr, "", "groff warns about the man page");

    let man = tool(
        Command::new("man")
            .args(["--warnings=w", "-l", "-"])
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env_remove("MANOPT"),
        &page,
    )
    .ok();
    assert_eq!(man.stderr, "", "man warns about the page");
    let text = man.stdout;
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "GLOBAL OPTIONS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
    ] {
        assert!(text.lines().any(|l| l == heading), "no {heading}:\n{text}");
    }
    for c in commands() {
        // Each command's subsection heading, its usage, and its examples.
        assert!(
            text.lines().any(|l| l.trim() == format!("rctoken {c}")),
            "no subsection for {c}:\n{text}"
        );
    }
    assert!(text.contains("rctoken login --jwt"), "{text}");
    // The exit code table: each code on a line of its own, then its meaning.
    // Runs of spaces collapsed: man justifies lines to its width.
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for (code, meaning) in [
        ("0", "success"),
        ("2", "usage error"),
        ("3", "no such profile, or none active"),
        ("7", "store files corrupt or unsafe"),
        ("10", "`rctoken api`: the API answered with an HTTP error"),
    ] {
        assert!(
            lines
                .windows(2)
                .any(|w| w[0] == code && w[1].starts_with(meaning)
                    || w[0].starts_with(&format!("{code} ")) && w[0].contains(meaning)),
            "exit code {code} missing:\n{text}"
        );
    }
    assert!(text.contains("RCTOKEN_KEY_FILE"), "{text}");
    assert!(!page.contains("docs/cli.md"), "{page}");
}
