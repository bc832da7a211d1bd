//! `POST /v1/embeddings` request body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EmbeddingRequest {
    pub model: String,
    /// A string, an array of strings, or token arrays.
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
