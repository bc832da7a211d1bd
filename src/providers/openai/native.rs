//! A Responses client calling OpenAI: OpenAI serves the Responses API itself (built-in tools, its
//! own stored conversations), so the body goes as it is (model name aside) and the stream passes
//! through, read beside by [`super::responses_side::ResponsesSide`].

use bytes::Bytes;
use serde_json::Value;

use super::responses_side::ResponsesSide;
use crate::providers::{ChatStreamDecoder, NativeCall, SseFraming};

pub struct Responses {
    upstream_model: String,
}

impl Responses {
    pub fn new(upstream_model: &str) -> Responses {
        Responses {
            upstream_model: upstream_model.to_string(),
        }
    }
}

impl NativeCall for Responses {
    fn body(&self, mut client_body: Value) -> Value {
        client_body["model"] = Value::String(self.upstream_model.clone());
        client_body
    }

    fn side_decoder(&self) -> Box<dyn ChatStreamDecoder> {
        Box::new(SseFraming::new(ResponsesSide::default()))
    }

    /// The Responses object stays as it is: the request path reads its usage by the Responses
    /// field names, since the client's format is Responses too.
    fn canonical_answer(&self, body: Bytes) -> Result<Bytes, String> {
        Ok(body)
    }
}
