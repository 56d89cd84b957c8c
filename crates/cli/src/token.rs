//! `ajwt token verify` and `ajwt token decode`: the resource-server checks of
//! §6.5.3 (with DPoP, §9.2.2) from the command line.

use std::sync::Arc;
use std::time::Duration;

use ajwt_verifier::{
    FixedClock, HttpFetcher, KeySource, PopPolicy, RequestParts, Requirements, Verifier,
    VerifierConfig,
};
use base64::Engine;
use clap::{Args, Subcommand};

use crate::CliError;

/// `ajwt token ...`
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Verify an intent token as a resource server would (§6.5.3, §9.2.2)
    #[command(long_about = VERIFY_ABOUT)]
    Verify(Box<VerifyArgs>),
    /// Print a token's header and claims WITHOUT verifying anything
    Decode(DecodeArgs),
}

const VERIFY_ABOUT: &str = "\
Verify an intent token exactly as the ajwt-verifier library does (draft-goswami-agentic-jwt-00 \
§6.5.3): signature against the JWKS (file or URL) with the algorithm allow-list, typ, exp/iat \
with leeway, iss, aud, every §4.4.2 claim, scopes, and agent-level proof-of-possession with a \
DPoP proof (RFC 9449; policy 'required' by default).

Valid: the verified claims as JSON on stdout, exit 0. Invalid: exit 1 and one line \
'error: <code>: <description>' on stderr, code being invalid_token, insufficient_scope or \
invalid_dpop_proof. Bad usage (or an unreachable JWKS): exit 2.";

/// Arguments of `ajwt token verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The issuer's JWK Set: a file, or an http(s) URL
    #[arg(long, value_name = "FILE|URL")]
    jwks: String,
    /// The trusted issuer (exact iss)
    #[arg(long, value_name = "ISS")]
    issuer: String,
    /// This resource server's identifier (must be in aud)
    #[arg(long, value_name = "AUD")]
    audience: String,
    /// A scope the token must carry (repeatable)
    #[arg(long = "scope", value_name = "S")]
    scopes: Vec<String>,
    /// Proof-of-possession policy
    #[arg(long, value_name = "POLICY", default_value = "required", value_parser = ["required", "optional", "disabled"])]
    pop: String,
    /// A DPoP proof JWT (RFC 9449) for the request
    #[arg(long, value_name = "PROOF", requires_all = ["method", "url"])]
    dpop: Option<String>,
    /// The HTTP method of the request the proof is for
    #[arg(long, value_name = "M")]
    method: Option<String>,
    /// The URL of the request the proof is for
    #[arg(long, value_name = "U")]
    url: Option<String>,
    /// Fix the clock (Unix seconds) for reproducible checks
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<i64>,
    /// Clock leeway in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    leeway: i64,
    /// The token
    #[arg(value_name = "TOKEN")]
    token: String,
}

/// Arguments of `ajwt token decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The token (compact JWS)
    #[arg(value_name = "TOKEN")]
    token: String,
}

/// Runs a `token` subcommand; the error's status is 1 for an invalid token.
pub(crate) fn run(cmd: &TokenCommand) -> Result<Vec<u8>, CliError> {
    match cmd {
        TokenCommand::Verify(args) => verify(args),
        TokenCommand::Decode(args) => decode(args),
    }
}

fn verify(args: &VerifyArgs) -> Result<Vec<u8>, CliError> {
    let pop: PopPolicy = args.pop.parse().map_err(CliError::new)?;
    let mut config = VerifierConfig::new(&args.issuer, &args.audience);
    config.pop = pop;
    config.leeway = args.leeway;
    if args.leeway < 0 {
        return Err(CliError::new("--leeway must not be negative"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(e.to_string()))?;
    runtime.block_on(async {
        let keys = if args.jwks.starts_with("http://") || args.jwks.starts_with("https://") {
            let fetcher = Arc::new(HttpFetcher::new().map_err(|e| CliError::new(e.to_string()))?);
            KeySource::remote(args.jwks.clone(), fetcher, Duration::ZERO)
        } else {
            let bytes = std::fs::read(&args.jwks)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", args.jwks)))?;
            let (set, _skipped) = ajwt_jose::JwkSet::parse(&bytes)
                .map_err(|e| CliError::new(format!("{}: {e}", args.jwks)))?;
            KeySource::from_jwks(set)
        };
        let mut verifier = Verifier::new(config, keys);
        if let Some(now) = args.now {
            verifier = verifier.with_clock(Arc::new(FixedClock(now)));
        }
        let authorization = match &args.dpop {
            Some(_) => format!("DPoP {}", args.token),
            None => format!("Bearer {}", args.token),
        };
        let auth = [authorization.as_str()];
        let proofs: Vec<&str> = args.dpop.iter().map(String::as_str).collect();
        let parts = RequestParts {
            method: args.method.as_deref().unwrap_or("GET"),
            url: args.url.as_deref().unwrap_or(""),
            authorization: &auth,
            dpop: &proofs,
        };
        let route = Requirements::scopes(args.scopes.clone());
        match verifier.verify(&parts, &route).await {
            Ok(intent) => {
                let mut out = serde_json::to_vec_pretty(&intent.claims)
                    .map_err(|e| CliError::runtime(e.to_string()))?;
                out.push(b'\n');
                Ok(out)
            }
            Err(ajwt_verifier::VerifyError::KeysUnavailable(m)) => Err(CliError::new(format!(
                "cannot obtain the issuer's keys: {m}"
            ))),
            // The CLI builds the Authorization header itself, so a header-level
            // problem is a problem of the TOKEN argument: invalid_token.
            Err(e @ ajwt_verifier::VerifyError::MalformedAuthorization(_)) => Err(
                CliError::invalid(format!("invalid_token: {}", e.description())),
            ),
            Err(e) => Err(CliError::invalid(format!(
                "{}: {}",
                e.code().unwrap_or("invalid_token"),
                e.description()
            ))),
        }
    })
}

fn decode(args: &DecodeArgs) -> Result<Vec<u8>, CliError> {
    let parts: Vec<&str> = args.token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(CliError::new(
            "not a compact JWS (three dot-separated parts)",
        ));
    }
    let part = |i: usize, what: &str| -> Result<serde_json::Value, CliError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[i])
            .map_err(|_| CliError::new(format!("{what} is not base64url")))?;
        ajwt_checksum::json::parse_strict(&bytes)
            .map(|v| v.to_serde_json())
            .map_err(|e| CliError::new(format!("{what}: {e}")))
    };
    let out = serde_json::json!({
        "WARNING": "UNVERIFIED: the signature and claims of this token were NOT checked",
        "header": part(0, "header")?,
        "claims": part(1, "claims")?,
    });
    let mut bytes =
        serde_json::to_vec_pretty(&out).map_err(|e| CliError::runtime(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}
