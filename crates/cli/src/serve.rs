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
with its AJWT_* environment variable or in the TOML file given by --config: --token-lifetime is \
AJWT_TOKEN_LIFETIME and token_lifetime (the older TOML key intent_token_lifetime still works, with \
a warning); flags win over the environment, which wins over the file.

On first start it creates an admin OAuth client (scopes register:intent, \
generate:intent-token and admin:intent) and writes its credentials to <data-dir>/admin-client.json (mode 0600). \
SIGINT/SIGTERM stop it gracefully.";

/// Arguments of `ajwt serve`: `--config` and the issuer settings, whose
/// flags, `AJWT_*` variables and TOML keys come from one struct
/// ([`FileConfig`]) and so have the same names (I-58).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file (keys: the flag names with underscores)
    #[arg(long, env = "AJWT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: FileConfig,
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
    let deprecations = file.deprecations();
    let config = file
        .resolve(args.settings.clone())
        .map_err(|e| CliError::new(e.to_string()))?;
    init_logging(config.log_format);
    for warning in deprecations {
        tracing::warn!("{warning}");
    }
    if config.accept_bare_checksum {
        tracing::warn!("accept_bare_checksum is on: bare-hex computed_checksum values are accepted at the token endpoint (migration aid, I-57)");
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// I-58: every setting flag `--a-b` has the environment variable
    /// `AJWT_A_B` and the TOML key `a_b`; the list comes from clap.
    #[test]
    fn i58_every_flag_has_a_toml_key_and_env_var_of_the_same_name() {
        let cmd = Wrapper::command();
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let key = long.replace('-', "_");
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            assert_eq!(env, format!("AJWT_{}", key.to_uppercase()), "--{long}");
            if long == "config" {
                continue; // the file cannot name itself
            }
            // A wrong-typed value for a known key is a type error, never
            // "unknown field": the key exists in the TOML schema.
            for value in ["[]", "{}"] {
                let err = FileConfig::from_toml_str(&format!("{key} = {value}"))
                    .expect_err("arrays fit no setting");
                assert!(
                    !err.to_string().contains("unknown field"),
                    "TOML key {key}: {err}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 11, "only {checked} settings found");
        assert!(FileConfig::from_toml_str("no_such_key = 1")
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }

    #[test]
    fn i57_accept_bare_checksum_flag_and_values() {
        let parse = |args: &[&str]| {
            let mut all = vec!["ajwt"];
            all.extend_from_slice(args);
            Wrapper::try_parse_from(all)
                .unwrap()
                .serve
                .settings
                .accept_bare_checksum
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["--accept-bare-checksum"]), Some(true));
        assert_eq!(parse(&["--accept-bare-checksum=false"]), Some(false));
        let toml = FileConfig::from_toml_str("accept_bare_checksum = true").unwrap();
        assert_eq!(toml.accept_bare_checksum, Some(true));
    }
}
