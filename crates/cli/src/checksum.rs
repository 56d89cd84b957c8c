//! `ajwt checksum`: the agent checksum of a JSON agent specification (§5.3).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ajwt_checksum::{compute_json, Computed, Profile};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::CliError;

/// Long help of the subcommand.
pub(crate) const LONG_ABOUT: &str = "\
Compute the agent checksum (draft-goswami-agentic-jwt-00 §5.3) of a JSON agent \
specification (§5.2.1) and print it as one line `sha256:<64 lowercase hex>`.

The specification is an object with `agent_id`, `prompt` (or `prompt_template`), \
`tools` (each with `name`, `description`, `parameters`, and optionally `signature`, \
`checksum_level` and `source_code`) and `configuration`. It is read strictly: \
invalid UTF-8, invalid JSON, duplicate member names, unknown members and \
duplicate tool names are errors (exit status 2, one `error:` line on stderr, \
nothing on stdout).";

/// Arguments of `ajwt checksum`.
#[derive(Debug, Args)]
pub(crate) struct ChecksumArgs {
    /// Canonicalization profile
    #[arg(long, value_enum, default_value_t = ProfileArg::Jcs)]
    profile: ProfileArg,

    /// Print the exact canonical bytes that are hashed (then a newline) instead of the checksum
    #[arg(long, conflicts_with = "json")]
    canonical: bool,

    /// Print one JSON object {"agent_id","profile","checksum","canonical"} instead of the checksum
    #[arg(long)]
    json: bool,

    /// The agent specification (JSON); `-` reads standard input
    #[arg(value_name = "FILE")]
    input: PathBuf,
}

/// The `--profile` values (mirrors [`Profile`], with help text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    /// RFC 8785 JCS over the §5.3.1 components, numbers as IEEE-754 doubles (default)
    Jcs,
    /// CPython json.dumps(sort_keys=True) over the §5.3.2 reference code's components
    #[value(name = "python-ref")]
    PythonRef,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Profile {
        match p {
            ProfileArg::Jcs => Profile::Jcs,
            ProfileArg::PythonRef => Profile::PythonRef,
        }
    }
}

/// The `--json` output; members are serialized in declaration order.
#[derive(Serialize)]
struct JsonOutput<'a> {
    agent_id: &'a str,
    profile: &'a str,
    checksum: String,
    canonical: &'a str,
}

/// Runs the subcommand, returning the complete stdout output.
pub(crate) fn run(args: &ChecksumArgs) -> Result<Vec<u8>, CliError> {
    let input = read_input(&args.input)?;
    let computed =
        compute_json(&input, args.profile.into()).map_err(|e| CliError::new(e.to_string()))?;
    if args.canonical {
        let mut out = computed.canonical;
        out.push(b'\n');
        Ok(out)
    } else if args.json {
        json_output(&computed)
    } else {
        Ok(format!("{}\n", computed.checksum).into_bytes())
    }
}

fn json_output(computed: &Computed) -> Result<Vec<u8>, CliError> {
    let canonical = std::str::from_utf8(&computed.canonical)
        .map_err(|e| CliError::new(format!("canonical form is not UTF-8: {e}")))?;
    let value = JsonOutput {
        agent_id: &computed.agent_id,
        profile: computed.profile.as_str(),
        checksum: computed.checksum.to_string(),
        canonical,
    };
    let mut out = serde_json::to_vec(&value)
        .map_err(|e| CliError::new(format!("cannot serialize output: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Reads the whole input: the file, or standard input for `-`.
fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::new(format!("cannot read standard input: {e}")))?;
        Ok(buf)
    } else {
        std::fs::read(path)
            .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))
    }
}
