//! Test stores on the PostgreSQL server: each test gets a schema of its own, named uniquely and
//! dropped when the test ends, so tests run in parallel against one database. The server is
//! `STOCKYARD_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`, what CI starts).
//!
//! An unreachable server fails the test, naming the URL and the way out: a PostgreSQL suite that
//! silently passed without a server would prove nothing. `STOCKYARD_SKIP_PG=1` skips instead,
//! with the reason printed.

use std::sync::atomic::{AtomicU64, Ordering};

use super::conn::{Target, once};
use crate::store::StoreUrl;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema that lives as long as this value.
pub struct PgSchema {
    pub url: StoreUrl,
    base: StoreUrl,
    name: String,
}

/// `None` (with the reason printed) when `STOCKYARD_SKIP_PG=1`.
///
/// # Panics
///
/// When the server cannot be reached or the schema cannot be made: the test fails by design.
pub fn schema() -> Option<PgSchema> {
    if std::env::var("STOCKYARD_SKIP_PG").is_ok_and(|v| v == "1") {
        eprintln!("skipped: STOCKYARD_SKIP_PG=1 (no PostgreSQL tests)");
        return None;
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base_text = std::env::var("STOCKYARD_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.into());
    let base = StoreUrl::parse(&base_text).unwrap_or_else(|e| panic!("STOCKYARD_TEST_PG: {e}"));
    let name = format!(
        "sy_{}_{}_{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
    run(&base, &format!("CREATE SCHEMA {name}"));
    let sep = if base_text.contains('?') { '&' } else { '?' };
    let url = StoreUrl::parse(&format!("{base_text}{sep}options=-csearch_path%3D{name}"))
        .unwrap_or_else(|e| panic!("{e}"));
    Some(PgSchema { url, base, name })
}

fn run(base: &StoreUrl, sql: &str) {
    if let Err(e) = execute(base, sql) {
        panic!(
            "PostgreSQL tests need a server at {base} (set STOCKYARD_TEST_PG, or \
             STOCKYARD_SKIP_PG=1 to skip them): {e}"
        );
    }
}

/// Runs `sql` on a connection of its own to `base`.
fn execute(base: &StoreUrl, sql: &str) -> Result<(), crate::store::StoreError> {
    let target = Target::parse(base)?;
    once(async || Ok(target.connect().await?.batch_execute(sql).await?))
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // A failed drop leaves a schema behind; it must not turn a passing test into a panic.
        let _ = execute(&self.base, &sql);
    }
}
