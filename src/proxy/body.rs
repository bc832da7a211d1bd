//! `ProxyBody`: the response body type of every route. A ready body is one frame with an exact
//! length, so hyper writes headers and body together; a stream is the relay itself, polled by
//! hyper, so dropping the body (the client went away) is the relay's own drop; a channel carries
//! frames a route's own task writes.

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
    /// Nothing yet (a response whose body is set after its head).
    Empty,
    /// Frames a task sends as it goes (an event stream a route writes itself); ends when the
    /// sender is dropped, and dropping the body (the client went away) closes the channel.
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
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Channel(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ProxyBody::Full(None) | ProxyBody::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ProxyBody::Full(None) | ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Stream(_) | ProxyBody::Channel(_) => SizeHint::default(),
        }
    }
}
