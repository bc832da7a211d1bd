//! `bare-proxy`: the least a hyper reverse proxy can do, as a second floor for `bench`. It reads
//! each request's body whole, forwards it over a pool of HTTP/1.1 keep-alive connections to one
//! upstream and streams the answer back, and nothing else: no parsing, no chain, no trace. It
//! uses what Stockyard's request path uses below its own work: the same runtime and server
//! set-up, the upstream connection polled by whoever reads its answer (no second task, no
//! hand-over channel per frame), and frames that arrived together sent in one write. So
//! Stockyard's cost above this line is its own work; this line's cost above nginx is the stack's.
//!
//! Usage: `bare-proxy UPSTREAM_ADDR`; prints `listening on http://ADDR` on stdout when ready.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

/// Enough for an 8-chunk stream that arrived at once to leave in one write; bounded so that a
/// fast stream still flows.
const MAX_COALESCED: usize = 64;

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
    let pool: Arc<Pool> = Arc::default();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let pool = pool.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let pool = pool.clone();
                async move { Ok::<_, Infallible>(forward(pool, upstream, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One upstream connection: the half that sends and the half that does the I/O.
struct Link {
    sender: SendRequest<Full<Bytes>>,
    conn: Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl Link {
    /// Open and free for a request now.
    fn ready_now(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if self.conn.as_mut().poll(&mut cx).is_ready() {
            return false;
        }
        matches!(self.sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
    }
}

type Pool = Mutex<Vec<Link>>;

async fn forward(
    pool: Arc<Pool>,
    upstream: SocketAddr,
    request: Request<Incoming>,
) -> Response<BoxBody<Bytes, hyper::Error>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST),
    };
    let request = Request::from_parts(parts, Full::new(body));
    let Some(mut link) = checkout(&pool, upstream).await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    // Poll the connection beside the response until the head arrives.
    let mut response = std::pin::pin!(link.sender.send_request(request));
    let mut open = true;
    let result = std::future::poll_fn(|cx| {
        if open && link.conn.as_mut().poll(cx).is_ready() {
            open = false;
        }
        response.as_mut().poll(cx)
    })
    .await;
    match result {
        Ok(response) => response.map(|body| {
            Relay {
                body,
                link: Some(link),
                pool,
                held: None,
                done: false,
            }
            .boxed()
        }),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

/// The most recently used free connection, or a new one.
async fn checkout(pool: &Pool, upstream: SocketAddr) -> Option<Link> {
    let pooled = pool.lock().ok().and_then(|mut idle| {
        while let Some(mut link) = idle.pop() {
            if link.ready_now() {
                return Some(link);
            }
        }
        None
    });
    if pooled.is_some() {
        return pooled;
    }
    let stream = TcpStream::connect(upstream)
        .await
        .inspect_err(|e| eprintln!("bare-proxy: connect {upstream}: {e}"))
        .ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    Some(Link {
        sender,
        conn: Box::pin(conn),
    })
}

fn status(code: StatusCode) -> Response<BoxBody<Bytes, hyper::Error>> {
    let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *response.status_mut() = code;
    response
}

/// The upstream's answer: polls its connection, joins data frames that are already there into
/// one, and gives the connection back to the pool at the end.
struct Relay {
    body: Incoming,
    link: Option<Link>,
    pool: Arc<Pool>,
    /// A frame or error that ended a run of joined data, sent next.
    held: Option<Result<Frame<Bytes>, hyper::Error>>,
    done: bool,
}

impl Relay {
    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some(link) = &mut self.link
            && link.conn.as_mut().poll(cx).is_ready()
        {
            // Closed: what it decoded is already in the body, then its end or error.
            self.link = None;
        }
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
            if let Some(mut link) = self.link.take()
                && link.ready_now()
                && let Ok(mut idle) = self.pool.lock()
            {
                idle.push(link);
            }
        }
        polled
    }
}

impl Body for Relay {
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
