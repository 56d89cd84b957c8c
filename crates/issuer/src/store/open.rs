//! Backend selection (issue 14, I-117): the embedded SQLite file in the
//! data directory when no database URL is configured, the PostgreSQL store
//! shared by replicas for a `postgres://` or `postgresql://` URL; any other
//! URL is refused with a configuration error. Also makes a shared
//! `Arc<dyn Store>` a [`Store`] itself, so the decorators
//! ([`super::cache::CachedStore`], ...) wrap whichever backend was opened.

use std::sync::Arc;

use ajwt_protocol::registration::Workflow;
use async_trait::async_trait;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{
    AgentRecord, ClientRecord, KeyChange, KeyChangeOutcome, NewRegistration, NewTokenRecord,
    RegistrationActivity, RevokedRegistration, SealedKind, StatusIndex, Store, StoreChange,
    StoreError, StoreStats, StoredSigningKey, StoredSpecification, StoredStatusList, TokenRecord,
};
use crate::audit::{AuditCheckpoint, AuditEntry, AuditRecord};
use crate::config::DatabaseUrl;
use crate::IssuerConfig;

/// The SQLite database file in the data directory.
pub const SQLITE_FILE: &str = "ajwt.sqlite3";

/// Which backend a configured database URL selects (I-117).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file (no URL).
    Sqlite,
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
}

/// The backend `url` selects: `None` is SQLite; `postgres://` and
/// `postgresql://` (scheme case-insensitive) are PostgreSQL; anything else
/// is a configuration error naming the scheme, never the password.
pub fn backend_for(url: Option<&DatabaseUrl>) -> Result<Backend, StoreError> {
    let Some(url) = url else {
        return Ok(Backend::Sqlite);
    };
    let scheme = url
        .expose()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(Backend::Postgres),
        Some(other) => Err(StoreError::Backend(format!(
            "configuration: --database-url scheme `{}` is not supported \
             (use postgres:// or postgresql://, or no URL for SQLite in the data directory)",
            other.escape_debug()
        ))),
        None => Err(StoreError::Backend(
            "configuration: --database-url is not a URL \
             (use postgres://user:password@host/database)"
                .to_owned(),
        )),
    }
}

/// Opens the configured store (I-117): [`SqliteStore`] on
/// `<data_dir>/ajwt.sqlite3` (the directory must exist) when
/// `database_url` is `None`, [`PgStore`] (migrations applied, change feed
/// started) for a PostgreSQL URL.
pub async fn open_backend(config: &IssuerConfig) -> Result<Arc<dyn Store>, StoreError> {
    match backend_for(config.database_url.as_ref())? {
        Backend::Sqlite => Ok(Arc::new(
            SqliteStore::open(&config.data_dir.join(SQLITE_FILE)).await?,
        )),
        Backend::Postgres => {
            let url = config
                .database_url
                .as_ref()
                .ok_or_else(|| StoreError::Backend("no database URL".to_owned()))?;
            Ok(Arc::new(PgStore::connect(url).await?))
        }
    }
}

/// A shared store is a store: every call goes to the one behind the `Arc`.
#[async_trait]
impl Store for Arc<dyn Store> {
    async fn register_agent(&self, new: NewRegistration) -> Result<AgentRecord, StoreError> {
        (**self).register_agent(new).await
    }
    async fn latest_registration(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        (**self).latest_registration(agent_id).await
    }
    async fn revoke_agent(&self, agent_id: &str) -> Result<u64, StoreError> {
        (**self).revoke_agent(agent_id).await
    }
    async fn registrations(&self, agent_id: &str) -> Result<Vec<AgentRecord>, StoreError> {
        (**self).registrations(agent_id).await
    }
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        (**self).insert_workflow(workflow).await
    }
    async fn workflow(&self, workflow_id: &str) -> Result<Option<Arc<Workflow>>, StoreError> {
        (**self).workflow(workflow_id).await
    }
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        (**self).insert_client(client).await
    }
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        (**self).client(client_id).await
    }
    async fn client_count(&self) -> Result<u64, StoreError> {
        (**self).client_count().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        (**self).ping().await
    }
    async fn close(&self) {
        (**self).close().await
    }
    async fn record_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<StatusIndex, StoreError> {
        (**self).record_token(token, list_size, random).await
    }
    async fn token_record(&self, jti: &str) -> Result<Option<TokenRecord>, StoreError> {
        (**self).token_record(jti).await
    }
    async fn reserve_token(
        &self,
        token: NewTokenRecord,
        list_size: u32,
        random: u64,
    ) -> Result<crate::store::TokenReservation, StoreError> {
        (**self).reserve_token(token, list_size, random).await
    }
    async fn finish_token(
        &self,
        reservation: crate::store::TokenReservation,
        audit: Option<crate::audit::AuditEntry>,
    ) -> Result<Option<crate::audit::AuditRecord>, StoreError> {
        (**self).finish_token(reservation, audit).await
    }
    async fn revoke_token(&self, jti: &str, at_ms: i64) -> Result<u64, StoreError> {
        (**self).revoke_token(jti, at_ms).await
    }
    async fn revoke_agent_tokens(&self, agent_id: &str, at_ms: i64) -> Result<u64, StoreError> {
        (**self).revoke_agent_tokens(agent_id, at_ms).await
    }
    async fn revoke_registration(
        &self,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<Option<RevokedRegistration>, StoreError> {
        (**self).revoke_registration(registration_id, at_ms).await
    }
    async fn status_list(&self, list_id: i64) -> Result<Option<StoredStatusList>, StoreError> {
        (**self).status_list(list_id).await
    }
    async fn prune_tokens(&self, before: i64) -> Result<u64, StoreError> {
        (**self).prune_tokens(before).await
    }
    async fn record_checksum_mismatch(
        &self,
        agent_id: &str,
        registration_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        (**self)
            .record_checksum_mismatch(agent_id, registration_id, at_ms)
            .await
    }
    async fn registration_activity(
        &self,
        agent_id: &str,
    ) -> Result<Vec<RegistrationActivity>, StoreError> {
        (**self).registration_activity(agent_id).await
    }
    async fn registration_specification(
        &self,
        registration_id: &str,
    ) -> Result<Option<StoredSpecification>, StoreError> {
        (**self).registration_specification(registration_id).await
    }
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        (**self).append_audit(entry).await
    }
    async fn audit_records(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        (**self).audit_records(after_seq, limit).await
    }
    async fn audit_last(&self, n: u32) -> Result<Vec<AuditRecord>, StoreError> {
        (**self).audit_last(n).await
    }
    async fn append_audit_checkpoint(
        &self,
        checkpoint: &AuditCheckpoint,
    ) -> Result<(), StoreError> {
        (**self).append_audit_checkpoint(checkpoint).await
    }
    async fn latest_audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        (**self).latest_audit_checkpoint().await
    }
    async fn insert_first_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        (**self).insert_first_client(client).await
    }
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        (**self).signing_keys().await
    }
    async fn apply_key_change(&self, change: KeyChange) -> Result<KeyChangeOutcome, StoreError> {
        (**self).apply_key_change(change).await
    }
    async fn sealed_heads(
        &self,
        kind: SealedKind,
        max_heads: u32,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError> {
        (**self).sealed_heads(kind, max_heads).await
    }
    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String)>, StoreError> {
        (**self).sealed_values(kind, after, limit).await
    }
    async fn replace_sealed_value(
        &self,
        kind: SealedKind,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        (**self).replace_sealed_value(kind, id, old, new).await
    }
    async fn rate_limit_take(
        &self,
        key: &str,
        burst: u32,
        interval_ms: u64,
        now_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        (**self)
            .rate_limit_take(key, burst, interval_ms, now_ms)
            .await
    }
    async fn rate_limit_block(&self, key: &str, until_ms: i64) -> Result<(), StoreError> {
        (**self).rate_limit_block(key, until_ms).await
    }
    async fn rate_limit_blocked_until(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        (**self).rate_limit_blocked_until(keys, now_ms).await
    }
    async fn remember_once(
        &self,
        scope: &str,
        value: &str,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        (**self).remember_once(scope, value, expires_ms).await
    }
    async fn prune_shared_state(&self, now_ms: i64) -> Result<u64, StoreError> {
        (**self).prune_shared_state(now_ms).await
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        (**self).stats().await
    }
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        (**self).changes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> DatabaseUrl {
        DatabaseUrl::new(s)
    }

    #[test]
    fn i117_url_schemes_select_the_backend() {
        assert_eq!(backend_for(None).unwrap(), Backend::Sqlite);
        for ok in [
            "postgres://u:p@h/db",
            "postgresql://u:p@h:5432/db?sslmode=require",
            "POSTGRES://h/db",
        ] {
            assert_eq!(
                backend_for(Some(&url(ok))).unwrap(),
                Backend::Postgres,
                "{ok}"
            );
        }
        for bad in ["mysql://u:hunter2@h/db", "sqlite:///tmp/x.db", "hunter2"] {
            let e = backend_for(Some(&url(bad))).unwrap_err().to_string();
            assert!(e.contains("configuration"), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{bad}: {e}");
        }
    }
}
