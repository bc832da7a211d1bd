//! `UpstreamBody`: an upstream answer's body as the rest of the request path reads it, always in
//! the canonical format. An OpenAI-shaped body passes through untouched; another format's stream
//! is decoded event by event as it arrives ([`crate::providers::ChatStreamDecoder`]) and re-framed
//! as canonical SSE (`data: {chunk}\n\n` ... `data: [DONE]\n\n`), so the relay, late commit and
//! usage capture work the same for every provider. A decoding failure (a provider error event, or
//! a stream that ended without its terminal event) becomes a canonical error event with no
//! `[DONE]`, which the relay treats as the failure it is.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use serde_json::json;

use crate::providers::http::UpstreamIncoming;

use crate::providers::{ChatStreamDecoder, StreamReframer};

pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

pub enum UpstreamBody {
    Plain(UpstreamIncoming),
    Transcoded(Box<Transcoder>),
    /// A native stream whose framing differs from the client's, re-framed as it arrives.
    Reframed(Box<Reframer>),
    /// Frames a module produced (a canonical answer), played out in order.
    Canned(std::collections::VecDeque<Bytes>),
}

pub struct Reframer {
    inner: UpstreamIncoming,
    reframer: Box<dyn StreamReframer>,
    done: bool,
}

pub struct Transcoder {
    inner: UpstreamIncoming,
    decoder: Box<dyn ChatStreamDecoder>,
    done: bool,
}

impl UpstreamBody {
    pub fn canned(frames: Vec<Bytes>) -> UpstreamBody {
        UpstreamBody::Canned(frames.into())
    }

    pub fn reframed(inner: UpstreamIncoming, reframer: Box<dyn StreamReframer>) -> UpstreamBody {
        UpstreamBody::Reframed(Box::new(Reframer {
            inner,
            reframer,
            done: false,
        }))
    }

    pub fn transcoded(
        inner: UpstreamIncoming,
        decoder: Box<dyn ChatStreamDecoder>,
    ) -> UpstreamBody {
        UpstreamBody::Transcoded(Box::new(Transcoder {
            inner,
            decoder,
            done: false,
        }))
    }
}

fn push_chunks(out: &mut BytesMut, chunks: Vec<serde_json::Value>) {
    for chunk in chunks {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(chunk.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
    }
}

fn push_error(out: &mut BytesMut, message: &str) {
    let event = json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": "provider_stream_error"}});
    out.extend_from_slice(format!("data: {event}\n\n").as_bytes());
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            UpstreamBody::Plain(inner) => Pin::new(inner)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BodyError),
            UpstreamBody::Transcoded(t) => t.poll_canonical(cx),
            UpstreamBody::Reframed(r) => r.poll_sse(cx),
            UpstreamBody::Canned(frames) => {
                Poll::Ready(frames.pop_front().map(|f| Ok(Frame::data(f))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Plain(inner) => inner.is_end_stream(),
            UpstreamBody::Transcoded(t) => t.done,
            UpstreamBody::Reframed(r) => r.done,
            UpstreamBody::Canned(frames) => frames.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Plain(inner) => inner.size_hint(),
            UpstreamBody::Transcoded(_) | UpstreamBody::Reframed(_) | UpstreamBody::Canned(_) => {
                SizeHint::default()
            }
        }
    }
}

impl Transcoder {
    fn poll_canonical(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let mut out = BytesMut::new();
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match self.decoder.push(&data) {
                        Ok(chunks) => push_chunks(&mut out, chunks),
                        Err(message) => {
                            push_error(&mut out, &message);
                            self.done = true;
                        }
                    }
                }
                Poll::Ready(None) => {
                    self.done = true;
                    match self.decoder.finish() {
                        Ok(chunks) => {
                            push_chunks(&mut out, chunks);
                            out.extend_from_slice(b"data: [DONE]\n\n");
                        }
                        Err(message) => push_error(&mut out, &message),
                    }
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
            }
        }
    }
}

impl Reframer {
    /// The provider's framing in the client's, as the reframer gives it; a framing error ends the
    /// body as a transport error would.
    fn poll_sse(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let data = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            let reframed = match self.reframer.push(&data) {
                Ok(reframed) => reframed,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            self.done = reframed.end;
            if !reframed.bytes.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(reframed.bytes))));
            }
        }
    }
}
