//! The `mcp-server` binary: the MCP tool server of this package
//! ([`ajwt_example_mcp_server::app`]) listening on a TCP address, trusting a
//! running `ajwt serve`.
//!
//! ```sh
//! cargo run -p ajwt-cli -- serve &                                   # the issuer on :8080
//! cargo run -p ajwt-example-mcp-server --bin mcp-server              # this server on :8091
//! ```

use std::time::Duration;

use ajwt_example_mcp_server::{app, discover_verifier_with, StatusLists};
use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "mcp-server",
    about = "Example MCP tool server protected by Agentic JWT"
)]
struct Args {
    /// Listen address
    #[arg(long, env = "MCP_ADDR", default_value = "127.0.0.1:8091")]
    addr: std::net::SocketAddr,
    /// The trusted issuer (also the RFC 9728 authorization server)
    #[arg(long, env = "MCP_ISSUER", default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// This server's audience identifier (tokens must be issued for it);
    /// also the RFC 9728 `resource`. Defaults to the public URL.
    #[arg(long, env = "MCP_AUDIENCE")]
    audience: Option<String>,
    /// The URL clients use to reach this server (forms the DPoP htu and the metadata URL)
    #[arg(long, env = "MCP_PUBLIC_URL")]
    public_url: Option<String>,
    /// Proof-of-possession policy: required, optional or disabled
    #[arg(long, env = "MCP_POP", default_value = "required")]
    pop: String,
    /// Require server-provided DPoP nonces (RFC 9449 §8), rotated every
    /// --dpop-nonce-lifetime seconds; the previous nonce stays valid as long again
    #[arg(long, env = "MCP_DPOP_NONCE")]
    dpop_nonce: bool,
    /// Seconds a DPoP nonce is handed out before rotation (with --dpop-nonce)
    #[arg(long, env = "MCP_DPOP_NONCE_LIFETIME", default_value_t = 300)]
    dpop_nonce_lifetime: u64,
    /// Do not check tokens against the issuer's Token Status List (checked by default, I-92)
    #[arg(long, env = "MCP_NO_STATUS_LIST")]
    no_status_list: bool,
    /// Accept a token whose status list cannot be fetched or verified (default: refuse with 503, I-92)
    #[arg(long, env = "MCP_STATUS_LIST_FAIL_OPEN")]
    status_list_fail_open: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    let result = async {
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", args.addr));
        let public_url = public_url.trim_end_matches('/').to_owned();
        let audience = args.audience.clone().unwrap_or_else(|| public_url.clone());
        let pop = args.pop.parse()?;
        let nonces = args
            .dpop_nonce
            .then(|| Duration::from_secs(args.dpop_nonce_lifetime));
        let status_lists = match (args.no_status_list, args.status_list_fail_open) {
            (true, _) => StatusLists::Off,
            (false, true) => StatusLists::FailOpen,
            (false, false) => StatusLists::FailClosed,
        };
        let verifier =
            discover_verifier_with(&args.issuer, &audience, pop, nonces, status_lists).await?;
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        tracing::info!(addr = %args.addr, issuer = %args.issuer, "MCP server listening");
        axum::serve(listener, app(verifier, &public_url))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
