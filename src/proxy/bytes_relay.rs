//! A relay of raw bytes (speech audio, a streamed transcription's events): each upstream frame goes
//! to the client as it arrives. The request finishes (cost, trace) on a task of its own when the
//! upstream ends, fails or stalls past `stream_idle`, or when the client goes away (as cancelled).
//! What speech bills was known before the first byte (the characters of its input), so its bytes
//! are not read; a streamed transcription's are cut into events beside the relay, only to read
//! the usage of its last one (`transcript.text.done`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Response;
use hyper::body::{Body, Frame};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use tokio::time::Sleep;
use tracing::Instrument;

use super::complete::{passthrough_headers, stamp};
use super::pipeline::finish;
use super::transcode::UpstreamBody;
use super::{ProxyBody, RequestCtx};
use crate::modules::Chain;
use crate::request::ErrorCode;

pub struct BytesRelay {
    chain: Arc<Chain>,
    /// `None` once the request is finished.
    ctx: Option<RequestCtx>,
    upstream: Option<UpstreamBody>,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    span: tracing::Span,
    /// For a streamed transcription: its events, for the usage of the last one.
    events: Option<crate::wire::sse::SseSplitter>,
}

/// The response head, then the upstream's bytes as they come.
pub fn start(
    chain: Arc<Chain>,
    mut ctx: RequestCtx,
    upstream: Response<UpstreamBody>,
) -> Response<ProxyBody> {
    let mut headers = passthrough_headers(upstream.headers());
    if let Some(length) = upstream.headers().get(CONTENT_LENGTH) {
        headers.insert(CONTENT_LENGTH, length.clone());
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/octet-stream"),
        );
    }
    let status = upstream.status();
    ctx.result.status = status.as_u16();
    // What bytes bill is known from the request (speech: its characters; a transcription: the
    // upload's length, until its last event says better).
    let mut events = None;
    if let Some(crate::wire::openai::Inbound::Operation(request)) = &ctx.request.parsed {
        let metered = request.meter(b"");
        ctx.usage.units = metered.units;
        ctx.usage.price_name = metered.price_name;
        ctx.usage.reported = true;
        if request.streams() {
            events = Some(crate::wire::sse::SseSplitter::default());
        }
    }
    let mut response = Response::new(ProxyBody::Empty);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    let mut response = stamp(response, &mut ctx);
    let idle = ctx.timeouts().stream_idle;
    *response.body_mut() = ProxyBody::Bytes(Box::new(BytesRelay {
        chain,
        ctx: Some(ctx),
        upstream: Some(upstream.into_body()),
        idle,
        idle_timer: Box::pin(tokio::time::sleep(idle)),
        span: tracing::Span::current(),
        events,
    }));
    response
}

impl BytesRelay {
    /// Finishes the request on a task of its own, with `failure` as its error class if any.
    fn finish(&mut self, failure: Option<ErrorCode>) {
        self.upstream = None;
        let Some(mut ctx) = self.ctx.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(class) = failure {
            ctx.result.error_class = Some(class);
        }
        ctx.timings.overhead = ctx.overhead_now();
        let chain = self.chain.clone();
        runtime.spawn(async move { finish(&chain, &mut ctx).await }.instrument(self.span.clone()));
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            let Some(upstream) = self.upstream.as_mut() else {
                return Poll::Ready(None);
            };
            let waited = Instant::now();
            match Pin::new(upstream).poll_frame(cx) {
                Poll::Pending => {
                    if self.idle_timer.as_mut().poll(cx).is_ready() {
                        tracing::warn!(
                            idle_ms = self.idle.as_millis() as u64,
                            "byte stream stalled"
                        );
                        self.finish(Some(ErrorCode::UpstreamTimeout));
                        return Poll::Ready(None);
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) => {
                    self.finish(None);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "byte stream broke off");
                    self.finish(Some(ErrorCode::UpstreamStreamError));
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Some(ctx) = self.ctx.as_mut() {
                        ctx.timings.upstream_time += waited.elapsed();
                        ctx.timings
                            .ttft
                            .get_or_insert_with(|| ctx.timings.started.elapsed());
                        ctx.result.bytes_out += data.len() as u64;
                        if let Some(events) = self.events.as_mut() {
                            read_usage(ctx, events, &data);
                        }
                    }
                    let deadline = tokio::time::Instant::now() + self.idle;
                    self.idle_timer.as_mut().reset(deadline);
                    return Poll::Ready(Some(data));
                }
            }
        }
    }
}

/// Meters a streamed transcription from its `transcript.text.done` event (OpenAI's
/// https://platform.openai.com/docs/api-reference/audio/transcript-text-done-event), whose usage
/// is the same object a complete answer carries.
fn read_usage(ctx: &mut RequestCtx, events: &mut crate::wire::sse::SseSplitter, data: &[u8]) {
    for event in events.push(data) {
        let Some(payload) = event.data() else {
            continue;
        };
        if !payload.contains("transcript.text.done") {
            continue;
        }
        let Some(crate::wire::openai::Inbound::Operation(request)) = &ctx.request.parsed else {
            return;
        };
        let metered = request.meter(payload.as_bytes());
        ctx.usage.units = metered.units;
        ctx.usage.tokens.prompt = metered.prompt_tokens.unwrap_or(0);
        ctx.usage.tokens.completion = metered.completion_tokens.unwrap_or(0);
    }
}

impl Body for BytesRelay {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let relay = self.get_mut();
        let span = relay.span.clone();
        let _entered = span.enter();
        relay
            .poll_next(cx)
            .map(|next| next.map(|b| Ok(Frame::data(b))))
    }
}

impl Drop for BytesRelay {
    /// The client went away before the end: the request is traced as cancelled.
    fn drop(&mut self) {
        if self.ctx.is_some() {
            self.finish(Some(ErrorCode::Cancelled));
        }
    }
}
