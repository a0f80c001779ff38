//! The `sparsity-explorer` binary: parses the command line and reports errors in one line.

use std::process::ExitCode;

use clap::Parser;
use sparsity_explorer::cli::{self, Cli};

fn main() -> ExitCode {
    // burn creates some tensors (a restored optimizer's state) on its default device before
    // moving them; without this, that default is wgpu, which starts a GPU runtime (or fails
    // to) even when training runs on the CPU. Set before any thread exists.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: nothing else runs yet; no other thread can read the environment.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    let parsed = Cli::parse();
    match cli::main(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        // a reader that stopped reading (`| head`) is not an error of ours
        Err(e) if cli::report::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::report::error_line(&e));
            ExitCode::FAILURE
        }
    }
}
