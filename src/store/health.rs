//! Whether the store answers and at which schema version: what `/ready` and `stockyard version`
//! report, without naming the backend.

use super::StoreError;

pub trait StoreHealth: Send + Sync {
    /// The cheapest round trip the backend has.
    fn ping(&self) -> Result<(), StoreError>;
    /// The schema version the store is at now.
    fn schema_version(&self) -> Result<i64, StoreError>;
    /// The schema version this build writes; a store at another is not ready.
    fn expected_schema_version(&self) -> i64;
    /// `sqlite`, `postgres`, ...
    fn backend(&self) -> &'static str;
}
