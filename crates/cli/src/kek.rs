//! `ajwt kek generate` and `ajwt kek rotate`: the key-encryption key that
//! seals agent specifications and private signing keys at rest (§9.1.4,
//! I-112, I-126). Both read the same settings as `ajwt serve` (`--config`,
//! flags, `AJWT_*`): the KEK file is `--kek-file` (`AJWT_KEK_FILE`), or
//! `<data-dir>/kek.key`.

use std::path::PathBuf;
use std::time::Duration;

use ajwt_issuer::config::FileConfig;
use ajwt_issuer::kek::{kek_path, Kek, KekRing};
use ajwt_issuer::store::sealed::{rotate_kek, Rotation, RotationReport};
use ajwt_issuer::store::sqlite::SqliteStore;
use ajwt_issuer::store::Store;
use clap::{Args, Subcommand};

use crate::CliError;

/// `ajwt kek …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KekCommand {
    /// Write a new key-encryption key file (32 random bytes, base64url, mode 0600)
    Generate(GenerateArgs),
    /// Make a new key-encryption key current and re-seal every stored value under it
    #[command(long_about = ROTATE_ABOUT)]
    Rotate(Box<RotateArgs>),
}

const ROTATE_ABOUT: &str = "\
Rotate the key-encryption key (KEK) that seals agent specifications and private signing keys \
in the store (draft-goswami-agentic-jwt-00 §9.1.4; I-112, I-126).

The KEK file holds one key per line (base64url of 32 bytes); the first seals, the others only \
open. rotate: (1) rewrites the file with the new KEK first and the old ones after it (a running \
`ajwt serve` reading this file sees it within 2 s and then seals under the new KEK, opening \
both); (2) waits --wait seconds; (3) re-seals every stored value under the new KEK \
(compare-and-swap, page by page); (4) rewrites the file with the new KEK alone, unless \
--keep-previous or a value could not be opened. A crash at any step leaves every value readable \
with the file as it is.

Replicas sharing one KEK file (one volume): run rotate once, anywhere. Replicas with their OWN \
copies of the file: (a) `ajwt kek generate --out new.key` and append its line to every copy \
(as the last line: accepted for opening, not yet sealing) and wait until every replica re-read \
it (or restart them); (b) `ajwt kek rotate --new-kek-file new.key --keep-previous` on one copy \
and give that file (new KEK first) to every replica; (c) `ajwt kek rotate --rewrap-only` and give \
the resulting one-line file to every replica. Works with the servers running or stopped; keep \
backups of the old file until backups of the database made before the rotation expire.";

/// Arguments of `ajwt kek generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The new file (must not exist)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `ajwt kek rotate`: the server's settings plus the rotation's.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// TOML configuration file (as for `ajwt serve`)
    #[arg(long, env = "AJWT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Use the (first) key of this file as the new KEK instead of generating one
    #[arg(long, value_name = "FILE", conflicts_with = "rewrap_only")]
    new_kek_file: Option<PathBuf>,
    /// No new KEK: re-seal the values still under previous keys of the file, then drop those keys
    #[arg(long)]
    rewrap_only: bool,
    /// Keep the previous keys in the KEK file afterwards
    #[arg(long)]
    keep_previous: bool,
    /// Seconds given to running servers to see the new KEK before re-sealing
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    wait: u64,
    /// Print JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: FileConfig,
}

/// Runs `ajwt kek …` and returns its output.
pub(crate) fn run(cmd: &KekCommand) -> Result<Vec<u8>, CliError> {
    match cmd {
        KekCommand::Generate(args) => generate(args),
        KekCommand::Rotate(args) => rotate(args),
    }
}

fn generate(args: &GenerateArgs) -> Result<Vec<u8>, CliError> {
    let ring = KekRing::new(Kek::generate(), Vec::new());
    ring.write_new(&args.out)
        .map_err(|e| CliError::new(format!("{e} (an existing file is never overwritten)")))?;
    Ok(format!(
        "wrote key-encryption key {} to {}\n",
        ring.current().id(),
        args.out.display()
    )
    .into_bytes())
}

fn rotate(args: &RotateArgs) -> Result<Vec<u8>, CliError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(|e| CliError::new(e.to_string()))?,
        None => FileConfig::default(),
    };
    let config = file
        .resolve(args.settings.clone())
        .map_err(|e| CliError::new(e.to_string()))?;
    let path = kek_path(config.kek_file.as_deref(), &config.data_dir);
    let new_kek = match &args.new_kek_file {
        Some(p) => Some(
            KekRing::load(p)
                .map_err(|e| CliError::new(e.to_string()))?
                .current()
                .clone(),
        ),
        None => None,
    };
    if config.database_url.is_some() {
        // The PostgreSQL store is opened here once it exists (issue 14).
        return Err(CliError::new(
            "--database-url: this build of `ajwt kek rotate` opens the SQLite store only",
        ));
    }
    let database = config.data_dir.join("ajwt.sqlite3");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    let report = runtime.block_on(async {
        let store = SqliteStore::open_existing(&database)
            .await
            .map_err(|e| CliError::new(e.to_string()))?;
        let r = rotate_kek(
            &store,
            &path,
            Rotation {
                new_kek,
                rewrap_only: args.rewrap_only,
                keep_previous: args.keep_previous,
                wait: Duration::from_secs(args.wait),
            },
        )
        .await;
        store.close().await;
        r.map_err(|e| CliError::runtime(e.to_string()))
    })?;
    let out = if args.json {
        format!("{}\n", json(&report))
    } else {
        text(&report, &path)
    };
    if report.reseal.failed.is_empty() {
        Ok(out.into_bytes())
    } else {
        let mut msg = out;
        for (kind, id, e) in &report.reseal.failed {
            msg.push_str(&format!(
                "; {} {id}: {e}",
                ajwt_issuer::kek::kind_label(*kind)
            ));
        }
        Err(CliError::runtime(format!(
            "{} value(s) could not be opened and were left as they are (the previous keys stay in the file): {msg}",
            report.reseal.failed.len()
        )))
    }
}

fn json(r: &RotationReport) -> serde_json::Value {
    serde_json::json!({
        "kek_id": r.kek_id,
        "previous_kek_id": r.previous_kek_id,
        "already_current": r.reseal.current,
        "rewrapped": r.reseal.rewrapped,
        "sealed_plaintext": r.reseal.sealed_plaintext,
        "changed_meanwhile": r.reseal.changed_meanwhile,
        "failed": r.reseal.failed.len(),
        "dropped": r.dropped,
    })
}

fn text(r: &RotationReport, path: &std::path::Path) -> String {
    let mut out = format!(
        "key-encryption key {} is current in {} (was {}); {} value(s) re-sealed, {} plaintext value(s) sealed, {} value(s) under it\n",
        r.kek_id,
        path.display(),
        r.previous_kek_id,
        r.reseal.rewrapped,
        r.reseal.sealed_plaintext,
        r.reseal.current
    );
    if r.dropped.is_empty() {
        out.push_str("previous keys kept in the file\n");
    } else {
        out.push_str(&format!(
            "removed from the file: {}\n",
            r.dropped.join(", ")
        ));
    }
    out
}
