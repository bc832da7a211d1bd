//! What a request may hold of the server before any module reads its body: a place among the
//! requests in flight, a share of the bytes of bodies in flight, and a bounded time to send its
//! body. Over a cap the request gets 503 with `retry-after` at once; every such refusal is counted.
//! At shutdown, bodies still arriving are cut short with 503 instead of holding the exit up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::ServerLimits;
use crate::request::ApiError;
use crate::request::inflight::{Inflight, InflightGuard};

pub struct Admission {
    limits: ServerLimits,
    pub inflight: Inflight,
    body_budget: Arc<Semaphore>,
    shutting_down: AtomicBool,
    shutdown: Notify,
    refused_busy: AtomicU64,
    refused_body_budget: AtomicU64,
    body_timeouts: AtomicU64,
}

/// Counters for `/ready`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AdmissionSnapshot {
    pub in_flight: usize,
    pub max_concurrent_requests: usize,
    pub body_bytes_in_flight: usize,
    pub max_body_bytes_in_flight: usize,
    pub refused_busy: u64,
    pub refused_body_budget: u64,
    pub body_timeouts: u64,
}

impl Admission {
    pub fn new(limits: ServerLimits) -> Admission {
        Admission {
            limits,
            inflight: Inflight::default(),
            body_budget: Arc::new(Semaphore::new(limits.max_body_bytes_in_flight)),
            shutting_down: AtomicBool::new(false),
            shutdown: Notify::new(),
            refused_busy: AtomicU64::new(0),
            refused_body_budget: AtomicU64::new(0),
            body_timeouts: AtomicU64::new(0),
        }
    }

    /// A place among the requests in flight, or 503 when they are all taken.
    pub fn enter(&self) -> Result<InflightGuard, ApiError> {
        self.inflight
            .try_enter(self.limits.max_concurrent_requests)
            .ok_or_else(|| {
                count_refusal(&self.refused_busy, "concurrent requests");
                ApiError::Overloaded {
                    what: "concurrent requests",
                }
            })
    }

    /// Reads the whole body: never past `limit` (413), within the body timeout (408), within the
    /// server's body budget (503), and not past the start of shutdown (503). The permit returned
    /// holds the body's bytes of the budget until it is dropped.
    pub async fn read_body(
        &self,
        body: Incoming,
        headers: &HeaderMap,
        limit: usize,
    ) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
        // A body larger than the whole budget could never be admitted: that is a 413, not a
        // 503 to retry forever.
        let limit = limit.min(self.limits.max_body_bytes_in_flight);
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::BodyTooLarge { limit_bytes: limit });
        }
        // A declared length is reserved whole before a byte is read, so a body the server has no
        // room for is refused before it costs anything.
        let permit = self.reserve(declared.unwrap_or(0) as usize)?;
        let read = async {
            match declared {
                Some(_) => collect(body, limit).await.map(|b| (b, permit)),
                None => self.collect_chunked(body, limit, permit).await,
            }
        };
        let timeout = self.limits.body_read_timeout;
        // Made before the flag is read, so a shutdown between the two still wakes it.
        let shutdown = self.shutdown.notified();
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(shutting_down());
        }
        tokio::select! {
            read = tokio::time::timeout(timeout, read) => read.unwrap_or_else(|_| {
                count_refusal(&self.body_timeouts, "body read timeouts");
                Err(ApiError::BodyTimeout { timeout_ms: timeout.as_millis() as u64 })
            }),
            () = shutdown => Err(shutting_down()),
        }
    }

    /// A body of unknown length takes its share of the budget frame by frame.
    async fn collect_chunked(
        &self,
        mut body: Incoming,
        limit: usize,
        mut permit: OwnedSemaphorePermit,
    ) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
        let mut buffer = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(body_error)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buffer.len() + data.len() > limit {
                return Err(ApiError::BodyTooLarge { limit_bytes: limit });
            }
            permit.merge(self.reserve(data.len())?);
            buffer.extend_from_slice(&data);
        }
        Ok((buffer.freeze(), permit))
    }

    fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        u32::try_from(bytes)
            .ok()
            .and_then(|n| self.body_budget.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| {
                count_refusal(&self.refused_body_budget, "request body bytes in flight");
                ApiError::Overloaded {
                    what: "request body bytes in flight",
                }
            })
    }

    /// Resolves once shutdown has begun: for a long-lived answer (an event stream that is not a
    /// proxied request) to end itself instead of holding the exit up for the grace period.
    pub async fn shutdown_begun(&self) {
        // Made before the flag is read, so a shutdown between the two still wakes it.
        let notified = self.shutdown.notified();
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    /// Cuts short every body still being read, and refuses new ones.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }

    pub fn snapshot(&self) -> AdmissionSnapshot {
        AdmissionSnapshot {
            in_flight: self.inflight.count(),
            max_concurrent_requests: self.limits.max_concurrent_requests,
            body_bytes_in_flight: self
                .limits
                .max_body_bytes_in_flight
                .saturating_sub(self.body_budget.available_permits()),
            max_body_bytes_in_flight: self.limits.max_body_bytes_in_flight,
            refused_busy: self.refused_busy.load(Ordering::Relaxed),
            refused_body_budget: self.refused_body_budget.load(Ordering::Relaxed),
            body_timeouts: self.body_timeouts.load(Ordering::Relaxed),
        }
    }
}

async fn collect(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::BodyTooLarge { limit_bytes: limit })
        }
        Err(err) => Err(match err.downcast::<hyper::Error>() {
            Ok(err) => body_error(*err),
            Err(err) => ApiError::InvalidJson {
                message: format!("could not read the request body: {err}"),
            },
        }),
    }
}

/// A body that breaks off is a client that went away (or sent a malformed chunked body).
fn body_error(err: hyper::Error) -> ApiError {
    let io_kind = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    let went_away = matches!(
        io_kind,
        Some(
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
    );
    if went_away || err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        ApiError::ClientClosed
    } else {
        ApiError::InvalidJson {
            message: format!("could not read the request body: {err}"),
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::Unavailable {
        message: "the server is shutting down; retry on another instance or shortly".into(),
        retry_after_s: None,
    }
}

/// Counts a refusal; logs the first and then every 1000th, so a flood cannot flood the log.
fn count_refusal(counter: &AtomicU64, what: &'static str) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 || n.is_multiple_of(1000) {
        tracing::warn!(refused = n, what, "request refused at a server limit");
    }
}
