//! Mode 1 (vectors). STUB: being implemented.

use crate::report::{Report, RunOptions, TestInfo};
use crate::Error;

/// Options of `ajwt conformance vectors`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VectorsArgs {
    /// Run the vectors against this adapter program instead of our crates
    #[arg(long, value_name = "CMD ARGS")]
    pub adapter: Option<String>,
}

/// The tests of this mode.
pub fn catalogue(_args: &VectorsArgs) -> Result<Vec<TestInfo>, Error> {
    Ok(Vec::new())
}

/// Runs the mode.
pub async fn run(_args: &VectorsArgs, _options: RunOptions) -> Result<Report, Error> {
    Err(Error::Setup("not implemented yet".into()))
}
