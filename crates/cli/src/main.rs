//! The `savedmodel` binary: everything is in the library ([`savedmodel_cli::run`]),
//! which the Python wheel's console script calls too.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(savedmodel_cli::run(std::env::args_os()))
}
