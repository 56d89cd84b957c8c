//! Mode 3 (verifier). STUB: being implemented.

use crate::report::{Report, RunOptions, TestInfo};
use crate::Error;

/// Options of `ajwt conformance verifier`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifierArgs {
    /// Base URL
    #[arg(long)]
    pub url: Option<String>,
}

/// The tests of this mode.
pub fn catalogue() -> Vec<TestInfo> {
    Vec::new()
}

/// Runs the mode.
pub async fn run(_args: &VerifierArgs, _options: RunOptions) -> Result<Report, Error> {
    Err(Error::Setup("not implemented yet".into()))
}
