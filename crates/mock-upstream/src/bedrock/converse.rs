//! `converse` and `converse-stream`: a signed reasoning block when the request enables thinking,
//! then a text answer or a `toolUse` when `toolConfig.toolChoice` forces one. The content, the
//! token rule and the stream are in `bedrock/mod.rs`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::error;
use super::eventstream::{Event, into_steps};
use crate::anthropic::THINKING_TEXT;
use crate::openai::{Reply, split_content, to_json, words};
use crate::script::Behavior;

const TOOL_USE_ID: &str = "tooluse_mock_1";
/// The streamed `toolUse.input` pieces; they concatenate to `{"city":"Paris"}`.
const TOOL_INPUT_PIECES: [&str; 2] = [r#"{"city":"#, r#""Paris"}"#];
/// The streamed `reasoningContent.text` pieces; they concatenate to [`THINKING_TEXT`].
const THINKING_PIECES: [&str; 3] = ["Let ", "me ", "think."];

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    cache_read_input_tokens: u64,
    cache_write_input_tokens: u64,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    latency_ms: u64,
}

const METRICS: Metrics = Metrics { latency_ms: 1 };

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    output: Output<'a>,
    stop_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    metrics: Metrics,
}

#[derive(Serialize)]
struct Output<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

/// A content block: `{"text"}`, `{"toolUse"}` or `{"reasoningContent"}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    ReasoningContent {
        #[serde(rename = "reasoningText")]
        reasoning_text: ReasoningText<'a>,
    },
    Text(&'a str),
    ToolUse(ToolUse<'a>),
}

#[derive(Serialize)]
struct ReasoningText<'a> {
    text: &'a str,
    signature: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    tool_use_id: &'static str,
    name: &'a str,
    input: ToolInput,
}

/// `{"city":"Paris"}`.
#[derive(Serialize)]
struct ToolInput {
    city: &'static str,
}

#[derive(Serialize)]
struct MessageStart {
    role: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart<'a> {
    content_block_index: usize,
    start: ToolStart<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolStart<'a> {
    tool_use: ToolStartFields<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolStartFields<'a> {
    tool_use_id: &'static str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta<'a> {
    content_block_index: usize,
    delta: Delta<'a>,
}

/// `{"text"}`, `{"toolUse": {"input"}}` or `{"reasoningContent": {"text"} | {"signature"}}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Delta<'a> {
    Text(&'a str),
    ToolUse { input: &'a str },
    ReasoningContent(ReasoningDelta<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ReasoningDelta<'a> {
    Text(&'a str),
    Signature(&'a str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlockStop {
    content_block_index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: &'static str,
}

#[derive(Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    metrics: Metrics,
}

/// Answers one Converse call, streamed or not; `n` numbers the signature (`sig_mock_<n>`).
pub(crate) fn reply(req: &Value, b: &Behavior, n: usize, stream: bool) -> Reply {
    if !req.get("messages").is_some_and(Value::is_array) {
        // Bedrock's own wording for a request without messages.
        return error::validation(
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null",
        );
    }
    let tool = forced_tool(req);
    let output_tokens = match tool {
        Some(_) => 1,
        None => words(b.content()),
    } + b.reasoning_tokens;
    let input_tokens = super::input_tokens(req, b);
    let usage = Usage {
        input_tokens,
        output_tokens,
        total_tokens: input_tokens + output_tokens + b.cached_tokens + b.cache_write_tokens,
        cache_read_input_tokens: b.cached_tokens,
        cache_write_input_tokens: b.cache_write_tokens,
    };
    let answer = Plan {
        signature: wants_thinking(req).then(|| format!("sig_mock_{n}")),
        tool,
        content: b.content(),
        usage: (!b.omit_usage).then_some(usage),
    };
    if stream {
        return Reply::EventStream(into_steps(&answer.events(b.chunk_count()), b));
    }
    Reply::Json(Bytes::from(to_json(&Answer {
        output: Output {
            message: Message {
                role: "assistant",
                content: answer.blocks(),
            },
        },
        stop_reason: answer.stop_reason(),
        usage: answer.usage,
        metrics: METRICS,
    })))
}

/// Thinking is on for Claude's `thinking.type` `enabled` or `adaptive` and Nova's
/// `reasoningConfig.type` `enabled`, both under `additionalModelRequestFields`.
fn wants_thinking(req: &Value) -> bool {
    let Some(fields) = req.get("additionalModelRequestFields") else {
        return false;
    };
    let claude = fields.pointer("/thinking/type").and_then(Value::as_str);
    let nova = fields
        .pointer("/reasoningConfig/type")
        .and_then(Value::as_str);
    matches!(claude, Some("enabled" | "adaptive")) || nova == Some("enabled")
}

/// The tool `toolConfig.toolChoice` forces, if any: the one `{"tool": {"name"}}` names, or the
/// first of `toolConfig.tools` for `{"any": {}}`. `auto` gets a text answer, so tests decide.
fn forced_tool(req: &Value) -> Option<&str> {
    let config = req.get("toolConfig")?;
    let choice = config.get("toolChoice")?;
    let first_tool = || {
        config
            .get("tools")?
            .as_array()?
            .iter()
            .find_map(|t| t.pointer("/toolSpec/name")?.as_str())
    };
    if let Some(tool) = choice.get("tool") {
        return tool.get("name").and_then(Value::as_str).or_else(first_tool);
    }
    if choice.get("any").is_some() {
        return first_tool();
    }
    None
}

/// What the reply holds, streamed or not.
struct Plan<'a> {
    /// `Some` when thinking is on.
    signature: Option<String>,
    tool: Option<&'a str>,
    content: &'a str,
    /// `None` with `omit_usage`.
    usage: Option<Usage>,
}

impl Plan<'_> {
    fn stop_reason(&self) -> &'static str {
        if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    /// The whole content of the Converse answer.
    fn blocks(&self) -> Vec<Block<'_>> {
        let mut blocks = Vec::with_capacity(2);
        if let Some(signature) = &self.signature {
            blocks.push(Block::ReasoningContent {
                reasoning_text: ReasoningText {
                    text: THINKING_TEXT,
                    signature,
                },
            });
        }
        blocks.push(match self.tool {
            Some(name) => Block::ToolUse(ToolUse {
                tool_use_id: TOOL_USE_ID,
                name,
                input: ToolInput { city: "Paris" },
            }),
            None => Block::Text(self.content),
        });
        blocks
    }

    /// Every event of the stream, in order (see the module doc of `bedrock/mod.rs`).
    fn events(&self, chunks: usize) -> Vec<Event> {
        let mut events = Vec::new();
        let mut push = |event_type: &'static str, payload: Vec<u8>| {
            events.push(Event {
                event_type,
                payload,
            });
        };
        let delta = |index: usize, delta: Delta<'_>| {
            to_json(&BlockDelta {
                content_block_index: index,
                delta,
            })
        };
        let stop = |index: usize| {
            to_json(&BlockStop {
                content_block_index: index,
            })
        };
        push("messageStart", to_json(&MessageStart { role: "assistant" }));
        let mut index = 0;
        if let Some(signature) = &self.signature {
            for piece in THINKING_PIECES {
                let reasoning = Delta::ReasoningContent(ReasoningDelta::Text(piece));
                push("contentBlockDelta", delta(index, reasoning));
            }
            let signed = Delta::ReasoningContent(ReasoningDelta::Signature(signature));
            push("contentBlockDelta", delta(index, signed));
            push("contentBlockStop", stop(index));
            index += 1;
        }
        match self.tool {
            Some(name) => {
                let start = BlockStart {
                    content_block_index: index,
                    start: ToolStart {
                        tool_use: ToolStartFields {
                            tool_use_id: TOOL_USE_ID,
                            name,
                        },
                    },
                };
                push("contentBlockStart", to_json(&start));
                for input in TOOL_INPUT_PIECES {
                    push("contentBlockDelta", delta(index, Delta::ToolUse { input }));
                }
            }
            None => {
                // Bedrock opens a text block with its first delta, without `contentBlockStart`.
                for piece in split_content(self.content, chunks) {
                    push("contentBlockDelta", delta(index, Delta::Text(piece)));
                }
            }
        }
        push("contentBlockStop", stop(index));
        push(
            "messageStop",
            to_json(&MessageStop {
                stop_reason: self.stop_reason(),
            }),
        );
        push(
            "metadata",
            to_json(&Metadata {
                usage: self.usage,
                metrics: METRICS,
            }),
        );
        events
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{THINKING_PIECES, THINKING_TEXT, TOOL_INPUT_PIECES, forced_tool};

    #[test]
    fn streamed_pieces_concatenate_to_the_whole() {
        assert_eq!(THINKING_PIECES.concat(), THINKING_TEXT);
        let input: serde_json::Value =
            serde_json::from_str(&TOOL_INPUT_PIECES.concat()).unwrap_or_default();
        assert_eq!(input, json!({"city": "Paris"}));
    }

    #[test]
    fn tool_choice_any_or_tool_forces_a_call() {
        let tools =
            json!([{"toolSpec": {"name": "get_weather"}}, {"toolSpec": {"name": "get_time"}}]);
        let req = |choice| json!({"toolConfig": {"tools": tools, "toolChoice": choice}});
        assert_eq!(forced_tool(&req(json!({"any": {}}))), Some("get_weather"));
        assert_eq!(
            forced_tool(&req(json!({"tool": {"name": "get_time"}}))),
            Some("get_time")
        );
        assert_eq!(forced_tool(&req(json!({"auto": {}}))), None);
        assert_eq!(forced_tool(&json!({"toolConfig": {"tools": tools}})), None);
    }
}
