//! The test issuer: a minimal authorization server on a loopback port that
//! publishes RFC 8414 metadata (`issuer`, `jwks_uri`) and a JWK Set with ONE
//! key, so the resource server under test trusts exactly that key (§6.5.3
//! step 2). It issues nothing over HTTP: the runner signs tokens itself.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Error;

/// A running test issuer; stopped on [`TestIssuer::stop`] or when dropped.
#[derive(Debug)]
pub struct TestIssuer {
    /// The issuer identifier: `http://ADDR` as requested, or with the bound
    /// address when the requested port is 0.
    pub issuer: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestIssuer {
    /// Listens on `addr` (port 0 picks a free port) and serves the metadata
    /// and `jwks` (a JWK Set document).
    pub async fn start(addr: &str, jwks: Value) -> Result<TestIssuer, Error> {
        let requested = addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Setup(format!("test issuer cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Setup(format!("test issuer address: {e}")))?;
        // The identifier is `http://ADDR` as given; with port 0 the bound
        // address names the port actually used.
        let issuer = match requested.rsplit_once(':') {
            Some((_, "0")) | None => format!("http://{addr}"),
            Some(_) => format!("http://{requested}"),
        };
        let metadata = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}/intent/token"),
            "response_types_supported": [],
            "grant_types_supported": ["agent_checksum"],
        });
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || {
                    let m = metadata.clone();
                    async move { Json(m) }
                }),
            )
            .route(
                "/.well-known/jwks.json",
                get(move || {
                    let j = jwks.clone();
                    async move { Json(j) }
                }),
            );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(TestIssuer {
            issuer,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Connections kept alive by the resource server would delay a
            // graceful shutdown: bound the wait, then abort.
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_rfc8414_metadata_naming_itself_and_the_jwks() {
        let jwks = json!({"keys": [{"kty": "EC", "kid": "k"}]});
        let issuer = TestIssuer::start("127.0.0.1:0", jwks.clone())
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let meta: Value = http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                issuer.issuer
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["issuer"], issuer.issuer.as_str());
        assert_eq!(issuer.issuer, format!("http://{}", issuer.addr));
        let got: Value = http
            .get(meta["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got, jwks);
        issuer.stop().await;
    }

    #[tokio::test]
    async fn the_identifier_is_the_requested_address_when_a_port_is_given() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let issuer = TestIssuer::start(&format!("localhost:{port}"), json!({"keys": []}))
            .await
            .unwrap();
        assert_eq!(issuer.issuer, format!("http://localhost:{port}"));
        issuer.stop().await;
    }
}
