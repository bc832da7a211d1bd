//! `UpstreamIncoming`: an upstream answer's body together with the connection it arrives on.
//!
//! hyper hands a response body over from the task that does the connection's I/O through a
//! channel that holds one frame: every frame of a stream costs a wake-up of that task and one of
//! the reader's. Here there is no second task. Whoever reads the body (the relay, inside the
//! client connection's task) polls the connection first, so it reads and decodes what the socket
//! holds and the frames are taken in the same pass. When the body ends, the connection goes back
//! to the pool; if the body is dropped early, the connection is dropped with it (closing it, as
//! the rest of the answer will never be read).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::pool::{Link, Pool};

pub struct UpstreamIncoming {
    body: Incoming,
    driver: Option<Driver>,
}

struct Driver {
    link: Link,
    pool: Arc<Pool>,
    key: String,
}

impl UpstreamIncoming {
    pub(super) fn new(body: Incoming, link: Link, pool: Arc<Pool>, key: String) -> Self {
        UpstreamIncoming {
            body,
            driver: Some(Driver { link, pool, key }),
        }
    }

    fn release(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.pool.put(&driver.key, driver.link);
        }
    }
}

impl Body for UpstreamIncoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(driver) = &mut this.driver {
            // Ready means the connection closed: whatever it decoded is already in the body's
            // channel, followed by its end or its error.
            if driver.link.conn.as_mut().poll(cx).is_ready() {
                this.driver = None;
            }
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
