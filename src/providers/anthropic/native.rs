//! An Anthropic Messages client calling Claude natively: its body goes as it is (model name aside),
//! so thinking signatures, `cache_control` and betas arrive untouched. Anthropic itself is one host;
//! Claude on Bedrock (`crate::providers::bedrock::native`) reuses the reading side here.

use bytes::Bytes;
use serde_json::Value;

use super::{adapter, response};
use crate::providers::{ChatStreamDecoder, NativeCall};

/// A native Messages call to Anthropic's own API.
pub struct Messages {
    upstream_model: String,
}

impl Messages {
    pub fn new(upstream_model: &str) -> Messages {
        Messages {
            upstream_model: upstream_model.to_string(),
        }
    }
}

impl NativeCall for Messages {
    fn body(&self, mut client_body: Value) -> Value {
        client_body["model"] = Value::String(self.upstream_model.clone());
        client_body
    }

    fn side_decoder(&self) -> Box<dyn ChatStreamDecoder> {
        adapter::sse_decoder(&self.upstream_model)
    }

    fn canonical_answer(&self, body: Bytes) -> Result<Bytes, String> {
        canonical_message(&body)
    }

    fn errors_fit_client(&self) -> bool {
        true
    }
}

/// Claude's own message, from whichever host, as the canonical `chat.completion` (for usage and
/// text).
pub fn canonical_message(body: &[u8]) -> Result<Bytes, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let model = value["model"].as_str().unwrap_or_default().to_string();
    let chat = response::to_chat(&value, &model).map_err(|e| e.to_string())?;
    serde_json::to_vec(&chat)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}
