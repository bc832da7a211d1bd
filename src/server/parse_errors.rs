//! hyper answers a request it cannot parse (a malformed request line or header, headers too
//! large, a URI too long) itself, with an empty body, before any handler runs, and offers no hook
//! to shape that answer. This wrapper around the client's socket recognises those answers as they
//! are written, and writes them instead in the OpenAI error shape every other answer has, with
//! `connection: close` (hyper closes the connection after them).
//!
//! They are easy to tell apart: hyper's own are the only answers with one of those statuses and
//! `content-length: 0`; every answer of Stockyard's carries a JSON body. The check is a prefix
//! comparison on the first bytes of each write, so it costs nothing measurable.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct ShapedErrors<T> {
    inner: T,
    /// A shaped answer still being written, and how many of its bytes went out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ShapedErrors<T> {
    pub fn new(inner: T) -> ShapedErrors<T> {
        ShapedErrors {
            inner,
            pending: None,
        }
    }
}

/// hyper's own error heads, and what each becomes.
const HYPER_ERRORS: &[(&[u8], u16, &str, &str)] = &[
    (
        b"HTTP/1.1 400 Bad Request\r\n",
        400,
        "Bad Request",
        "the request could not be parsed as HTTP/1.1 (request line or headers)",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        431,
        "Request Header Fields Too Large",
        "the request headers are larger than the server accepts",
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\n",
        414,
        "URI Too Long",
        "the request URI is longer than the server accepts",
    ),
];

/// The answer to write in place of `head`, when `head` is one of hyper's bodiless error answers.
fn shaped(head: &[u8]) -> Option<Vec<u8>> {
    let (_, status, reason, message) = HYPER_ERRORS.iter().find(|(prefix, ..)| {
        head.starts_with(prefix)
            && head.ends_with(b"\r\n\r\n")
            && contains(head, b"content-length: 0\r\n")
    })?;
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
        "param": null, "code": "malformed_request"}})
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl<T: AsyncWrite + Unpin> ShapedErrors<T> {
    /// Writes out what is left of a shaped answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = self.pending.as_mut() {
            if *sent == bytes.len() {
                self.pending = None;
                break;
            }
            let n = match Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..]) {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ShapedErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ShapedErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
            return Poll::Ready(Err(e));
        }
        if this.pending.is_some() {
            return Poll::Pending;
        }
        if buf.starts_with(b"HTTP/1.1 4")
            && let Some(answer) = shaped(buf)
        {
            this.pending = Some((answer, 0));
            // hyper's bytes count as written; ours go out in their place.
            return match this.poll_pending(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Only a whole head in the first slice can be one of hyper's error answers.
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if first.starts_with(b"HTTP/1.1 4") && shaped(first).is_some() => {
                Pin::new(this).poll_write(cx, first)
            }
            _ => {
                if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(e));
                }
                if this.pending.is_some() {
                    return Poll::Pending;
                }
                Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_error_heads_are_shaped() {
        let hyper_head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(shaped(hyper_head).unwrap_or_default()).unwrap_or_default();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("\"code\":\"malformed_request\""),
            "{answer}"
        );
        assert!(answer.contains("connection: close"), "{answer}");
        // Stockyard's own 400s carry a body and a content type: untouched.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 90\r\n\r\n";
        assert!(shaped(ours).is_none());
        assert!(shaped(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
