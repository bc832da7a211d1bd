//! A small pool of read connections. WAL lets readers run beside the writer and beside each
//! other, so a slow report holds one connection while request-path lookups (a stored response,
//! module state) take another instead of queueing behind it.
//!
//! Connections open lazily up to `max`; a checkout waits for a return when all are out, but only
//! up to [`CHECKOUT_WAIT`], then reports [`StoreError::Busy`].

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::store::StoreError;

/// Longest a checkout waits for a connection to come back, matching the busy timeout's order.
const CHECKOUT_WAIT: Duration = Duration::from_secs(10);

pub struct ReadPool {
    path: PathBuf,
    open: fn(&Path) -> Result<Connection, StoreError>,
    max: usize,
    state: Mutex<State>,
    returned: Condvar,
}

#[derive(Default)]
struct State {
    idle: Vec<Connection>,
    /// Connections alive, idle or checked out.
    opened: usize,
}

impl ReadPool {
    /// A pool of at most `max` connections made by `open`; one is opened now so a bad file is
    /// reported at start-up rather than at the first query.
    pub fn new(
        path: &Path,
        max: usize,
        open: fn(&Path) -> Result<Connection, StoreError>,
    ) -> Result<ReadPool, StoreError> {
        let first = open(path)?;
        Ok(ReadPool {
            path: path.to_path_buf(),
            open,
            max: max.max(1),
            state: Mutex::new(State {
                idle: vec![first],
                opened: 1,
            }),
            returned: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a Vec and a count changed by single statements; a panic can't split them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for one query; it goes back to the pool when dropped.
    /// The database file the pool reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let deadline = Instant::now() + CHECKOUT_WAIT;
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.opened < self.max {
                state.opened += 1;
                drop(state);
                return match (self.open)(&self.path) {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().opened -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn put_back(&self, conn: Connection) {
        self.lock().idle.push(conn);
        self.returned.notify_one();
    }
}

pub struct Pooled<'a> {
    pool: &'a ReadPool,
    /// Always `Some` until dropped.
    conn: Option<Connection>,
}

impl Deref for Pooled<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match &self.conn {
            Some(conn) => conn,
            // `conn` is taken only in `drop`, after which no deref can happen.
            None => unreachable!("pooled connection used after return"),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }
}
