//! One event of a streamed answer as the stream hook sees it, on translated and native streams
//! alike, and what a module may decide about it.
//!
//! A module that watches streams declares a [`StreamWindow`]: the most it may hold back at once.
//! For each event it may pass it, rewrite it, hold it (it and every later event wait until the
//! module releases), release what is held, or end the stream with an error that reaches the client
//! in its own format. Held events beyond the window go out oldest first, so a stream never stalls
//! on a module. A chain in which no module watches streams pays nothing for any of this.

use bytes::Bytes;
use serde_json::Value;

use super::error::ApiError;

/// The most a module may hold back at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamWindow {
    pub max_events: usize,
    pub max_bytes: usize,
}

impl StreamWindow {
    /// Watches every event but never holds one.
    pub const WATCH: StreamWindow = StreamWindow {
        max_events: 0,
        max_bytes: 0,
    };
}

pub enum StreamDecision {
    Pass,
    /// Hold this event, and every later one, until this module releases.
    Hold,
    /// Let everything held go (this event included).
    Release,
    /// Let everything held go except the last `n` events (this one counted), which stay held: a
    /// look-behind window that keeps only what may still be part of a match. `ReleaseBut(0)` is
    /// `Release`.
    ReleaseBut(usize),
    /// The module moved the text of the last `merged` events it holds (those before this one)
    /// into this event, rewriting across them (a match that began in an earlier event): those
    /// events are dropped unsent, then as `ReleaseBut(keep)`. Only events that carry nothing but
    /// answer text may be merged.
    Merged {
        merged: usize,
        keep: usize,
    },
    /// Drop what is held and end the stream with this error, in the client's format.
    End(ApiError),
}

pub struct StreamEvent {
    raw: Bytes,
    json: Option<Value>,
    text: String,
    native: bool,
}

impl StreamEvent {
    /// A canonical event (`data: {chunk}\n\n`), with its chunk when already parsed.
    pub fn canonical(raw: Bytes, json: Option<Value>, text: String) -> StreamEvent {
        StreamEvent {
            raw,
            json,
            text,
            native: false,
        }
    }

    /// An event in the provider's own format, passed through to a client that speaks it.
    pub fn native(raw: Bytes, text: String) -> StreamEvent {
        StreamEvent {
            raw,
            json: None,
            text,
            native: true,
        }
    }

    /// The event's bytes as they will go to egress.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The answer text this event adds (content deltas), whatever the format.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the event is in the provider's own format (native pass-through).
    pub fn is_native(&self) -> bool {
        self.native
    }

    /// The canonical chunk, for translated streams.
    pub fn json(&self) -> Option<&Value> {
        self.json.as_ref()
    }

    pub fn into_parts(self) -> (Bytes, Option<Value>) {
        (self.raw, self.json)
    }

    /// Replaces the event's text with `new`, in whichever format it is: the canonical delta's
    /// `content`, or the string of the native event's JSON that carried the text.
    pub fn rewrite_text(&mut self, new: &str) {
        if self.text.is_empty() {
            return;
        }
        let Some((prefix, mut json)) = split_data_line(&self.raw) else {
            return;
        };
        if !replace_string(&mut json, &self.text, new) {
            return;
        }
        let mut raw = prefix;
        raw.push_str("data: ");
        raw.push_str(&json.to_string());
        raw.push_str("\n\n");
        self.raw = Bytes::from(raw);
        if !self.native {
            self.json = Some(json);
        }
        self.text = new.to_string();
    }
}

/// The lines before `data:` (an `event:` line) and the data's JSON.
fn split_data_line(raw: &[u8]) -> Option<(String, Value)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut prefix = String::new();
    for line in text.lines() {
        if let Some(data) = line.strip_prefix("data:") {
            return Some((prefix, serde_json::from_str(data.trim_start()).ok()?));
        }
        if !line.is_empty() {
            prefix.push_str(line);
            prefix.push('\n');
        }
    }
    None
}

/// Replaces the first string equal to `old` (depth first), returning whether one was found.
fn replace_string(value: &mut Value, old: &str, new: &str) -> bool {
    match value {
        Value::String(s) if s == old => {
            *s = new.to_string();
            true
        }
        Value::Array(items) => items.iter_mut().any(|v| replace_string(v, old, new)),
        Value::Object(map) => map.values_mut().any(|v| replace_string(v, old, new)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_rewritten_in_either_format() {
        let raw = Bytes::from(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"secret\"}}]}\n\n",
        );
        let mut event = StreamEvent::canonical(raw, None, "secret".into());
        event.rewrite_text("[redacted]");
        assert!(String::from_utf8_lossy(event.raw()).contains("[redacted]"));
        assert_eq!(
            event
                .json()
                .map(|j| j["choices"][0]["delta"]["content"].clone()),
            Some(Value::from("[redacted]"))
        );

        let raw = Bytes::from(
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"secret\"}}\n\n",
        );
        let mut event = StreamEvent::native(raw, "secret".into());
        event.rewrite_text("[redacted]");
        let out = String::from_utf8_lossy(event.raw()).into_owned();
        assert!(
            out.starts_with("event: content_block_delta\ndata: {"),
            "{out}"
        );
        assert!(
            out.contains("\"text\":\"[redacted]\"") && out.contains("text_delta"),
            "{out}"
        );
    }
}
