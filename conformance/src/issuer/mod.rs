//! Mode 2 (issuer): black-box HTTP tests of any authorization server of
//! *draft-goswami-agentic-jwt-00*.
//!
//! The run discovers the endpoints (RFC 8414 metadata, falling back to
//! `--token-path` & co. or the draft's paths), obtains a client token with
//! the given client credentials (`client_credentials`, RFC 6749 §4.4), then
//! runs the plan: endpoint protection (§4.2.3, §9.1.3), agent registration
//! (§5.2–§5.4, §6.2.3), the §4.5 errors and §4.3.1 precedence, checksum
//! format (§9.1.1), workflows and approval gates (§4.3.3, §4.5.5, §6.3),
//! delegation chains (§4.3.4, §9.3.2), every §4.4.2 claim of issued tokens
//! (signatures verified with josekit against the issuer's JWKS, sequence
//! hashes recomputed with `sha2`), `Cache-Control` headers, and the optional
//! admin hooks (agent revocation, key rotation). Every agent and workflow
//! gets a random per-run suffix, so the plan can run again and again against
//! the same issuer.

mod agents;
mod checks;
mod client;
mod jwt;
mod plan_admin;
mod plan_claims;
mod plan_lifecycle;
mod plan_protect;
mod plan_register;
mod plan_token;
mod plan_workflow;

use std::time::Duration;

use rand::Rng as _;
use serde_json::Value;

use crate::report::{Report, Run, RunOptions, TestInfo};
use crate::Error;

pub use agents::KeyFormat;
use agents::{Agent, KeyKind};
use checks::{Out, T};
use client::{Endpoints, Http, PathOverrides, Resp};

/// Options of `ajwt conformance issuer`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IssuerArgs {
    /// Base URL of the issuer (its RFC 8414 metadata is read from
    /// `<URL>/.well-known/oauth-authorization-server`)
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// Client id of a client allowed to register agents and workflows and
    /// to request intent tokens
    #[arg(long, value_name = "ID", env = "AJWT_CONFORMANCE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Secret of that client
    #[arg(
        long,
        value_name = "S",
        env = "AJWT_CONFORMANCE_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// Token endpoint path or URL, when the metadata lacks `token_endpoint`
    /// [default: /intent/token]
    #[arg(long, value_name = "PATH")]
    pub token_path: Option<String>,
    /// Agent registration path or URL, when the metadata lacks
    /// `agent_registration_endpoint` [default: /register/agent]
    #[arg(long, value_name = "PATH")]
    pub agent_registration_path: Option<String>,
    /// Workflow registration path or URL, when the metadata lacks
    /// `workflow_registration_endpoint` [default: /intent/register/workflow]
    #[arg(long, value_name = "PATH")]
    pub workflow_registration_path: Option<String>,
    /// JWK Set path or URL, when the metadata lacks `jwks_uri`
    /// [default: /.well-known/jwks.json]
    #[arg(long, value_name = "PATH")]
    pub jwks_path: Option<String>,
    /// Timeout of each HTTP request in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout_secs: u64,
    /// `audience` of the intent tokens the plan requests (§4.2.1)
    #[arg(
        long,
        value_name = "AUD",
        default_value = "https://api.conformance.example"
    )]
    pub token_audience: String,
    /// How agent registrations send the agent's public key (§6.2.3 step 2)
    #[arg(long, value_enum, default_value = "jwk")]
    pub key_format: KeyFormat,
}

/// One catalogue row: id, section, keyword, requirement ids, title.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

/// The tests of this mode.
pub fn catalogue() -> Vec<TestInfo> {
    let mut rows: Vec<Row> = Vec::new();
    rows.extend_from_slice(plan_protect::ROWS);
    rows.extend_from_slice(plan_register::ROWS);
    rows.extend_from_slice(plan_token::ROWS);
    rows.extend_from_slice(plan_workflow::ROWS);
    rows.extend_from_slice(plan_claims::ROWS);
    rows.extend_from_slice(plan_admin::ROWS);
    rows.extend_from_slice(plan_lifecycle::ROWS);
    rows.iter()
        .map(|(id, section, keyword, reqs, title)| TestInfo::new(id, section, keyword, reqs, title))
        .collect()
}

/// A registered agent: the agent and the `registration_id` the issuer gave it.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub agent: Agent,
    pub registration_id: String,
}

/// The state of a run shared by the plan sections.
pub(crate) struct Ctx {
    pub run: Run,
    pub http: Http,
    pub ep: Endpoints,
    /// Client id and secret.
    pub client_id: String,
    pub client_secret: String,
    /// Client token with all of the client's scopes.
    pub admin: String,
    /// Random suffix of this run's names.
    pub suffix: String,
    /// `audience` of intent-token requests.
    pub audience: String,
    /// How registrations send public keys.
    pub key_format: KeyFormat,
    /// Expected `iss` of intent tokens.
    pub expected_iss: String,
    /// The JWK Set, once fetched.
    pub jwks: Option<Value>,
    /// The main agent (Ed25519), once registered.
    main: Option<Result<Registered, String>>,
    /// Token-endpoint responses with status ≥ 400 seen so far (for §4.5.1 headers).
    pub errors_seen: Vec<(String, Resp)>,
    /// Successful token responses seen so far (for §4.4.1 headers).
    pub tokens_seen: Vec<(String, Resp)>,
    /// Registration responses seen so far.
    pub registrations_seen: Vec<(String, Resp)>,
}

impl Ctx {
    /// The registration body of `agent` with the key in the run's format.
    pub fn reg_body(&self, agent: &Agent) -> Value {
        agent.registration_body(self.key_format)
    }

    /// A run-unique name `<base>-<suffix>`.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.suffix)
    }

    /// POST a JSON token request with the admin client token (§4.2.1).
    pub async fn token_request(&mut self, label: &str, body: &Value) -> Result<Resp, Out> {
        let url = self.ep.token.clone();
        let token = self.admin.clone();
        let r = self
            .http
            .post_json(&url, Some(&token), body)
            .await
            .map_err(|e| Out::Fail(format!("POST {url}: {e}")))?;
        self.remember_token_response(label, &r);
        Ok(r)
    }

    /// Records a token-endpoint response for the header tests.
    pub fn remember_token_response(&mut self, label: &str, r: &Resp) {
        if r.status >= 400 {
            if self.errors_seen.len() < 200 {
                self.errors_seen.push((label.to_owned(), r.clone()));
            }
        } else if r.status == 200 && self.tokens_seen.len() < 200 {
            self.tokens_seen.push((label.to_owned(), r.clone()));
        }
    }

    /// POST an agent registration with the admin client token.
    pub async fn register_raw(&mut self, label: &str, body: &Value) -> Result<Resp, Out> {
        let url = self.ep.agent_registration.clone();
        let token = self.admin.clone();
        let r = self
            .http
            .post_json(&url, Some(&token), body)
            .await
            .map_err(|e| Out::Fail(format!("POST {url}: {e}")))?;
        if self.registrations_seen.len() < 200 {
            self.registrations_seen.push((label.to_owned(), r.clone()));
        }
        Ok(r)
    }

    /// Registers `agent`, expecting 200 with a `registration_id`.
    pub async fn register(&mut self, agent: &Agent) -> Result<Registered, Out> {
        let r = self
            .register_raw(
                &format!("registration of {}", agent.id),
                &self.reg_body(agent),
            )
            .await?;
        let id = match (r.status, r.str_member("registration_id")) {
            (200, Some(id)) => id.to_owned(),
            _ => {
                return Err(Out::Fail(format!(
                    "registration of agent '{}' failed: {}",
                    agent.id,
                    r.summary()
                )))
            }
        };
        Ok(Registered {
            agent: agent.clone(),
            registration_id: id,
        })
    }

    /// Creates and registers a new agent named `<base>-<suffix>`.
    pub async fn new_agent(&mut self, base: &str, kind: KeyKind) -> Result<Registered, Out> {
        let agent = Agent::new(&self.name(base), kind)?;
        self.register(&agent).await
    }

    /// POST a workflow registration with the admin client token.
    pub async fn register_workflow(&mut self, body: &Value) -> Result<Resp, Out> {
        let url = self.ep.workflow_registration.clone();
        let token = self.admin.clone();
        let r = self
            .http
            .post_json(&url, Some(&token), body)
            .await
            .map_err(|e| Out::Fail(format!("POST {url}: {e}")))?;
        if self.registrations_seen.len() < 200 {
            self.registrations_seen
                .push(("workflow registration".to_owned(), r.clone()));
        }
        Ok(r)
    }

    /// The main agent (Ed25519), registered on first use. A failure is
    /// remembered: every test that needs the agent is skipped with it.
    pub async fn main_agent(&mut self) -> Result<Registered, Out> {
        if self.main.is_none() {
            let r = self.new_agent("conformance-main", KeyKind::Ed25519).await;
            self.main = Some(r.map_err(|e| match e {
                Out::Fail(s) | Out::Skip(s) => s,
            }));
        }
        match &self.main {
            Some(Ok(r)) => Ok(r.clone()),
            Some(Err(e)) => Err(Out::Skip(format!("prerequisite failed: {e}"))),
            None => Err(Out::Skip("prerequisite failed".into())),
        }
    }

    /// The issuer's JWK Set, fetched on first use.
    pub async fn jwks(&mut self) -> Result<Value, Out> {
        if let Some(j) = &self.jwks {
            return Ok(j.clone());
        }
        let url = self.ep.jwks.clone();
        let r = self
            .http
            .get(&url)
            .await
            .map_err(|e| Out::Fail(format!("GET {url}: {e}")))?;
        match &r.json {
            Some(v) if r.status == 200 && v.get("keys").is_some_and(Value::is_array) => {
                self.jwks = Some(v.clone());
                Ok(v.clone())
            }
            _ => Err(Out::Fail(format!(
                "GET {url}: expected 200 with a JWK Set, got {}",
                r.summary()
            ))),
        }
    }

    /// Re-fetches the JWK Set (after key rotation).
    pub async fn refresh_jwks(&mut self) -> Result<Value, Out> {
        self.jwks = None;
        self.jwks().await
    }

    /// A client token for `scope` (RFC 6749 §4.4); `Skip` when the issuer
    /// does not grant it.
    pub async fn scoped_token(&mut self, scope: &str) -> Result<String, Out> {
        let url = self.ep.token.clone();
        let auth = client::basic(&self.client_id, &self.client_secret);
        let r = self
            .http
            .post_form(
                &url,
                Some(&auth),
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await
            .map_err(|e| Out::Fail(format!("POST {url}: {e}")))?;
        match (r.status, r.str_member("access_token")) {
            (200, Some(t)) => Ok(t.to_owned()),
            _ => Err(Out::Skip(format!(
                "the issuer does not grant this client a token with scope '{scope}': {}",
                r.summary()
            ))),
        }
    }
}

/// Runs one test: when `id` is wanted, runs `body` and records its result.
macro_rules! test {
    ($ctx:expr, $id:expr, $body:expr) => {
        if $ctx.run.wants($id) {
            $ctx.run.start_timer();
            let check = $crate::issuer::checks::to_check($body.await);
            $ctx.run.record($id, check);
        }
    };
}
pub(crate) use test;

/// Obtains the client token (RFC 6749 §4.4, HTTP Basic). Wrong credentials
/// are a setup error: nothing can be tested without them.
async fn client_token(
    http: &Http,
    ep: &Endpoints,
    id: &str,
    secret: &str,
) -> Result<String, Error> {
    let r = http
        .post_form(
            &ep.token,
            Some(&client::basic(id, secret)),
            &[("grant_type", "client_credentials")],
        )
        .await
        .map_err(|e| Error::Setup(format!("cannot reach the token endpoint {}: {e}", ep.token)))?;
    match (r.status, r.str_member("access_token")) {
        (200, Some(t)) => Ok(t.to_owned()),
        (400 | 401, _) if r.error_code() == Some("invalid_client") => Err(Error::Setup(format!(
            "client authentication failed at {} ({}): check --client-id and --client-secret",
            ep.token,
            r.summary()
        ))),
        _ => Err(Error::Setup(format!(
            "cannot obtain a client token with client_credentials at {}: {}",
            ep.token,
            r.summary()
        ))),
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Runs the mode.
pub async fn run(args: &IssuerArgs, options: RunOptions) -> Result<Report, Error> {
    let base = args.base_url.trim().trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Error::Setup(format!(
            "--base-url must be an http:// or https:// URL, got '{}'",
            args.base_url
        )));
    }
    let (Some(client_id), Some(client_secret)) = (&args.client_id, &args.client_secret) else {
        return Err(Error::Setup(
            "--client-id and --client-secret (or AJWT_CONFORMANCE_CLIENT_ID / _SECRET) are required: \
             the plan registers agents and workflows and requests intent tokens"
                .into(),
        ));
    };
    let run = Run::new("issuer", &base, catalogue(), options)?;
    let http = Http::new(&base, Duration::from_secs(args.timeout_secs.max(1)))?;
    let overrides = PathOverrides {
        token: args.token_path.clone(),
        agent_registration: args.agent_registration_path.clone(),
        workflow_registration: args.workflow_registration_path.clone(),
        jwks: args.jwks_path.clone(),
    };
    let ep = client::discover(&http, &overrides).await?;
    let admin = client_token(&http, &ep, client_id, client_secret).await?;
    let expected_iss = ep.issuer.clone().unwrap_or_else(|| base.clone());
    let mut ctx = Ctx {
        run,
        http,
        client_id: client_id.clone(),
        client_secret: client_secret.clone(),
        admin,
        suffix: random_suffix(),
        audience: args.token_audience.clone(),
        key_format: args.key_format,
        expected_iss,
        jwks: None,
        main: None,
        errors_seen: Vec::new(),
        tokens_seen: Vec::new(),
        registrations_seen: Vec::new(),
        ep,
    };
    ctx.run.version("vectors", crate::vectors_version());
    let notes = vec![
        format!(
            "metadata: {}",
            match (&ctx.ep.metadata_problem, &ctx.ep.metadata_url) {
                (None, Some(url)) => format!("RFC 8414 metadata found at {url}"),
                (None, None) => "RFC 8414 metadata found".to_owned(),
                (Some(p), _) => format!("none ({p}); using configured or default paths"),
            }
        ),
        format!("token endpoint: {}", ctx.ep.token),
        format!("agent registration: {}", ctx.ep.agent_registration),
        format!("workflow registration: {}", ctx.ep.workflow_registration),
        format!("jwks: {}", ctx.ep.jwks),
        format!(
            "admin hooks: revoke {}, rotate {}",
            ctx.ep.admin_revoke.as_deref().unwrap_or("not offered"),
            ctx.ep.admin_rotate.as_deref().unwrap_or("not offered")
        ),
        format!("run suffix: {}", ctx.suffix),
    ];
    for n in notes {
        ctx.run.note(n);
    }
    ctx.run.announce();

    plan_protect::run(&mut ctx).await;
    plan_register::run(&mut ctx).await;
    plan_token::run(&mut ctx).await;
    plan_workflow::run(&mut ctx).await;
    plan_claims::run(&mut ctx).await;
    // Introspection, revocation and status lists (issue 13).
    plan_lifecycle::run(&mut ctx).await;
    // Key rotation and revocation change the issuer's state: last.
    plan_admin::run(&mut ctx).await;
    // Headers of every response seen by the plan.
    plan_claims::run_headers(&mut ctx);
    Ok(ctx.run.finish())
}

/// Skip helper for tests whose prerequisite produced no value.
pub(crate) fn skip(reason: impl Into<String>) -> T {
    Err(Out::Skip(reason.into()))
}

/// `Check` for a prerequisite failure reported to several tests.
pub(crate) fn skip_reason(e: &Out) -> String {
    match e {
        Out::Fail(s) => format!("prerequisite failed: {s}"),
        Out::Skip(s) => s.clone(),
    }
}
