//! The `usage` object of chat, completion and embedding answers, streamed or not. Only the token
//! classes that change cost are typed; the provider's other fields are ignored here and forwarded
//! untouched to the client, since the proxy relays the upstream bytes rather than these structs.

use crate::wire::byte_keys::deserialize_with_byte_keys;

// Read with byte keys (`byte_keys.rs`): every answer's usage is read, on the request path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}
deserialize_with_byte_keys!(Usage, "a usage object", {
    b"prompt_tokens" => prompt_tokens,
    b"completion_tokens" => completion_tokens,
    b"prompt_tokens_details" => prompt_tokens_details,
    b"completion_tokens_details" => completion_tokens_details,
});

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptTokensDetails {
    /// Input tokens read from the provider's prompt cache (billed at the cached rate).
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the prompt cache, where a provider reports them separately.
    pub cache_creation_tokens: Option<u64>,
}
deserialize_with_byte_keys!(PromptTokensDetails, "prompt token details", {
    b"cached_tokens" => cached_tokens,
    b"cache_creation_tokens" => cache_creation_tokens,
});

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompletionTokensDetails {
    /// Part of `completion_tokens` spent on hidden reasoning.
    pub reasoning_tokens: Option<u64>,
}
deserialize_with_byte_keys!(CompletionTokensDetails, "completion token details", {
    b"reasoning_tokens" => reasoning_tokens,
});

impl Usage {
    /// From a Responses API `usage` object (`input_tokens`, `output_tokens` and their details).
    pub fn from_responses(usage: &serde_json::Value) -> Usage {
        let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        Usage {
            prompt_tokens: count(&usage["input_tokens"]),
            completion_tokens: count(&usage["output_tokens"]),
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: usage["input_tokens_details"]["cached_tokens"].as_u64(),
                cache_creation_tokens: None,
            }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: usage["output_tokens_details"]["reasoning_tokens"].as_u64(),
            }),
        }
    }

    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
    }

    pub fn cache_write_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|d| d.cache_creation_tokens)
            .unwrap_or(0)
    }

    pub fn reasoning_tokens(&self) -> u64 {
        self.completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0)
    }
}
