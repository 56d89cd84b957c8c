//! `ajwt`, the command-line tool of the *draft-goswami-agentic-jwt-00*
//! (Agentic JWT) reference implementation. Each piece of functionality is a
//! subcommand: `ajwt checksum` prints the agent checksum (§5.3) of a JSON
//! agent specification (§5.2.1) under the RFC 8785 JCS profile (§5.3.1, the
//! default) or the reference-code profile (§5.3.2); `ajwt serve` runs the
//! demo issuer (§4–§6) with its embedded SQLite store; `ajwt token verify`
//! and `ajwt token decode` check intent tokens as a resource server (§6.5.3);
//! `ajwt conformance` runs the conformance suite (vectors, issuer, verifier);
//! `ajwt keys list|rotate` shows and rotates the issuer's signing keys
//! (publish-then-sign, I-90).
//! `ajwt audit verify` and `ajwt audit tail` check and read the issuer's
//! hash-chained audit trail (§9.1.4).
//! `ajwt kek generate|rotate` manage the key-encryption key sealing agent
//! specifications and private keys at rest (§9.1.4, I-112).
//!
//! Conventions shared by every subcommand: a subcommand builds its whole
//! output in memory and `main` writes it to stdout in one write followed by a
//! flush, so a failure never leaves partial output. Bad input exits with
//! status 2 and exactly one line `error: <message>` on stderr (the same
//! status clap uses for usage errors); a failure to write the output exits
//! with status 1, silently when stdout is a closed pipe.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use ajwt_checksum::error::one_line;
use clap::{Parser, Subcommand};

/// The process allocator (issue 15, I-183): mimalloc instead of glibc's
/// malloc. Profiled at concurrency 64, `ajwt serve` spent about 16% of its
/// CPU in glibc's malloc, free and their consolidation (request bodies,
/// JSON values, SQLite's buffers, freed from other threads than the one
/// that allocated them); mimalloc's per-thread free lists make those
/// allocations a few instructions each.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;
mod checksum;
mod kek;
mod keys;
mod serve;
mod token;
mod utc;

/// Exit status for bad input, like clap's usage errors.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when the output could not be written.
const EXIT_OUTPUT_FAILED: u8 = 1;

/// Command-line tool for Agentic JWT (draft-goswami-agentic-jwt-00).
#[derive(Debug, Parser)]
#[command(
    name = "ajwt",
    version,
    about = "Command-line tool for Agentic JWT (draft-goswami-agentic-jwt-00)",
    long_about = "Command-line tool of the Rust reference implementation of Agentic JWT \
                  (IETF draft-goswami-agentic-jwt-00).\n\n\
                  Exit status: 0 on success, 2 on a usage error or bad input (with one \
                  line `error: <message>` on stderr and nothing on stdout), 1 when the \
                  output cannot be written."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. Each variant's arguments live in its own module, which
/// exposes `run(&Args) -> Result<Vec<u8>, CliError>`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Compute the agent checksum of a JSON agent specification (§5.3)
    #[command(long_about = checksum::LONG_ABOUT)]
    Checksum(checksum::ChecksumArgs),
    /// Run the demo issuer: registration, the agent_checksum grant, intent tokens (§4–§6)
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::ServeArgs),
    /// Verify or decode intent tokens (§6.5.3)
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Conformance suite: vectors, issuer and verifier tests (see conformance/README.md)
    #[command(subcommand)]
    Conformance(ajwt_conformance::cli::Command),
    /// The issuer's signing keys: list them, rotate (publish first, sign later; I-90)
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Verify or read the issuer's tamper-evident audit trail (§9.1.4)
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The key-encryption key sealing prompts and private keys at rest: generate, rotate (§9.1.4)
    #[command(subcommand)]
    Kek(kek::KekCommand),
}

/// A failure reported as one `error: <message>` line on stderr.
#[derive(Debug)]
pub(crate) struct CliError {
    message: String,
    status: u8,
}

impl CliError {
    /// An error with the given message (made one line when printed).
    pub(crate) fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            status: EXIT_BAD_INPUT,
        }
    }

    /// An invalid token (`ajwt token verify`): exit status 1.
    pub(crate) fn invalid(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            status: 1,
        }
    }

    /// A failure at run time (not bad input): exit status 1.
    pub(crate) fn runtime(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            status: EXIT_OUTPUT_FAILED,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&one_line(&self.message))
    }
}

fn main() -> ExitCode {
    // `parse` prints help/version (exit 0) or the usage error (exit 2) and
    // exits; clap ignores a failure to print, so a closed pipe cannot panic.
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Checksum(args) => checksum::run(args),
        Command::Serve(args) => serve::run(args).map(|()| Vec::new()),
        Command::Token(cmd) => token::run(cmd),
        Command::Conformance(cmd) => return conformance(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Audit(cmd) => return audit::main(cmd),
        Command::Kek(cmd) => kek::run(cmd),
    };
    match result {
        Ok(output) => write_stdout(&output),
        Err(e) => {
            // Ignore a failure to report: there is nowhere left to report it.
            let _ = writeln!(io::stderr().lock(), "error: {e}");
            ExitCode::from(e.status)
        }
    }
}

/// Runs `ajwt conformance …`, which writes its own reports (exit status 0
/// pass, 1 a MUST-level failure, 2 could not run).
fn conformance(cmd: &ajwt_conformance::cli::Command) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => ExitCode::from(rt.block_on(ajwt_conformance::cli::run(cmd))),
        Err(e) => {
            let _ = writeln!(io::stderr().lock(), "error: cannot start the runtime: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Writes `output` in one write and flushes it.
fn write_stdout(output: &[u8]) -> ExitCode {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(output).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OUTPUT_FAILED),
        Err(e) => {
            let _ = writeln!(
                io::stderr().lock(),
                "error: {}",
                CliError::new(format!("cannot write output: {e}"))
            );
            ExitCode::from(EXIT_OUTPUT_FAILED)
        }
    }
}
