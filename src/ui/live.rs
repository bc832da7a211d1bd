//! Live: requests as they finish, over server-sent events. The writer broadcasts each trace as it
//! is queued (`Writer::subscribe_live`); this page's stream forwards them as `trace` events, and
//! says `lagged` with a count when a slow browser fell behind the broadcast's backlog. Nothing is
//! read from disk, and with no page open the request path pays one atomic load.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::broadcast::error::RecvError;

use super::Ctx;
use super::html;
use crate::proxy::ProxyBody;

/// A comment line this often keeps idle connections (and proxies between) from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn page(ctx: &Ctx<'_>) -> Response<ProxyBody> {
    let body = "<p id=\"live-status\">connecting…</p><table id=\"live\"><thead><tr><th>Time (UTC)</th>\
         <th>Model</th><th>Provider</th><th class=\"num\">Status</th><th class=\"num\">Latency</th>\
         <th class=\"num\">Tokens</th><th>Key</th><th>Cache</th></tr></thead>\
         <tbody id=\"live-rows\"></tbody></table>";
    super::html(
        StatusCode::OK,
        html::page("Live", "/ui/live", Some(&ctx.session), body),
    )
}

pub fn events(ctx: &Ctx<'_>) -> Response<ProxyBody> {
    let mut feed = ctx.app.writer.subscribe_live();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let app = ctx.app.clone();
    tokio::spawn(async move {
        // The first bytes open the stream in the browser at once.
        if tx.send(Bytes::from_static(b": live\n\n")).await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                got = feed.recv() => match got {
                    Ok(trace) => match serde_json::to_string(&*trace) {
                        Ok(json) => format!("event: trace\ndata: {json}\n\n"),
                        Err(_) => continue,
                    },
                    Err(RecvError::Lagged(n)) => format!("event: lagged\ndata: {n}\n\n"),
                    Err(RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => ": keep-alive\n\n".to_string(),
                // A live page must not hold the server's exit up for its grace period.
                () = app.proxy.admission.shutdown_begun() => return,
            };
            // The browser went away: the body (the receiver) was dropped.
            if tx.send(Bytes::from(event)).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(ProxyBody::Channel(rx));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
