//! `wgpu-conv`: the chapter walkthrough, and forward / backward / train / info on `.npy` files.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Headless (no Wayland or X display): Mesa's Vulkan device-select layer would try to reach a
    // display and print "XDG_RUNTIME_DIR is invalid" on stderr; it only orders GPUs for a display,
    // which does not matter here, so turn it off unless the user set it. Done before any thread.
    if std::env::var_os("WAYLAND_DISPLAY").is_none()
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line, like every other error: clap's whole message (what is missing, the
            // similar name, the possible values, the usage) with its lines joined.
            eprintln!("{}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// clap's message on one line: its lines trimmed and joined (a list of missing arguments is
/// joined with commas), with `(see --help)` in place of its closing hint.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    let mut listing = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("For more information") {
            continue;
        }
        let item = line.starts_with('<') || line.starts_with("--");
        if out.is_empty() {
            out.push_str(line);
        } else if out.ends_with(':') || out.ends_with('.') {
            out.push(' ');
            out.push_str(line);
        } else if listing && item {
            out.push_str(", ");
            out.push_str(line);
        } else {
            out.push_str("; ");
            out.push_str(line);
        }
        listing = line.ends_with(':') || (listing && item);
    }
    if out.is_empty() {
        out.push_str("error: invalid arguments");
    }
    out.push_str(" (see --help)");
    out
}
