//! A fresh PostgreSQL database per test (issue 14). The server is given by
//! `AJWT_TEST_DATABASE_URL`: a URL of a role that may `CREATE DATABASE`
//! (e.g. `postgres://ajwt:ajwt@127.0.0.1:5432/postgres`, what
//! `.ci/postgres.sh` prints). Without it the caller skips (printing so),
//! except under `CI=true`, where a missing URL is a failure: CI never
//! skips the PostgreSQL tests.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::KitError;

/// The environment variable naming the administration URL.
pub const TEST_DATABASE_URL_VAR: &str = "AJWT_TEST_DATABASE_URL";

/// A database created for one test, dropped (`WITH (FORCE)`) when this
/// value is dropped.
#[derive(Debug)]
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    /// The URL of the new database (password included: for the driver or
    /// `ajwt serve --database-url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`ajwt_t_<test>_<random>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Creates a fresh database named after `test` plus a random suffix, or
/// `Ok(None)` (and prints `SKIPPED <test>`) when `AJWT_TEST_DATABASE_URL`
/// is not set. Panics when it is not set under `CI=true`.
#[allow(clippy::panic)]
pub async fn fresh_postgres_database(test: &str) -> Result<Option<FreshDatabase>, KitError> {
    let Ok(admin_url) = std::env::var(TEST_DATABASE_URL_VAR) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {TEST_DATABASE_URL_VAR} is not set: the PostgreSQL tests must run in CI (.ci/postgres.sh)");
        }
        eprintln!("SKIPPED {test}: {TEST_DATABASE_URL_VAR} is not set (run .ci/postgres.sh)");
        return Ok(None);
    };
    let name = database_name(test);
    let mut admin = admin_connection(&admin_url).await?;
    // The name is made of [a-z0-9_] only (database_name): safe to quote.
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .map_err(|e| KitError::Start(format!("CREATE DATABASE {name}: {e}")))?;
    let _ = admin.close().await;
    let mut url = url::Url::parse(&admin_url)
        .map_err(|e| KitError::Start(format!("{TEST_DATABASE_URL_VAR}: {e}")))?;
    url.set_path(&format!("/{name}"));
    Ok(Some(FreshDatabase {
        admin_url,
        name,
        url: url.to_string(),
    }))
}

async fn admin_connection(admin_url: &str) -> Result<sqlx::PgConnection, KitError> {
    let options = PgConnectOptions::from_str(admin_url)
        .map_err(|e| KitError::Start(format!("{TEST_DATABASE_URL_VAR}: {e}")))?;
    options
        .connect()
        .await
        .map_err(|e| KitError::Start(format!("cannot connect with {TEST_DATABASE_URL_VAR}: {e}")))
}

/// `ajwt_t_<test, [a-z0-9_], at most 32>_<12 hex>` (PostgreSQL names are at
/// most 63 bytes).
fn database_name(test: &str) -> String {
    let clean: String = test
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .take(32)
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        (nanos, std::process::id(), test),
    );
    h &= 0xffff_ffff_ffff;
    format!("ajwt_t_{clean}_{h:012x}")
}

impl Drop for FreshDatabase {
    /// Drops the database on a thread of its own (Drop cannot await; the
    /// caller may be inside a runtime). `WITH (FORCE)` ends connections a
    /// test left open. Failures are printed, never a panic.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                match admin_connection(&admin_url).await {
                    Ok(mut admin) => {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        if let Err(e) = sqlx::query(&sql).execute(&mut admin).await {
                            eprintln!("cannot drop test database {name}: {e}");
                        }
                        let _ = admin.close().await;
                    }
                    Err(e) => eprintln!("cannot drop test database {name}: {e}"),
                }
            });
        });
        let _ = dropper.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_safe_and_unique() {
        let a = database_name("postgres::S4-7-1 \"x\"; DROP");
        let b = database_name("postgres::S4-7-1 \"x\"; DROP");
        assert_ne!(a, b);
        assert!(a.len() <= 63, "{a}");
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
    }
}
