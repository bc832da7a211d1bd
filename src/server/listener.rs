//! Accepts connections (TCP_NODELAY on each, HTTP/1.1 and HTTP/2) and serves them until the
//! shutdown future resolves. Then, in order: stop accepting; let in-flight requests and streams
//! finish within the grace period; wait for their `on_finish` hooks (their trace records); flush
//! the writer and checkpoint the WAL.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::App;
use super::parse_errors::ShapedErrors;
use super::routes;
use crate::proxy::ApiError;
use crate::proxy::pipeline::ClientAddr;
use crate::store::StoreError;

/// How long requests closed at the end of the grace period get to run their `on_finish` hooks
/// (their trace rows) before the writer stops.
const FINISH_AFTER_CLOSE: Duration = Duration::from_secs(2);

/// Serves `listener` until `shutdown` resolves, then shuts down as described above.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StoreError> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    if app.proxy.providers.providers().is_empty() {
        tracing::warn!("{}", crate::providers::registry::no_providers_warning());
    }

    // Every connection's task, so the ones still open when the grace period ends can be closed.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Reap finished connections as we go, so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Without this, small writes wait up to 40 ms for an ACK (Nagle).
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer.ip()));
            let app = app.clone();
            async move {
                let response = std::panic::AssertUnwindSafe(routes::route(&app, request))
                    .catch_unwind()
                    .await;
                Ok::<_, Infallible>(response.unwrap_or_else(|_| {
                    tracing::error!("request handler panicked");
                    ApiError::Internal {
                        message: "internal error".into(),
                    }
                    .into_response()
                }))
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(ShapedErrors::new(stream)), service);
        let connection = graceful.watch(connection.into_owned());
        connections.spawn(async move {
            let _ = connection.await;
        });
    }

    drop(listener);
    let grace = app.config.shutdown_grace;
    let started = tokio::time::Instant::now();
    let admission = &app.proxy.admission;
    tracing::info!(in_flight = admission.inflight.count(), "shutting down");
    // Clients still sending their bodies get 503 now rather than holding the exit up.
    admission.begin_shutdown();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "grace period over; closing the remaining connections"
        );
        // Dropping a connection drops its requests and streams, which finish as cancelled.
        connections.abort_all();
    }
    let left = admission
        .inflight
        .wait_idle(
            grace
                .saturating_sub(started.elapsed())
                .max(FINISH_AFTER_CLOSE),
        )
        .await;
    if left > 0 {
        tracing::warn!(left, "requests still unfinished at shutdown");
    }
    // Modules hand over what they aggregate in memory while the writer still takes it.
    app.proxy.chain.load_full().shutdown().await;
    let result = app.writer.shutdown().await;
    let stats = app.writer.snapshot();
    tracing::info!(
        written = stats.written,
        dropped = stats.dropped,
        "writer flushed"
    );
    result
}

/// A server running in the background, for tests and embedding.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl RunningServer {
    pub async fn start(app: App, addr: SocketAddr) -> std::io::Result<RunningServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(app);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(app.clone(), listener, async {
            let _ = stopped.await;
        }));
        Ok(RunningServer {
            addr,
            app,
            stop: Some(stop),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down as on SIGTERM and waits for the writer to flush.
    pub async fn stop(mut self) -> Result<(), StoreError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::WriterGone),
        }
    }
}
