//! `ProxyBody`: the response body type of every route. A ready body is one frame with an exact
//! length, so hyper writes headers and body together; a stream is the relay itself, polled by
//! hyper, so dropping the body (the client went away) is the relay's own drop.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::relay::Relay;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

pub enum ProxyBody {
    Full(Option<Bytes>),
    /// A stream, relayed as hyper polls for it.
    Stream(Box<Relay>),
    /// Raw bytes relayed as they arrive (speech audio).
    Bytes(Box<super::bytes_relay::BytesRelay>),
    /// Nothing yet (a response whose body is set after its head).
    Empty,
    /// Chunks sent by a task of the handler's (an event stream that is not a proxied answer,
    /// such as the console's live view); it ends when the sender is dropped, and dropping the
    /// body (the client went away) closes the channel, which ends the task's sends.
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

impl ProxyBody {
    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        let bytes = bytes.into();
        ProxyBody::Full((!bytes.is_empty()).then_some(bytes))
    }

    pub fn empty() -> ProxyBody {
        ProxyBody::Full(None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ProxyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Stream(relay) => Pin::new(relay.as_mut()).poll_frame(cx),
            ProxyBody::Channel(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
            ProxyBody::Bytes(relay) => Pin::new(relay.as_mut()).poll_frame(cx),
            ProxyBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ProxyBody::Full(None) | ProxyBody::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ProxyBody::Full(None) | ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Stream(_) | ProxyBody::Channel(_) | ProxyBody::Bytes(_) => {
                SizeHint::default()
            }
        }
    }
}
