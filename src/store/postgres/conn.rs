//! Connections, and where they run. The driver is `tokio-postgres`, pooled by `deadpool-postgres`;
//! the store traits stay synchronous (SQLite shares them), and they are called from tokio worker
//! threads (the admin API, the console) as well as from plain threads (the writer, background
//! jobs). A sync caller cannot drive a future itself: `block_on` panics on a thread already inside
//! a runtime, and so does tokio's `blocking_recv`. So the backend owns a small runtime of its own
//! ([`PgRuntime`], two `pg-io` threads) on which every connection's I/O task runs, and:
//!
//! - a read ([`ReadPool::with`]) is spawned onto that runtime as a `'static` future that owns its
//!   pooled connection, and the caller waits for the answer on a `std::sync::mpsc` channel, which
//!   blocks the caller's thread but panics on none (the old thread pool's hop, without its
//!   threads);
//! - the writer keeps one dedicated connection and drives each call with
//!   [`PgRuntime::block_on_borrowed`]: on a scoped thread, which is inside no runtime, so the
//!   runtime's `Handle::block_on` is allowed there. The future may then borrow the writer's batch
//!   instead of copying every record (bodies included) into a `'static` one; the spawn is the one
//!   the writer paid before too;
//! - the one-off calls (`store::newest_mac` and friends, the test schemas) run on a
//!   current-thread runtime made for them on a scoped thread ([`once`]);
//! - the change watch keeps its connection on a thread and runtime of its own, because its
//!   callback must run outside any runtime (`listen.rs`).
//!
//! A runtime dropped inside another one panics if it waits for its threads, so [`PgRuntime`]
//! shuts down in the background: whoever drops the store last may be a tokio worker.
//!
//! The pool checks only `is_closed` when it hands a connection out (`RecyclingMethod::Fast`): a
//! verified checkout would cost a round trip on every read, while a socket the server dropped
//! silently is caught anyway by running a read that failed as unreachable once more on a fresh
//! connection. After a failed connect, reads that would need a new connection fail at once for
//! [`RECONNECT_GAP`] instead of each waiting out the connect timeout.

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;

use crate::store::{StoreError, StoreUrl};

/// Runs `f` on a fresh scoped thread: outside any tokio runtime the caller may be in.
pub fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Runs `job` to its end on a current-thread runtime made for it on a scoped thread: for calls
/// made once (probes before a store is open, test schemas), where a runtime kept alive would be
/// waste. Connections the job opens are closed when it returns.
pub fn once<T: Send>(
    job: impl AsyncFnOnce() -> Result<T, StoreError> + Send,
) -> Result<T, StoreError> {
    off_runtime(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot start a postgres runtime: {e}")))?;
        runtime.block_on(job())
    })
}

/// The backend's own runtime, shared by its reader and writer through an `Arc`.
pub struct PgRuntime {
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
}

/// Worker threads of [`PgRuntime`]: they only move bytes between sockets and futures, so two are
/// plenty (four pooled reads and the writer at once are mostly waiting on the server).
const IO_THREADS: usize = 2;

impl PgRuntime {
    pub fn start() -> Result<Arc<PgRuntime>, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(IO_THREADS)
            .thread_name("pg-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot start the postgres runtime: {e}")))?;
        Ok(Arc::new(PgRuntime {
            runtime: Some(runtime),
        }))
    }

    fn handle(&self) -> Result<&tokio::runtime::Handle, StoreError> {
        self.runtime
            .as_ref()
            .map(tokio::runtime::Runtime::handle)
            .ok_or_else(|| StoreError::Backend("the postgres runtime has stopped".into()))
    }

    /// Spawns `job` onto the runtime and waits for its answer on a std channel, which any thread
    /// may block on (tokio's own receivers panic when the caller is inside a runtime).
    pub fn run<T: Send + 'static>(
        &self,
        job: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.handle()?.spawn(async move {
            let _ = reply.send(job.await);
        });
        answer
            .recv()
            .map_err(|_| StoreError::Backend("a postgres task stopped before answering".into()))?
    }

    /// Runs `job`, which may borrow from the caller, to its end on a scoped thread inside this
    /// runtime's context (its connection tasks keep running on the `pg-io` threads).
    pub fn block_on_borrowed<T: Send>(
        &self,
        job: impl AsyncFnOnce() -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        let handle = self.handle()?;
        off_runtime(move || handle.block_on(job()))
    }
}

/// Waiting for the worker threads panics on a thread inside another runtime (a tokio worker that
/// drops the store last), so the runtime is let go without waiting; its tasks are only
/// connections, which close with it.
impl Drop for PgRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The parsed connection settings of a `postgres://` store URL, and the URL redacted for
/// messages (the password never appears in an error of this backend).
#[derive(Clone)]
pub struct Target {
    config: Config,
    /// Every connection is made through it; with `sslmode=disable` the driver never uses it.
    tls: MakeRustlsConnect,
    /// `sslmode=prefer`: a failed handshake is followed by a plain connection, as libpq does
    /// (the driver itself gives up).
    plain_after_failed_tls: bool,
    pub shown: String,
}

/// The driver's connect timeout when the URL gives none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Target {
    pub fn parse(url: &StoreUrl) -> Result<Target, StoreError> {
        let StoreUrl::Postgres(text) = url else {
            return Err(StoreError::Backend(format!("{url} is not a postgres URL")));
        };
        let shown = url.redacted();
        let open_error = |detail: String| StoreError::Open {
            path: shown.clone(),
            detail,
        };
        // The driver knows neither `verify-*` nor `sslrootcert`: they are read here (tls.rs).
        let (text, settings) = tls::split(text).map_err(open_error)?;
        let mut config = Config::from_str(&text).map_err(|e| open_error(e.to_string()))?;
        config.ssl_mode(settings.driver_mode());
        let tls = settings.connector().map_err(open_error)?;
        let plain_after_failed_tls = settings.falls_back_to_plain();
        config.application_name("stockyard");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(Target {
            config,
            tls,
            plain_after_failed_tls,
            shown,
        })
    }

    /// A new connection, its I/O task spawned on the current runtime. A failure is
    /// [`StoreError::Open`]: at start-up that is the message to show; callers that already ran
    /// use [`Target::reconnect`].
    pub async fn connect(&self) -> Result<Client, StoreError> {
        self.spawn_connect()
            .await
            .map_err(|detail| StoreError::Open {
                path: self.shown.clone(),
                detail,
            })
    }

    /// A new connection for a store that was open before: a failure is
    /// [`StoreError::Unreachable`], which the writer holds its records through.
    pub async fn reconnect(&self) -> Result<Client, StoreError> {
        self.spawn_connect()
            .await
            .map_err(|e| StoreError::Unreachable(format!("cannot connect to {}: {e}", self.shown)))
    }

    /// A new connection whose I/O the caller drives (the change watch reads its notices).
    /// Bounded as a pooled connect is ([`Target::create_timeout`]).
    pub async fn connect_raw(&self) -> Result<(Client, Connection<Socket, TlsStream>), String> {
        let within = self.create_timeout();
        match tokio::time::timeout(within, self.connect_driver()).await {
            Ok(made) => made.map_err(|e| with_cause(&e)),
            Err(_) => Err(no_answer(within)),
        }
    }

    /// The driver's connect, with libpq's second try without TLS under `sslmode=prefer`.
    async fn connect_driver(
        &self,
    ) -> Result<(Client, Connection<Socket, TlsStream>), tokio_postgres::Error> {
        connect_preferring_tls(&self.config, &self.tls, self.plain_after_failed_tls).await
    }

    async fn spawn_connect(&self) -> Result<Client, String> {
        let (client, connection) = self.connect_raw().await?;
        drive(connection);
        Ok(client)
    }

    /// Bounds a whole connect (TCP and the startup exchange): the driver's own timeout covers
    /// only the TCP connect, per address tried, so a server that accepts and never answers
    /// would otherwise hold a read, or the writer, forever.
    fn create_timeout(&self) -> Duration {
        self.config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT)
            * 2
    }
}

/// Connects over TLS as `config` asks; when that fails in the handshake and `fall_back` (libpq's
/// `prefer`), once more without TLS. The driver's error says nothing but its words for a failed
/// handshake, so they are what is matched.
async fn connect_preferring_tls(
    config: &Config,
    tls: &MakeRustlsConnect,
    fall_back: bool,
) -> Result<(Client, Connection<Socket, TlsStream>), tokio_postgres::Error> {
    match config.connect(tls.clone()).await {
        Err(e) if fall_back && e.to_string().starts_with("error performing TLS handshake") => {
            tracing::warn!(
                error = %with_cause(&e),
                "PostgreSQL TLS handshake failed; connecting without TLS (sslmode=prefer)"
            );
            let mut plain = config.clone();
            plain.ssl_mode(tokio_postgres::config::SslMode::Disable);
            plain.connect(tls.clone()).await
        }
        made => made,
    }
}

/// Runs a connection's I/O on a task of the current runtime until the server or the client ends it.
fn drive(connection: Connection<Socket, TlsStream>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    })
}

/// Pooled connections, made as [`Target::connect_raw`] makes them (`prefer`'s second try too).
struct PoolConnect {
    tls: MakeRustlsConnect,
    fall_back: bool,
}

impl deadpool_postgres::Connect for PoolConnect {
    fn connect(
        &self,
        config: &Config,
    ) -> std::pin::Pin<
        Box<
            dyn Future<
                    Output = Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>,
                > + Send
                + '_,
        >,
    > {
        let config = config.clone();
        Box::pin(async move {
            let (client, connection) =
                connect_preferring_tls(&config, &self.tls, self.fall_back).await?;
            Ok((client, drive(connection)))
        })
    }
}

/// The stream a connection runs over: TLS, or plain TCP where `sslmode` allows it.
type TlsStream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<Socket>>::Stream;

/// The driver's error with its cause: a failed handshake alone says only "error performing TLS
/// handshake", the cause says why (an unknown issuer, a name that does not match).
fn with_cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) if !e.to_string().contains(&cause.to_string()) => format!("{e}: {cause}"),
        _ => e.to_string(),
    }
}

fn no_answer(within: Duration) -> String {
    format!("no answer within {} ms", within.as_millis())
}

/// How long after a failed connect the pool answers "unreachable" without trying again.
const RECONNECT_GAP: Duration = Duration::from_millis(500);

/// How long a read waits for one of the pool's connections to come free. Reads are short; all
/// of them busy this long means the server is not answering them.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Read connections: a `deadpool` pool whose connections live on the backend's runtime.
pub struct ReadPool {
    // Declared before the runtime: the pool's connections are dropped while it still runs.
    pool: Pool,
    shown: Arc<str>,
    /// When a connect last failed: for [`RECONNECT_GAP`] after it, a read that needs a new
    /// connection fails at once instead of trying again. A server that drops packets (rather
    /// than refusing) would otherwise hold every read for the connect timeout.
    failed_at: Arc<Mutex<Option<Instant>>>,
    runtime: Arc<PgRuntime>,
}

impl ReadPool {
    /// A pool of at most `size` connections; one is made now, so a bad URL or a down server is
    /// reported at start-up rather than at the first query.
    pub fn new(
        runtime: Arc<PgRuntime>,
        target: &Target,
        size: usize,
    ) -> Result<ReadPool, StoreError> {
        let manager = Manager::from_connect(
            target.config.clone(),
            PoolConnect {
                tls: target.tls.clone(),
                fall_back: target.plain_after_failed_tls,
            },
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let create_timeout = target.create_timeout();
        let pool = Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(create_timeout))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the postgres pool: {e}")))?;
        let first = pool.clone();
        let shown = target.shown.clone();
        runtime.run(async move {
            first.get().await.map(drop).map_err(|e| StoreError::Open {
                path: shown,
                detail: pool_detail(&e, create_timeout),
            })
        })?;
        Ok(ReadPool {
            pool,
            shown: target.shown.as_str().into(),
            failed_at: Arc::default(),
            runtime,
        })
    }

    /// Runs `f` on a pooled connection and waits for its answer. A kept connection that turns
    /// out dead (the server restarted, the network was cut while it sat idle) is only found by
    /// using it, so `f` runs once more on a new one before the error is returned: the first
    /// read after an outage (the change watch's reload) must not fail on the old socket. `f` is
    /// cloned for that second run, so it captures owned values (cheap to clone next to a round
    /// trip).
    pub fn with<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Object) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let checkout = Checkout {
            pool: self.pool.clone(),
            shown: self.shown.clone(),
            failed_at: self.failed_at.clone(),
        };
        self.runtime.run(async move {
            let again = f.clone();
            let c = checkout.get().await?;
            // A connection never handed out before has nothing stale to retry past.
            let fresh = Object::metrics(&c).recycle_count == 0;
            match f(c).await {
                Err(e) if e.is_unreachable() && !fresh => {
                    // The idle connections are as likely dead as this one was: all go, so the
                    // retry connects afresh.
                    checkout.pool.retain(|_, _| false);
                    again(checkout.get().await?).await
                }
                other => other,
            }
        })
    }
}

/// What a read needs to take a connection from the pool, owned so the read's future is `'static`.
struct Checkout {
    pool: Pool,
    shown: Arc<str>,
    failed_at: Arc<Mutex<Option<Instant>>>,
}

impl Checkout {
    async fn get(&self) -> Result<Object, StoreError> {
        let last = || self.failed_at.lock().unwrap_or_else(|p| p.into_inner());
        let idle = self.pool.status().available > 0;
        if !idle && last().is_some_and(|at| at.elapsed() < RECONNECT_GAP) {
            return Err(StoreError::Unreachable(format!(
                "{} did not answer a moment ago",
                self.shown
            )));
        }
        let timeouts = self.pool.timeouts();
        match self.pool.get().await {
            Ok(c) => {
                *last() = None;
                Ok(c)
            }
            Err(e) => {
                let connect_failed = matches!(
                    e,
                    PoolError::Backend(_) | PoolError::Timeout(TimeoutType::Create)
                );
                if connect_failed {
                    *last() = Some(Instant::now());
                }
                let detail = pool_detail(&e, timeouts.create.unwrap_or_default());
                Err(StoreError::Unreachable(format!(
                    "cannot connect to {}: {detail}",
                    self.shown
                )))
            }
        }
    }
}

/// A pool error in words; the driver's errors never carry the URL, so no password either.
fn pool_detail(e: &PoolError, create_timeout: Duration) -> String {
    match e {
        PoolError::Backend(e) => e.to_string(),
        PoolError::Timeout(TimeoutType::Create) => no_answer(create_timeout),
        PoolError::Timeout(TimeoutType::Wait) => format!(
            "every pooled connection stayed busy for {} s",
            WAIT_TIMEOUT.as_secs()
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_tls_settings_parses_and_a_bad_one_is_named_without_the_password() {
        for query in [
            "sslmode=disable",
            "sslmode=require",
            "sslmode=verify-full",
            "sslrootcert=system",
        ] {
            let url = StoreUrl::Postgres(format!("postgres://u:secret@db.example/x?{query}"));
            assert!(Target::parse(&url).is_ok(), "{query}");
        }
        let url = StoreUrl::Postgres("postgres://u:secret@db.example/x?sslmode=on".into());
        let Err(StoreError::Open { path, detail }) = Target::parse(&url) else {
            panic!("sslmode=on was accepted");
        };
        assert!(detail.contains("sslmode=\"on\""), "{detail}");
        assert!(!path.contains("secret"), "{path}");
    }
}
