//! A Gemini-format client (`generateContent`, Google's SDK) calling Gemini or Vertex AI natively:
//! its body goes as it is, so safety settings, Google Search, cached content and thinking
//! configuration arrive untouched, and the answer returns as it came. Usage is read from the
//! canonical view (the side decoder of a stream, the translated answer of a complete call).

use bytes::Bytes;
use serde_json::Value;

use super::{adapter, response};
use crate::providers::{ChatStreamDecoder, NativeCall, answer_body};

pub struct GenerateContent {
    upstream_model: String,
}

impl GenerateContent {
    pub fn new(upstream_model: &str) -> GenerateContent {
        GenerateContent {
            upstream_model: upstream_model.to_string(),
        }
    }
}

impl NativeCall for GenerateContent {
    /// The model is in the URL; the facts the pipeline laid into the body come out again.
    fn body(&self, mut client_body: Value) -> Value {
        crate::wire::gemini::strip_path_facts(&mut client_body);
        client_body
    }

    fn side_decoder(&self) -> Box<dyn ChatStreamDecoder> {
        adapter::sse_decoder(&self.upstream_model)
    }

    fn canonical_answer(&self, body: Bytes) -> Result<Bytes, String> {
        let model = self.upstream_model.clone();
        answer_body(&body, |value| {
            response::to_chat(value, value["modelVersion"].as_str().unwrap_or(&model))
        })
    }

    fn errors_fit_client(&self) -> bool {
        true
    }
}
