//! The response body type: a whole body in one frame, or a scripted SSE stream.
//!
//! Whole bodies report an exact size, so hyper sets `content-length` and writes headers and body
//! together. Streams are a small state machine instead of a task and a channel: the frames are
//! built up front, and the body sleeps `chunk_delay_ms` between them, so each chunk reaches the
//! socket separately. A scripted reset ends the body with an error, which makes hyper drop the
//! connection without the terminating chunk (HTTP/1.1) or reset the stream (HTTP/2).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a reset stream ends with.
#[derive(Debug)]
pub struct StreamAborted;

impl std::fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock upstream aborted the stream as scripted")
    }
}

impl std::error::Error for StreamAborted {}

pub(crate) enum MockBody {
    /// `None` once sent.
    Whole(Option<Bytes>),
    Stream(SseBody),
}

impl MockBody {
    pub(crate) fn whole(bytes: impl Into<Bytes>) -> Self {
        MockBody::Whole(Some(bytes.into()))
    }
}

/// One step of a scripted stream.
pub(crate) enum Step {
    Data(Bytes),
    Abort,
}

pub(crate) struct SseBody {
    steps: VecDeque<Step>,
    delay: Duration,
    /// Created on first use and re-armed with `reset`, so a stream allocates one timer, not one per
    /// chunk.
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    /// Whether the abort already yielded once; see `poll_frame`.
    abort_yielded: bool,
}

impl SseBody {
    pub(crate) fn new(steps: VecDeque<Step>, delay: Duration) -> Self {
        SseBody {
            steps,
            delay,
            sleep: None,
            sleeping: false,
            abort_yielded: false,
        }
    }

    fn arm_sleep(&mut self) {
        let deadline = Instant::now() + self.delay;
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.sleeping = true;
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = StreamAborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        match self.get_mut() {
            MockBody::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(sse) => sse.poll_step(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Whole(bytes) => bytes.is_none(),
            MockBody::Stream(sse) => sse.steps.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Whole(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Whole(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

impl SseBody {
    fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        if self.sleeping {
            if let Some(sleep) = &mut self.sleep
                && sleep.as_mut().poll(cx).is_pending()
            {
                return Poll::Pending;
            }
            self.sleeping = false;
        }
        match self.steps.pop_front() {
            None => Poll::Ready(None),
            Some(Step::Data(bytes)) => {
                // Sleep between chunks only: none after the last one, so the stream ends promptly.
                if !self.delay.is_zero() && !self.steps.is_empty() {
                    self.arm_sleep();
                }
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Some(Step::Abort) => {
                // hyper flushes its write buffer only after the body returns `Pending`; erroring
                // straight away could drop the chunks before the reset, which a test expects to
                // see. So yield once (waking ourselves), then fail.
                if !self.abort_yielded {
                    self.abort_yielded = true;
                    self.steps.push_front(Step::Abort);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(StreamAborted)))
            }
        }
    }
}
