//! Fresh databases for tests: a temporary SQLite file always, and a new PostgreSQL database per
//! test when `TALLYMAN_TEST_PG` names a server (e.g. `postgres://postgres@127.0.0.1:5432/test`).
//! Without it the PostgreSQL half of each test is skipped with a visible message.

use std::path::PathBuf;
use std::sync::Once;

use sqlx::Connection;
use uuid::Uuid;

pub const PG_ENV: &str = "TALLYMAN_TEST_PG";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this test run covers.
pub fn backends() -> Vec<Backend> {
    static NOTICE: Once = Once::new();
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => vec![Backend::Sqlite, Backend::Postgres],
        _ => {
            NOTICE.call_once(|| {
                eprintln!(
                    "NOTE: PostgreSQL tests skipped; set {PG_ENV}=postgres://postgres@127.0.0.1:5432/test to run them"
                );
            });
            vec![Backend::Sqlite]
        }
    }
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    temp_dir: Option<PathBuf>,
    pg_cleanup: Option<(String, String)>,
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("tallyman-test-{}", Uuid::new_v4()));
                std::fs::create_dir_all(&dir).expect("create temp dir");
                let url = format!("sqlite://{}", dir.join("test.db").display());
                Self {
                    backend,
                    url,
                    temp_dir: Some(dir),
                    pg_cleanup: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var(PG_ENV).expect("TALLYMAN_TEST_PG is set");
                let name = format!("tallyman_t_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to TALLYMAN_TEST_PG");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                Self {
                    backend,
                    url: with_database(&admin, &name),
                    temp_dir: None,
                    pg_cleanup: Some((admin, name)),
                }
            }
        }
    }

    /// Runs raw SQL against the database, for tests that break things on purpose.
    pub async fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut c).await?;
                c.close().await
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::query(sql).execute(&mut c).await?;
                c.close().await
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = self.pg_cleanup.take() {
            // Drop may run inside a runtime; do the async cleanup on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                        let _ = c.close().await;
                    }
                });
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_swapped() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
