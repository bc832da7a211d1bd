//! `POST /v1/messages`: a signed thinking block when the request enables thinking, then a text
//! answer or a `get_weather`-style `tool_use` when `tool_choice` forces one; streamed as named SSE
//! events or not. The content and the token rule are in `anthropic/mod.rs`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::{Event, THINKING_TEXT, error};
use crate::openai::{Reply, model, split_content, to_json, wants_stream, words};
use crate::script::Behavior;

const TOOL_USE_ID: &str = "toolu_mock_1";
/// The streamed `partial_json` pieces; they concatenate to `{"city":"Paris"}`.
const TOOL_INPUT_PIECES: [&str; 2] = [r#"{"city":"#, r#""Paris"}"#];
/// The streamed `thinking_delta` pieces; they concatenate to [`THINKING_TEXT`].
const THINKING_PIECES: [&str; 3] = ["Let ", "me ", "think."];

#[derive(Serialize, Clone, Copy)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [Block<'a>],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

/// A content block, whole (the non-stream answer) or as `content_block_start` opens it (empty
/// text, empty input).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'static str,
        name: &'a str,
        input: ToolInput,
    },
}

/// `{"city":"Paris"}`, or `{}` in `content_block_start`.
#[derive(Serialize)]
struct ToolInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

/// A stream event; its `type` is also the SSE event name.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent<'a> {
    MessageStart {
        message: Message<'a>,
    },
    Ping,
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<OutputUsage>,
    },
    MessageStop,
}

impl StreamEvent<'_> {
    fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::Ping => "ping",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
        }
    }
}

/// Answers one message; `n` numbers the id (`msg_mock_<n>`) and the signature (`sig_mock_<n>`).
pub(crate) fn reply(req: &Value, b: &Behavior, n: usize) -> Reply {
    if let Err(message) = super::check(req, true) {
        return error::invalid_request(&message, n);
    }
    match render(req, model(req), b, n, wants_stream(req)) {
        Rendered::Json(body) => Reply::Json(Bytes::from(body)),
        Rendered::Events(events) => Reply::Events(super::into_steps(&events, b)),
    }
}

/// The answer to a checked Messages body, before any framing or fault.
pub(crate) enum Rendered {
    /// The whole message, as JSON.
    Json(Vec<u8>),
    /// Every stream event, in order, unframed.
    Events(Vec<Event>),
}

/// The answer to `req` (already checked), naming `model` in it: the one place its content and
/// usage are decided, so Claude on Bedrock (`bedrock/claude.rs`) answers exactly as `/v1/messages`.
pub(crate) fn render(req: &Value, model: &str, b: &Behavior, n: usize, stream: bool) -> Rendered {
    let answer = Answer {
        id: format!("msg_mock_{n}"),
        model,
        signature: wants_thinking(req).then(|| format!("sig_mock_{n}")),
        tool: forced_tool(req),
        content: b.content(),
    };
    let output_tokens = match answer.tool {
        Some(_) => 1,
        None => words(answer.content),
    } + b.reasoning_tokens;
    let usage = Usage {
        input_tokens: super::input_tokens(req, b),
        output_tokens,
        cache_creation_input_tokens: b.cache_write_tokens,
        cache_read_input_tokens: b.cached_tokens,
    };
    let usage = (!b.omit_usage).then_some(usage);
    if stream {
        return Rendered::Events(answer.events(usage, b.chunk_count()));
    }
    Rendered::Json(to_json(&Message {
        id: &answer.id,
        kind: "message",
        role: "assistant",
        model: answer.model,
        content: &answer.blocks(),
        stop_reason: Some(answer.stop_reason()),
        stop_sequence: None,
        usage,
    }))
}

/// Thinking is on for `{"type":"enabled",...}` and `{"type":"adaptive"}`, off for
/// `{"type":"disabled"}` or no `thinking`.
fn wants_thinking(req: &Value) -> bool {
    matches!(
        req.pointer("/thinking/type").and_then(Value::as_str),
        Some("enabled" | "adaptive")
    )
}

/// The tool `tool_choice` forces, if any: the one `{"type":"tool","name"}` names, or the first of
/// `tools` for `{"type":"any"}`. `auto` and `none` get a text answer, so tests decide.
fn forced_tool(req: &Value) -> Option<&str> {
    let tools = req.get("tools")?.as_array()?;
    let first_tool = || tools.first()?.get("name")?.as_str();
    let choice = req.get("tool_choice")?;
    match choice.get("type")?.as_str()? {
        "any" => first_tool(),
        "tool" => choice
            .get("name")
            .and_then(Value::as_str)
            .or_else(first_tool),
        _ => None,
    }
}

/// What the reply holds, streamed or not.
struct Answer<'a> {
    id: String,
    model: &'a str,
    /// `Some` when thinking is on.
    signature: Option<String>,
    tool: Option<&'a str>,
    content: &'a str,
}

impl Answer<'_> {
    fn stop_reason(&self) -> &'static str {
        if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    /// The whole content of the non-stream answer.
    fn blocks(&self) -> Vec<Block<'_>> {
        let mut blocks = Vec::with_capacity(2);
        if let Some(signature) = &self.signature {
            blocks.push(Block::Thinking {
                thinking: THINKING_TEXT,
                signature: Some(signature),
            });
        }
        blocks.push(match self.tool {
            Some(name) => Block::ToolUse {
                id: TOOL_USE_ID,
                name,
                input: ToolInput {
                    city: Some("Paris"),
                },
            },
            None => Block::Text { text: self.content },
        });
        blocks
    }

    /// Every event of the stream, in order (see the module doc of `anthropic/mod.rs`).
    fn events(&self, usage: Option<Usage>, chunks: usize) -> Vec<Event> {
        let mut events = Vec::new();
        let mut push = |event: StreamEvent<'_>| {
            events.push(Event {
                name: event.name(),
                data: to_json(&event),
            });
        };
        push(StreamEvent::MessageStart {
            message: Message {
                id: &self.id,
                kind: "message",
                role: "assistant",
                model: self.model,
                content: &[],
                stop_reason: None,
                stop_sequence: None,
                // Anthropic reports the input side up front and one output token so far.
                usage: usage.map(|u| Usage {
                    output_tokens: 1,
                    ..u
                }),
            },
        });
        push(StreamEvent::Ping);
        let mut block = |index: usize, start: Block<'_>, deltas: Vec<Delta<'_>>| {
            push(StreamEvent::ContentBlockStart {
                index,
                content_block: start,
            });
            for delta in deltas {
                push(StreamEvent::ContentBlockDelta { index, delta });
            }
            push(StreamEvent::ContentBlockStop { index });
        };
        let mut index = 0;
        if let Some(signature) = &self.signature {
            let mut deltas: Vec<Delta<'_>> = THINKING_PIECES
                .iter()
                .map(|&thinking| Delta::Thinking { thinking })
                .collect();
            deltas.push(Delta::Signature { signature });
            let start = Block::Thinking {
                thinking: "",
                signature: None,
            };
            block(index, start, deltas);
            index += 1;
        }
        match self.tool {
            Some(name) => {
                let start = Block::ToolUse {
                    id: TOOL_USE_ID,
                    name,
                    input: ToolInput { city: None },
                };
                let deltas = TOOL_INPUT_PIECES
                    .iter()
                    .map(|&partial_json| Delta::InputJson { partial_json })
                    .collect();
                block(index, start, deltas);
            }
            None => {
                let deltas = split_content(self.content, chunks)
                    .into_iter()
                    .map(|text| Delta::Text { text })
                    .collect();
                block(index, Block::Text { text: "" }, deltas);
            }
        }
        push(StreamEvent::MessageDelta {
            delta: StopDelta {
                stop_reason: self.stop_reason(),
                stop_sequence: None,
            },
            usage: usage.map(|u| OutputUsage {
                output_tokens: u.output_tokens,
            }),
        });
        push(StreamEvent::MessageStop);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::{THINKING_PIECES, THINKING_TEXT, TOOL_INPUT_PIECES};

    #[test]
    fn streamed_pieces_concatenate_to_the_whole() {
        assert_eq!(THINKING_PIECES.concat(), THINKING_TEXT);
        let input: serde_json::Value =
            serde_json::from_str(&TOOL_INPUT_PIECES.concat()).unwrap_or_default();
        assert_eq!(input, serde_json::json!({"city": "Paris"}));
    }
}
