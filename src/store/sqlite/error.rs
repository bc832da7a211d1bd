//! SQLite's errors mapped onto the backend-neutral [`StoreError`], so `?` on a `rusqlite` call
//! inside this backend yields a variant callers can act on (retry on `Busy`, report `Corrupt`)
//! and no `rusqlite` type leaves `src/store/sqlite/`.

use rusqlite::ErrorCode;

use crate::store::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let detail = message.clone().unwrap_or_else(|| error.to_string());
                match failure.code {
                    ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
                    ErrorCode::ConstraintViolation => StoreError::Constraint(detail),
                    ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt {
                        table: "file",
                        detail,
                    },
                    ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::CannotOpen
                    | ErrorCode::PermissionDenied
                    | ErrorCode::FileLockingProtocolFailed => StoreError::Io(detail),
                    _ => StoreError::Backend(detail),
                }
            }
            // A column that does not hold the type its schema promises: edited by hand.
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt {
                table: "row",
                detail: error.to_string(),
            },
            _ => StoreError::Backend(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_failures_map_to_neutral_variants() {
        let failure = |code: i32| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some("detail".into()),
            ))
        };
        assert!(matches!(
            failure(rusqlite::ffi::SQLITE_BUSY),
            StoreError::Busy
        ));
        assert!(matches!(
            failure(rusqlite::ffi::SQLITE_CONSTRAINT),
            StoreError::Constraint(d) if d == "detail"
        ));
        assert!(matches!(
            failure(rusqlite::ffi::SQLITE_CORRUPT),
            StoreError::Corrupt { table: "file", .. }
        ));
        assert!(matches!(
            failure(rusqlite::ffi::SQLITE_FULL),
            StoreError::Io(_)
        ));
        assert!(matches!(
            failure(rusqlite::ffi::SQLITE_ERROR),
            StoreError::Backend(_)
        ));
    }
}
