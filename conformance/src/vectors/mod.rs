//! Mode 1 (`ajwt conformance vectors`): runs every vector file of
//! `conformance/vectors/` (agent checksums §5.2–§5.3, sequence hashes
//! §4.4.4, workflow step authorization §4.3.3/§4.5.5/§6.6.4, token request
//! decoding §4.2.1/§4.5) against a *target*:
//!
//! * the **built-in** target ([`builtin`]) answers each request in-process
//!   with our crates (`ajwt-checksum`, `ajwt-protocol`);
//! * an **adapter** ([`adapter`]) is any program speaking the line-delimited
//!   JSON protocol of `conformance/adapters/PROTOCOL.md` on stdin/stdout.
//!
//! Both targets receive exactly the same JSON requests ([`protocol`]) and
//! their JSON responses are judged by the same code, so the adapter protocol
//! is exercised by every built-in run too. One catalogue entry per vector:
//! `VEC-<file stem>-<tcId>`.

pub mod adapter;
pub mod builtin;
pub mod protocol;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::report::{Check, Report, Run, RunOptions, TestInfo};
use crate::Error;

pub use protocol::Op;

/// Seconds an adapter may take to answer one request, unless `--adapter-timeout`.
pub const DEFAULT_ADAPTER_TIMEOUT_SECS: u64 = 10;

/// Options of `ajwt conformance vectors`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VectorsArgs {
    /// Run the vectors against this adapter program instead of our crates
    /// (split like a shell command line; protocol: conformance/adapters/PROTOCOL.md)
    #[arg(long, value_name = "CMD ARGS")]
    pub adapter: Option<String>,
    /// Read the vector files from this directory instead of the copies
    /// embedded in the suite
    #[arg(long, value_name = "DIR")]
    pub vectors_dir: Option<PathBuf>,
    /// Only these vector files (`checksum`, `sequence_hashes`,
    /// `workflow_authorization`, `token_request_decoding`; with or without
    /// `.json`); repeat or separate with commas
    #[arg(long = "file", value_name = "NAME", value_delimiter = ',')]
    pub files: Vec<String>,
    /// Seconds to wait for each adapter response [default: 10]
    #[arg(long, value_name = "SECS")]
    pub adapter_timeout: Option<u64>,
}

/// One vector file, parsed.
#[derive(Debug, Clone)]
pub struct VectorFile {
    /// File name, e.g. `checksum.json`.
    pub name: String,
    /// File stem, e.g. `checksum` (used in test ids).
    pub stem: String,
    /// The parsed document.
    pub doc: Value,
}

/// One vector, ready to run.
#[derive(Debug, Clone)]
pub struct Case {
    /// Catalogue id, `VEC-<stem>-<tcId>`.
    pub id: String,
    /// The operation that evaluates it.
    pub op: Op,
    /// The vector's first listed draft section.
    pub section: String,
    /// The vector's comment.
    pub comment: String,
    /// The test group's members other than `tests` (e.g. `profile`).
    pub group: Value,
    /// The test itself.
    pub test: Value,
    /// Index of its file in the loaded list (for file-level tables such as
    /// `errorKinds`).
    pub file: usize,
}

impl Case {
    /// The catalogue entry of this vector.
    pub fn info(&self) -> TestInfo {
        TestInfo::new(&self.id, &self.section, "MUST", &[], &self.comment)
    }
}

/// Loads the selected vector files (embedded, or from `--vectors-dir`) and
/// their version string (`<vectorsVersion> (sha256:<16 hex>)`).
pub fn load_files(args: &VectorsArgs) -> Result<(Vec<VectorFile>, String), Error> {
    let wanted: Vec<String> = args
        .files
        .iter()
        .map(|f| f.trim().trim_end_matches(".json").to_owned())
        .filter(|f| !f.is_empty())
        .collect();
    let known: Vec<&str> = crate::VECTOR_FILES
        .iter()
        .map(|(n, _)| n.trim_end_matches(".json"))
        .collect();
    for w in &wanted {
        if !known.contains(&w.as_str()) {
            return Err(Error::Setup(format!(
                "--file {w}: no such vector file (known: {})",
                known.join(", ")
            )));
        }
    }
    let mut texts: Vec<(String, String)> = Vec::new();
    for (name, embedded) in crate::VECTOR_FILES {
        let text = match &args.vectors_dir {
            None => (*embedded).to_owned(),
            Some(dir) => {
                let path = dir.join(name);
                std::fs::read_to_string(&path).map_err(|e| {
                    Error::Setup(format!("cannot read vector file {}: {e}", path.display()))
                })?
            }
        };
        texts.push(((*name).to_owned(), text));
    }
    let version = match &args.vectors_dir {
        None => crate::vectors_version(),
        Some(_) => crate::vectors_version_of(texts.iter().map(|(n, t)| (n.as_str(), t.as_str()))),
    };
    let mut files = Vec::new();
    for (name, text) in texts {
        let stem = name.trim_end_matches(".json").to_owned();
        if !wanted.is_empty() && !wanted.contains(&stem) {
            continue;
        }
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Setup(format!("vector file {name} is not JSON: {e}")))?;
        files.push(VectorFile { name, stem, doc });
    }
    Ok((files, version))
}

/// Every vector of the loaded files, in file order then tcId order.
pub fn cases(files: &[VectorFile]) -> Result<Vec<Case>, Error> {
    let mut out = Vec::new();
    for (index, f) in files.iter().enumerate() {
        let algorithm = f.doc.get("algorithm").and_then(Value::as_str).unwrap_or("");
        let op = Op::for_algorithm(algorithm).ok_or_else(|| {
            Error::Setup(format!(
                "vector file {}: unknown algorithm {algorithm:?}",
                f.name
            ))
        })?;
        let groups = f
            .doc
            .get("testGroups")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Setup(format!("vector file {}: no testGroups", f.name)))?;
        for group in groups {
            let mut params = serde_json::Map::new();
            if let Some(obj) = group.as_object() {
                for (k, v) in obj {
                    if k != "tests" {
                        params.insert(k.clone(), v.clone());
                    }
                }
            }
            let tests = group
                .get("tests")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    Error::Setup(format!("vector file {}: a test group has no tests", f.name))
                })?;
            for t in tests {
                let tc_id = t.get("tcId").and_then(Value::as_u64).ok_or_else(|| {
                    Error::Setup(format!(
                        "vector file {}: a test has no integer tcId",
                        f.name
                    ))
                })?;
                let section = t
                    .get("sections")
                    .and_then(Value::as_array)
                    .and_then(|s| s.first())
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                out.push(Case {
                    id: format!("VEC-{}-{tc_id}", f.stem),
                    op,
                    section,
                    comment: t
                        .get("comment")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    group: Value::Object(params.clone()),
                    test: t.clone(),
                    file: index,
                });
            }
        }
    }
    Ok(out)
}

/// The tests of this mode: one per vector of the selected files.
pub fn catalogue(args: &VectorsArgs) -> Result<Vec<TestInfo>, Error> {
    let (files, _) = load_files(args)?;
    Ok(cases(&files)?.iter().map(Case::info).collect())
}

/// Where requests go.
enum Target {
    /// Our crates, in-process.
    BuiltIn,
    /// An adapter program.
    Adapter(Box<adapter::Adapter>),
}

impl Target {
    async fn call(&mut self, request: &Value) -> Result<Value, adapter::AdapterError> {
        match self {
            Target::BuiltIn => Ok(builtin::handle(request)),
            Target::Adapter(a) => a.call(request).await,
        }
    }
}

/// Runs the mode: loads the vectors, starts the target, sends one request
/// per selected vector and judges each response (see [`protocol::judge`]).
pub async fn run(args: &VectorsArgs, options: RunOptions) -> Result<Report, Error> {
    let (files, version) = load_files(args)?;
    let cases = cases(&files)?;
    let catalogue: Vec<TestInfo> = cases.iter().map(Case::info).collect();
    let target_name = match &args.adapter {
        None => builtin::description(),
        Some(cmd) => cmd.clone(),
    };
    let mut run = Run::new("vectors", &target_name, catalogue, options)?;
    run.version("vectors", version);
    let mut target = match &args.adapter {
        None => Target::BuiltIn,
        Some(cmd) => {
            let timeout = Duration::from_secs(
                args.adapter_timeout
                    .unwrap_or(DEFAULT_ADAPTER_TIMEOUT_SECS)
                    .max(1),
            );
            let a = adapter::Adapter::start(cmd, timeout).await?;
            if let Some(about) = a.about() {
                run.version("adapter", about);
            }
            Target::Adapter(Box::new(a))
        }
    };
    run.announce();
    // Ops the target said it does not support, with its reason.
    let mut unsupported: BTreeMap<Op, String> = BTreeMap::new();
    for case in &cases {
        if !run.wants(&case.id) {
            continue;
        }
        run.start_timer();
        let check = match protocol::request(case) {
            Err(e) => Check::Fail(format!("malformed vector: {e}")),
            Ok(req) => match unsupported.get(&case.op) {
                Some(reason) => Check::Skip(reason.clone()),
                None => match target.call(&req).await {
                    Err(e) => Check::Fail(e.to_string()),
                    Ok(resp) => match protocol::unsupported(&resp) {
                        Some(message) => {
                            let reason = format!(
                                "target does not support op {:?}: {message}",
                                case.op.as_str()
                            );
                            unsupported.insert(case.op, reason.clone());
                            Check::Skip(reason)
                        }
                        None => protocol::judge(case, &files[case.file].doc, &resp),
                    },
                },
            },
        };
        run.record(&case.id, check);
    }
    if let Target::Adapter(a) = target {
        let restarts = a.restarts();
        if restarts > 0 {
            run.note(format!(
                "the adapter was restarted {restarts} time(s) after crashing, timing out or answering out of protocol"
            ));
        }
        a.shutdown().await;
    }
    Ok(run.finish())
}
