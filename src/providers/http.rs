//! The pooled upstream HTTP client: keep-alive, HTTP/1.1 and HTTP/2 (by ALPN), rustls with bundled
//! web PKI roots, and TCP_NODELAY so small requests are not held back by Nagle's algorithm.
//! Each provider owns one client so its connect timeout and pool are its own.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::UpstreamError;
use super::key_pool::{self, KeyTicket};

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    pub fn new(connect_timeout: Duration) -> Result<HttpClient, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(HttpClient { inner })
    }

    /// Sends `request` and waits for the response head, at most `first_byte` per try. A request
    /// that carries a [`KeyTicket`] (a key from a provider's pool) and gets a 429 rests that key
    /// and goes again at once with the next free key of the pool, if any: the caller sees the
    /// 429 only when every key rests.
    ///
    /// Cancel-safe: dropping the future drops the request and its connection.
    pub async fn send(
        &self,
        provider: &str,
        mut request: hyper::Request<Full<Bytes>>,
        first_byte: Duration,
    ) -> Result<hyper::Response<Incoming>, UpstreamError> {
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
        request: hyper::Request<Full<Bytes>>,
        first_byte: Duration,
    ) -> Result<hyper::Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(first_byte, self.inner.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout {
                provider: provider.to_string(),
                phase: "waiting for response headers",
                after_ms: first_byte.as_millis() as u64,
            }),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect {
                provider: provider.to_string(),
                detail: error_chain(&e),
            }),
            Ok(Err(e)) => Err(UpstreamError::Protocol {
                provider: provider.to_string(),
                detail: error_chain(&e),
            }),
            Ok(Ok(response)) => Ok(response),
        }
    }
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
