//! The load generator: virtual clients, each owning one keep-alive HTTP/1.1 connection made with
//! `hyper::client::conn::http1` (no pool, so the generator spends its CPU on requests, not on
//! pool bookkeeping), and the two run shapes `main.rs` drives: [`latency`] (one client, one
//! request at a time) and [`throughput`] (many clients sharing a fixed number of requests).
//!
//! Every await that touches the network has a deadline, and a client gives up after
//! [`MAX_CONSECUTIVE_ERRORS`] failures in a row, so a dead target ends a run quickly instead of
//! hanging it. A target behind Stockyard also checks each answer's `x-stockyard-deployment`
//! header ([`Route`]), so a request routed somewhere unexpected counts as an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::stats::{CpuSnapshot, Measurement, Role};

/// The model every target but the routing group is asked for.
pub const MODEL: &str = "gpt-4o-mini";
const PROMPT: &str = "Say hello in five words please";
const STREAM_END: &[u8] = b"data: [DONE]\n\n";
const DEPLOYMENT_HEADER: &str = "x-stockyard-deployment";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The mock answers at once, so anything near this is a hang, not a slow answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the coordinator waits for every client to connect and prime before the clock starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);
pub const MAX_CONSECUTIVE_ERRORS: u32 = 20;

/// Where requests go: the mock itself, or a proxy in front of it, and which model they name.
pub struct Target {
    pub label: &'static str,
    addr: SocketAddr,
    host: HeaderValue,
    /// The process in front of the mock for this target, whose CPU it is charged; `None` for
    /// the mock itself.
    pub proxy: Option<Role>,
    /// What the answers must say in `x-stockyard-deployment`; `None` skips the check.
    pub route: Option<Route>,
    non_stream_body: Bytes,
    stream_body: Bytes,
    /// The `authorization` header every request carries, when the proxy requires a key.
    authorization: Option<HeaderValue>,
    /// Other headers every request carries (a session id).
    extra_headers: Vec<(hyper::header::HeaderName, HeaderValue)>,
    /// Every request handed to a connection, warm-ups and failures included; compared with the
    /// proxy's trace rows at the end.
    pub sent: AtomicU64,
}

impl Target {
    /// A target that asks for [`MODEL`].
    pub fn new(
        label: &'static str,
        addr: SocketAddr,
        proxy: Option<Role>,
        route: Option<Route>,
    ) -> Result<Target, String> {
        Target::for_model(label, addr, proxy, route, MODEL)
    }

    /// A target that asks for `model`, which must need no JSON escaping (it is a constant).
    /// Stockyard at `addr` on the single-deployment route, sending `key` as the bearer.
    pub fn stockyard(addr: SocketAddr, key: &str) -> Result<Target, String> {
        Target::for_model(
            "stockyard",
            addr,
            None,
            Some(crate::group::SINGLE_ROUTE),
            MODEL,
        )?
        .with_bearer(key)
    }

    pub fn for_model(
        label: &'static str,
        addr: SocketAddr,
        proxy: Option<Role>,
        route: Option<Route>,
        model: &str,
    ) -> Result<Target, String> {
        let host = HeaderValue::from_str(&addr.to_string())
            .map_err(|e| format!("{label}: {addr} is not a valid Host header: {e}"))?;
        let body = |tail: &str| {
            Bytes::from(format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"{PROMPT}"}}]{tail}}}"#
            ))
        };
        Ok(Target {
            label,
            addr,
            host,
            proxy,
            route,
            non_stream_body: body(""),
            stream_body: body(r#","stream":true"#),
            authorization: None,
            extra_headers: Vec::new(),
            sent: AtomicU64::new(0),
        })
    }

    /// The same target, sending `non_stream` and `stream` (whole JSON bodies) instead.
    pub fn with_bodies(mut self, non_stream: String, stream: String) -> Target {
        self.non_stream_body = Bytes::from(non_stream);
        self.stream_body = Bytes::from(stream);
        self
    }

    /// The same target, sending header `name: value` with every request.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Result<Target, String> {
        let value = HeaderValue::from_str(value)
            .map_err(|e| format!("{}: {name} is not a valid header value: {e}", self.label))?;
        self.extra_headers
            .push((hyper::header::HeaderName::from_static(name), value));
        Ok(self)
    }

    /// The same target, sending `key` as a bearer token.
    pub fn with_bearer(mut self, key: &str) -> Result<Target, String> {
        let value = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|e| format!("{}: the key is not a valid header value: {e}", self.label))?;
        self.authorization = Some(value);
        Ok(self)
    }

    fn body(&self, mode: Mode) -> Bytes {
        match mode {
            Mode::NonStream => self.non_stream_body.clone(),
            Mode::Stream => self.stream_body.clone(),
        }
    }
}

/// What Stockyard must name in `x-stockyard-deployment`, which reads `provider/model` for a
/// plain model and `group/provider/model` for a routing group.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub group: Option<&'static str>,
    /// The providers allowed to serve the request.
    pub providers: &'static [&'static str],
}

impl Route {
    /// The provider named in a deployment header, if it is one this route allows.
    fn provider_of(&self, header: Option<&HeaderValue>) -> Result<&'static str, String> {
        let value = header
            .ok_or_else(|| format!("no {DEPLOYMENT_HEADER} header"))?
            .to_str()
            .map_err(|_| format!("{DEPLOYMENT_HEADER} is not visible ASCII"))?;
        let rest = match self.group {
            Some(group) => value
                .strip_prefix(group)
                .and_then(|rest| rest.strip_prefix('/')),
            None => Some(value),
        };
        let provider = rest
            .and_then(|rest| rest.split_once('/'))
            .filter(|(_, model)| !model.is_empty())
            .and_then(|(provider, _)| self.providers.iter().find(|p| **p == provider));
        provider.copied().ok_or_else(|| {
            format!(
                "{DEPLOYMENT_HEADER}: {value:?} is not {}one of the providers {}",
                self.group
                    .map_or(String::new(), |g| format!("group {g} on ")),
                self.providers.join(", ")
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    NonStream,
    Stream,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::NonStream => "non-stream",
            Mode::Stream => "stream",
        }
    }
}

/// Reads the CPU counters of the watched processes; called right at the edges of a timed section.
pub type Probe = dyn Fn() -> CpuSnapshot + Send + Sync;

/// One open connection. Dropping it stops its driver task, which closes the socket.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect to {addr}: timed out"))?
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    // Small requests and answers: without it, Nagle plus delayed ACK can add 40 ms.
    stream
        .set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {addr}: {e}"))?;
    let driver = tokio::spawn(async move {
        // A connection error also fails the pending `send_request`, which reports it.
        let _ = connection.await;
    });
    Ok(Conn { sender, driver })
}

/// A virtual client: one connection at a time, reopened after any failure.
struct Client {
    target: Arc<Target>,
    mode: Mode,
    body: Bytes,
    conn: Option<Conn>,
    buf: Vec<u8>,
}

/// The timings of one successful request, and who served it when the target has a [`Route`].
struct Timing {
    total: Duration,
    ttfb: Option<Duration>,
    provider: Option<&'static str>,
}

impl Timing {
    fn record(&self, out: &mut Measurement) {
        out.record(self.total, self.ttfb);
        if let Some(provider) = self.provider {
            out.tally_provider(provider);
        }
    }
}

impl Client {
    fn new(target: Arc<Target>, mode: Mode) -> Client {
        Client {
            body: target.body(mode),
            target,
            mode,
            conn: None,
            buf: Vec::with_capacity(4096),
        }
    }

    async fn send(&mut self) -> Result<Timing, String> {
        let mut conn = match self.conn.take() {
            Some(conn) if !conn.sender.is_closed() => conn,
            _ => connect(self.target.addr).await?,
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(&mut conn)).await {
            Ok(Ok(timing)) => {
                self.conn = Some(conn);
                Ok(timing)
            }
            // The connection is dropped: after a failure its state is unknown.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "no complete answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            )),
        }
    }

    async fn exchange(&mut self, conn: &mut Conn) -> Result<Timing, String> {
        conn.sender
            .ready()
            .await
            .map_err(|e| format!("connection unusable: {e}"))?;
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = Uri::from_static("/v1/chat/completions");
        req.headers_mut().insert(HOST, self.target.host.clone());
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.target.authorization {
            req.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        for (name, value) in &self.target.extra_headers {
            req.headers_mut().insert(name.clone(), value.clone());
        }

        let start = Instant::now();
        self.target.sent.fetch_add(1, Ordering::Relaxed);
        let response = conn
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        // Cloning a parsed header value only bumps a reference count.
        let deployment = response.headers().get(DEPLOYMENT_HEADER).cloned();
        let mut body = response.into_body();
        let mut ttfb = None;
        self.buf.clear();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading body (status {status}): {e}"))?;
            if let Some(data) = frame.data_ref()
                && !data.is_empty()
            {
                ttfb.get_or_insert_with(|| start.elapsed());
                self.buf.extend_from_slice(data);
            }
        }
        let total = start.elapsed();
        if status != StatusCode::OK {
            return Err(format!("status {status}: {}", snippet(&self.buf)));
        }
        if self.mode == Mode::Stream && !self.buf.ends_with(STREAM_END) {
            return Err(format!(
                "stream did not end with `data: [DONE]`; its end: {}",
                snippet(&self.buf[self.buf.len().saturating_sub(200)..])
            ));
        }
        let provider = match &self.target.route {
            Some(route) => Some(route.provider_of(deployment.as_ref())?),
            None => None,
        };
        Ok(Timing {
            total,
            ttfb,
            provider,
        })
    }
}

/// The first 300 bytes of a body, lossily decoded, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.replace('\n', "\\n")
}

/// Sends `count` untimed requests on one connection; errors still count in `out`.
pub async fn warm_up(target: Arc<Target>, mode: Mode, count: usize, out: &mut Measurement) {
    let mut client = Client::new(target, mode);
    let mut failures_in_a_row = 0;
    for _ in 0..count {
        match client.send().await {
            Ok(_) => failures_in_a_row = 0,
            Err(e) => {
                out.error(e);
                failures_in_a_row += 1;
                if failures_in_a_row >= MAX_CONSECUTIVE_ERRORS {
                    return;
                }
            }
        }
    }
}

/// `count` timed requests, one at a time on one connection (concurrency 1).
pub async fn latency(
    target: Arc<Target>,
    mode: Mode,
    count: usize,
    probe: &Probe,
    out: &mut Measurement,
) {
    let mut client = Client::new(target, mode);
    // An untimed first request opens the connection, so connect and accept stay out of the
    // numbers.
    if let Err(e) = client.send().await {
        out.error(e);
    }
    let before = probe();
    let start = Instant::now();
    let mut attempted = 0;
    let mut failures_in_a_row = 0;
    for _ in 0..count {
        attempted += 1;
        match client.send().await {
            Ok(t) => {
                t.record(out);
                failures_in_a_row = 0;
            }
            Err(e) => {
                out.error(e);
                failures_in_a_row += 1;
                if failures_in_a_row >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    out.elapsed += start.elapsed();
    out.add_cpu(&before, &probe(), attempted);
}

/// `count` timed requests shared by `concurrency` clients, each on its own connection.
/// The clock starts once every client has connected and sent one untimed request.
pub async fn throughput(
    target: Arc<Target>,
    mode: Mode,
    count: usize,
    concurrency: usize,
    probe: &Probe,
    out: &mut Measurement,
) {
    let tickets = Arc::new(AtomicUsize::new(0));
    let attempted = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let target = Arc::clone(&target);
        let tickets = Arc::clone(&tickets);
        let attempted = Arc::clone(&attempted);
        let barrier = Arc::clone(&barrier);
        clients.push(tokio::spawn(async move {
            let mut client = Client::new(target, mode);
            let mut m = Measurement::default();
            if let Err(e) = client.send().await {
                m.error(e);
            }
            barrier.wait().await;
            let mut failures_in_a_row = 0;
            while tickets.fetch_add(1, Ordering::Relaxed) < count {
                attempted.fetch_add(1, Ordering::Relaxed);
                match client.send().await {
                    Ok(t) => {
                        t.record(&mut m);
                        failures_in_a_row = 0;
                    }
                    Err(e) => {
                        m.error(e);
                        failures_in_a_row += 1;
                        if failures_in_a_row >= MAX_CONSECUTIVE_ERRORS {
                            break;
                        }
                    }
                }
            }
            m
        }));
    }
    // Every client reaches the barrier (each step before it is bounded), but bound the wait
    // anyway: a client stuck there would otherwise hang the whole benchmark.
    if tokio::time::timeout(START_TIMEOUT, barrier.wait())
        .await
        .is_err()
    {
        clients.iter().for_each(JoinHandle::abort);
        out.error(format!(
            "{concurrency} clients did not all connect within {}s",
            START_TIMEOUT.as_secs()
        ));
        return;
    }
    let before = probe();
    let start = Instant::now();
    for client in clients {
        match client.await {
            Ok(m) => out.merge(m),
            Err(e) => out.error(format!("client task failed: {e}")),
        }
    }
    out.elapsed += start.elapsed();
    out.add_cpu(&before, &probe(), attempted.load(Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: Route = Route {
        group: Some("pool3"),
        providers: &["d1", "d2", "d3"],
    };
    const SINGLE: Route = Route {
        group: None,
        providers: &["openai"],
    };

    fn provider(route: Route, header: Option<&'static str>) -> Result<&'static str, String> {
        route.provider_of(header.map(HeaderValue::from_static).as_ref())
    }

    #[test]
    fn deployment_headers_name_the_provider() {
        assert_eq!(provider(GROUP, Some("pool3/d2/gpt-4o-mini")), Ok("d2"));
        assert_eq!(provider(SINGLE, Some("openai/gpt-4o-mini")), Ok("openai"));
        assert!(provider(GROUP, None).is_err());
        assert!(provider(GROUP, Some("openai/gpt-4o-mini")).is_err());
        assert!(provider(GROUP, Some("pool3/d4/gpt-4o-mini")).is_err());
        assert!(provider(GROUP, Some("pool30/d1/gpt-4o-mini")).is_err());
        assert!(provider(GROUP, Some("pool3/d1/")).is_err());
        assert!(provider(SINGLE, Some("pool3/d1/gpt-4o-mini")).is_err());
    }

    #[test]
    fn bodies_name_the_model() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let target = Target::for_model("t", addr, None, None, "pool3");
        let Ok(target) = target else {
            panic!("a loopback address is a valid Host header");
        };
        for mode in [Mode::NonStream, Mode::Stream] {
            let body: serde_json::Value = serde_json::from_slice(&target.body(mode))
                .unwrap_or_else(|e| panic!("{mode:?} body is not JSON: {e}"));
            assert_eq!(body["model"], "pool3");
            assert_eq!(
                body["stream"].as_bool(),
                (mode == Mode::Stream).then_some(true)
            );
        }
    }
}
