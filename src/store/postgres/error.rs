//! PostgreSQL's errors mapped onto the backend-neutral [`StoreError`], so no `postgres` type
//! leaves `src/store/postgres/`. Server messages never hold the connection's password; connection
//! failures are reported with the redacted URL (`conn.rs`).

use postgres::error::SqlState;

use crate::store::StoreError;

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> StoreError {
        if error.is_closed() {
            return StoreError::Io(format!("postgres connection closed: {error}"));
        }
        let Some(db) = error.as_db_error() else {
            return StoreError::Backend(error.to_string());
        };
        let detail = match db.detail() {
            Some(more) => format!("{}: {more}", db.message()),
            None => db.message().to_string(),
        };
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION
            || *code == SqlState::FOREIGN_KEY_VIOLATION
            || *code == SqlState::CHECK_VIOLATION
            || *code == SqlState::NOT_NULL_VIOLATION
        {
            StoreError::Constraint(detail)
        } else if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::QUERY_CANCELED
        {
            StoreError::Busy
        } else if *code == SqlState::DISK_FULL || *code == SqlState::IO_ERROR {
            StoreError::Io(detail)
        } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
            StoreError::Corrupt {
                table: "database",
                detail,
            }
        } else {
            StoreError::Backend(detail)
        }
    }
}
