//! Gemini API answers, so the proxy's Gemini adapter (Gemini API and Vertex AI) can be tested end
//! to end. Every path whose last segment is `{model}:{method}` after a `/models/` segment is
//! Gemini's, whatever comes before it: `/v1beta/models/gemini-2.5-flash:generateContent` (Gemini
//! API) and `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent` (Vertex
//! AI) alike. The methods served:
//!
//! | method | answer |
//! |---|---|
//! | `generateContent` | one `GenerateContentResponse` (`generate.rs`) |
//! | `streamGenerateContent?alt=sse` | the same answer as SSE events `data: {GenerateContentResponse}\r\n\r\n` |
//! | `streamGenerateContent` without `alt=sse` | the same events as one JSON array (Gemini's default stream form; the stream faults don't apply) |
//! | `batchEmbedContents` | `{"embeddings": [{"values": [8 floats]}, ...]}`, one per request (`embed.rs`) |
//! | `predict` (Vertex embeddings) | `{"predictions": [{"embeddings": {"values", "statistics": {"token_count", "truncated"}}}]}` |
//!
//! Errors (status faults, bad JSON, a bad `"mock"` object, a request without `contents`, unknown
//! methods) take Google's shape, `{"error": {"code", "message", "status"}}` (`error.rs`). The
//! `x-goog-api-key` or `authorization` header is only recorded. Shapes follow
//! <https://ai.google.dev/api/generate-content> and the workspace's golden files in
//! `tests/fixtures/gemini/`.
//!
//! # The answer
//!
//! `candidates[0].content` (`role: "model"`) holds, when the request's
//! `generationConfig.thinkingConfig.includeThoughts` is true, first a thought part
//! `{"text": THINKING_TEXT, "thought": true}`; then either a text part with the behaviour's content
//! or, when `toolConfig.functionCallingConfig.mode` is `ANY`, a `functionCall` part
//! `{"name", "args": {"city": "Paris"}}` naming the first of `allowedFunctionNames`, else the first
//! function declared in `tools[].functionDeclarations`. With thoughts on, that answer part also
//! carries `thoughtSignature: "sig_mock_<n>"`, as Gemini signs its turns. `finishReason` is
//! always `STOP` (Gemini uses it for function calls too); `index` 0; `modelVersion` is the model
//! of the path; `responseId` is `resp_mock_<n>`.
//!
//! # Token counts
//!
//! Deterministic, like `openai/`: a "word" is a whitespace-separated run.
//!
//! | `usageMetadata` field | value |
//! |---|---|
//! | `promptTokenCount` | P = words in the text parts of `systemInstruction` + per entry of `contents`: words in its text parts + 4 |
//! | `candidatesTokenCount` | C = words in the answer text (a `functionCall` answer counts 1) |
//! | `cachedContentTokenCount` | `Behavior::cached_tokens`, only when > 0 (part of P, as in Gemini) |
//! | `thoughtsTokenCount` | `Behavior::reasoning_tokens`, only when > 0 (not part of C, as in Gemini) |
//! | `totalTokenCount` | P + C + thoughts |
//! | `promptTokensDetails` | `[{"modality": "TEXT", "tokenCount": P}]` |
//!
//! Parts with `thought: true`, `functionCall`, `functionResponse` and media parts count no words;
//! neither does the mock's own thought text (`thoughtsTokenCount` stands for it).
//! `omit_usage` leaves `usageMetadata` out everywhere.
//!
//! # The stream
//!
//! One event per chunk, `data: JSON\r\n\r\n` (Gemini separates events with CRLF), no `[DONE]`:
//!
//! 1. with thoughts on, a chunk with the thought part alone;
//! 2. the answer chunks: the text split over `Behavior::chunks` (or the one `functionCall` part);
//!    the last one also carries `thoughtSignature` (thoughts on) and `finishReason: "STOP"`.
//!
//! Every chunk carries `usageMetadata`, cumulative as Gemini sends it: P, the cache and thoughts
//! counts, `candidatesTokenCount` for the answer words sent so far (absent while 0), and their
//! total; the last chunk's is the whole answer's. The stream faults count answer chunks (the
//! thought chunk is not one): `reset_after_chunks` and `error_event_after_chunks` cut the stream
//! right after the Nth (before the first when N = 0; after the last when N exceeds them), the
//! first resetting the connection, the second sending an `{"error": {"code": 503, ..., "status":
//! "UNAVAILABLE"}}` event and ending the body cleanly, as Gemini does when it fails mid-stream;
//! on a tie the error event goes out, then the connection is reset. `malformed_body` puts one
//! event with half an answer chunk's JSON before the first answer chunk.

pub(crate) mod embed;
pub(crate) mod error;
pub(crate) mod generate;

use serde_json::Value;

use crate::openai::{Reply, words};
use crate::script::Behavior;

/// The model and method of a Gemini path, `.../models/{model}:{method}`.
pub(crate) struct Target<'a> {
    pub(crate) model: &'a str,
    pub(crate) method: &'a str,
}

/// The model and method of `path` (without its query), if it is a Gemini path.
pub(crate) fn target(path: &str) -> Option<Target<'_>> {
    let (_, rest) = path.rsplit_once("/models/")?;
    if rest.contains('/') {
        return None;
    }
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty()).then_some(Target { model, method })
}

/// Whether `path` belongs to the Gemini API, so its errors take Google's shape.
pub(crate) fn serves(path: &str) -> bool {
    target(path).is_some()
}

/// The methods the mock answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Call {
    Generate,
    /// `sse`: the query asked for `alt=sse`.
    Stream {
        sse: bool,
    },
    BatchEmbed,
    Predict,
}

impl Call {
    /// The call for `method`, or `None` for a method the mock doesn't serve.
    pub(crate) fn of(method: &str, query: Option<&str>) -> Option<Call> {
        match method {
            "generateContent" => Some(Call::Generate),
            "streamGenerateContent" => {
                let sse = query.is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
                Some(Call::Stream { sse })
            }
            "batchEmbedContents" => Some(Call::BatchEmbed),
            "predict" => Some(Call::Predict),
            _ => None,
        }
    }
}

/// Answers one call on `model`; `n` numbers the response id and the signature.
pub(crate) fn reply(call: Call, model: &str, req: &Value, b: &Behavior, n: usize) -> Reply {
    match call {
        Call::Generate => generate::reply(model, req, b, n, generate::Form::Whole),
        Call::Stream { sse: true } => generate::reply(model, req, b, n, generate::Form::Sse),
        Call::Stream { sse: false } => generate::reply(model, req, b, n, generate::Form::Array),
        Call::BatchEmbed => embed::batch(req),
        Call::Predict => embed::predict(req),
    }
}

/// P in the module doc: words in the system instruction's text parts, plus per content its words
/// and 4.
pub(crate) fn prompt_tokens(req: &Value) -> u64 {
    let system = req.get("systemInstruction").map_or(0, content_words);
    let contents: u64 = req
        .get("contents")
        .and_then(Value::as_array)
        .map_or(0, |contents| {
            contents.iter().map(|c| content_words(c) + 4).sum()
        });
    system + contents
}

/// Words in the `text` of each part of a `Content` that is not a thought.
fn content_words(content: &Value) -> u64 {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map_or(0, |parts| {
            parts
                .iter()
                .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(words)
                .sum()
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Call, prompt_tokens, target};

    #[test]
    fn targets_take_any_prefix_and_the_last_colon() {
        let t = target("/v1beta/models/gemini-2.5-flash:generateContent").unwrap();
        assert_eq!((t.model, t.method), ("gemini-2.5-flash", "generateContent"));
        let vertex = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent";
        let t = target(vertex).unwrap();
        assert_eq!(
            (t.model, t.method),
            ("gemini-2.5-pro", "streamGenerateContent")
        );
        assert!(target("/v1/models").is_none());
        assert!(target("/v1/models/gpt-4o").is_none());
        assert!(target("/v1beta/models/:generateContent").is_none());
        assert!(target("/v1beta/models/m:x/y").is_none());
        assert!(target("/model/anthropic.claude-v1%3A0/converse").is_none());
    }

    #[test]
    fn stream_form_follows_alt_sse() {
        let of = Call::of;
        assert_eq!(
            of("streamGenerateContent", Some("alt=sse")),
            Some(Call::Stream { sse: true })
        );
        assert_eq!(
            of("streamGenerateContent", Some("key=k&alt=sse")),
            Some(Call::Stream { sse: true })
        );
        assert_eq!(
            of("streamGenerateContent", None),
            Some(Call::Stream { sse: false })
        );
        assert_eq!(of("countTokens", None), None);
    }

    #[test]
    fn prompt_counts_system_text_parts_and_four_per_content() {
        let req = json!({
            "systemInstruction": {"parts": [{"text": "Be terse."}, {"text": "Use metric."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "one two three"}, {"inlineData": {"mimeType": "image/png", "data": "AA=="}}]},
                {"role": "model", "parts": [
                    {"text": "not counted", "thought": true},
                    {"text": "four five", "thoughtSignature": "s"},
                    {"functionCall": {"name": "f", "args": {"a": "not counted"}}}
                ]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "not counted"}}}]}
            ]
        });
        // system 4; contents (3 + 4) + (2 + 4) + (0 + 4).
        assert_eq!(prompt_tokens(&req), 4 + 7 + 6 + 4);
    }
}
