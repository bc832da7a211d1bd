//! Connections, and where they run. The store traits are synchronous, so this backend uses the
//! sync `postgres` client. That client drives a private tokio runtime of its own and panics when
//! it is called on a thread that is already inside a runtime, and the store's read traits are
//! called from tokio worker threads (the admin API, the console) as well as from plain threads.
//! So no client is ever used on a caller's thread: each read connection lives on a dedicated OS
//! thread of a small pool ([`ReadPool`]) that takes jobs from one channel and answers each on the
//! job's own reply channel; the writer's connection lives on the writer's std thread; and the
//! one-off calls (`connect`, the probes `store::newest_mac` and friends) run on a scoped thread
//! ([`off_runtime`]). The simpler alternative, tokio-postgres on a runtime thread of our own, would
//! make every read a future bridged back to a blocking caller: the same hop, more code.
//!
//! A dropped connection (the server restarted, a network cut) is replaced on the next job rather
//! than failing every later one.

use std::str::FromStr;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};

use crate::store::{StoreError, StoreUrl};

/// Runs `f` on a fresh scoped thread: outside any tokio runtime the caller may be in.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The parsed connection settings of a `postgres://` store URL, and the URL redacted for
/// messages (the password never appears in an error of this backend).
#[derive(Clone)]
pub struct Target {
    config: Config,
    pub shown: String,
}

impl Target {
    pub fn parse(url: &StoreUrl) -> Result<Target, StoreError> {
        let StoreUrl::Postgres(text) = url else {
            return Err(StoreError::Backend(format!("{url} is not a postgres URL")));
        };
        let shown = url.redacted();
        let mut config = Config::from_str(text).map_err(|e| StoreError::Open {
            path: shown.clone(),
            detail: e.to_string(),
        })?;
        config.application_name("stockyard");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        Ok(Target { config, shown })
    }

    /// A new connection. Must run outside a runtime (the writer's thread, a pool thread, or
    /// inside [`off_runtime`]). A failure is [`StoreError::Open`]: at start-up that is the
    /// message to show; callers that already ran use [`Target::reconnect`].
    pub fn connect(&self) -> Result<Client, StoreError> {
        self.config.connect(NoTls).map_err(|e| StoreError::Open {
            path: self.shown.clone(),
            detail: e.to_string(),
        })
    }

    /// A new connection for a store that was open before: a failure is
    /// [`StoreError::Unreachable`], which the writer holds its records through.
    pub fn reconnect(&self) -> Result<Client, StoreError> {
        self.config
            .connect(NoTls)
            .map_err(|e| StoreError::Unreachable(format!("cannot connect to {}: {e}", self.shown)))
    }
}

type Job = Box<dyn FnOnce(&mut Option<Client>) + Send>;

/// Read connections, each owned by its own thread.
pub struct ReadPool {
    jobs: Sender<Job>,
    target: Target,
    /// When a connect last failed: for [`RECONNECT_GAP`] after it, a job that needs a new
    /// connection fails at once instead of trying again. A server that drops packets (rather
    /// than refusing) would otherwise hold every read for the connect timeout.
    failed_at: Arc<Mutex<Option<Instant>>>,
}

/// How long after a failed connect the pool answers "unreachable" without trying again.
const RECONNECT_GAP: Duration = Duration::from_millis(500);

impl ReadPool {
    /// Starts `size` threads; one connection is made now, so a bad URL or a down server is
    /// reported at start-up rather than at the first query.
    pub fn new(target: Target, size: usize) -> Result<ReadPool, StoreError> {
        let first = off_runtime(|| target.connect())?;
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut first = Some(first);
        for i in 0..size.max(1) {
            let rx = rx.clone();
            let conn = if i == 0 { first.take() } else { None };
            std::thread::Builder::new()
                .name(format!("pg-read-{i}"))
                .spawn(move || serve(rx, conn))
                .map_err(|e| StoreError::Backend(format!("cannot start a read thread: {e}")))?;
        }
        Ok(ReadPool {
            jobs: tx,
            target,
            failed_at: Arc::default(),
        })
    }

    /// Runs `f` on a pooled connection and waits for its answer. A kept connection that turns
    /// out dead (the server restarted, the network was cut while it sat idle) is only found by
    /// using it, so `f` runs once more on a new one before the error is returned: the first
    /// read after an outage (the change watch's reload) must not fail on the old socket.
    pub fn with<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = sync_channel(1);
        let target = self.target.clone();
        let failed_at = self.failed_at.clone();
        let reconnect = move || {
            let last = || failed_at.lock().unwrap_or_else(|p| p.into_inner());
            if last().is_some_and(|at| at.elapsed() < RECONNECT_GAP) {
                return Err(StoreError::Unreachable(format!(
                    "{} did not answer a moment ago",
                    target.shown
                )));
            }
            // Not under the lock: the other read threads must not queue behind this connect.
            let made = target.reconnect();
            *last() = made.is_err().then(Instant::now);
            made
        };
        let job: Job = Box::new(move |slot: &mut Option<Client>| {
            let result = (|| {
                // A connection the server closed is replaced before the job, not after failing it.
                let fresh = slot.as_ref().is_none_or(Client::is_closed);
                if fresh {
                    *slot = Some(reconnect()?);
                }
                let first = match slot.as_mut() {
                    Some(client) => f(client),
                    None => Err(StoreError::Backend("no connection".into())),
                };
                match first {
                    Err(e) if e.is_unreachable() && !fresh => {
                        *slot = Some(reconnect()?);
                        match slot.as_mut() {
                            Some(client) => f(client),
                            None => Err(StoreError::Backend("no connection".into())),
                        }
                    }
                    other => other,
                }
            })();
            let _ = reply.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("the read threads have stopped".into()))?;
        answer
            .recv()
            .map_err(|_| StoreError::Backend("a read thread stopped mid-query".into()))?
    }
}

fn serve(jobs: Arc<Mutex<Receiver<Job>>>, conn: Option<Client>) {
    let mut slot = conn;
    loop {
        // The lock is held only to take one job; the job runs after it is released.
        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return, // the pool was dropped
        };
        job(&mut slot);
    }
}
