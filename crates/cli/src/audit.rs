//! `ajwt audit verify` and `ajwt audit tail`: the issuer's tamper-evident
//! audit trail (§9.1.1, §9.1.4, §9.4.1; I-100..I-104) read from its data
//! directory, or from the PostgreSQL database given by `--database-url`.
//! Both open the existing database without changing it (no migrations)
//! and read it page by page, so memory stays bounded whatever the log's
//! length; both work while `ajwt serve` runs.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ajwt_issuer::audit::{AuditRecord, ChainVerifier};
use ajwt_issuer::config::DatabaseUrl;
use ajwt_issuer::store::open::backend_for;
use ajwt_issuer::store::postgres::PgStore;
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use clap::{Args, Subcommand};

/// Records read per page.
const PAGE: u32 = 1000;
/// Largest `-n`.
const MAX_TAIL: u32 = 100_000;
/// How often `tail --follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// `ajwt audit ...`
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain; name every modified, deleted, inserted or reordered record
    #[command(long_about = VERIFY_ABOUT)]
    Verify(VerifyArgs),
    /// Print the last records (text, or JSON Lines with --json)
    Tail(TailArgs),
}

const VERIFY_ABOUT: &str = "\
Check the issuer's audit trail (draft-goswami-agentic-jwt-00 §9.1.4): recompute every record's \
SHA-256 over its JCS form and every link to the previous record, reading the log page by page.

Intact: one line on stdout, exit 0. Tampered: one line per finding on stdout ('record N: \
modified', 'rewritten', 'deleted', 'inserted' or 'reordered'), one line 'error: ...' on stderr, \
exit 1. A data directory without an issuer database: exit 2.

Records removed from the END of the log, or the tail rewritten with recomputed hashes, are \
found against a signed checkpoint of the head (I-104): `ajwt serve` signs the head every \
--audit-checkpoint-interval seconds and at shutdown, stores it and logs it (event \
audit_checkpoint). By default the latest stored checkpoint is checked; --checkpoint FILE checks \
one kept elsewhere (the attacker may have removed stored ones too), and --jwks FILE verifies its \
signature with the issuer's JWK Set.";

/// Where the issuer keeps its data.
#[derive(Debug, Args)]
pub(crate) struct DataDir {
    /// The issuer's data directory (holds ajwt.sqlite3)
    #[arg(
        long,
        env = "AJWT_DATA_DIR",
        value_name = "DIR",
        default_value = "./ajwt-data"
    )]
    data_dir: PathBuf,
    /// The issuer's PostgreSQL database (postgres://...), instead of the data directory's SQLite file
    #[arg(
        long,
        env = "AJWT_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
}

impl DataDir {
    fn database(&self) -> PathBuf {
        self.data_dir.join("ajwt.sqlite3")
    }
}

/// Arguments of `ajwt audit verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    dir: DataDir,
    /// A checkpoint JWS kept outside the data directory (file), instead of the latest stored one
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The issuer's JWK Set (file): verify the checkpoint's signature
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
}

/// The head a checkpoint vouches for, and how far it was checked.
struct Expected {
    seq: u64,
    record_hash: String,
    signature: &'static str,
}

/// Reads a checkpoint JWS: its `seq` and `record_hash`, its signature
/// verified with `jwks` when given (typ `audit-checkpoint+jwt`).
fn read_checkpoint(jws: &str, jwks: Option<&[u8]>) -> Result<Expected, String> {
    let parsed = ajwt_jose::CompactJws::parse(jws.trim(), 64 * 1024)
        .map_err(|e| format!("checkpoint is not a JWS: {e}"))?;
    let signature = match jwks {
        None => "signature not checked (no --jwks)",
        Some(bytes) => {
            let (set, _) = ajwt_jose::JwkSet::parse(bytes).map_err(|e| format!("--jwks: {e}"))?;
            let kid = parsed.kid.as_deref().ok_or("checkpoint without kid")?;
            let key = set
                .find(kid)
                .ok_or_else(|| format!("checkpoint signed by key {kid}, not in the JWK Set"))?;
            if !ajwt_jose::typ_matches(
                parsed.typ.as_deref(),
                ajwt_issuer::audit::TYP_AUDIT_CHECKPOINT,
            ) {
                return Err("checkpoint typ is not audit-checkpoint+jwt".into());
            }
            parsed
                .verify_with(key, &ajwt_jose::Alg::ALL)
                .map_err(|e| format!("checkpoint signature invalid: {e}"))?;
            "signature verified"
        }
    };
    let payload: serde_json::Value =
        serde_json::from_slice(&parsed.payload).map_err(|e| format!("checkpoint payload: {e}"))?;
    let seq = payload["seq"]
        .as_u64()
        .ok_or("checkpoint payload without seq")?;
    let record_hash = payload["record_hash"]
        .as_str()
        .ok_or("checkpoint payload without record_hash")?
        .to_owned();
    Ok(Expected {
        seq,
        record_hash,
        signature,
    })
}

/// Arguments of `ajwt audit tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    dir: DataDir,
    /// How many of the last records to print
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TAIL)))]
    lines: u32,
    /// Keep printing records as they are appended (until interrupted)
    #[arg(short, long)]
    follow: bool,
    /// One JSON object per record (JSON Lines)
    #[arg(long)]
    json: bool,
}

/// Runs `ajwt audit …` and returns the process status (it writes its own
/// output: `tail --follow` writes as records arrive).
pub(crate) fn main(cmd: &AuditCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(2, &format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async {
        match cmd {
            AuditCommand::Verify(args) => verify(args).await,
            AuditCommand::Tail(args) => tail(args).await,
        }
    })
}

/// `error: <message>` on stderr, and `status`.
fn fail(status: u8, message: &str) -> ExitCode {
    let _ = writeln!(
        io::stderr().lock(),
        "error: {}",
        ajwt_checksum::error::one_line(message)
    );
    ExitCode::from(status)
}

/// Opens the trail without changing the database: the data directory's
/// SQLite file, or the PostgreSQL database of `--database-url` (issue 14;
/// no migrations; the password is never printed).
async fn open(dir: &DataDir) -> Result<Box<dyn Store>, ExitCode> {
    let opened: Result<Box<dyn Store>, _> = match &dir.database_url {
        None => SqliteStore::open_existing(&dir.database())
            .await
            .map(|s| Box::new(s) as Box<dyn Store>),
        Some(url) => {
            let url = DatabaseUrl::new(url.clone());
            match backend_for(Some(&url)) {
                Ok(_) => PgStore::open_existing(&url)
                    .await
                    .map(|s| Box::new(s) as Box<dyn Store>),
                Err(e) => Err(e),
            }
        }
    };
    opened.map_err(|e| fail(2, &format!("cannot open the audit trail: {e}")))
}

async fn verify(args: &VerifyArgs) -> ExitCode {
    let store = match open(&args.dir).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let jwks = match &args.jwks {
        Some(path) => match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) => return fail(2, &format!("--jwks {}: {e}", path.display())),
        },
        None => None,
    };
    let checkpoint = match &args.checkpoint {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(jws) => Some(jws),
            Err(e) => return fail(2, &format!("--checkpoint {}: {e}", path.display())),
        },
        None => match store.latest_audit_checkpoint().await {
            Ok(c) => c.map(|c| c.jws),
            Err(e) => return fail(2, &format!("cannot read the audit checkpoints: {e}")),
        },
    };
    let expected = match checkpoint
        .map(|jws| read_checkpoint(&jws, jwks.as_deref()))
        .transpose()
    {
        Ok(e) => e,
        Err(e) => return fail(1, &e),
    };
    let mut verifier = ChainVerifier::new();
    if let Some(e) = &expected {
        verifier.expect_head(e.seq, &e.record_hash);
    }
    let mut after = 0u64;
    let mut unreadable = None;
    loop {
        match store.audit_records(after, PAGE).await {
            Ok(page) => {
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in &page {
                    verifier.push(r);
                }
            }
            Err(e) => {
                // A row that no longer decodes was edited outside the issuer.
                unreadable = Some(format!(
                    "records after {after}: unreadable (modified outside the issuer): {e}"
                ));
                break;
            }
        }
    }
    store.close().await;
    let report = verifier.finish();
    let mut out = String::new();
    for f in &report.findings {
        out.push_str(&f.to_string());
        out.push('\n');
    }
    if report.more_findings > 0 {
        out.push_str(&format!("… and {} more findings\n", report.more_findings));
    }
    if let Some(u) = &unreadable {
        out.push_str(u);
        out.push('\n');
    }
    let head = match &report.head {
        Some((seq, hash)) => format!("head record {seq}, record_hash {hash}"),
        None => "empty".to_owned(),
    };
    let intact = report.intact() && unreadable.is_none();
    if intact {
        let checkpoint = match &expected {
            Some(e) => format!("checkpoint at record {} matches ({})", e.seq, e.signature),
            None => "no checkpoint".to_owned(),
        };
        out.push_str(&format!(
            "audit trail intact: {} records; {head}; {checkpoint}\n",
            report.records
        ));
    }
    if let Err(code) = write_out(out.as_bytes()) {
        return code;
    }
    if intact {
        ExitCode::SUCCESS
    } else {
        let n =
            report.findings.len() as u64 + report.more_findings + u64::from(unreadable.is_some());
        fail(
            1,
            &format!(
                "audit trail tampered: {n} finding(s) in {} records read",
                report.records
            ),
        )
    }
}

async fn tail(args: &TailArgs) -> ExitCode {
    let store = match open(&args.dir).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let code = tail_store(store.as_ref(), args).await;
    store.close().await;
    code
}

async fn tail_store(store: &dyn Store, args: &TailArgs) -> ExitCode {
    let records = match store.audit_last(args.lines).await {
        Ok(r) => r,
        Err(e) => return fail(2, &format!("cannot read the audit trail: {e}")),
    };
    // Follow from the last record printed (from the head when none was).
    let mut after = match records.last() {
        Some(r) => r.seq,
        None => match store.audit_last(1).await {
            Ok(last) => last.first().map_or(0, |r| r.seq),
            Err(e) => return fail(2, &format!("cannot read the audit trail: {e}")),
        },
    };
    if let Err(code) = print_records(&records, args.json) {
        return code;
    }
    if !args.follow {
        return ExitCode::SUCCESS;
    }
    loop {
        tokio::time::sleep(FOLLOW_POLL).await;
        let page = match store.audit_records(after, PAGE).await {
            Ok(p) => p,
            Err(e) => return fail(2, &format!("cannot read the audit trail: {e}")),
        };
        if let Some(last) = page.last() {
            after = last.seq;
        }
        if let Err(code) = print_records(&page, args.json) {
            return code;
        }
    }
}

fn print_records(records: &[AuditRecord], json: bool) -> Result<(), ExitCode> {
    let mut out = String::new();
    for r in records {
        if json {
            match serde_json::to_string(r) {
                Ok(line) => out.push_str(&line),
                Err(e) => return Err(fail(1, &format!("cannot encode record {}: {e}", r.seq))),
            }
        } else {
            out.push_str(&text_line(r));
        }
        out.push('\n');
    }
    write_out(out.as_bytes())
}

/// `<seq> <UTC time> <event> key=value … {detail}`.
fn text_line(r: &AuditRecord) -> String {
    let mut line = format!("{} {} {}", r.seq, crate::utc::from_ms(r.time_ms), r.event);
    for (key, value) in [
        ("client", &r.client_id),
        ("agent", &r.agent_id),
        ("registration", &r.registration_id),
        ("jti", &r.jti),
        ("error", &r.error_code),
        ("intent_hash", &r.intent_hash),
    ] {
        if let Some(v) = value {
            line.push_str(&format!(" {key}={}", v.escape_debug()));
        }
    }
    if !r.detail.is_empty() {
        line.push(' ');
        line.push_str(&serde_json::Value::Object(r.detail.clone()).to_string());
    }
    line
}

/// Writes and flushes stdout; a closed pipe ends quietly with status 1.
fn write_out(bytes: &[u8]) -> Result<(), ExitCode> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ExitCode::from(1)),
        Err(e) => Err(fail(1, &format!("cannot write output: {e}"))),
    }
}
