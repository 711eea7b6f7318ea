//! `savedmodel`: look inside, check, convert and publish TensorFlow SavedModels
//! and checkpoints without TensorFlow.
//!
//! The command line lives in this library so that two front ends share it:
//! the `savedmodel` binary (`main.rs`) and the Python wheel's `savedmodel`
//! console script (`crates/python`), which both call [`run`] with the
//! arguments. Argument parsing lives in `cli`, each command in its own module
//! under `commands/`. Errors print with their causes and give exit code 2; a
//! closed pipe (`savedmodel ckpt ls … | head`) gives 0.
//!
//! ```
//! // `--help` prints the usage and succeeds, as the binary does.
//! assert_eq!(savedmodel_cli::run(["savedmodel", "--help"]), 0);
//! // A usage error gives clap's exit code 2.
//! assert_eq!(savedmodel_cli::run(["savedmodel", "no-such-command"]), 2);
//! ```

mod cli;
mod commands;

use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the `savedmodel` command line `args` (the program name first, as in
/// `std::env::args_os`) and returns the process exit code: 0 on success, 1
/// when `validate` or `ckpt verify` find errors, 2 on a usage error or a
/// failure (the message is printed to stderr). `--help` and `--version`
/// print to stdout and give 0.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    ignore_file_size_signal();
    let args = match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(args) => args,
        Err(err) => {
            // What `Parser::parse` does before exiting: help to stdout,
            // usage errors to stderr.
            let _ = err.print();
            return u8::try_from(err.exit_code()).unwrap_or(2);
        }
    };
    match commands::run(args) {
        Ok(code) => exit_code_number(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return 0;
            }
            eprintln!("error: {}", error_message(&err));
            2
        }
    }
}

/// The number of an `ExitCode` the commands return (`ExitCode` does not
/// expose it; the commands only build theirs from `u8`s).
fn exit_code_number(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .unwrap_or(2)
}

/// The error and its causes, `: `-separated, leaving out a cause whose text
/// the message already ends with: the library errors print their source in
/// their own message, so `{:#}` would show it twice.
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Past a file-size limit (`ulimit -f`) the kernel sends SIGXFSZ, whose
/// default action kills the process before it can clean up its staged files
/// or say what happened. Ignored, the write fails with EFBIG instead, which
/// our writers turn into an error naming the file.
#[allow(unsafe_code)]
fn ignore_file_size_signal() {
    // Called from the binary's `main` or from the Python interpreter's thread
    // running the console script.
    // SAFETY: SIG_IGN installs no handler code, and `signal` is
    // async-signal-safe and thread-safe on Linux: this races with nothing.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use std::process::ExitCode;

    use super::{error_message, exit_code_number};

    #[test]
    fn exit_codes_keep_their_numbers() {
        assert_eq!(exit_code_number(ExitCode::SUCCESS), 0);
        assert_eq!(exit_code_number(ExitCode::from(1)), 1);
        assert_eq!(exit_code_number(ExitCode::from(2)), 2);
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = io.to_string();
        let err = anyhow::Error::new(savedmodel_layout::Error::BaseNotWritable {
            path: "/m".into(),
            source: io,
        });
        assert_eq!(
            error_message(&err),
            format!("base path /m is not writable: {text}")
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_message(&err), "outer: inner");
    }
}
