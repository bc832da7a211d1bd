//! Incremental SSE framing: bytes arrive split anywhere; [`SseSplitter::push`] returns each
//! complete event (its text up to and including the blank line that ends it) as soon as that blank
//! line arrives, so events pass through as they come and are never re-encoded.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

#[derive(Default)]
pub struct SseSplitter {
    buffer: BytesMut,
    /// How far the buffer was already searched for an event's end, so bytes are scanned once.
    scanned: usize,
}

/// One event as received, separator included.
pub struct RawEvent {
    pub bytes: Bytes,
}

impl RawEvent {
    /// The event's `data:` payload (several `data:` lines joined by `\n`), or `None` for a
    /// comment-only event.
    /// Borrowed when there is one `data:` line, the usual case, so the hot path copies nothing.
    pub fn data(&self) -> Option<Cow<'_, str>> {
        match self.single_data_line() {
            Some(line) => Some(Cow::Borrowed(line)),
            None => self.data_by_lines(),
        }
    }

    fn data_by_lines(&self) -> Option<Cow<'_, str>> {
        let text = std::str::from_utf8(&self.bytes).ok()?;
        let mut data: Option<Cow<'_, str>> = None;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("data:") else {
                continue;
            };
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            data = Some(match data {
                None => Cow::Borrowed(rest),
                Some(previous) => Cow::Owned(format!("{previous}\n{rest}")),
            });
        }
        data
    }

    /// The payload of the usual event, one `data:` line and the blank line after it, found
    /// without splitting the event into lines. `None` for any other shape (and for text that is
    /// not UTF-8), which [`RawEvent::data`] then reads line by line.
    fn single_data_line(&self) -> Option<&str> {
        let rest = self.bytes.strip_prefix(b"data:")?;
        let end = memchr::memchr2(b'\n', b'\r', rest)?;
        if !matches!(&rest[end..], b"\n\n" | b"\r\n\r\n") {
            return None;
        }
        let payload = &rest[..end];
        std::str::from_utf8(payload.strip_prefix(b" ").unwrap_or(payload)).ok()
    }
}

impl SseSplitter {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<RawEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        // A separator (up to four bytes) may straddle the old end: look again from three bytes
        // before it.
        let mut from = self.scanned.saturating_sub(3);
        while let Some(end) = event_end(&self.buffer, from) {
            events.push(RawEvent {
                bytes: self.buffer.split_to(end).freeze(),
            });
            from = 0;
        }
        self.scanned = self.buffer.len();
        events
    }

    /// [`SseSplitter::push`] for a chunk already in a `Bytes`: while nothing is pending (the usual
    /// case, since upstreams write whole events), its events are slices of `chunk`, neither copied
    /// nor allocated; only an unfinished tail is kept.
    pub fn push_bytes(&mut self, chunk: &Bytes) -> Vec<RawEvent> {
        if !self.buffer.is_empty() {
            return self.push(chunk);
        }
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(end) = event_end(&chunk[start..], 0) {
            events.push(RawEvent {
                bytes: chunk.slice(start..start + end),
            });
            start += end;
        }
        self.buffer.extend_from_slice(&chunk[start..]);
        self.scanned = self.buffer.len();
        events
    }

    /// Bytes of an event still waiting for its blank line.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// What is left when the stream ends: an event whose blank line never came.
    pub fn take_rest(&mut self) -> Bytes {
        self.scanned = 0;
        self.buffer.split().freeze()
    }
}

/// Index just past the first blank line (`\n\n`, `\r\n\r\n`, or `\r\r`) at or after `from`.
fn event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = memchr::memchr2(b'\n', b'\r', buf.get(i..)?) {
        i += offset;
        match buf[i] {
            b'\n' => {
                if buf.get(i + 1) == Some(&b'\n') {
                    return Some(i + 2);
                }
                if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                    return Some(i + 3);
                }
            }
            _ if buf.get(i + 1) == Some(&b'\r') => return Some(i + 2),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_of_the_bytes_gives_the_same_events() {
        let stream = b"data: a\r\n\r\ndata: bb\n\ndata: c\r\rdata: d\r\n\r\n: note\n\n";
        let whole: Vec<Bytes> = SseSplitter::default()
            .push(stream)
            .into_iter()
            .map(|e| e.bytes)
            .collect();
        assert_eq!(whole.len(), 5);
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut splitter = SseSplitter::default();
                let mut got: Vec<Bytes> = Vec::new();
                for part in [&stream[..a], &stream[a..b], &stream[b..]] {
                    got.extend(splitter.push(part).into_iter().map(|e| e.bytes));
                }
                assert_eq!(got, whole, "split at {a} and {b}");
                // The same from `Bytes`, sliced while nothing is pending, copied once something is.
                let mut splitter = SseSplitter::default();
                let mut got: Vec<Bytes> = Vec::new();
                for (from, to) in [(0, a), (a, b), (b, stream.len())] {
                    let part = Bytes::copy_from_slice(&stream[from..to]);
                    got.extend(splitter.push_bytes(&part).into_iter().map(|e| e.bytes));
                }
                assert_eq!(got, whole, "bytes split at {a} and {b}");
                assert_eq!(splitter.pending(), 0);
            }
        }
    }
    use proptest::prelude::*;

    const STREAM: &[u8] =
        b"data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":\n data: 2}\r\n\r\ndata: [DONE]\n\n";

    fn split_all(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut splitter = SseSplitter::default();
        parts
            .iter()
            .flat_map(|p| splitter.push(p))
            .map(|e| e.bytes.to_vec())
            .collect()
    }

    #[test]
    fn the_usual_event_reads_as_it_does_line_by_line() {
        let shapes: [&[u8]; 10] = [
            b"data: {\"a\":1}\n\n",
            b"data:{\"a\":1}\r\n\r\n",
            b"data:  two spaces\n\n",
            b"data: \n\n",
            b"data: a\ndata: b\n\n",
            b"data: c\r\r",
            b"event: e\ndata: y\n\n",
            b": comment\n\n",
            b"data: \xff\n\n",
            b"data: x\n\r\n",
        ];
        for shape in shapes {
            let event = RawEvent {
                bytes: Bytes::from_static(shape),
            };
            assert_eq!(event.data(), event.data_by_lines(), "{shape:?}");
        }
        let usual = RawEvent {
            bytes: Bytes::from_static(b"data: {\"a\":1}\n\n"),
        };
        assert!(usual.single_data_line().is_some());
        assert_eq!(usual.data().as_deref(), Some("{\"a\":1}"));
    }

    #[test]
    fn splits_whole_events() {
        let events = split_all(&[STREAM]);
        assert_eq!(events.len(), 4);
        assert_eq!(events[0], b"data: {\"a\":1}\n\n");
        let last = RawEvent {
            bytes: Bytes::from(events[3].clone()),
        };
        assert_eq!(last.data().as_deref(), Some("[DONE]"));
        let comment = RawEvent {
            bytes: Bytes::from(events[1].clone()),
        };
        assert_eq!(comment.data(), None);
    }

    proptest! {
        /// However the stream is cut, the same events come out, byte for byte.
        #[test]
        fn split_at_every_byte_gives_the_same_events(cuts in proptest::collection::vec(0usize..STREAM.len(), 0..8)) {
            let mut cuts = cuts;
            cuts.sort();
            let mut parts = Vec::new();
            let mut start = 0;
            for cut in cuts {
                parts.push(&STREAM[start..cut.max(start)]);
                start = cut.max(start);
            }
            parts.push(&STREAM[start..]);
            prop_assert_eq!(split_all(&parts), split_all(&[STREAM]));
        }
    }
}
