//! The SSE relay as the response body itself: hyper polls it for the next frame, and it polls the
//! upstream, so each upstream frame goes out in the same wake-up that read it, with no task and no
//! channel between them. Events are handled by [`super::stream`] (usage, watchers, egress).
//!
//! A stream ends in one of four ways, each recorded in the trace:
//! - the upstream's terminal event, then end of body: success;
//! - the client goes away (hyper drops this body): `cancelled`; dropping the upstream body closes
//!   its connection, and `on_finish` runs on a task of its own;
//! - the upstream fails, stalls past `stream_idle`, passes its total timeout, ends without its
//!   terminal event, or sends an error event; or a stream watcher ends it: the client gets an
//!   error event in its own format and no clean ending, so a failure never looks like a finish.
//!
//! `on_finish` runs before the last bytes of a clean stream go out: a client that reacts to the
//! end at once (a follow-up turn by `previous_response_id`) must find the answer stored.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hyper::body::Body;
use tokio::time::Sleep;
use tracing::Instrument;

use super::egress::StreamEgress;
use super::pipeline::finish;
use super::stream::{self, EventKind};
use super::stream_hooks::{Ended, StreamHooks};
use super::transcode::UpstreamBody;
use crate::modules::Chain;
use crate::providers::ChatStreamDecoder;
use crate::request::{ApiError, ErrorCode, RequestCtx};
use crate::wire::sse::SseSplitter;

/// Upstream frames gathered into one write at most, so one busy stream cannot hold a worker.
const MAX_COALESCED: usize = 16;

pub struct Relay {
    chain: Arc<Chain>,
    /// `None` once `on_finish` has it.
    ctx: Option<RequestCtx>,
    upstream: Option<UpstreamBody>,
    prefix: VecDeque<Bytes>,
    egress: StreamEgress,
    native: Option<Box<dyn ChatStreamDecoder>>,
    splitter: SseSplitter,
    hooks: Option<StreamHooks>,
    saw_done: bool,
    idle: Duration,
    total: Duration,
    deadline: Pin<Box<Sleep>>,
    idle_timer: Pin<Box<Sleep>>,
    /// Since when the upstream has had nothing for us (its time is not the proxy's overhead).
    waiting: Option<Instant>,
    state: State,
    /// The request's log span (request id), entered whenever the relay runs: hyper polls the
    /// body outside the handler's span.
    span: tracing::Span,
}

enum State {
    Streaming,
    /// `on_finish` is running; `tail` goes out once it is done.
    Finishing {
        /// Resolves to the refusal of a module that judged the whole stream at its end, if any.
        finishing: Pin<Box<dyn Future<Output = Option<ApiError>> + Send>>,
        tail: Option<Bytes>,
    },
    Done,
}

enum End {
    Done,
    /// Failed; `told` says whether the client already got the upstream's own error event.
    Failed {
        err: ApiError,
        told: bool,
    },
    /// A stream watcher ended it.
    Refused(Ended),
}

impl Relay {
    pub fn new(
        chain: Arc<Chain>,
        mut ctx: RequestCtx,
        upstream: UpstreamBody,
        prefix: Vec<Bytes>,
    ) -> Relay {
        let timeouts = ctx.timeouts();
        let deadline = tokio::time::Instant::from_std(ctx.timings.started + timeouts.total);
        let egress = StreamEgress::for_request(&ctx);
        let native = ctx.request.native_decoder.take();
        let hooks = StreamHooks::new(chain.stream_watchers());
        Relay {
            chain,
            ctx: Some(ctx),
            upstream: Some(upstream),
            prefix: prefix.into(),
            egress,
            native,
            splitter: SseSplitter::default(),
            hooks,
            saw_done: false,
            idle: timeouts.stream_idle,
            total: timeouts.total,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            idle_timer: Box::pin(tokio::time::sleep(timeouts.stream_idle)),
            waiting: None,
            state: State::Streaming,
            span: tracing::Span::current(),
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::Finishing { finishing, tail } => {
                    let refusal = match finishing.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(refusal) => refusal,
                    };
                    let mut tail = tail.take();
                    if let Some(error) = refusal {
                        // The clean ending gives way to the refusal, in the client's format.
                        tail = Some(self.egress.error_event_coded(
                            error.sse_event(),
                            &error.message(),
                            Some(error.code()),
                        ));
                    }
                    self.state = State::Done;
                    match tail {
                        Some(tail) if !tail.is_empty() => return Poll::Ready(Some(tail)),
                        _ => return Poll::Ready(None),
                    }
                }
                State::Streaming => {}
            }
            let data = match self.prefix.pop_front() {
                Some(data) => data,
                None => match self.poll_upstream(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(data))) => data,
                    Poll::Ready(Ok(None)) => continue,
                    Poll::Ready(Err(end)) => {
                        let out = self.end(end, BytesMut::new());
                        if !out.is_empty() {
                            return Poll::Ready(Some(out));
                        }
                        continue;
                    }
                },
            };
            let Some(ctx) = self.ctx.as_mut() else {
                self.state = State::Done;
                continue;
            };
            // A native stream nobody watches: the upstream's bytes go out as the very buffer they
            // came in, and the side decoder reads them beside.
            if self.hooks.is_none()
                && let Some(side) = self.native.as_deref_mut()
            {
                let read = stream::read_native(ctx, side, &data);
                note_sent(ctx, data.len());
                let out = match read {
                    Ok(()) => data,
                    Err(message) => {
                        let end = End::Failed {
                            err: ApiError::UpstreamProtocol { message },
                            told: true,
                        };
                        self.end(end, BytesMut::from(&data[..]))
                    }
                };
                if !out.is_empty() {
                    return Poll::Ready(Some(out));
                }
                continue;
            }
            let (mut out, mut ended) = self.process_frame(&data);
            // Frames the upstream has ready already go out in the same write: one wake-up and
            // one syscall for what arrived together, as a plain reverse proxy would send it.
            let mut coalesced = 0;
            while ended.is_none() && self.prefix.is_empty() && coalesced < MAX_COALESCED {
                coalesced += 1;
                match self.poll_upstream(cx) {
                    Poll::Ready(Ok(Some(more))) => {
                        let (more_out, more_ended) = self.process_frame(&more);
                        out.extend_from_slice(&more_out);
                        ended = more_ended;
                    }
                    Poll::Ready(Ok(None)) => {}
                    Poll::Ready(Err(end)) => ended = Some(end),
                    Poll::Pending => break,
                }
            }
            let out = match ended {
                Some(end) => self.end(end, out),
                None => out.freeze(),
            };
            if !out.is_empty() {
                return Poll::Ready(Some(out));
            }
        }
    }

    /// One upstream frame through [`process`], with the bytes and first-byte time it adds.
    fn process_frame(&mut self, data: &Bytes) -> (BytesMut, Option<End>) {
        let Some(ctx) = self.ctx.as_mut() else {
            return (BytesMut::new(), Some(End::Done));
        };
        let (out, ended) = process(
            ctx,
            &mut self.egress,
            self.native.as_deref_mut(),
            &mut self.splitter,
            self.hooks.as_mut(),
            &mut self.saw_done,
            data,
        );
        note_sent(ctx, out.len());
        (out, ended)
    }

    /// The next data frame of the upstream (`Ok(None)` for a frame without data), or how the
    /// stream ended.
    fn poll_upstream(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, End>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(End::Failed {
                err: ApiError::UpstreamTimeout {
                    message: format!(
                        "provider {} did not finish the stream within {} ms",
                        self.provider(),
                        self.total.as_millis()
                    ),
                },
                told: false,
            }));
        }
        let Some(upstream) = self.upstream.as_mut() else {
            return Poll::Ready(Err(End::Done));
        };
        let next = match Pin::new(upstream).poll_frame(cx) {
            Poll::Pending => {
                self.waiting.get_or_insert_with(Instant::now);
                if self.idle_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(End::Failed {
                        err: ApiError::UpstreamTimeout {
                            message: format!(
                                "provider {} sent nothing for {} ms mid-stream",
                                self.provider(),
                                self.idle.as_millis()
                            ),
                        },
                        told: false,
                    }));
                }
                return Poll::Pending;
            }
            Poll::Ready(next) => next,
        };
        if let (Some(since), Some(ctx)) = (self.waiting.take(), self.ctx.as_mut()) {
            ctx.timings.upstream_time += since.elapsed();
        }
        let idle_until = tokio::time::Instant::now() + self.idle;
        self.idle_timer.as_mut().reset(idle_until);
        Poll::Ready(match next {
            Some(Ok(frame)) => Ok(frame.into_data().ok()),
            Some(Err(e)) => Err(End::Failed {
                err: ApiError::UpstreamProtocol {
                    message: format!("provider {} broke off the stream: {e}", self.provider()),
                },
                told: false,
            }),
            None if self.saw_done => Err(End::Done),
            // A native stream ends with its own terminal event, which the side decoder saw.
            None if self.native.is_some() => Err(self.finish_native()),
            None => Err(End::Failed {
                err: ApiError::UpstreamProtocol {
                    message: format!(
                        "provider {} ended the stream before it finished",
                        self.provider()
                    ),
                },
                told: false,
            }),
        })
    }

    /// A watcher ended the stream: the refusal is its, and the client gets it in its format.
    fn refuse(&mut self, ctx: &mut RequestCtx, ended: Ended, out: &mut BytesMut) {
        ctx.result.error_class = Some(ended.error.error_code());
        ctx.route.refused_by = Some(ended.by);
        // A module's refusal (a guardrail) keeps its own code in every client's format.
        let code = match ended.error.error_code() {
            code if code.is_upstream() => None,
            code => Some(code.as_str()),
        };
        let event =
            self.egress
                .error_event_coded(ended.error.sse_event(), &ended.error.message(), code);
        out.extend_from_slice(&event);
    }

    /// The provider's name, for failure messages.
    fn provider(&self) -> String {
        self.ctx
            .as_ref()
            .and_then(|c| c.provider_name())
            .unwrap_or_default()
            .to_string()
    }

    fn finish_native(&mut self) -> End {
        let (Some(side), Some(ctx)) = (self.native.as_mut(), self.ctx.as_mut()) else {
            return End::Done;
        };
        match side.finish() {
            Ok(chunks) => {
                for chunk in chunks {
                    let _ = stream::inspect_value(ctx, &chunk);
                }
                End::Done
            }
            Err(message) => End::Failed {
                err: ApiError::UpstreamProtocol { message },
                told: false,
            },
        }
    }

    /// Ends the stream: `out` (what this frame produced) and what the ending adds go out now;
    /// `on_finish` starts; anything that must wait for it (a clean ending's tail) waits.
    fn end(&mut self, end: End, mut out: BytesMut) -> Bytes {
        // Dropping the upstream body here, before anything else, closes its connection at once.
        self.upstream = None;
        let Some(mut ctx) = self.ctx.take() else {
            self.state = State::Done;
            return out.freeze();
        };
        let tail = match end {
            End::Done => {
                // A native stream's held events (a canonical stream released its own before
                // its terminal event).
                let held = match self.hooks.as_mut() {
                    Some(hooks) => hooks.release_all(&mut ctx),
                    None => Ok(Default::default()),
                };
                match held {
                    Ok(held) => {
                        for event in held {
                            out.extend_from_slice(event.raw());
                        }
                        // A native stream's last event may lack its blank line; it still goes.
                        if self.native.is_some() {
                            out.extend_from_slice(&self.splitter.take_rest());
                        }
                        let mut tail = self.egress.finish(&mut ctx);
                        if self.native.is_none() && self.hooks.is_some() && self.egress.is_openai()
                        {
                            // Withheld by the stream hook until the watchers judged the end.
                            tail = Bytes::from_static(b"data: [DONE]\n\n");
                        }
                        ctx.result.bytes_out += tail.len() as u64;
                        Some(tail)
                    }
                    Err(ended) => {
                        self.refuse(&mut ctx, ended, &mut out);
                        None
                    }
                }
            }
            End::Refused(ended) => {
                self.refuse(&mut ctx, ended, &mut out);
                None
            }
            End::Failed { err, told } => {
                ctx.result.error_class = Some(if told {
                    ErrorCode::UpstreamStreamError
                } else {
                    err.error_code()
                });
                // An OpenAI client already got the provider's own error event; others get theirs.
                if !told || !self.egress.forwards_raw() {
                    let event = self.egress.error_event(err.sse_event(), &err.message());
                    out.extend_from_slice(&event);
                }
                None
            }
        };
        ctx.result.bytes_out += out.len() as u64;
        let chain = self.chain.clone();
        let judge_end = tail.is_some() && self.hooks.is_some();
        self.state = State::Finishing {
            finishing: Box::pin(async move {
                let refusal = if judge_end {
                    stream_end(&chain, &mut ctx).await
                } else {
                    None
                };
                finish(&chain, &mut ctx).await;
                refusal
            }),
            tail,
        };
        out.freeze()
    }
}

/// Asks each stream watcher whether it refuses the whole answer, now that it ended; the first
/// refusal wins and is recorded as the request's ending.
async fn stream_end(chain: &Chain, ctx: &mut RequestCtx) -> Option<ApiError> {
    for module in chain.stream_enders() {
        if let Some(error) = module.on_stream_end(ctx).await {
            ctx.result.error_class = Some(error.error_code());
            ctx.route.refused_by = Some(module.name());
            return Some(error);
        }
    }
    None
}

/// Counts `n` bytes sent to the client; the first ones mark the time to first token.
fn note_sent(ctx: &mut RequestCtx, n: usize) {
    if n > 0 {
        ctx.timings
            .ttft
            .get_or_insert_with(|| ctx.timings.started.elapsed());
        ctx.result.bytes_out += n as u64;
    }
}

/// One upstream frame: native bytes pass as they came (watchers see them event by event), and
/// canonical events go through [`stream::relay_event`]. Returns what goes out now and whether the
/// stream ended.
fn process(
    ctx: &mut RequestCtx,
    egress: &mut StreamEgress,
    native: Option<&mut (dyn ChatStreamDecoder + 'static)>,
    splitter: &mut SseSplitter,
    hooks: Option<&mut StreamHooks>,
    saw_done: &mut bool,
    data: &Bytes,
) -> (BytesMut, Option<End>) {
    // Room for the frame as it came, which is what a passed-through frame becomes: one
    // allocation instead of growing once per event.
    let mut out = BytesMut::with_capacity(data.len());
    let mut upstream_error = None;
    let mut ended = None;
    match (native, hooks) {
        // Watchers see a native stream event by event, each with the text it adds; its bytes
        // go out as they came once they pass. (Unwatched, it never gets here: the relay sends
        // the upstream's own buffers.)
        (Some(side), Some(hooks)) => {
            for event in splitter.push_bytes(data) {
                let before = ctx.usage.completion_text.len();
                if let Err(message) = stream::read_native(ctx, side, &event.bytes) {
                    upstream_error = Some(message);
                }
                let text = ctx.usage.completion_text[before..].to_string();
                match hooks.run(ctx, crate::modules::StreamEvent::native(event.bytes, text)) {
                    Ok(ready) => {
                        for event in ready {
                            out.extend_from_slice(event.raw());
                        }
                    }
                    Err(refused) => {
                        ended = Some(refused);
                        break;
                    }
                }
            }
        }
        (Some(side), None) => {
            out.extend_from_slice(data);
            if let Err(message) = stream::read_native(ctx, side, data) {
                upstream_error = Some(message);
            }
        }
        (None, hooks) => {
            let mut hooks = hooks;
            for event in splitter.push_bytes(data) {
                match stream::relay_event(ctx, egress, hooks.as_deref_mut(), event, &mut out) {
                    EventKind::Done => *saw_done = true,
                    EventKind::Error(message) => upstream_error = Some(message),
                    EventKind::Ended(refused) => {
                        ended = Some(refused);
                        break;
                    }
                    EventKind::Data => {}
                }
            }
        }
    }
    if let Some(refused) = ended {
        return (out, Some(End::Refused(refused)));
    }
    if let Some(message) = upstream_error {
        return (
            out,
            Some(End::Failed {
                err: ApiError::UpstreamProtocol { message },
                told: true,
            }),
        );
    }
    (out, None)
}

impl Body for Relay {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let relay = self.get_mut();
        let span = relay.span.clone();
        let _entered = span.enter();
        relay
            .poll_next(cx)
            .map(|next| next.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

impl Drop for Relay {
    /// The client went away (or the server is closing the connection): finish the request on a
    /// task of its own, as cancelled if it was still streaming.
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.upstream = None;
        let span = self.span.clone();
        if let Some(mut ctx) = self.ctx.take() {
            ctx.result.error_class = Some(ErrorCode::Cancelled);
            let chain = self.chain.clone();
            runtime.spawn(async move { finish(&chain, &mut ctx).await }.instrument(span));
        } else if let State::Finishing { finishing, .. } =
            std::mem::replace(&mut self.state, State::Done)
        {
            runtime.spawn(finishing.instrument(span));
        }
    }
}
