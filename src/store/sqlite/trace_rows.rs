//! Which number a trace row is stored under, and how a lookup by id finds it (migration 0022).
//!
//! A trace id is a UUIDv7 (`crate::ids`): its first 64 bits are the millisecond, the version and a
//! 12-bit counter, unique within the process and increasing. The writer stores a row under that
//! number when it is above every number stored so far, so `traces` needs no index on `id`: a
//! lookup reads the number back out of the id and checks the stored id.
//!
//! Any other row takes the next free number and an entry in `trace_ids`: an id of another shape,
//! a number not above the last (two requests that finished in one order and reached the writer in
//! the other; a clock set back across a restart; rows from before 0022), or one from beyond the
//! clock. Row numbers therefore only grow, in the order rows are written, and none is taken twice:
//! the console's roll-ups recover after a crash from the rows past a cursor (`rollup_state`),
//! which needs exactly that.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

/// How far past this node's clock an id's millisecond may be and still give its row's number. The
/// id generator runs ahead of the clock when it hands out more than 4,096 ids in one millisecond,
/// and keeps the ids of a clock that was set back growing until the clock catches up. A number
/// from further ahead would push every later row onto the listed path until then; and a row listed
/// for being ahead, stored again by a retried batch once the clock had passed its number, would be
/// stored twice. A day keeps both out of reach of anything but a clock wrong by more than a day.
const AHEAD_MS: i64 = 86_400_000;

/// The number a UUIDv7 id names: its first 64 bits. `None` for any other shape. Always positive,
/// and above every number SQLite assigned before 0022 (milliseconds shifted left by 16 bits).
pub(super) fn number_of(id: &str) -> Option<i64> {
    // Only the hyphenated form `crate::ids` writes, so one id has one number.
    if id.len() != 36 {
        return None;
    }
    let uuid = uuid::Uuid::try_parse(id).ok()?;
    if uuid.get_version_num() != 7 || uuid.get_variant() != uuid::Variant::RFC4122 {
        return None;
    }
    i64::try_from(uuid.as_u64_pair().0).ok()
}

/// Where one row goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// Under its id's number.
    Named(i64),
    /// Under the next free number, listed in `trace_ids`.
    Listed(i64),
}

impl Placement {
    pub(super) fn row(self) -> i64 {
        match self {
            Placement::Named(row) | Placement::Listed(row) => row,
        }
    }
}

/// The writer's numbering: the highest number stored (or about to be, within a batch).
#[derive(Debug)]
pub(super) struct TraceRows {
    last: i64,
}

impl TraceRows {
    /// From the highest row the file holds: at open, and whenever the numbering may be behind it.
    pub(super) fn read(conn: &Connection) -> Result<TraceRows, StoreError> {
        let last = conn.query_row("SELECT COALESCE(MAX(row_id), 0) FROM traces", [], |r| {
            r.get(0)
        })?;
        Ok(TraceRows { last })
    }

    pub(super) fn last(&self) -> i64 {
        self.last
    }

    /// Sets the highest number taken: back, when a row placed was not stored after all; up, when
    /// a row found stored lies past it.
    pub(super) fn set_last(&mut self, to: i64) {
        self.last = to;
    }

    /// The next free number, for a row that cannot have its id's.
    pub(super) fn listed(&mut self) -> Placement {
        self.last += 1;
        Placement::Listed(self.last)
    }

    /// The next row's place, for a row not yet stored.
    pub(super) fn place(&mut self, id: &str, now_ms: i64) -> Placement {
        let ceiling = (now_ms.saturating_add(AHEAD_MS)).saturating_mul(1 << 16);
        match number_of(id) {
            Some(number) if number > self.last && number < ceiling => {
                self.last = number;
                Placement::Named(number)
            }
            _ => self.listed(),
        }
    }
}

/// The row `trace_ids` lists for an id.
fn row_listed_for(conn: &Connection, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT row_id FROM trace_ids WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// The row an id is stored under, if any: its number's, else the one `trace_ids` lists.
pub(super) fn row_of(conn: &Connection, id: &str) -> Result<Option<i64>, StoreError> {
    if let Some(number) = number_of(id) {
        let named: Option<i64> = conn
            .prepare_cached("SELECT row_id FROM traces WHERE row_id = ?1 AND id = ?2")?
            .query_row(params![number, id], |r| r.get(0))
            .optional()?;
        if named.is_some() {
            return Ok(named);
        }
    }
    row_listed_for(conn, id)
}

#[cfg(test)]
#[path = "trace_rows_tests.rs"]
mod tests;
