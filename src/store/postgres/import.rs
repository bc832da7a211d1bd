//! `stockyard migrate-store`: a single node's SQLite file copied into an empty PostgreSQL store,
//! every table row for row (ledger entries with their hashes and MACs as they are, so the chain
//! verifies there under the same ledger key; traces keep their rowids as `row_id`, so console
//! cursors and roll-ups line up). One transaction: a failure leaves the target as it was.
//!
//! The copy is driven by the target's columns (`information_schema`), each value converted to
//! the column's type (SQLite keeps booleans as 0/1 integers), so a table added to both schemas
//! is copied without a change here.

use std::path::Path;

use rusqlite::types::Value;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::conn::{Target, once};
use super::read::get;
use crate::ledger::LedgerKey;
use crate::store::{StoreError, StoreUrl};

/// Tables only one backend has: SQLite's roll-up cursor, our own schema version row, and the
/// counter rows nodes share (a single node counts in memory).
const SKIPPED: &[&str] = &["stockyard_schema", "rollup_state", "counter_shares"];

/// Columns kept as a BIGSERIAL on PostgreSQL whose sequences must move past the copied values.
const SERIALS: &[(&str, &str)] = &[
    ("traces", "row_id"),
    ("mcp_calls", "row_id"),
    ("budget_alerts", "id"),
    ("alerts", "id"),
    ("price_files", "id"),
];

/// Rows copied, by table.
pub type CopyReport = Vec<(String, u64)>;

/// Copies the SQLite file at `from` into the empty PostgreSQL store `to`. The file is opened as
/// a server would open it first (migrated, its console roll-ups caught up), so the caller must
/// hold its lock; `key` is its ledger key, which the PostgreSQL store must be run with too.
pub fn copy_sqlite(from: &Path, to: &StoreUrl, key: LedgerKey) -> Result<CopyReport, StoreError> {
    drop(crate::store::sqlite::SqliteStore::open(from, key.clone())?);
    drop(super::PgStore::open(to, key, None)?);
    let target = Target::parse(to)?;
    let from = from.to_path_buf();
    // On a runtime of its own (`once`), so the SQLite rows are read between the inserts' awaits
    // on one thread, not gathered first.
    once(async move || {
        let source = rusqlite::Connection::open_with_flags(
            &from,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut client = target.connect().await?;
        let tx = client.transaction().await?;
        for table in ["ledger", "traces", "virtual_keys", "module_state"] {
            let n: i64 = get(
                &tx.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                    .await?,
                0,
            )?;
            if n > 0 {
                return Err(StoreError::Constraint(format!(
                    "the target store is not empty ({table} has {n} rows); migrate-store copies \
                     into a new database or schema only"
                )));
            }
        }
        let tables: Vec<String> = tx
            .query(
                "SELECT table_name::TEXT FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                &[],
            )
            .await?
            .iter()
            .map(|r| get(r, 0))
            .collect::<Result<_, _>>()?;
        let mut report = Vec::new();
        for table in tables.iter().filter(|t| !SKIPPED.contains(&t.as_str())) {
            let copied = copy_table(&source, &tx, table).await?;
            report.push((table.clone(), copied));
        }
        for (table, column) in SERIALS {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                     COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(report)
    })
}

async fn copy_table(
    source: &rusqlite::Connection,
    tx: &Transaction<'_>,
    table: &str,
) -> Result<u64, StoreError> {
    let columns: Vec<(String, String)> = tx
        .query(
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<Result<_, StoreError>>()?;
    // The serial columns stand in for SQLite's rowid (an INTEGER PRIMARY KEY is the rowid too).
    let selected: Vec<String> = columns
        .iter()
        .map(|(name, _)| {
            if SERIALS.contains(&(table, name.as_str())) {
                "rowid".to_string()
            } else {
                format!("\"{name}\"")
            }
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            marks.join(", ")
        ))
        .await?;
    let mut read = source.prepare(&format!(
        "SELECT {} FROM \"{table}\" ORDER BY rowid",
        selected.join(", ")
    ))?;
    let mut rows = read.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(columns.len());
        for (i, (name, kind)) in columns.iter().enumerate() {
            let value: Value = row.get(i)?;
            values.push(convert(value, kind).map_err(|detail| StoreError::Corrupt {
                table: "row",
                detail: format!("{table}.{name}: {detail}"),
            })?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        tx.execute(&insert, &refs).await?;
        copied += 1;
    }
    Ok(copied)
}

/// A SQLite value as the PostgreSQL column type `kind` takes it.
fn convert(value: Value, kind: &str) -> Result<Box<dyn ToSql + Sync>, String> {
    Ok(match (kind, value) {
        ("bigint", Value::Null) => Box::new(None::<i64>),
        ("bigint", Value::Integer(i)) => Box::new(Some(i)),
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("boolean", Value::Integer(i)) => Box::new(Some(i != 0)),
        ("text", Value::Null) => Box::new(None::<String>),
        ("text", Value::Text(s)) => Box::new(Some(s)),
        ("text", Value::Integer(i)) => Box::new(Some(i.to_string())),
        ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
        ("bytea", Value::Blob(b)) => Box::new(Some(b)),
        ("bytea", Value::Text(s)) => Box::new(Some(s.into_bytes())),
        ("double precision", Value::Null) => Box::new(None::<f64>),
        ("double precision", Value::Real(f)) => Box::new(Some(f)),
        ("double precision", Value::Integer(i)) => Box::new(Some(i as f64)),
        (kind, value) => {
            return Err(format!(
                "{:?} does not fit a {kind} column",
                value.data_type()
            ));
        }
    })
}
