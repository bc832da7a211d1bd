//! `bare-proxy`: the least a hyper reverse proxy can do, as a second floor for `bench`. It reads
//! each request's body whole, forwards it with Stockyard's own upstream client (its connection
//! pool, and the connection polled by whoever reads the answer: no second task, no hand-over
//! channel per frame) and streams the answer back, frames that arrived together in one write;
//! and nothing else: no parsing, no chain, no trace. The runtime and server are set up as
//! Stockyard's are. So Stockyard's cost above this line is its own work; this line's cost above
//! nginx is the stack's.
//!
//! Usage: `bare-proxy UPSTREAM_ADDR`; prints `listening on http://ADDR` on stdout when ready.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use stockyard::providers::http::{HttpClient, UpstreamIncoming};
use tokio::net::TcpListener;

/// Stockyard's allocator (the bench starts this with Stockyard's purge setting, too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Enough for an 8-chunk stream that arrived at once to leave in one write; bounded so that a
/// fast stream still flows.
const MAX_COALESCED: usize = 64;
/// Generous bounds: the mock answers at once, and a hung floor should fail, not wait forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let Some(upstream) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<SocketAddr>().ok())
    else {
        eprintln!("usage: bare-proxy UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("bare-proxy: cannot start the runtime: {e}");
            std::process::exit(1)
        });
    runtime.block_on(serve(upstream));
}

async fn serve(upstream: SocketAddr) {
    let client = match HttpClient::new(CONNECT_TIMEOUT) {
        Ok(client) => Arc::new(client),
        Err(e) => {
            eprintln!("bare-proxy: cannot make the upstream client: {e}");
            std::process::exit(1)
        }
    };
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bare-proxy: cannot listen: {e}");
            std::process::exit(1)
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(e) => {
            eprintln!("bare-proxy: no local address: {e}");
            std::process::exit(1)
        }
    }
    let base: Arc<str> = format!("http://{upstream}").into();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, base) = (client.clone(), base.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (client, base) = (client.clone(), base.clone());
                async move { Ok::<_, Infallible>(forward(&client, &base, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `base`: `http://` and the upstream's address.
async fn forward(
    client: &HttpClient,
    base: &str,
    request: Request<Incoming>,
) -> Response<BoxBody<Bytes, hyper::Error>> {
    let (mut parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match [base, path].concat().parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    // The client's Host names this proxy; the upstream gets its own.
    parts.headers.remove(hyper::header::HOST);
    let request = Request::from_parts(parts, Full::new(body));
    match client.send("mock", request, FIRST_BYTE_TIMEOUT).await {
        Ok(response) => response.map(|body| Coalesce::new(body).boxed()),
        Err(e) => {
            eprintln!("bare-proxy: {e}");
            status(StatusCode::BAD_GATEWAY)
        }
    }
}

fn status(code: StatusCode) -> Response<BoxBody<Bytes, hyper::Error>> {
    let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *response.status_mut() = code;
    response
}

/// The upstream's answer with data frames that are already there joined into one.
struct Coalesce {
    body: UpstreamIncoming,
    /// A frame or error that ended a run of joined data, sent next.
    held: Option<Result<Frame<Bytes>, hyper::Error>>,
    done: bool,
}

impl Coalesce {
    fn new(body: UpstreamIncoming) -> Coalesce {
        Coalesce {
            body,
            held: None,
            done: false,
        }
    }

    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }
}

impl Body for Coalesce {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(held) = this.held.take() {
            return Poll::Ready(Some(held));
        }
        if this.done {
            return Poll::Ready(None);
        }
        let data = match this.poll_body(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => data,
                Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
            },
            other => return other,
        };
        let mut joined: Option<BytesMut> = None;
        for _ in 0..MAX_COALESCED {
            match this.poll_body(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(more) => joined
                        .get_or_insert_with(|| BytesMut::from(&data[..]))
                        .extend_from_slice(&more),
                    Err(trailers) => {
                        this.held = Some(Ok(trailers));
                        break;
                    }
                },
                Poll::Ready(Some(Err(e))) => {
                    this.held = Some(Err(e));
                    break;
                }
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
        Poll::Ready(Some(Ok(Frame::data(joined.map_or(data, BytesMut::freeze)))))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && (self.done || self.body.is_end_stream())
    }
}
