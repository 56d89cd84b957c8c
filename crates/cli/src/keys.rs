//! `ajwt keys list` and `ajwt keys rotate`: the issuer's signing keys in its
//! store (I-110), with publish-then-sign rotation (I-90). Both read the
//! same settings as `ajwt serve` (`--config`, flags, `AJWT_*`), so the
//! publish delay and retirement times are the server's. Like the server's
//! key maintenance, both retire keys that are due (private key deleted from
//! the store, public record kept) when they load the keys, and import the
//! key files of a data directory from before I-110.

use std::path::PathBuf;
use std::sync::Arc;

use ajwt_issuer::config::{FileConfig, IssuerConfig};
use ajwt_issuer::key_store;
use ajwt_issuer::keys::{KeyError, KeyInfo};
use ajwt_issuer::service::KEY_MAINTENANCE_INTERVAL;
use ajwt_issuer::store::Store;
use clap::{Args, Subcommand};

use crate::CliError;

/// `ajwt keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Show every signing key with its state (next / current / retiring / retired) and times
    List(KeysArgs),
    /// Publish a new signing key now; it signs after the publish delay (at least the JWKS max-age)
    #[command(long_about = ROTATE_ABOUT)]
    Rotate(KeysArgs),
}

const ROTATE_ABOUT: &str = "\
Publish a new signing key now; it signs after the publish delay (I-90).

Stores the new key in the issuer's database with activates_at = now + key_publish_delay \
(at least jwks_max_age) + the server's key maintenance interval (every running `ajwt serve` \
re-reads the keys that often, so verifiers still get the whole delay), and sets the \
retires_at of the key it replaces: its activation + the longest token lifetime + \
key_retire_leeway. While a key is pending nothing is added. Works with the server running \
or stopped; POST /intent/admin/rotate-keys does the same through the API.";

/// Arguments of `ajwt keys list|rotate`: the server's settings plus `--json`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// TOML configuration file (as for `ajwt serve`)
    #[arg(long, env = "AJWT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: FileConfig,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `ajwt keys …` and returns its output.
pub(crate) fn run(cmd: &KeysCommand) -> Result<Vec<u8>, CliError> {
    let (args, rotate) = match cmd {
        KeysCommand::List(a) => (a, false),
        KeysCommand::Rotate(a) => (a, true),
    };
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(|e| CliError::new(e.to_string()))?,
        None => FileConfig::default(),
    };
    let config = file
        .resolve(args.settings.clone())
        .map_err(|e| CliError::new(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(run_on_store(args, rotate, &config))
}

/// The store holding the keys: the configured backend (`--database-url`,
/// else the SQLite database of the data directory, which must exist: `ajwt
/// serve` creates it) behind the sealing layer (`--kek-file`, else the data
/// directory's KEK file), as `ajwt serve` opens it.
async fn open_store(config: &IssuerConfig) -> Result<Arc<dyn Store>, CliError> {
    if config.database_url.is_none() {
        let path = config.data_dir.join(ajwt_issuer::store::open::SQLITE_FILE);
        if !path.is_file() {
            return Err(CliError::new(format!(
                "no signing keys: no issuer database {} (start `ajwt serve` with this data directory first)",
                path.display()
            )));
        }
    }
    let backend = ajwt_issuer::store::open_backend(config)
        .await
        .map_err(|e| CliError::runtime(e.to_string()))?;
    // Private keys are sealed at rest (I-112): through the sealing layer,
    // with the server's key-encryption key.
    let sealed =
        ajwt_issuer::store::sealed::open(backend, config.kek_file.as_deref(), &config.data_dir)
            .await
            .map_err(|e| CliError::runtime(e.to_string()))?;
    Ok(Arc::new(sealed))
}

async fn run_on_store(
    args: &KeysArgs,
    rotate: bool,
    config: &IssuerConfig,
) -> Result<Vec<u8>, CliError> {
    let store = open_store(config).await?;
    let result = keys_on_store(&*store, args, rotate, config).await;
    store.close().await;
    result
}

async fn keys_on_store(
    store: &dyn Store,
    args: &KeysArgs,
    rotate: bool,
    config: &IssuerConfig,
) -> Result<Vec<u8>, CliError> {
    let now = unix_now();
    key_store::import_legacy(store, &config.data_dir)
        .await
        .map_err(|e| CliError::runtime(e.to_string()))?;
    let ring = match key_store::reload(store, config.rotation_policy(), now).await {
        Ok(ring) => ring,
        Err(KeyError::NoStoredKey) => {
            return Err(CliError::new(format!(
                "no signing keys in the store of {} (start `ajwt serve` with this data directory first)",
                config.data_dir.display()
            )))
        }
        Err(e) => return Err(CliError::runtime(e.to_string())),
    };
    let mut out = String::new();
    let ring = if rotate {
        // A running server publishes the key at its next key maintenance:
        // the delay is extended by that interval (I-90, I-120).
        let (ring, r) = key_store::rotate(
            store,
            &ring,
            config.signing_alg,
            now,
            KEY_MAINTENANCE_INTERVAL,
            &|_| {},
        )
        .await
        .map_err(|e| CliError::runtime(e.to_string()))?;
        if args.json {
            let v = serde_json::json!({
                "kid": r.key.kid,
                "previous_kid": r.previous_kid,
                "alg": r.key.alg.as_str(),
                "state": r.key.state,
                "activates_at": r.key.activates_at,
                "previous_retires_at": r.previous_retires_at,
                "already_pending": r.already_pending,
            });
            out.push_str(&v.to_string());
            out.push('\n');
            return Ok(out.into_bytes());
        }
        if r.already_pending {
            out.push_str(&format!(
                "a rotation is already pending: {} signs from {}; nothing added\n",
                r.key.kid,
                crate::utc::from_secs(r.key.activates_at)
            ));
        } else {
            out.push_str(&format!(
                "published {} ({}); it signs from {} (in {} s); {} is retired at {}\n",
                r.key.kid,
                r.key.alg,
                crate::utc::from_secs(r.key.activates_at),
                r.key.activates_at.saturating_sub(now),
                r.previous_kid,
                r.previous_retires_at
                    .map_or_else(|| "-".to_owned(), crate::utc::from_secs)
            ));
        }
        ring
    } else {
        ring
    };
    let keys = ring.describe();
    if args.json {
        let v = serde_json::to_string(&keys).map_err(|e| CliError::runtime(e.to_string()))?;
        out.push_str(&v);
        out.push('\n');
    } else {
        out.push_str(&table(&keys));
    }
    Ok(out.into_bytes())
}

/// One line per key, oldest first.
fn table(keys: &[KeyInfo]) -> String {
    let mut out = format!(
        "{:<43}  {:<7}  {:<8}  {:<20}  {:<20}  {:<20}\n",
        "KID", "ALG", "STATE", "CREATED", "ACTIVATES", "RETIRES"
    );
    for k in keys {
        out.push_str(&format!(
            "{:<43}  {:<7}  {:<8}  {:<20}  {:<20}  {:<20}\n",
            k.kid,
            k.alg.as_str(),
            k.state.to_string(),
            crate::utc::from_secs(k.created_at),
            crate::utc::from_secs(k.activates_at),
            k.retires_at
                .map_or_else(|| "-".to_owned(), crate::utc::from_secs),
        ));
    }
    out
}
