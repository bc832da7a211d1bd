//! `POST /v1/chat/completions`: a text answer, or a `get_weather`-style tool call when the
//! request forces one (`tool_choice` is `"required"` or names a function), streamed or not.
//!
//! Shapes follow OpenAI's as of 2025: the stream opens with a role chunk (or, for a tool call, a
//! chunk carrying the role and the call's id and name), then the content chunks, then an empty
//! delta with the finish reason, then (when `stream_options.include_usage`) a chunk with
//! `"choices":[]` and the usage, while every earlier chunk carries `"usage":null`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::{ChunkUsage, Reply, SsePlan, model, split_content, to_json, unix_now, words};
use crate::script::Behavior;

const TOOL_CALL_ID: &str = "call_mock_1";
const TOOL_ARGUMENTS: &str = r#"{"city":"Paris"}"#;
/// The streamed argument pieces; they concatenate to `TOOL_ARGUMENTS`.
const TOOL_ARGUMENT_PIECES: [&str; 2] = [r#"{"city":"#, r#""Paris"}"#];

#[derive(Serialize, Clone, Copy)]
pub(crate) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize, Clone, Copy)]
struct PromptDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize, Clone, Copy)]
struct CompletionDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'static str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: ChunkUsage<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// `Some(None)` is an explicit `"content":null`, as OpenAI sends with a tool call.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'static str,
}

/// Answers one chat request; `n` numbers the id (`chatcmpl-mock-<n>`).
pub(crate) fn reply(req: &Value, b: &Behavior, n: usize) -> Reply {
    let id = format!("chatcmpl-mock-{n}");
    let model = model(req);
    let tool = forced_tool(req);
    let answer_words = match tool {
        Some(_) => words(TOOL_ARGUMENTS),
        None => words(b.content()),
    };
    let prompt_tokens = prompt_tokens(req);
    let completion_tokens = answer_words + b.reasoning_tokens;
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptDetails {
            cached_tokens: b.cached_tokens,
            audio_tokens: 0,
        },
        completion_tokens_details: CompletionDetails {
            reasoning_tokens: b.reasoning_tokens,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
        },
    };
    let created = unix_now();
    if super::wants_stream(req) {
        let usage = if b.omit_usage || !super::wants_usage_in_stream(req) {
            None
        } else {
            Some(usage)
        };
        let stream = Stream {
            id: &id,
            model,
            created,
            usage,
        };
        return Reply::Stream(match tool {
            Some(name) => stream.tool_call(name),
            None => stream.text(b.content(), b.chunk_count()),
        });
    }
    let message = match tool {
        Some(name) => Message {
            role: "assistant",
            content: None,
            refusal: None,
            tool_calls: Some([ToolCall {
                id: TOOL_CALL_ID,
                kind: "function",
                function: Function {
                    name,
                    arguments: TOOL_ARGUMENTS,
                },
            }]),
        },
        None => Message {
            role: "assistant",
            content: Some(b.content()),
            refusal: None,
            tool_calls: None,
        },
    };
    Reply::Json(Bytes::from(to_json(&Completion {
        id: &id,
        object: "chat.completion",
        created,
        model,
        choices: [Choice {
            index: 0,
            message,
            logprobs: None,
            finish_reason: if tool.is_some() { "tool_calls" } else { "stop" },
        }],
        usage: (!b.omit_usage).then_some(usage),
        system_fingerprint: "fp_mock",
    })))
}

/// The function the request forces, if any: the one `tool_choice` names, or the first tool when
/// `tool_choice` is `"required"`. `"auto"` and `"none"` get a text answer, so tests decide.
fn forced_tool(req: &Value) -> Option<&str> {
    let tools = req.get("tools")?.as_array()?;
    let first_tool = || tools.first()?.pointer("/function/name")?.as_str();
    match req.get("tool_choice")? {
        Value::String(choice) if choice == "required" => first_tool(),
        choice @ Value::Object(_) => choice
            .pointer("/function/name")
            .and_then(Value::as_str)
            .or_else(first_tool),
        _ => None,
    }
}

/// Per message: words in its text plus 4 (see the table in `openai/mod.rs`).
fn prompt_tokens(req: &Value) -> u64 {
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    messages
        .iter()
        .map(|m| {
            let text_words = match m.get("content") {
                Some(Value::String(s)) => words(s),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .map(words)
                    .sum(),
                _ => 0,
            };
            text_words + 4
        })
        .sum()
}

/// What every chunk of one stream shares.
struct Stream<'a> {
    id: &'a str,
    model: &'a str,
    created: u64,
    /// `Some` when the client asked for usage and the behaviour doesn't omit it.
    usage: Option<Usage>,
}

impl Stream<'_> {
    fn chunk(&self, delta: Delta<'_>, finish_reason: Option<&'static str>) -> Vec<u8> {
        to_json(&Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            system_fingerprint: "fp_mock",
            choices: &[ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: self.usage.map(|_| None),
        })
    }

    /// The finish chunk, then the usage chunk if asked for.
    fn tail(&self, finish_reason: &'static str) -> Vec<Vec<u8>> {
        let mut tail = vec![self.chunk(Delta::default(), Some(finish_reason))];
        if let Some(usage) = self.usage {
            tail.push(to_json(&Chunk {
                id: self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model,
                system_fingerprint: "fp_mock",
                choices: &[],
                usage: Some(Some(usage)),
            }));
        }
        tail
    }

    fn text(&self, content: &str, chunks: usize) -> SsePlan {
        let role = Delta {
            role: Some("assistant"),
            content: Some(Some("")),
            tool_calls: None,
        };
        SsePlan {
            head: vec![self.chunk(role, None)],
            content: split_content(content, chunks)
                .into_iter()
                .map(|piece| {
                    let delta = Delta {
                        content: Some(Some(piece)),
                        ..Delta::default()
                    };
                    self.chunk(delta, None)
                })
                .collect(),
            tail: self.tail("stop"),
        }
    }

    fn tool_call(&self, name: &str) -> SsePlan {
        let header = Delta {
            role: Some("assistant"),
            content: Some(None),
            tool_calls: Some([ToolCallDelta {
                index: 0,
                id: Some(TOOL_CALL_ID),
                kind: Some("function"),
                function: FunctionDelta {
                    name: Some(name),
                    arguments: "",
                },
            }]),
        };
        SsePlan {
            head: vec![self.chunk(header, None)],
            content: TOOL_ARGUMENT_PIECES
                .iter()
                .map(|&arguments| {
                    let delta = Delta {
                        tool_calls: Some([ToolCallDelta {
                            index: 0,
                            id: None,
                            kind: None,
                            function: FunctionDelta {
                                name: None,
                                arguments,
                            },
                        }]),
                        ..Delta::default()
                    };
                    self.chunk(delta, None)
                })
                .collect(),
            tail: self.tail("tool_calls"),
        }
    }
}
