//! Each command's examples: shown in its `--help` (ahead of the exit code
//! table, see `args::command`) and in the man page, so the help needs no
//! document beside the binary. An example never puts a token in an argv:
//! `rctoken api` sends it itself, and any other client reads it from a pipe.
//!
//! Every line that runs `rctoken` must parse (the tests below check it), so
//! examples use placeholders that are valid arguments (`work`, `"$RC_CLIENT_ID"`).

/// The examples of the command `name`: `# what it does` lines, each
/// followed by the command, indented two spaces, a blank line between
/// examples. `None` for a command that has none (clap's `help`).
pub fn of(name: &str) -> Option<&'static str> {
    Some(match name {
        "import" => {
            "  # Save a token endpoint response as a profile labelled work, and make it active
  rctoken import token.json --label work

  # What ringcentral-js keeps (localStorage[\"rc-platform\"]), without switching to it
  rctoken import --format rc-js --no-switch < rc-platform.json"
        }
        "list" => {
            "  # One line per profile: active marker, key, label, expiries
  rctoken list

  # The active profile's key, for a script
  rctoken list --json | jq -r '.[] | select(.active) | .profile'"
        }
        "switch" => {
            "  # Make the profile labelled work the active one
  rctoken switch work

  # The same, by profile key (the extension's owner_id)
  rctoken switch 256440016"
        }
        "status" => {
            "  # The active profile: expiries, server, where its secrets are
  rctoken status

  # Another profile, as JSON: does its secret still exist?
  rctoken status work --json | jq -r .secret"
        }
        "token" => {
            "  # The access token, valid 5 more minutes (a profile from `rctoken login` is refreshed)
  rctoken token --min-valid 300

  # Another HTTP client: the header goes through a pipe, never into an argv
  rctoken token | sed 's/^/Authorization: Bearer /' | curl -H @- https://platform.ringcentral.com/restapi/v1.0/account/~

  # An imported profile, refreshed by your script (the refresh token on its stdin)
  rctoken token work --refresh-with ~/bin/rc-refresh"
        }
        "export" => {
            "  # Move the active profile to another machine, through a pipe
  rctoken export --reveal | ssh build-host rctoken import

  # In the form ringcentral-python's auth.data() has
  rctoken export work --reveal --format rc-python > auth.json"
        }
        "logout" => {
            "  # Revoke the active profile's tokens at RingCentral and delete them here
  rctoken logout

  # Delete a profile without asking RingCentral (offline, or tokens already dead)
  rctoken logout work --no-revoke

  # Every profile, and every keychain item of this --app
  rctoken logout --all"
        }
        "doctor" => {
            "  # Check the backend, the files, the lock, the metadata and the secrets
  rctoken doctor

  # Repair what it found (orphaned items, missing secrets, corrupt metadata)
  rctoken doctor --fix

  # Only the problems, for a script
  rctoken doctor --json | jq .problems"
        }
        "migrate" => {
            "  # Move every profile still in plain keyutils into the sealed store
  rctoken migrate

  # The same, for a store whose key is in a key file
  RCTOKEN_KEY_FILE=~/.config/rctoken.key rctoken migrate --backend sealed

  # Then check that every profile opens
  rctoken doctor"
        }
        "rotate-key" => {
            "  # Re-seal every profile under a new random key in kernel keyutils
  rctoken rotate-key

  # Move to a key file you made (it survives reboots), then use it
  rctoken rotate-key --new-key-file ~/.config/rctoken-new.key
  export RCTOKEN_KEY_FILE=~/.config/rctoken-new.key"
        }
        "login" => {
            "  # A JWT credential; the client secret comes from a file, never from argv
  rctoken login --jwt rc.jwt --client-id \"$RC_CLIENT_ID\" --client-secret-file rc.secret

  # The browser, at the sandbox (the app's redirect URI: http://127.0.0.1:8080/callback)
  rctoken login --browser --port 8080 --client-id \"$RC_CLIENT_ID\" --server sandbox --label dev"
        }
        "api" => {
            "  # GET, with the active profile's token (refreshed as needed)
  rctoken api /restapi/v1.0/account/~/extension/~

  # POST a JSON body from a file, as the profile labelled work
  rctoken api /restapi/v1.0/account/~/extension/~/sms -d @sms.json --profile work

  # Any method
  rctoken api -X DELETE /restapi/v1.0/subscription/SUBSCRIPTION_ID"
        }
        "completion" => {
            "  # bash (with the bash-completion package)
  rctoken completion bash > ~/.local/share/bash-completion/completions/rctoken

  # zsh: a directory in $fpath, then restart zsh
  rctoken completion zsh > ~/.zfunc/_rctoken

  # fish
  rctoken completion fish > ~/.config/fish/completions/rctoken.fish"
        }
        "man" => {
            "  # Read it now
  rctoken man | man -l -

  # Install it where man finds it
  rctoken man > ~/.local/share/man/man1/rctoken.1"
        }
        _ => return None,
    })
}

/// The `rctoken` command lines of `examples`: each line's words up to the
/// first unquoted `|`, `<`, `>` or `#`, with leading `NAME=value`
/// assignments dropped and quotes removed as the shell would; only lines
/// whose command is `rctoken`.
#[cfg(test)]
fn command_lines(examples: &str) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    for line in examples.lines() {
        let mut words: Vec<String> = Vec::new();
        let mut word: Option<String> = None;
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.get_or_insert_default().push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_default();
                }
                (None, '|' | '<' | '>' | '#') => break,
                (None, c) if c.is_whitespace() => words.extend(word.take()),
                (None, c) => word.get_or_insert_default().push(c),
            }
        }
        words.extend(word);
        let assignment = |w: &String| w.contains('=') && !w.starts_with('-');
        let first = words
            .iter()
            .position(|w| !assignment(w))
            .unwrap_or(words.len());
        if words.get(first).is_some_and(|w| w == "rctoken") {
            lines.push(words.split_off(first));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples_that_parse() {
        let cmd = crate::cli::args::command();
        let mut checked = 0;
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            let examples = of(name).unwrap_or_else(|| panic!("`rctoken {name}` has no examples"));
            let lines = command_lines(examples);
            assert!(lines.len() >= 2, "{name}: {lines:?}");
            for args in lines {
                if let Err(e) = crate::cli::args::command().try_get_matches_from(&args) {
                    panic!("{name}: example {args:?} does not parse:\n{e}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 2 * cmd.get_subcommands().count(), "{checked}");
    }

    #[test]
    fn command_lines_split_as_a_shell_would() {
        let lines = command_lines(
            "  # a comment
  rctoken token | sed 's/^/x /'
  A=1 B=2 rctoken login --client-id \"$ID\" --x 'a b' # c
  export X=1
  curl -H @- < rctoken",
        );
        assert_eq!(
            lines,
            [
                vec!["rctoken", "token"],
                vec!["rctoken", "login", "--client-id", "$ID", "--x", "a b"],
            ]
        );
    }
}
