//! PostgreSQL's errors mapped onto the backend-neutral [`StoreError`], so no `postgres` type
//! leaves `src/store/postgres/`. Server messages never hold the connection's password; connection
//! failures are reported with the redacted URL (`conn.rs`).

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        if error.is_closed() {
            return StoreError::Unreachable(format!("postgres connection closed: {error}"));
        }
        let Some(db) = error.as_db_error() else {
            // No answer from the server at all: the socket failed (reset, refused, timed out).
            let io = std::error::Error::source(&error)
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
            return if io {
                StoreError::Unreachable(error.to_string())
            } else {
                StoreError::Backend(error.to_string())
            };
        };
        let detail = match db.detail() {
            Some(more) => format!("{}: {more}", db.message()),
            None => db.message().to_string(),
        };
        let code = db.code();
        // Class 08 is "connection exception"; 57P01-57P03: the server is shutting down,
        // crashed or still starting. All pass once the server is back.
        if code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            return StoreError::Unreachable(detail);
        }
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
