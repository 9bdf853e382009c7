use std::process::ExitCode;

use clap::Parser;
use server::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole cause chain, no backtrace: the message names the setting.
            eprintln!("slipway: {error:#}");
            ExitCode::FAILURE
        }
    }
}
