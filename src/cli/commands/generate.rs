//! `rctoken completion SHELL` and `rctoken man`: a completion script and
//! the manual page, made by the clap authors' clap_complete and clap_mangen
//! from the definition the parser uses (`args::command`), so they cannot
//! drift from it. Neither opens the store.

use std::io::Write;

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use crate::cli::args::{self, AFTER_HELP, CompletionArgs};
use crate::cli::examples;
use crate::cli::exit::{Failure, OK};
use crate::cli::output;

pub fn completion(a: CompletionArgs) -> Result<u8, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut args::command(), "rctoken", &mut script);
    output::print(&String::from_utf8_lossy(&script))?;
    Ok(OK)
}

pub fn man() -> Result<u8, Failure> {
    output::print(&man_page())?;
    Ok(OK)
}

/// One page for the whole command line, `rctoken(1)`: clap_mangen's
/// title, name, synopsis, description and options of the top level; then a
/// COMMANDS section with each command's synopsis, description, own options
/// and examples (clap_mangen would make a page per command instead); then
/// the help's exit code table and environment note as EXIT STATUS and
/// ENVIRONMENT.
fn man_page() -> String {
    let mut cmd = args::command().disable_help_subcommand(true);
    cmd.build();
    let top = Man::new(cmd.clone());
    // Every rendering starts with roff's preamble (a string for the
    // apostrophe): keep the first only. The title by hand: clap_mangen
    // drops an empty date, which shifts the version into its place. No
    // hyphenation: names like RCTOKEN_KEYCHAIN_TIMEOUT stay whole.
    let mut page = Roff::new().render();
    let version = cmd.get_version().unwrap_or_default();
    page += &format!(".TH RCTOKEN 1 \"\" \"rctoken {version}\" \"User Commands\"\n.nh\n");
    page += &part(|w| top.render_name_section(w));
    page += &part(|w| top.render_synopsis_section(w));
    page += &part(|w| top.render_description_section(w));
    page += &part(|w| top.render_options_section(w));
    page += &commands_section(&cmd);
    page += &exit_status_and_environment();
    page += &part(|w| top.render_version_section(w));
    page
}

/// The COMMANDS section: a subsection per command.
fn commands_section(cmd: &clap::Command) -> String {
    let mut text = heading("SH", "COMMANDS");
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        // Only the command's own arguments: the global options are above,
        // and every command has -h and -V.
        let own = sub.clone().mut_args(|a| {
            let shared = a.is_global_set() || matches!(a.get_id().as_str(), "help" | "version");
            a.hide(shared)
        });
        let man = Man::new(own);
        text += &heading("SS", &format!("rctoken {name}"));
        text += &body(|w| man.render_synopsis_section(w));
        text += ".PP\n";
        text += &body(|w| man.render_description_section(w));
        text += &body(|w| man.render_options_section(w));
        if let Some(examples) = examples::of(name) {
            let mut roff = Roff::new();
            roff.control("PP", []).text([bold("Examples:")]);
            roff.control("nf", []);
            for line in examples.lines() {
                if line.is_empty() {
                    roff.control("sp", []);
                } else {
                    roff.text([roman(line)]);
                }
            }
            roff.control("fi", []);
            text += &unpreambled(&roff.render());
        }
    }
    text
}

/// The help's exit code table and environment note (`AFTER_HELP`): a
/// "Exit codes:" line, a line per code (`  N  meaning`, continued on more
/// deeply indented lines), a blank line, then "Environment: …".
fn exit_status_and_environment() -> String {
    let (codes, environment) = AFTER_HELP.split_once("\n\n").unwrap_or((AFTER_HELP, ""));
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for line in codes.lines().skip(1).map(str::trim) {
        match line.split_once("  ") {
            Some((code, meaning)) if code.parse::<u8>().is_ok() => {
                roff.control("TP", []).text([bold(code)]);
                roff.text([roman(meaning.trim_start())])
            }
            _ => roff.text([roman(line)]),
        };
    }
    roff.control("SH", ["ENVIRONMENT"]);
    let environment = environment
        .strip_prefix("Environment: ")
        .unwrap_or(environment);
    roff.text([roman(environment)]);
    unpreambled(&roff.render())
}

/// A `.SH` or `.SS` line.
fn heading(macro_name: &str, title: &str) -> String {
    let mut roff = Roff::new();
    roff.control(macro_name, [title]);
    unpreambled(&roff.render())
}

/// What one of clap_mangen's renderers writes, without the preamble.
fn part(render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render(&mut out);
    unpreambled(&String::from_utf8_lossy(&out))
}

/// The same without its section heading (`.SH OPTIONS`): the text of a
/// command's subsection.
fn body(render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> String {
    part(render)
        .lines()
        .filter(|l| !l.starts_with(".SH"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn unpreambled(rendered: &str) -> String {
    let preamble = Roff::new().render();
    rendered
        .strip_prefix(&preamble)
        .unwrap_or(rendered)
        .to_string()
}
