//! `POST /v1/completions` (the legacy text completions endpoint) request body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::StreamOptions;

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CompletionRequest {
    pub model: String,
    /// A string, an array of strings, or token arrays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
