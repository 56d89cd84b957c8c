//! The data directory: store, signing keys and `admin-client.json`.

use std::sync::Arc;

use super::*;
use std::path::{Path, PathBuf};

use crate::store::cache::CachedStore;
use crate::store::{ClientRecord, StoreError};

/// Failure to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// Data directory problems.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// Store failure.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Key failure.
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    /// The listening socket could not be opened.
    #[error("listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Encryption at rest could not start (§9.1.4, I-112).
    #[error("encryption at rest: {0}")]
    Sealing(#[from] crate::store::sealed::StartError),
}

fn data_dir_error(path: &Path, reason: impl ToString) -> StartupError {
    StartupError::DataDir {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `bytes` to `path` with mode 0600, atomically (the one implementation, `ajwt_fs`).
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    ajwt_fs::write_private(path, bytes)
}

impl Issuer {
    /// Opens the data directory: creates it (0700) if needed, opens the SQLite
    /// store (`ajwt.sqlite3`, migrations on first start) behind the agent
    /// cache, loads or generates the signing keys, and on a store without
    /// clients creates the admin client (see `bootstrap_admin_client`,
    /// crash-safe, I-68). Returns the path of `admin-client.json` when it was
    /// just written.
    pub async fn open(config: IssuerConfig) -> Result<(Issuer, Option<PathBuf>), StartupError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| data_dir_error(&dir, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| data_dir_error(&dir, e))?;
        }
        // The configured backend (I-117): SQLite in `dir`, or PostgreSQL;
        // encryption at rest (§9.1.4, I-112) below the cache and audit decorators.
        let backend = crate::store::open_backend(&config).await?;
        let sealed = crate::store::sealed::open(backend, config.kek_file.as_deref(), &dir).await?;
        let store: Arc<dyn crate::store::Store> = Arc::new(CachedStore::new(sealed));
        let now = u64::try_from(SystemClock.now()).unwrap_or(0);
        // I-110: the keys live in the store (legacy key files of the data
        // directory are imported once and deleted).
        let (alg, policy) = (config.signing_alg, config.rotation_policy());
        let keys = crate::key_store::load(&*store, Some(&dir), alg, policy, now).await?;
        let issuer = Issuer::new(config, store, Arc::new(keys), Arc::new(SystemClock));
        let mut created = None;
        if issuer.store.client_count().await? == 0 {
            created = issuer.bootstrap_admin_client(&dir).await?;
        }
        Ok((issuer, created))
    }

    /// Creates the bootstrap admin client, crash-safe (I-68): the
    /// credentials are generated and written to `admin-client.json`
    /// atomically (temp file + rename, 0600) FIRST, and only then is the
    /// client inserted into the store (one SQLite transaction). A kill
    /// before the insert commits leaves a store without clients, whatever
    /// the file holds (nothing, or credentials nobody can use), so the next
    /// start runs this again and replaces the file; a kill after it leaves
    /// the file and the client matching. The store never holds a client
    /// whose secret is in no file, and a replaced file never held a secret
    /// the store accepts, so there are never two valid admin secrets.
    ///
    /// Replicas (I-116): the client is inserted with `insert_first_client`,
    /// so of replicas starting together on one empty database exactly one
    /// creates it; the others remove the file they wrote (it holds
    /// credentials the store does not know) and return `None`.
    async fn bootstrap_admin_client(&self, dir: &Path) -> Result<Option<PathBuf>, StartupError> {
        let scopes = vec![
            SCOPE_REGISTER.to_owned(),
            SCOPE_GENERATE.to_owned(),
            SCOPE_ADMIN.to_owned(),
            // RFC 7662 introspection (I-80), so the operator can create
            // resource-server clients holding it.
            SCOPE_INTROSPECT.to_owned(),
        ];
        let creds = ClientCredentials {
            client_id: crate::secrets::generate_client_id(),
            client_secret: crate::secrets::generate_secret(),
        };
        // A generated secret: stored as its SHA-256 digest (I-72).
        let secret_hash = crate::secrets::hash_generated_secret(&creds.client_secret);
        let path = dir.join(ADMIN_CLIENT_FILE);
        if path.exists() {
            tracing::warn!(
                file = %path.display(),
                "the store has no clients but admin-client.json exists (an interrupted first start): writing new admin credentials (I-68)"
            );
        }
        let json = serde_json::to_vec_pretty(&creds).map_err(|e| data_dir_error(dir, e))?;
        write_private_file(&path, &json).map_err(|e| data_dir_error(&path, e))?;
        let inserted = self
            .store
            .insert_first_client(&ClientRecord {
                client_id: creds.client_id.clone(),
                secret_hash,
                allowed_scopes: scopes,
                created_at_ms: self.clock.now() * 1000,
                description: Some("bootstrap admin client".to_owned()),
            })
            .await?;
        if !inserted {
            // Another replica created the first client meanwhile (I-116).
            if std::fs::read(&path).is_ok_and(|b| b == json) {
                let _ = std::fs::remove_file(&path);
            }
            tracing::info!("a client already exists (created by another replica): no admin client created here");
            return Ok(None);
        }
        tracing::info!(client_id = %creds.client_id, file = %path.display(), "bootstrap admin client created");
        // Audit trail (I-100): created by the issuer itself.
        let event = crate::audit::AuditEvent::ClientRegistered {
            client_id: creds.client_id.clone(),
            scopes: vec![
                SCOPE_REGISTER.to_owned(),
                SCOPE_GENERATE.to_owned(),
                SCOPE_ADMIN.to_owned(),
            ],
        };
        self.audit_logged(event, None).await;
        Ok(Some(path))
    }
}
