//! Idle upstream connections kept for reuse, per scheme and authority.
//!
//! A connection in the pool is not polled by anyone: it waits as it is until a request takes it.
//! So before it is handed out it is polled once (with a waker that does nothing), which reads a
//! close or a reset the upstream sent while it sat idle and drops the connection instead of
//! failing a request on it. A close that races the hand-out is still possible; [`super::HttpClient`]
//! retries on a new connection when hyper returns the request unsent.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub(super) type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
pub(super) type Conn = http1::Connection<Io, Full<Bytes>>;

/// An idle connection is dropped after this long unused (upstreams close theirs sooner or later).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections per upstream; more are closed when they come back.
const MAX_IDLE_PER_UPSTREAM: usize = 128;

/// One HTTP/1.1 connection: the half that sends requests and the half that does the I/O, which
/// whoever reads the answer polls (see [`super::body::UpstreamIncoming`]).
pub(super) struct Link {
    pub sender: http1::SendRequest<Full<Bytes>>,
    pub conn: Pin<Box<Conn>>,
}

impl Link {
    /// Polls the connection once without registering interest: `true` when it can take a request
    /// now (not closed, the previous exchange finished).
    pub fn ready_now(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if self.conn.as_mut().poll(&mut cx).is_ready() {
            return false;
        }
        matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

#[derive(Default)]
pub(super) struct Pool {
    idle: Mutex<HashMap<String, Vec<(Link, Instant)>>>,
    opened: AtomicU64,
}

impl Pool {
    /// The most recently used live connection to `key`, if any.
    pub fn checkout(&self, key: &str) -> Option<Link> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let links = idle.get_mut(key)?;
        while let Some((mut link, since)) = links.pop() {
            if since.elapsed() < IDLE_TIMEOUT && link.ready_now() {
                return Some(link);
            }
        }
        None
    }

    /// Takes `link` back after an exchange, unless it is closed or the pool is full.
    pub fn put(&self, key: &str, mut link: Link) {
        if !link.ready_now() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let links = idle.entry(key.to_string()).or_default();
        if links.len() < MAX_IDLE_PER_UPSTREAM {
            links.push((link, Instant::now()));
        }
    }

    pub fn count_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections opened so far (tests check that keep-alive reuses them).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}
