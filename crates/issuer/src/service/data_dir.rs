//! The data directory: store, signing keys and `admin-client.json`.

use std::sync::Arc;

use super::*;
use std::path::{Path, PathBuf};

use crate::keys::KeyRing;
use crate::store::cache::CachedStore;
use crate::store::sqlite::SqliteStore;
use crate::store::StoreError;

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
    /// cache, loads or generates the signing keys, and on an empty store
    /// creates the admin client and writes `admin-client.json` (0600).
    /// Returns the path of that file when it was just created.
    pub async fn open(config: IssuerConfig) -> Result<(Issuer, Option<PathBuf>), StartupError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| data_dir_error(&dir, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| data_dir_error(&dir, e))?;
        }
        let store = SqliteStore::open(&dir.join("ajwt.sqlite3")).await?;
        let keys = KeyRing::load_or_generate(&dir, config.signing_alg)?;
        let issuer = Issuer::new(
            config,
            Arc::new(CachedStore::new(store)),
            Arc::new(keys),
            Arc::new(SystemClock),
        );
        let mut created = None;
        if issuer.store.client_count().await? == 0 {
            let creds = issuer
                .create_client(
                    vec![
                        SCOPE_REGISTER.to_owned(),
                        SCOPE_GENERATE.to_owned(),
                        SCOPE_ADMIN.to_owned(),
                    ],
                    Some("bootstrap admin client".to_owned()),
                )
                .await
                .map_err(|e| data_dir_error(&dir, e))?;
            let path = dir.join(ADMIN_CLIENT_FILE);
            let json = serde_json::to_vec_pretty(&creds).map_err(|e| data_dir_error(&dir, e))?;
            write_private_file(&path, &json).map_err(|e| data_dir_error(&path, e))?;
            created = Some(path);
        }
        Ok((issuer, created))
    }
}
