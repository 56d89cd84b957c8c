//! Mode 3 (verifier): the suite acts as a test issuer and tests a resource
//! server's verification of intent tokens (§6.5.3) and of proof-of-possession
//! (§9.2.2, RFC 9449).
//!
//! The runner generates its own signing key (ES256, EdDSA, or Ed25519: the
//! same Ed25519 signature under its RFC 9864 name), publishes it
//! through RFC 8414 metadata and a JWK Set on a loopback port
//! ([`issuer::TestIssuer`]), optionally starts the resource server with
//! `--exec` once that issuer listens, then sends the protected resource one
//! valid intent token with a valid DPoP proof, followed by the bad tokens and
//! bad proofs of the verifier's negative matrix. Tokens and proofs are built
//! independently with josekit from JSON written here ([`jose`]), never with
//! our issuer, verifier or ajwt-jose code. A test passes only when the status
//! and the `WWW-Authenticate` challenge (scheme and `error`, plus `scope=` for
//! `insufficient_scope`) are the expected ones.
//!
//! §6.5.3 lists validation steps without BCP 14 keywords; tests of those
//! steps use `MUST` (a step skipped means a forged or misused token is
//! accepted, spec/interpretation.md I-33). Missing-claim tests use the
//! `REQUIRED` of §4.4.2; proof-of-possession tests use the `SHOULD` of
//! §9.2.2, so their failures are warnings unless `--strict`.

mod cases;
pub mod http;
pub mod issuer;
pub mod jose;

use std::time::Duration;

use crate::report::{Report, Run, RunOptions, TestInfo};
use crate::Error;

pub use jose::SigAlg;

/// The proof-of-possession policy the resource server is expected to apply
/// (§9.2.2; spec/interpretation.md I-35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PopPolicy {
    /// `Authorization: DPoP` with a valid proof is required: every PoP test applies.
    #[default]
    Required,
    /// Proofs are checked when present; bearer presentations are accepted.
    Optional,
    /// No proof is checked: tokens are presented as Bearer, PoP tests are skipped.
    Disabled,
}

impl PopPolicy {
    fn name(self) -> &'static str {
        match self {
            PopPolicy::Required => "required",
            PopPolicy::Optional => "optional",
            PopPolicy::Disabled => "disabled",
        }
    }
}

/// Options of `ajwt conformance verifier`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifierArgs {
    /// The protected resource URL (also the DPoP `htu`), e.g. http://127.0.0.1:8090/patches
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// HTTP method of the protected operation (also the DPoP `htm`)
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// Request body sent with every request (JSON)
    #[arg(long, default_value = "{}")]
    pub body: String,
    /// Where the test issuer listens; its issuer identifier is http://ADDR
    /// (port 0 picks a free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8701")]
    pub issuer_addr: String,
    /// The resource server's audience identifier (`aud` of the tokens)
    #[arg(long, default_value = "https://api.github.com")]
    pub audience: String,
    /// Scope(s) the resource requires, space-separated (`scope` of the good token)
    #[arg(long, default_value = "repo:write")]
    pub scope: String,
    /// The workflow the resource requires (`intent.workflow_id`)
    #[arg(long, default_value = "auto-patch-workflow-v1")]
    pub workflow_id: String,
    /// A workflow step allowed on the resource (`intent.workflow_step`)
    #[arg(long, default_value = "step_4_apply_patch")]
    pub workflow_step: String,
    /// Proof-of-possession policy of the resource server: which tests apply
    #[arg(long, value_enum, default_value = "required")]
    pub pop: PopPolicy,
    /// Start this resource server after the test issuer listens (program
    /// and arguments separated by spaces; `{issuer}` is replaced by the
    /// issuer identifier, also exported as AJWT_CONFORMANCE_ISSUER); it is
    /// killed at the end
    #[arg(long, value_name = "CMD ARGS")]
    pub exec: Option<String>,
    /// How long to wait for the resource server to accept connections, seconds
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Signing algorithm of the test issuer
    #[arg(long, value_enum, default_value = "ES256")]
    pub alg: SigAlg,
}

impl VerifierArgs {
    /// The arguments with every default, for `url`.
    pub fn new(url: &str) -> VerifierArgs {
        VerifierArgs {
            url: url.to_owned(),
            method: "POST".into(),
            body: "{}".into(),
            issuer_addr: "127.0.0.1:8701".into(),
            audience: "https://api.github.com".into(),
            scope: "repo:write".into(),
            workflow_id: "auto-patch-workflow-v1".into(),
            workflow_step: "step_4_apply_patch".into(),
            pop: PopPolicy::Required,
            exec: None,
            wait_secs: 30,
            alg: SigAlg::Es256,
        }
    }
}

/// The tests of this mode.
pub fn catalogue() -> Vec<TestInfo> {
    cases::catalogue()
}

/// Runs the mode: starts the test issuer (and the `--exec` resource server),
/// runs the selected tests, stops both and returns the report.
pub async fn run(args: &VerifierArgs, options: RunOptions) -> Result<Report, Error> {
    let parsed = reqwest::Url::parse(&args.url)
        .map_err(|e| Error::Setup(format!("--url {:?}: {e}", args.url)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Setup(format!(
            "--url {:?}: expected an http or https URL",
            args.url
        )));
    }
    if args.scope.split_whitespace().next().is_none() {
        return Err(Error::Setup("--scope must name at least one scope".into()));
    }
    let mut run = Run::new("verifier", &args.url, catalogue(), options)?;
    run.version("vectors", crate::vectors_version());
    let keys = cases::Keys::generate(args.alg)?;
    let issuer = issuer::TestIssuer::start(&args.issuer_addr, keys.jwks()).await?;
    run.note(format!(
        "test issuer {} ({} key {:?}; JWKS at {}/.well-known/jwks.json)",
        issuer.issuer,
        args.alg.name(),
        keys.issuer_kid(),
        issuer.issuer
    ));
    run.note(format!(
        "resource: {} {} (aud {}, scope {:?}, workflow {} step {}, PoP {})",
        args.method,
        args.url,
        args.audience,
        args.scope,
        args.workflow_id,
        args.workflow_step,
        args.pop.name()
    ));
    run.announce();
    let mut child = None;
    if let Some(cmd) = &args.exec {
        let mut c = http::Child::spawn(cmd, &issuer.issuer)?;
        if let Err(e) = c
            .wait_ready(&args.url, Duration::from_secs(args.wait_secs))
            .await
        {
            c.stop().await;
            issuer.stop().await;
            return Err(e);
        }
        run.note(format!("started: {cmd}"));
        child = Some(c);
    } else if let Err(e) =
        http::wait_reachable(&args.url, Duration::from_secs(args.wait_secs)).await
    {
        issuer.stop().await;
        return Err(e);
    }
    let mut target = http::Target::new(&args.url, &args.method, &args.body)?;
    let ctx = cases::Ctx {
        args,
        issuer: issuer.issuer.clone(),
        keys,
    };
    let result = cases::run_all(&mut run, &ctx, &mut target).await;
    if let Some(nonce) = &target.nonce {
        run.note(format!(
            "the resource server asked for DPoP nonces (last: {nonce})"
        ));
    }
    if let Some(c) = child {
        c.stop().await;
    }
    issuer.stop().await;
    result?;
    Ok(run.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: VerifierArgs,
    }

    #[test]
    fn command_line_defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["x", "--url", "http://127.0.0.1:8090/patches"]).unwrap();
        let d = VerifierArgs::new("http://127.0.0.1:8090/patches");
        let a = cli.args;
        assert_eq!(
            (&a.method, &a.body, &a.issuer_addr, &a.audience, &a.scope),
            (&d.method, &d.body, &d.issuer_addr, &d.audience, &d.scope)
        );
        assert_eq!(
            (
                &a.workflow_id,
                &a.workflow_step,
                a.pop,
                &a.exec,
                a.wait_secs,
                a.alg
            ),
            (
                &d.workflow_id,
                &d.workflow_step,
                d.pop,
                &d.exec,
                d.wait_secs,
                d.alg
            )
        );
        let cli = Cli::try_parse_from([
            "x",
            "--url",
            "http://h/r",
            "--alg",
            "EdDSA",
            "--pop",
            "optional",
            "--exec",
            "server --issuer {issuer}",
        ])
        .unwrap();
        assert_eq!(cli.args.alg, SigAlg::EdDsa);
        assert_eq!(cli.args.pop, PopPolicy::Optional);
        let cli = Cli::try_parse_from(["x", "--url", "http://h/r", "--alg", "Ed25519"]).unwrap();
        assert_eq!(cli.args.alg, SigAlg::Ed25519);
        assert_eq!(cli.args.alg.name(), "Ed25519");
        assert!(Cli::try_parse_from(["x"]).is_err(), "--url is required");
        assert!(Cli::try_parse_from(["x", "--url", "u", "--alg", "HS256"]).is_err());
    }

    #[tokio::test]
    async fn a_bad_url_is_a_setup_error() {
        for url in ["not a url", "ftp://h/r"] {
            let err = run(&VerifierArgs::new(url), RunOptions::default())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Setup(m) if m.contains("--url")));
        }
    }
}
