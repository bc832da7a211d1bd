//! The upstream HTTP client: a keep-alive pool of HTTP/1.1 connections (plain or rustls with
//! bundled web PKI roots), TCP_NODELAY so small requests are not held back by Nagle's algorithm,
//! and no task of its own per connection: the request's own task drives the connection while it
//! waits for the head and while it reads the body ([`body::UpstreamIncoming`]), which saves two
//! task wake-ups per streamed frame. Each provider owns one client so its connect timeout and pool
//! are its own.
//!
//! HTTP/1.1 only: every provider serves it, and a pool of HTTP/1.1 connections costs nothing that
//! HTTP/2's multiplexing would save at the request rates of an LLM gateway.

mod body;
mod pool;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper::header::{HOST, HeaderValue};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

pub use body::UpstreamIncoming;
use pool::{Link, Pool};

use super::UpstreamError;
use super::key_pool::{self, KeyTicket};

#[derive(Clone)]
pub struct HttpClient {
    connector: HttpsConnector<HttpConnector>,
    handshake: http1::Builder,
    pool: Arc<Pool>,
}

impl HttpClient {
    pub fn new(connect_timeout: Duration) -> Result<HttpClient, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(HttpClient {
            connector,
            handshake: http1::Builder::new(),
            pool: Arc::default(),
        })
    }

    /// Connections this client has opened (tests check that keep-alive reuses them).
    pub fn connections_opened(&self) -> u64 {
        self.pool.opened()
    }

    /// Sends `request` (an absolute URI) and waits for the response head, at most `first_byte`
    /// per try. A request that carries a [`KeyTicket`] (a key from a provider's pool) and gets a
    /// 429 rests that key and goes again at once with the next free key of the pool, if any: the
    /// caller sees the 429 only when every key rests.
    ///
    /// Cancel-safe: dropping the future drops the request and its connection.
    pub async fn send(
        &self,
        provider: &str,
        mut request: Request<Full<Bytes>>,
        first_byte: Duration,
    ) -> Result<Response<UpstreamIncoming>, UpstreamError> {
        let mut ticket = request.extensions_mut().remove::<KeyTicket>();
        // A copy to send again with another key; only when the pool has another key to offer.
        let template = ticket
            .as_ref()
            .filter(|t| t.has_alternatives())
            .map(|_| key_pool::copy(&request));
        let mut response = self.send_once(provider, request, first_byte).await?;
        while response.status() == hyper::StatusCode::TOO_MANY_REQUESTS
            && let Some(used) = ticket.take()
        {
            let Some((again, next)) = used.rest_and_switch(response.headers(), template.as_ref())
            else {
                break;
            };
            ticket = Some(next);
            response = self.send_once(provider, again, first_byte).await?;
        }
        Ok(response)
    }

    async fn send_once(
        &self,
        provider: &str,
        request: Request<Full<Bytes>>,
        first_byte: Duration,
    ) -> Result<Response<UpstreamIncoming>, UpstreamError> {
        match tokio::time::timeout(first_byte, self.exchange(provider, request)).await {
            Err(_) => Err(UpstreamError::Timeout {
                provider: provider.to_string(),
                phase: "waiting for response headers",
                after_ms: first_byte.as_millis() as u64,
            }),
            Ok(result) => result,
        }
    }

    async fn exchange(
        &self,
        provider: &str,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamIncoming>, UpstreamError> {
        let protocol = |detail: String| UpstreamError::Protocol {
            provider: provider.to_string(),
            detail,
        };
        let (uri, key, request) = origin_form(request).ok_or_else(|| UpstreamError::Build {
            provider: provider.to_string(),
            detail: "the upstream URL has no host".to_string(),
        })?;
        let mut request = request;
        // A pooled connection the upstream closed since: hyper hands the request back unsent,
        // and it goes out once more on a new connection.
        if let Some(link) = self.pool.checkout(&key) {
            match self.exchange_on(link, request, &key).await {
                Ok(response) => return Ok(response),
                Err(Unsent::Back(again)) => request = *again,
                Err(Unsent::Failed(e)) => return Err(protocol(error_chain(&e))),
            }
        }
        let link = self.connect(provider, uri).await?;
        match self.exchange_on(link, request, &key).await {
            Ok(response) => Ok(response),
            Err(Unsent::Back(_)) => Err(protocol(
                "the connection closed before the request was sent".to_string(),
            )),
            Err(Unsent::Failed(e)) => Err(protocol(error_chain(&e))),
        }
    }

    async fn connect(&self, provider: &str, uri: Uri) -> Result<Link, UpstreamError> {
        let refused = |detail: String| UpstreamError::Connect {
            provider: provider.to_string(),
            detail,
        };
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| refused(error_chain(e.as_ref())))?;
        let io = connector
            .call(uri)
            .await
            .map_err(|e| refused(error_chain(e.as_ref())))?;
        let (sender, conn) = self
            .handshake
            .handshake(io)
            .await
            .map_err(|e| refused(error_chain(&e)))?;
        self.pool.count_opened();
        Ok(Link {
            sender,
            conn: Box::pin(conn),
        })
    }

    /// Sends on `link`, polling its connection beside the response until the head arrives.
    async fn exchange_on(
        &self,
        mut link: Link,
        request: Request<Full<Bytes>>,
        key: &str,
    ) -> Result<Response<UpstreamIncoming>, Unsent> {
        let mut response = std::pin::pin!(link.sender.try_send_request(request));
        let mut open = true;
        let result = std::future::poll_fn(|cx| {
            if open && link.conn.as_mut().poll(cx).is_ready() {
                // Closed: the response future resolves with the reason.
                open = false;
            }
            response.as_mut().poll(cx)
        })
        .await;
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let body = UpstreamIncoming::new(body, link, self.pool.clone(), key.to_string());
                Ok(Response::from_parts(parts, body))
            }
            Err(mut e) => match e.take_message() {
                Some(request) => Err(Unsent::Back(Box::new(request))),
                None => Err(Unsent::Failed(e.into_error())),
            },
        }
    }
}

enum Unsent {
    /// Nothing was sent: the request, to try again.
    Back(Box<Request<Full<Bytes>>>),
    Failed(hyper::Error),
}

/// Splits an absolute-URI request into the URI to connect to, the pool key
/// (`scheme://authority`) and the request as an origin server takes it: the path in the request
/// line and the authority in `Host`.
fn origin_form(mut request: Request<Full<Bytes>>) -> Option<(Uri, String, Request<Full<Bytes>>)> {
    let uri = request.uri().clone();
    let authority = uri.authority()?.clone();
    let scheme = uri.scheme_str().unwrap_or("http");
    let key = [scheme, "://", authority.as_str()].concat();
    if !request.headers().contains_key(HOST) {
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        request.headers_mut().insert(HOST, host);
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    *request.uri_mut() = path.parse().ok()?;
    Some((uri, key, request))
}

/// `retry-after` (seconds or an HTTP date) or `retry-after-ms`.
pub fn parse_retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_millis(ms as u64));
    }
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_millis((secs * 1000.0) as u64));
    }
    let when =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_millis(
        delta.whole_milliseconds().max(0) as u64
    ))
}

/// The error and its sources on one line (hyper's top-level message alone says little).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests;
