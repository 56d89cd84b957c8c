//! The `protected-api` binary: [`ajwt_example_protected_api::run`] with the
//! command line (see the library for what the API does).

use ajwt_example_protected_api::{run, Args};
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
