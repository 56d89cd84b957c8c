//! `ajwt serve`: runs the demo issuer (the authorization server of §4–§6)
//! with its embedded SQLite store in the data directory.

use std::path::PathBuf;
use std::sync::Arc;

use ajwt_issuer::config::{FileConfig, LogFormat};
use ajwt_issuer::Issuer;
use clap::Args;

use crate::CliError;

/// Long help of the subcommand.
pub(crate) const LONG_ABOUT: &str = "\
Run the Agentic JWT authorization server (draft-goswami-agentic-jwt-00 §4–§6): agent and \
workflow registration, the agent_checksum grant, intent tokens, JWKS and RFC 8414 metadata.

With no arguments it listens on 127.0.0.1:8080 with issuer http://127.0.0.1:8080 and keeps its \
SQLite store, signing keys and admin-client.json in ./ajwt-data. Each option can also be set \
with its AJWT_* environment variable or in the TOML file given by --config (same names with \
underscores); flags win over the environment, which wins over the file.

On first start it creates an admin OAuth client (scopes register:intent, \
generate:intent-token and admin:intent) and writes its credentials to <data-dir>/admin-client.json (mode 0600). \
SIGINT/SIGTERM stop it gracefully.";

/// Arguments of `ajwt serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Listen address [default: 127.0.0.1:8080]
    #[arg(long, env = "AJWT_ADDR", value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Data directory [default: ./ajwt-data]
    #[arg(long, env = "AJWT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Issuer identifier, the iss of every token [default: http://<addr>]
    #[arg(long, env = "AJWT_ISSUER", value_name = "URL")]
    issuer: Option<String>,
    /// TOML configuration file
    #[arg(long, env = "AJWT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Audience of client access tokens (§4.2.3) [default: idp.localhost]
    #[arg(long, env = "AJWT_CLIENT_AUDIENCE", value_name = "AUD")]
    client_audience: Option<String>,
    /// Intent-token lifetime in seconds, at most 3600 (§9.2.1) [default: 300]
    #[arg(long, env = "AJWT_TOKEN_LIFETIME", value_name = "SECONDS")]
    token_lifetime: Option<u64>,
    /// Client access-token lifetime in seconds [default: 3600]
    #[arg(long, env = "AJWT_CLIENT_TOKEN_LIFETIME", value_name = "SECONDS")]
    client_token_lifetime: Option<u64>,
    /// Algorithm of newly generated signing keys: ES256, EdDSA or RS256 [default: ES256]
    #[arg(long, env = "AJWT_SIGNING_ALG", value_name = "ALG")]
    signing_alg: Option<String>,
    /// Longest delegation chain accepted, requester included (§9.3.2) [default: 8]
    #[arg(long, env = "AJWT_MAX_DELEGATION_DEPTH", value_name = "N")]
    max_delegation_depth: Option<usize>,
    /// Largest request body in bytes [default: 1048576]
    #[arg(long, env = "AJWT_BODY_LIMIT", value_name = "BYTES")]
    body_limit: Option<usize>,
    /// Log format: text or json [default: text]
    #[arg(long, env = "AJWT_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AJWT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log redirected to a file stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second initialization (tests) is not an error worth reporting.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// Runs the server until SIGINT/SIGTERM. Configuration errors are bad input
/// (exit 2); failures at run time exit 1.
pub(crate) fn run(args: &ServeArgs) -> Result<(), CliError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(|e| CliError::new(e.to_string()))?,
        None => FileConfig::default(),
    };
    let overrides = FileConfig {
        addr: args.addr.clone(),
        data_dir: args.data_dir.clone(),
        issuer: args.issuer.clone(),
        client_audience: args.client_audience.clone(),
        intent_token_lifetime: args.token_lifetime,
        client_token_lifetime: args.client_token_lifetime,
        signing_alg: args.signing_alg.clone(),
        max_delegation_depth: args.max_delegation_depth,
        body_limit: args.body_limit,
        log_format: args.log_format.clone(),
    };
    let config = file
        .resolve(overrides)
        .map_err(|e| CliError::new(e.to_string()))?;
    init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let addr = config.addr;
        let (issuer, admin_file) = Issuer::open(config)
            .await
            .map_err(|e| CliError::runtime(e.to_string()))?;
        if let Some(path) = admin_file {
            tracing::info!(path = %path.display(), "created the admin client; its credentials are in this file (mode 0600)");
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::runtime(format!("cannot listen on {addr}: {e}")))?;
        tracing::info!(
            %addr,
            issuer = %issuer.config().issuer,
            data_dir = %issuer.config().data_dir.display(),
            "ajwt issuer listening"
        );
        ajwt_issuer::serve(Arc::new(issuer), listener, shutdown_signal())
            .await
            .map_err(|e| CliError::runtime(format!("server error: {e}")))?;
        tracing::info!("stopped");
        Ok(())
    })
}
