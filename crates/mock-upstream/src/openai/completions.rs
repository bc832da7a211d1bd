//! `POST /v1/completions` (the legacy text endpoint): `choices[0].text` is the behaviour's
//! content. The stream sends `text_completion` chunks with text pieces, a final chunk with empty
//! text and the finish reason, then the usage chunk (`"choices":[]`) when asked for.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::{ChunkUsage, Reply, SsePlan, model, split_content, to_json, unix_now, words};
use crate::script::Behavior;

#[derive(Serialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: ChunkUsage<Usage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// Answers one legacy completion; `n` numbers the id (`cmpl-mock-<n>`).
pub(crate) fn reply(req: &Value, b: &Behavior, n: usize) -> Reply {
    let id = format!("cmpl-mock-{n}");
    let model = model(req);
    let created = unix_now();
    let prompt_tokens = prompt_words(req.get("prompt")) + 1;
    let completion_tokens = words(b.content());
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    };
    let body = |choices: &[Choice<'_>], usage: ChunkUsage<Usage>| {
        to_json(&Completion {
            id: &id,
            object: "text_completion",
            created,
            model,
            choices,
            usage,
        })
    };
    if !super::wants_stream(req) {
        let choice = Choice {
            text: b.content(),
            index: 0,
            logprobs: None,
            finish_reason: Some("stop"),
        };
        let usage = (!b.omit_usage).then_some(Some(usage));
        return Reply::Json(Bytes::from(body(&[choice], usage)));
    }
    let with_usage = !b.omit_usage && super::wants_usage_in_stream(req);
    // Chunks before the last say `"usage":null` when usage was asked for, as OpenAI's do.
    let pending_usage = with_usage.then_some(None);
    let piece = |text, finish_reason| {
        let choice = Choice {
            text,
            index: 0,
            logprobs: None,
            finish_reason,
        };
        body(&[choice], pending_usage)
    };
    let mut tail = vec![piece("", Some("stop"))];
    if with_usage {
        tail.push(body(&[], Some(Some(usage))));
    }
    Reply::Stream(SsePlan {
        head: Vec::new(),
        content: split_content(b.content(), b.chunk_count())
            .into_iter()
            .map(|text| piece(text, None))
            .collect(),
        tail,
    })
}

/// Words in a prompt: a string, an array of strings, or token arrays (one per token).
fn prompt_words(prompt: Option<&Value>) -> u64 {
    match prompt {
        Some(Value::String(s)) => words(s),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => words(s),
                Value::Number(_) => 1,
                Value::Array(tokens) => tokens.len() as u64,
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}
