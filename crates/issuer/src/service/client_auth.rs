//! Client authentication: OAuth clients, the `client_credentials` grant
//! (RFC 6749 §4.4, RFC 9068) and client access tokens at the protected
//! endpoints (§4.2.3, §9.1.3).

use ajwt_protocol::error::OAuthError;
use serde_json::{json, Map, Value};

use super::*;
use ajwt_protocol::audience::aud_contains;
use ajwt_protocol::scope::{
    is_scope_token, is_subset, join_scopes, parse_scope_string, scopes_not_held,
};
use ajwt_protocol::time;
use ajwt_protocol::wire::TokenResponse;

use crate::secrets;
use crate::store::ClientRecord;

/// Clock skew accepted on a client token's `iat` (RFC 7519 §4.1.6), in seconds.
const CLIENT_IAT_LEEWAY: i64 = 60;

/// The bootstrap admin client written to `<data-dir>/admin-client.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientCredentials {
    /// Client id.
    pub client_id: String,
    /// Client secret (shown once; stored only as a hash, I-72).
    pub client_secret: String,
}

/// A verified client access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The client.
    pub client_id: String,
    /// Its granted scopes.
    pub scopes: Vec<String>,
}

impl Issuer {
    /// Creates an OAuth client allowed `scopes`; returns its credentials (the
    /// secret is returned once and stored only as its SHA-256 digest, I-72).
    pub async fn create_client(
        &self,
        scopes: Vec<String>,
        description: Option<String>,
    ) -> Result<ClientCredentials, ApiError> {
        if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
            return Err(OAuthError::InvalidScope {
                description: format!("Malformed scope: '{bad}'"),
                refused: vec![bad.clone()],
            }
            .into());
        }
        let client_id = secrets::generate_client_id();
        let client_secret = secrets::generate_secret();
        // A generated 256-bit secret is stored as its SHA-256 digest (I-72).
        let secret_hash = secrets::hash_generated_secret(&client_secret);
        self.store
            .insert_client(&ClientRecord {
                client_id: client_id.clone(),
                secret_hash,
                allowed_scopes: scopes,
                created_at_ms: self.clock.now() * 1000,
                description,
            })
            .await?;
        Ok(ClientCredentials {
            client_id,
            client_secret,
        })
    }

    /// [`Issuer::create_client`] on behalf of the authenticated client `by`
    /// (`POST /intent/register/client`), recorded in the audit trail
    /// (I-100; never the secret).
    pub async fn create_client_as(
        &self,
        scopes: Vec<String>,
        description: Option<String>,
        by: &ClientContext,
    ) -> Result<ClientCredentials, ApiError> {
        let creds = self.create_client(scopes.clone(), description).await?;
        let event = crate::audit::AuditEvent::ClientRegistered {
            client_id: creds.client_id.clone(),
            scopes,
        };
        self.audit_logged(event, Some(&by.client_id)).await;
        Ok(creds)
    }

    /// The `client_credentials` grant (RFC 6749 §4.4): authenticates the
    /// client (`basic` from HTTP Basic, or `client_id`/`client_secret` in
    /// `params`, never both) and issues an RFC 9068 access token with the
    /// requested scopes (all the client's scopes when `scope` is absent).
    pub async fn client_credentials(
        &self,
        params: &[(String, String)],
        basic: Option<(String, String)>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<TokenResponse, ApiError> {
        let param = |name: &str| non_empty_param(params, name);
        let client = self.authenticate_client(params, basic, peer).await?;
        let granted = match param("scope") {
            None => client.allowed_scopes.clone(),
            Some(s) => {
                let requested = parse_scope_string(s).ok_or_else(|| {
                    ApiError::from(OAuthError::InvalidScope {
                        description: format!("Malformed scope: '{s}'"),
                        refused: vec![s.to_owned()],
                    })
                })?;
                let refused: Vec<String> = scopes_not_held(&requested, &client.allowed_scopes)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if !refused.is_empty() {
                    return Err(OAuthError::InvalidScope {
                        description: format!(
                            "Scopes not allowed for this client: {}",
                            refused.join(" ")
                        ),
                        refused,
                    }
                    .into());
                }
                requested
            }
        };
        let now = self.clock.now();
        let lifetime = self.config.client_token_lifetime;
        let scope = join_scopes(&granted);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.config.issuer));
        claims.insert("sub".into(), json!(client.client_id));
        claims.insert("aud".into(), json!(self.config.client_audience));
        claims.insert("client_id".into(), json!(client.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + lifetime as i64));
        claims.insert("jti".into(), json!(random_b64(16)));
        claims.insert("scope".into(), json!(scope));
        let token = self
            .key_ring()
            .sign(TYP_ACCESS_TOKEN, &claims)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        self.metrics.token_issued("client_credentials"); // I-114
        Ok(TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: Some(lifetime),
            scope: Some(scope),
        })
    }

    /// Client authentication with the client's secret (RFC 6749 §2.3.1):
    /// `basic` from HTTP Basic (`client_secret_basic`) or `client_id` and
    /// `client_secret` in `params` (`client_secret_post`), never both; under
    /// the authentication rate limits (I-73). The one rule set of the token
    /// endpoint, also used by revocation and introspection (RFC 7009 §2.1,
    /// RFC 7662 §2.1).
    pub async fn authenticate_client(
        &self,
        params: &[(String, String)],
        basic: Option<(String, String)>,
        peer: Option<std::net::IpAddr>,
    ) -> Result<ClientRecord, ApiError> {
        let param = |name: &str| non_empty_param(params, name);
        let posted = match (param("client_id"), param("client_secret")) {
            (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
            (None, None) => None,
            _ => {
                return Err(ApiError::InvalidClient(
                    "client_secret_post needs both client_id and client_secret".into(),
                ))
            }
        };
        let (client_id, secret) = match (basic, posted) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::InvalidRequest(
                    "Use only one client authentication method (RFC 6749 §2.3)".into(),
                )
                .into())
            }
            (Some(b), None) | (None, Some(b)) => b,
            (None, None) => {
                return Err(ApiError::InvalidClient(
                    "Client authentication required".into(),
                ))
            }
        };
        // I-73: a peer or client with too many recent failures is refused
        // before its secret is looked at.
        self.limits.check_auth(peer, &client_id).await?;
        let client = self.store.client(&client_id).await?;
        // Verify against a dummy digest for unknown clients, so that timing
        // does not reveal which client ids exist (I-72).
        let stored = client
            .as_ref()
            .map_or_else(|| dummy_digest().to_owned(), |c| c.secret_hash.clone());
        let ok = if secrets::is_slow(&stored) {
            // An Argon2 hash (operator-chosen secret, or stored by an earlier
            // version): bounded by the process-wide limiter (issue 12 defect 1).
            secrets::SlowHashes::global()
                .verify(secret, stored)
                .await
                .map_err(|e| match e {
                    secrets::SlowHashError::Busy(_) => ApiError::Busy {
                        retry_after_secs: 1,
                    },
                    other => ApiError::Internal(other.to_string()),
                })?
        } else {
            secrets::verify_stored(&secret, &stored)
        };
        let known = client.is_some();
        let Some(client) = client.filter(|_| ok) else {
            self.limits
                .auth_failed(peer, known.then_some(client_id.as_str()))
                .await;
            return Err(ApiError::InvalidClient(
                "Client authentication failed".into(),
            ));
        };
        Ok(client)
    }

    /// Checks an `Authorization` header value carrying a client access token
    /// of this issuer with the client-token audience and `required_scope`
    /// (§4.2.3, §9.1.3).
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        required_scope: &str,
    ) -> Result<ClientContext, ApiError> {
        let header = authorization
            .ok_or_else(|| ApiError::InvalidToken("Missing bearer token (RFC 6750)".into()))?;
        let token = match header.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                t.trim()
            }
            _ => {
                return Err(ApiError::InvalidToken(
                    "Authorization must be 'Bearer <token>'".into(),
                ))
            }
        };
        // I-145: a token verified before (same SHA-256) whose key is still
        // published skips the signature; exp, iat and scope are checked below
        // on every use, hit or miss.
        let key = client_token_cache::digest(token);
        let ring = self.key_ring();
        let now = self.clock.now();
        let verified = match self.client_tokens.get(&key, |kid| ring.publishes(kid)) {
            Some(hit) => hit,
            None => {
                let verified = self.verify_client_token(&ring, token)?;
                // An expired token is not worth a place.
                if time::check_exp(verified.exp, now, 0).is_ok() {
                    self.client_tokens.insert(key, verified.clone());
                }
                verified
            }
        };
        // RFC 7519 §4.1.4/§4.1.6 via the one rule set: our own tokens, so no
        // leeway on exp; CLIENT_IAT_LEEWAY seconds of skew on iat.
        time::check_exp(verified.exp, now, 0)
            .map_err(|_| ApiError::InvalidToken("Token expired".into()))?;
        if let Some(iat) = verified.iat {
            time::check_iat_not_in_future(iat, now, CLIENT_IAT_LEEWAY)
                .map_err(|_| ApiError::InvalidToken("Token issued in the future".into()))?;
        }
        if !is_subset(&[required_scope], &verified.scopes) {
            return Err(ApiError::InsufficientScope {
                scope: required_scope.to_owned(),
            });
        }
        let client_id = verified.client_id;
        let scopes = verified.scopes;
        Ok(ClientContext { client_id, scopes })
    }

    /// The checks of a client access token that do not depend on the time
    /// or the endpoint (§4.2.3): signature by a key of `ring` with `typ`
    /// `at+jwt`, our `iss`, the client-token audience, a `client_id` and an
    /// `exp`. Their outcome is what the cache keeps (I-145).
    fn verify_client_token(
        &self,
        ring: &KeyRing,
        token: &str,
    ) -> Result<client_token_cache::VerifiedClientToken, ApiError> {
        let (claims, kid) = ring
            .verify_with_kid(token, TYP_ACCESS_TOKEN)
            .map_err(|e| ApiError::InvalidToken(format!("Token rejected: {e}")))?;
        let str_claim = |k: &str| claims.get(k).and_then(Value::as_str);
        if str_claim("iss") != Some(self.config.issuer.as_str()) {
            return Err(ApiError::InvalidToken(
                "Token issued by another issuer".into(),
            ));
        }
        if !aud_contains(claims.get("aud"), &self.config.client_audience) {
            return Err(ApiError::InvalidToken(format!(
                "Token audience is not '{}' (§4.2.3)",
                self.config.client_audience
            )));
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::InvalidToken("Token has no exp".into()))?;
        let client_id = str_claim("client_id")
            .ok_or_else(|| ApiError::InvalidToken("Token has no client_id".into()))?
            .to_owned();
        let scopes: Vec<String> = str_claim("scope")
            .and_then(parse_scope_string)
            .unwrap_or_default();
        Ok(client_token_cache::VerifiedClientToken {
            kid,
            exp,
            iat: claims.get("iat").and_then(Value::as_i64),
            client_id,
            scopes,
        })
    }
}

/// The stored digest of a random secret nobody knows, computed once: verified
/// against when a client id is unknown, so unknown and generated-secret
/// clients cost the same (I-72).
fn dummy_digest() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| secrets::hash_generated_secret(&secrets::generate_secret()))
}

/// The first non-empty value of parameter `name` (RFC 6749 §3.1: a parameter
/// sent without a value is treated as omitted).
fn non_empty_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}
