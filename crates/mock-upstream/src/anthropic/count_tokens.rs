//! `POST /v1/messages/count_tokens`: `{"input_tokens": I}`, with I by the same rule as a message's
//! `input_tokens` (see `anthropic/mod.rs`), so a test can compare the two.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::error;
use crate::openai::{Reply, to_json};
use crate::script::Behavior;

#[derive(Serialize)]
struct Count {
    input_tokens: u64,
}

/// Answers one count; `n` numbers the `request_id` of a refusal.
pub(crate) fn reply(req: &Value, b: &Behavior, n: usize) -> Reply {
    if let Err(message) = super::check(req, false) {
        return error::invalid_request(&message, n);
    }
    Reply::Json(Bytes::from(to_json(&Count {
        input_tokens: super::input_tokens(req, b),
    })))
}
