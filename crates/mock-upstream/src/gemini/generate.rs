//! `generateContent` and `streamGenerateContent`: a thought part when the request includes
//! thoughts, then a text answer or a `functionCall` when `functionCallingConfig.mode` is `ANY`.
//! The content, the token rule and the stream are in `gemini/mod.rs`.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;

use super::error;
use crate::anthropic::THINKING_TEXT;
use crate::body::Step;
use crate::openai::{Reply, split_content, to_json, words};
use crate::script::Behavior;

/// How the answer goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `generateContent`: one response.
    Whole,
    /// `streamGenerateContent?alt=sse`: one SSE event per chunk, with the stream faults.
    Sse,
    /// `streamGenerateContent` without `alt=sse`: the chunks as one JSON array.
    Array,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    candidates: [Candidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    thought: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: Args,
}

/// `{"city":"Paris"}`.
#[derive(Serialize)]
struct Args {
    city: &'static str,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    total_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cached_content_token_count: u64,
    prompt_tokens_details: [ModalityCount; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_tokens_details: Option<[ModalityCount; 1]>,
    #[serde(skip_serializing_if = "is_zero")]
    thoughts_token_count: u64,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    modality: &'static str,
    token_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The counts of one answer, from which each chunk's cumulative `usageMetadata` is built.
#[derive(Clone, Copy)]
struct Usage {
    prompt: u64,
    cached: u64,
    thoughts: u64,
}

impl Usage {
    /// The metadata once `candidates` answer tokens are out (`None`: absent, as while 0).
    fn metadata(self, candidates: Option<u64>) -> UsageMetadata {
        let text = |token_count| ModalityCount {
            modality: "TEXT",
            token_count,
        };
        UsageMetadata {
            prompt_token_count: self.prompt,
            candidates_token_count: candidates,
            total_token_count: self.prompt + candidates.unwrap_or(0) + self.thoughts,
            cached_content_token_count: self.cached,
            prompt_tokens_details: [text(self.prompt)],
            cache_tokens_details: (self.cached > 0).then(|| [text(self.cached)]),
            thoughts_token_count: self.thoughts,
        }
    }
}

/// Answers one call; `n` numbers the response id (`resp_mock_<n>`) and the signature
/// (`sig_mock_<n>`).
pub(crate) fn reply(model: &str, req: &Value, b: &Behavior, n: usize, form: Form) -> Reply {
    let contents = req.get("contents").and_then(Value::as_array);
    if contents.is_none_or(Vec::is_empty) {
        // Gemini's own wording for a request without contents.
        return error::bad_request("* GenerateContentRequest.contents: contents is not specified");
    }
    let answer = Answer {
        id: format!("resp_mock_{n}"),
        model,
        signature: wants_thoughts(req).then(|| format!("sig_mock_{n}")),
        function: forced_function(req),
        content: b.content(),
        usage: (!b.omit_usage).then_some(Usage {
            prompt: super::prompt_tokens(req),
            cached: b.cached_tokens,
            thoughts: b.reasoning_tokens,
        }),
    };
    match form {
        Form::Whole => Reply::Json(Bytes::from(answer.whole())),
        Form::Sse => Reply::Events(answer.stream(b)),
        Form::Array => {
            let chunks = answer.chunks(b.chunk_count());
            let mut body = Vec::with_capacity(chunks.iter().map(|c| c.json.len() + 1).sum());
            body.push(b'[');
            for (i, chunk) in chunks.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&chunk.json);
            }
            body.push(b']');
            Reply::Json(Bytes::from(body))
        }
    }
}

/// Thoughts are shown when `generationConfig.thinkingConfig.includeThoughts` is true.
fn wants_thoughts(req: &Value) -> bool {
    req.pointer("/generationConfig/thinkingConfig/includeThoughts")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The function a call is forced to when `toolConfig.functionCallingConfig.mode` is `ANY`: the
/// first of `allowedFunctionNames`, else the first declared one. `AUTO` and `NONE` get a text
/// answer, so tests decide.
fn forced_function(req: &Value) -> Option<&str> {
    let config = req.pointer("/toolConfig/functionCallingConfig")?;
    if config.get("mode").and_then(Value::as_str) != Some("ANY") {
        return None;
    }
    let allowed = config
        .get("allowedFunctionNames")
        .and_then(Value::as_array)
        .and_then(|names| names.first())
        .and_then(Value::as_str);
    allowed.or_else(|| {
        req.get("tools")?
            .as_array()?
            .iter()
            .filter_map(|tool| tool.get("functionDeclarations")?.as_array())
            .flatten()
            .find_map(|declaration| declaration.get("name")?.as_str())
    })
}

/// One chunk of the stream and whether the stream faults count it.
struct Chunk {
    json: Vec<u8>,
    answer: bool,
}

/// What the reply holds, streamed or not.
struct Answer<'a> {
    id: String,
    model: &'a str,
    /// `Some` when thoughts are shown.
    signature: Option<String>,
    function: Option<&'a str>,
    content: &'a str,
    /// `None` with `omit_usage`.
    usage: Option<Usage>,
}

impl Answer<'_> {
    fn answer_tokens(&self) -> u64 {
        match self.function {
            Some(_) => 1,
            None => words(self.content),
        }
    }

    fn thought(&self) -> Option<Part<'_>> {
        self.signature.as_ref().map(|_| Part {
            text: Some(THINKING_TEXT),
            thought: true,
            ..Part::default()
        })
    }

    /// The text or function-call part (`text` is the piece it carries).
    fn answer_part<'s>(&'s self, text: &'s str, signed: bool) -> Part<'s> {
        let thought_signature = if signed {
            self.signature.as_deref()
        } else {
            None
        };
        match self.function {
            Some(name) => Part {
                function_call: Some(FunctionCall {
                    name,
                    args: Args { city: "Paris" },
                }),
                thought_signature,
                ..Part::default()
            },
            None => Part {
                text: Some(text),
                thought_signature,
                ..Part::default()
            },
        }
    }

    fn response(
        &self,
        parts: Vec<Part<'_>>,
        finish: bool,
        usage: Option<UsageMetadata>,
    ) -> Vec<u8> {
        to_json(&Response {
            candidates: [Candidate {
                content: Content {
                    parts,
                    role: "model",
                },
                finish_reason: finish.then_some("STOP"),
                index: 0,
            }],
            usage_metadata: usage,
            model_version: self.model,
            response_id: &self.id,
        })
    }

    /// The `generateContent` body.
    fn whole(&self) -> Vec<u8> {
        let mut parts: Vec<Part<'_>> = self.thought().into_iter().collect();
        parts.push(self.answer_part(self.content, true));
        let usage = self.usage.map(|u| u.metadata(Some(self.answer_tokens())));
        self.response(parts, true, usage)
    }

    /// Every chunk of the stream, in order (see the module doc of `gemini/mod.rs`).
    fn chunks(&self, pieces: usize) -> Vec<Chunk> {
        let mut chunks = Vec::with_capacity(pieces + 1);
        if let Some(thought) = self.thought() {
            let usage = self.usage.map(|u| u.metadata(None));
            chunks.push(Chunk {
                json: self.response(vec![thought], false, usage),
                answer: false,
            });
        }
        let pieces = match self.function {
            // Gemini never splits a function call: one chunk carries it whole.
            Some(_) => vec![""],
            None => split_content(self.content, pieces),
        };
        // `split_content` returns `pieces` (at least 1) pieces, so this is the last one.
        let last = pieces.len().saturating_sub(1);
        let mut sent = 0;
        for (i, piece) in pieces.into_iter().enumerate() {
            sent += match self.function {
                Some(_) => 1,
                None => words(piece),
            };
            let usage = self.usage.map(|u| u.metadata((sent > 0).then_some(sent)));
            let part = self.answer_part(piece, i == last);
            chunks.push(Chunk {
                json: self.response(vec![part], i == last, usage),
                answer: true,
            });
        }
        chunks
    }

    /// The SSE events with the stream faults of `b` applied (see the module doc).
    fn stream(&self, b: &Behavior) -> VecDeque<Step> {
        let chunks = self.chunks(b.chunk_count());
        let answers: Vec<usize> = chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.answer)
            .map(|(i, _)| i)
            .collect();
        let first_answer = answers.first().copied();
        // Where a fault after `n` answer chunks cuts: just after the nth, or before the first.
        let cut_after = |n: usize| match n.min(answers.len()).checked_sub(1) {
            Some(last) => answers.get(last).map_or(chunks.len(), |&i| i + 1),
            None => first_answer.unwrap_or(chunks.len()),
        };
        let error_at = b.error_event_after_chunks.map(cut_after);
        let reset_at = b.reset_after_chunks.map(cut_after);
        let end = error_at.into_iter().chain(reset_at).min();

        let mut steps = VecDeque::with_capacity(chunks.len() + 3);
        for (i, chunk) in chunks.iter().enumerate() {
            if b.malformed_body && Some(i) == first_answer {
                // Half of a chunk's JSON is never valid JSON: the object closes only at its last
                // byte.
                steps.push_back(Step::Data(frame(&chunk.json[..chunk.json.len() / 2])));
            }
            if Some(i) == end {
                break;
            }
            steps.push_back(Step::Data(frame(&chunk.json)));
        }
        if end.is_some() && error_at == end {
            steps.push_back(Step::Data(frame(&error::overloaded_event())));
        }
        if end.is_some() && reset_at == end {
            steps.push_back(Step::Abort);
        }
        steps
    }
}

/// `data: JSON\r\n\r\n`: Gemini ends its SSE events with CRLF pairs.
fn frame(data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(data.len() + 10);
    buf.put_slice(b"data: ");
    buf.put_slice(data);
    buf.put_slice(b"\r\n\r\n");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::forced_function;

    #[test]
    fn any_mode_forces_the_allowed_or_first_declared_function() {
        let tools = json!([
            {"googleSearch": {}},
            {"functionDeclarations": [{"name": "get_weather"}, {"name": "get_time"}]}
        ]);
        let req = |config| json!({"tools": tools, "toolConfig": {"functionCallingConfig": config}});
        assert_eq!(
            forced_function(&req(json!({"mode": "ANY"}))),
            Some("get_weather")
        );
        assert_eq!(
            forced_function(&req(
                json!({"mode": "ANY", "allowedFunctionNames": ["get_time"]})
            )),
            Some("get_time")
        );
        assert_eq!(forced_function(&req(json!({"mode": "AUTO"}))), None);
        assert_eq!(
            forced_function(&json!({"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}})),
            None
        );
    }
}
