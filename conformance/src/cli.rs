//! The `ajwt conformance` command line: one subcommand per mode plus `list`,
//! and the report options every mode shares (`--strict`, `--only`,
//! `--expect-fail`, `--json`, `--junit`, `--quiet`, `--verbose`).

use std::io::Write as _;
use std::path::PathBuf;

use crate::report::{read_expect_fail, Report, RunOptions, TestInfo};
use crate::{issuer, vectors, verifier, Error};

/// Exit status when every MUST-level test passed.
pub const EXIT_PASS: u8 = 0;
/// Exit status when a MUST-level test failed (or a SHOULD one under
/// `--strict`, or an `--expect-fail` test passed).
pub const EXIT_FAIL: u8 = 1;
/// Exit status when the run could not start or go on.
pub const EXIT_ERROR: u8 = 2;

/// `ajwt conformance …`
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mode 1: run the vector files against our crates or an adapter program
    Vectors(VectorsCommand),
    /// Mode 2: black-box HTTP tests of an issuer (authorization server)
    Issuer(IssuerCommand),
    /// Mode 3: act as a test issuer and test a resource server's verifier
    Verifier(VerifierCommand),
    /// List the tests of a mode (id, section, keyword, requirements, title)
    List(ListCommand),
}

/// Options shared by every mode.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Count SHOULD/MAY-level failures as failures (default: warnings)
    #[arg(long)]
    pub strict: bool,
    /// Run only these tests: a test id or a draft section (`4.5` selects
    /// `4.5.2`); repeat or separate with commas
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// File of test ids expected to fail (one per line, `#` comments): they
    /// do not fail the run, but one that passes does
    #[arg(long, value_name = "FILE")]
    pub expect_fail: Option<PathBuf>,
    /// Write the full results as JSON (format: conformance/report.schema.json)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report for CI systems
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// No progress lines on stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// List passing tests in the terminal report too
    #[arg(long, short)]
    pub verbose: bool,
}

impl ReportArgs {
    /// The run options these arguments select.
    pub fn options(&self, list_passes_by_default: bool) -> Result<RunOptions, Error> {
        let expect_fail = match &self.expect_fail {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Setup(format!("cannot read --expect-fail {}: {e}", path.display()))
                })?;
                read_expect_fail(&text)
            }
            None => Default::default(),
        };
        Ok(RunOptions {
            strict: self.strict,
            only: self
                .only
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            expect_fail,
            progress: !self.quiet,
            list_passes: self.verbose || list_passes_by_default,
        })
    }
}

/// `ajwt conformance vectors`
#[derive(Debug, clap::Args)]
pub struct VectorsCommand {
    #[command(flatten)]
    /// Mode options.
    pub mode: vectors::VectorsArgs,
    #[command(flatten)]
    /// Report options.
    pub report: ReportArgs,
}

/// `ajwt conformance issuer`
#[derive(Debug, clap::Args)]
pub struct IssuerCommand {
    #[command(flatten)]
    /// Mode options.
    pub mode: issuer::IssuerArgs,
    #[command(flatten)]
    /// Report options.
    pub report: ReportArgs,
}

/// `ajwt conformance verifier`
#[derive(Debug, clap::Args)]
pub struct VerifierCommand {
    #[command(flatten)]
    /// Mode options.
    pub mode: verifier::VerifierArgs,
    #[command(flatten)]
    /// Report options.
    pub report: ReportArgs,
}

/// Which catalogue `list` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ListMode {
    /// Vector tests.
    Vectors,
    /// Issuer tests.
    Issuer,
    /// Verifier tests.
    Verifier,
    /// All three.
    All,
}

/// `ajwt conformance list`
#[derive(Debug, clap::Args)]
pub struct ListCommand {
    /// The mode whose tests to list
    #[arg(value_enum, default_value = "all")]
    pub mode: ListMode,
    /// Print JSON (an array of tests) instead of text
    #[arg(long)]
    pub json: bool,
}

/// Every test of the three modes (vector tests from the embedded vectors).
pub fn full_catalogue() -> Result<Vec<TestInfo>, Error> {
    let mut all = vectors::catalogue(&vectors::VectorsArgs::default())?;
    all.extend(issuer::catalogue());
    all.extend(verifier::catalogue());
    Ok(all)
}

/// Runs a `conformance` subcommand; returns the process exit status.
pub async fn run(command: &Command) -> u8 {
    match run_inner(command).await {
        Ok(status) => status,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "error: {e}");
            EXIT_ERROR
        }
    }
}

async fn run_inner(command: &Command) -> Result<u8, Error> {
    let (report, args) = match command {
        Command::List(list) => return list_tests(list).map(|()| EXIT_PASS),
        Command::Vectors(c) => (
            vectors::run(&c.mode, c.report.options(false)?).await?,
            &c.report,
        ),
        Command::Issuer(c) => (
            issuer::run(&c.mode, c.report.options(true)?).await?,
            &c.report,
        ),
        Command::Verifier(c) => (
            verifier::run(&c.mode, c.report.options(true)?).await?,
            &c.report,
        ),
    };
    write_reports(&report, args)?;
    Ok(if report.failed() {
        EXIT_FAIL
    } else {
        EXIT_PASS
    })
}

/// Prints the terminal report and writes the `--json`/`--junit` files.
pub fn write_reports(report: &Report, args: &ReportArgs) -> Result<(), Error> {
    if let Some(path) = &args.json {
        std::fs::write(path, report.json())
            .map_err(|e| Error::Setup(format!("cannot write --json {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit())
            .map_err(|e| Error::Setup(format!("cannot write --junit {}: {e}", path.display())))?;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.terminal().as_bytes());
    let _ = stdout.flush();
    Ok(())
}

fn list_tests(list: &ListCommand) -> Result<(), Error> {
    let tests = match list.mode {
        ListMode::Vectors => vectors::catalogue(&vectors::VectorsArgs::default())?,
        ListMode::Issuer => issuer::catalogue(),
        ListMode::Verifier => verifier::catalogue(),
        ListMode::All => full_catalogue()?,
    };
    let mut out = String::new();
    if list.json {
        out = serde_json::to_string_pretty(&tests).map_err(|e| Error::Setup(e.to_string()))?;
        out.push('\n');
    } else {
        for t in &tests {
            out.push_str(&format!(
                "{}\t§{}\t{}\t{}\t{}\n",
                t.id,
                t.section,
                t.keyword,
                t.requirements.join(","),
                t.title
            ));
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(())
}
