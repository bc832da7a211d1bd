//! The models a batch's requests name, so a key limited to some models (its globs, or its
//! team's) cannot run others through a batch: the `batches` module checks them on create, before
//! anything goes upstream.
//!
//! Anthropic's message batches carry their requests inline (`requests[].params.model`). OpenAI's
//! batches name an input file, JSONL with one request a line (`body.model`,
//! https://platform.openai.com/docs/api-reference/batch/request-input); the file is read back
//! from the provider that holds it, a frame at a time, keeping only the line being read and the
//! set of models, so a large input costs no more memory than its longest line.

use std::collections::BTreeSet;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Method};
use serde_json::Value;

use crate::providers::{Provider, UpstreamCall};
use crate::request::ApiError;
use crate::request::grant::Grant;
use crate::wire::openai::Endpoint;

/// Whether the key or its team is limited to some models (else nothing needs reading).
pub fn restricted(grant: &Grant) -> bool {
    !grant.limits.models.is_empty()
        || grant
            .team
            .as_ref()
            .is_some_and(|t| !t.limits.models.is_empty())
}

/// The first model `grant` may not use, in the order given.
pub fn first_refused<'a>(
    grant: &Grant,
    models: impl IntoIterator<Item = &'a String>,
) -> Option<String> {
    models
        .into_iter()
        .find(|m| !crate::modules::auth::models::allowed(grant, m))
        .cloned()
}

/// The models of an Anthropic message batch create body, each once, in order of first use.
pub fn inline(body: &Value) -> Vec<String> {
    let mut seen = BTreeSet::new();
    body["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["params"]["model"].as_str())
        .filter(|m| seen.insert(m.to_string()))
        .map(String::from)
        .collect()
}

/// The models named by JSONL request lines, fed as bytes arrive.
#[derive(Default)]
pub struct LineModels {
    partial: Vec<u8>,
    models: BTreeSet<String>,
}

impl LineModels {
    pub fn push(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&bytes[..end]);
            self.line();
            bytes = &bytes[end + 1..];
        }
        self.partial.extend_from_slice(bytes);
    }

    pub fn finish(mut self) -> BTreeSet<String> {
        self.line();
        self.models
    }

    fn line(&mut self) {
        // A line that is not JSON names no model; the provider refuses the file for it.
        if let Ok(line) = serde_json::from_slice::<Value>(&self.partial)
            && let Some(model) = line["body"]["model"].as_str()
        {
            self.models.insert(model.to_string());
        }
        self.partial.clear();
    }
}

/// Reads the input file `file_id` from `provider` (as `credential`, whose account holds it) and
/// returns the models its lines name.
pub async fn input_file(
    provider: &dyn Provider,
    credential: Option<&str>,
    file_id: &str,
) -> Result<BTreeSet<String>, ApiError> {
    let unreadable = |detail: String| ApiError::UpstreamProtocol {
        message: format!(
            "cannot read the batch's input file {file_id:?} from provider {} to check its models: {detail}",
            provider.name()
        ),
    };
    let path = format!("/files/{file_id}/content");
    let request = provider
        .build_request(
            &UpstreamCall {
                endpoint: Endpoint::Files,
                model: "",
                stream: false,
                native: false,
                content_type: None,
                resource: Some((&Method::GET, &path)),
                credential,
            },
            Bytes::new(),
            &HeaderMap::new(),
        )
        .map_err(|e| unreadable(e.to_string()))?;
    let response = provider
        .client()
        .send(provider.name(), request, provider.timeouts().first_byte)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(unreadable(format!("it answered {}", response.status())));
    }
    let mut body = response.into_body();
    let mut lines = LineModels::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| unreadable(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            lines.push(data);
        }
    }
    Ok(lines.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_anywhere_yield_each_model_once() {
        let input = b"{\"custom_id\":\"a\",\"body\":{\"model\":\"gpt-4o\"}}\n\
            {\"custom_id\":\"b\",\"body\":{\"model\":\"gpt-4o-mini\"}}\n\nnot json\n\
            {\"custom_id\":\"c\",\"body\":{\"model\":\"gpt-4o\"}}";
        for cut in 0..input.len() {
            let mut lines = LineModels::default();
            lines.push(&input[..cut]);
            lines.push(&input[cut..]);
            let models: Vec<String> = lines.finish().into_iter().collect();
            assert_eq!(models, ["gpt-4o", "gpt-4o-mini"], "cut at {cut}");
        }
    }

    #[test]
    fn inline_requests_name_their_models_in_order() {
        let body = serde_json::json!({"requests": [
            {"custom_id": "a", "params": {"model": "claude-opus-4-1"}},
            {"custom_id": "b", "params": {"model": "claude-haiku-4-5"}},
            {"custom_id": "c", "params": {"model": "claude-opus-4-1"}}]});
        assert_eq!(inline(&body), ["claude-opus-4-1", "claude-haiku-4-5"]);
    }
}
