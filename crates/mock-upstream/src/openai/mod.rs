//! OpenAI-compatible answers: one file per endpoint, each a pure function from the request JSON
//! and the [`Behavior`] to a [`Reply`]. The server (`server.rs`) does the HTTP; nothing here
//! touches a socket or a clock other than `created`.
//!
//! # Token counts
//!
//! Counts are deterministic so tests can assert exact usage, and only loosely resemble a real
//! tokenizer. A "word" is a whitespace-separated run (`str::split_whitespace`).
//!
//! | Endpoint | prompt_tokens | completion_tokens |
//! |---|---|---|
//! | chat | per message: words in its text (a string `content`, or the `text` of each `"type":"text"` part) + 4 | words in the answer + `reasoning_tokens` (a tool call's answer is its arguments, `{"city":"Paris"}`: 1 word) |
//! | completions | words in `prompt` (string or array of strings; token arrays count one per token) + 1 | words in the answer |
//! | embeddings | words in each input (token arrays count one per token), summed | — |
//! | responses | `input_tokens`: words in `instructions` + per input message (a string `input`, or each message item) its words + 4 | `output_tokens`: as chat (see `responses.rs` for the details) |
//!
//! `total_tokens` is always prompt + completion.

pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod embeddings;
pub(crate) mod error;
pub(crate) mod models;
pub(crate) mod operations;
pub(crate) mod responses;

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;

use crate::body::Step;
use crate::script::Behavior;

/// What the server should send back.
pub(crate) enum Reply {
    /// A 200 with a JSON body (which `malformed_body` may break).
    Json(Bytes),
    /// An error, in OpenAI's shape (or the shape of the API its path belongs to, built by
    /// `anthropic/error.rs`, `gemini/error.rs` or `bedrock/error.rs`).
    Error {
        status: StatusCode,
        body: Vec<u8>,
        retry_after_s: Option<u64>,
    },
    Stream(SsePlan),
    /// An SSE stream already framed, with the behaviour's faults applied (Anthropic's named
    /// events, Gemini's `data:` lines).
    Events(VecDeque<Step>),
    /// A binary `application/vnd.amazon.eventstream` body already framed, with the behaviour's
    /// faults applied (Bedrock's ConverseStream).
    EventStream(VecDeque<Step>),
    /// A body that is not JSON (speech audio, a plain-text transcription), in steps
    /// `chunk_delay_ms` apart.
    Raw {
        content_type: &'static str,
        steps: VecDeque<Step>,
    },
    /// Another reply with extra response headers (Bedrock's `x-amzn-ErrorType`, its token-count
    /// headers).
    WithHeaders(Box<Reply>, Vec<(HeaderName, HeaderValue)>),
}

impl Reply {
    pub(crate) fn error(status: StatusCode, body: Vec<u8>) -> Reply {
        Reply::Error {
            status,
            body,
            retry_after_s: None,
        }
    }
}

/// The JSON payloads of one SSE stream, before framing and before faults are applied.
#[derive(Default)]
pub(crate) struct SsePlan {
    /// Events before the content (the role chunk, or the tool call's header chunk).
    pub(crate) head: Vec<Vec<u8>>,
    /// The chunks `reset_after_chunks` counts.
    pub(crate) content: Vec<Vec<u8>>,
    /// The finish chunk and the usage chunk; `[DONE]` is added by [`SsePlan::into_steps`].
    pub(crate) tail: Vec<Vec<u8>>,
}

impl SsePlan {
    /// Frames every event as `data: ...\n\n` and applies the stream faults of `b`.
    pub(crate) fn into_steps(self, b: &Behavior) -> VecDeque<Step> {
        let SsePlan {
            head,
            content,
            tail,
        } = self;
        let (head, content, tail) = if b.spaced_json {
            let space = |events: Vec<Vec<u8>>| events.iter().map(|e| spaced(e)).collect();
            (space(head), space(content), space(tail))
        } else {
            (head, content, tail)
        };
        let mut steps = VecDeque::with_capacity(head.len() + content.len() + tail.len() + 3);
        steps.extend(head.iter().map(|e| Step::Data(frame(e))));
        if b.malformed_body {
            // Half of a real event is never valid JSON: the top-level object closes only at its
            // last byte.
            if let Some(event) = content.first().or(tail.first()) {
                steps.push_back(Step::Data(frame(&event[..event.len() / 2])));
            }
        }
        match b.reset_after_chunks {
            Some(n) => {
                steps.extend(content.iter().take(n).map(|e| Step::Data(frame(e))));
                steps.push_back(Step::Abort);
            }
            None => {
                steps.extend(content.iter().chain(&tail).map(|e| Step::Data(frame(e))));
                steps.push_back(Step::Data(Bytes::from_static(b"data: [DONE]\n\n")));
            }
        }
        steps
    }
}

/// `event` again, with `": "` and `", "` between its JSON tokens (see `Behavior::spaced_json`).
fn spaced(event: &[u8]) -> Vec<u8> {
    use std::io::{Result, Write};
    struct Spaced;
    fn comma<W: ?Sized + Write>(writer: &mut W, first: bool) -> Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
    impl serde_json::ser::Formatter for Spaced {
        fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> Result<()> {
            comma(w, first)
        }
        fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> Result<()> {
            w.write_all(b": ")
        }
        fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> Result<()> {
            comma(w, first)
        }
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(event) else {
        return event.to_vec();
    };
    let mut out = Vec::with_capacity(event.len() + event.len() / 4);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    match serde::Serialize::serialize(&value, &mut serializer) {
        Ok(()) => out,
        Err(_) => event.to_vec(),
    }
}

fn frame(event: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(event.len() + 8);
    buf.put_slice(b"data: ");
    buf.put_slice(event);
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// Serializes a reply type.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our reply types are structs with string keys and finite numbers, which serde_json always
    // serializes; the fallback only keeps this function total.
    serde_json::to_vec(value).unwrap_or_else(|e| {
        error::body(
            &format!("mock upstream failed to serialize its reply: {e}"),
            "server_error",
            None,
        )
    })
}

/// Words as the token rule counts them (see the module doc).
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The request's `model`, echoed back like OpenAI does.
pub(crate) fn model(req: &Value) -> &str {
    req.get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
}

pub(crate) fn wants_stream(req: &Value) -> bool {
    req.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn wants_usage_in_stream(req: &Value) -> bool {
    req.pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// How usage appears on a streamed chunk: absent, `null` (usage was asked for; it comes last), or
/// the numbers. `Some(None)` serializes as `null`.
pub(crate) type ChunkUsage<T> = Option<Option<T>>;

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The mark a test puts in streamed content to split it exactly there (inside a word, say); the
/// marks are dropped and `chunks` is ignored.
pub const SPLIT_MARK: char = '\u{1f}';

/// Splits `content` into exactly `n` pieces that concatenate back to it, word by word: each word
/// keeps the whitespace after it, and the leading whitespace stays with the first word. Pieces
/// past the number of words are empty. Content with [`SPLIT_MARK`]s is split at them instead.
pub(crate) fn split_content(content: &str, n: usize) -> Vec<&str> {
    if content.contains(SPLIT_MARK) {
        return content.split(SPLIT_MARK).collect();
    }
    // Split points are the starts of every word but the first.
    let mut starts = Vec::new();
    let mut prev_ws = true;
    let mut seen_word = false;
    for (i, c) in content.char_indices() {
        let ws = c.is_whitespace();
        if !ws && prev_ws {
            if seen_word {
                starts.push(i);
            }
            seen_word = true;
        }
        prev_ws = ws;
    }
    let word_count = starts.len() + usize::from(seen_word);
    let mut pieces = Vec::with_capacity(n);
    let mut from = 0;
    let mut word = 0;
    for k in 0..n {
        // The first `word_count % n` pieces take one word more, so sizes differ by at most one.
        let take = word_count / n + usize::from(k < word_count % n);
        word += take;
        let to = if k + 1 == n {
            content.len()
        } else if take == 0 {
            from
        } else {
            starts.get(word - 1).copied().unwrap_or(content.len())
        };
        pieces.push(&content[from..to]);
        from = to;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::split_content;

    #[test]
    fn split_content_keeps_every_byte_and_the_piece_count() {
        let texts = [
            "Hello from the mock upstream.",
            "  lead and  double  spaces ",
            "one",
            "",
            "a b c d e f g h i j k l",
        ];
        for text in texts {
            for n in 1..8 {
                let pieces = split_content(text, n);
                assert_eq!(pieces.len(), n, "{text:?} into {n}");
                assert_eq!(pieces.concat(), text, "{text:?} into {n}");
            }
        }
        assert_eq!(
            split_content("Hello from the mock upstream.", 5),
            ["Hello ", "from ", "the ", "mock ", "upstream."]
        );
        assert_eq!(split_content("a b c", 2), ["a b ", "c"]);
    }
}
