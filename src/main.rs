//! The `sparsity-explorer` binary: parses the command line and reports errors in one line.

use std::process::ExitCode;

use clap::Parser;
use sparsity_explorer::cli::{self, Cli};

fn main() -> ExitCode {
    let parsed = Cli::parse();
    match cli::main(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
