//! The OpenAI API as clients send it: chat completions, legacy completions, embeddings, and the usage
//! object that every answer carries. [`Inbound`] is the parsed body of any of the three.

mod chat;
mod completions;
mod embeddings;
pub mod operation;
pub mod resource;
mod stream_usage;
mod usage;

pub use chat::{ChatMessage, ChatRequest, Role, StreamOptions};
pub use completions::CompletionRequest;
pub use embeddings::EmbeddingRequest;
pub use operation::{OperationBody, OperationRequest};
pub use resource::{Action, ResourceRequest};
pub use usage::{CompletionTokensDetails, PromptTokensDetails, Usage};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// Which OpenAI endpoint a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    /// Anthropic Messages (`/v1/messages`), served through the canonical chat form.
    Messages,
    /// OpenAI Responses (`/v1/responses`), served through the canonical chat form.
    Responses,
    /// Gemini's `models/{model}:generateContent` and `:streamGenerateContent`, served through
    /// the canonical chat form (the model and streaming are in the URL).
    GenerateContent,
    /// Operations whose body passes through (model aside): see [`operation`].
    ImagesGenerations,
    ImagesEdits,
    ImagesVariations,
    AudioSpeech,
    AudioTranscriptions,
    AudioTranslations,
    Moderations,
    /// The common rerank shape (`query`, `documents`, `top_n`), Cohere's and its peers'.
    Rerank,
    /// Objects a provider holds, addressed by method and path: see [`resource`].
    Files,
    Batches,
    /// Anthropic's message batches (`/v1/messages/batches`), in Anthropic's shapes.
    MessageBatches,
}

impl Endpoint {
    /// The path below the provider's base URL (`.../v1`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Messages => "/messages",
            Endpoint::Responses => "/responses",
            Endpoint::GenerateContent => "/chat/completions",
            Endpoint::ImagesGenerations => "/images/generations",
            Endpoint::ImagesEdits => "/images/edits",
            Endpoint::ImagesVariations => "/images/variations",
            Endpoint::AudioSpeech => "/audio/speech",
            Endpoint::AudioTranscriptions => "/audio/transcriptions",
            Endpoint::AudioTranslations => "/audio/translations",
            Endpoint::Moderations => "/moderations",
            Endpoint::Rerank => "/rerank",
            Endpoint::Files => "/files",
            Endpoint::Batches => "/batches",
            Endpoint::MessageBatches => "/messages/batches",
        }
    }

    /// An operation whose body passes through ([`OperationRequest`]), not a text or embeddings
    /// call.
    pub fn is_operation(self) -> bool {
        matches!(
            self,
            Endpoint::ImagesGenerations
                | Endpoint::ImagesEdits
                | Endpoint::ImagesVariations
                | Endpoint::AudioSpeech
                | Endpoint::AudioTranscriptions
                | Endpoint::AudioTranslations
                | Endpoint::Moderations
                | Endpoint::Rerank
        )
    }

    /// Files and batches: objects a provider holds, addressed by method and path
    /// ([`ResourceRequest`]).
    pub fn is_resource(self) -> bool {
        matches!(
            self,
            Endpoint::Files | Endpoint::Batches | Endpoint::MessageBatches
        )
    }

    /// The operation takes `multipart/form-data`.
    pub fn is_multipart(self) -> bool {
        matches!(
            self,
            Endpoint::ImagesEdits
                | Endpoint::ImagesVariations
                | Endpoint::AudioTranscriptions
                | Endpoint::AudioTranslations
        )
    }

    /// The answer is bytes to relay as they arrive (audio), not a JSON document.
    pub fn answers_with_bytes(self) -> bool {
        self == Endpoint::AudioSpeech
    }

    /// The endpoint the upstream is called on (inbound formats other than OpenAI's are served
    /// through the canonical chat endpoint).
    pub fn upstream(self) -> Endpoint {
        match self {
            Endpoint::Messages | Endpoint::Responses | Endpoint::GenerateContent => {
                Endpoint::ChatCompletions
            }
            other => other,
        }
    }

    /// Whether the client speaks the OpenAI format itself (its bytes may go upstream as they are).
    pub fn is_openai(self) -> bool {
        !matches!(
            self,
            Endpoint::Messages
                | Endpoint::Responses
                | Endpoint::GenerateContent
                | Endpoint::MessageBatches
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Messages => "messages",
            Endpoint::Responses => "responses",
            Endpoint::GenerateContent => "generate_content",
            Endpoint::ImagesGenerations => "images_generations",
            Endpoint::ImagesEdits => "images_edits",
            Endpoint::ImagesVariations => "images_variations",
            Endpoint::AudioSpeech => "audio_speech",
            Endpoint::AudioTranscriptions => "audio_transcriptions",
            Endpoint::AudioTranslations => "audio_translations",
            Endpoint::Moderations => "moderations",
            Endpoint::Rerank => "rerank",
            Endpoint::Files => "files",
            Endpoint::Batches => "batches",
            Endpoint::MessageBatches => "message_batches",
        }
    }
}

/// A request body that failed to parse, with the JSON path of the offending field when there is one.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    /// `messages[0].role`, or `None` when the body is not JSON at all.
    pub param: Option<String>,
}

/// The parsed body of a request on any OpenAI endpoint.
#[derive(Clone, Debug)]
pub enum Inbound {
    Chat(ChatRequest),
    Completion(CompletionRequest),
    Embedding(EmbeddingRequest),
    /// Images, audio, moderations, rerank: the body passes through.
    Operation(OperationRequest),
    /// Files and batches: the call passes through (method, path, body).
    Resource(ResourceRequest),
}

impl Inbound {
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<Inbound, ParseError> {
        Ok(match endpoint {
            Endpoint::ChatCompletions => Inbound::Chat(parse_typed(body)?),
            Endpoint::Completions => Inbound::Completion(parse_typed(body)?),
            Endpoint::Embeddings => Inbound::Embedding(parse_typed(body)?),
            op if op.is_operation() => Inbound::Operation(OperationRequest::parse(
                op,
                "application/json",
                &Bytes::copy_from_slice(body),
            )?),
            _ => {
                let value: serde_json::Value =
                    serde_json::from_slice(body).map_err(|e| syntax_error(&e))?;
                Inbound::from_client_format(endpoint, &value)?.0
            }
        })
    }

    /// A request in another client format (Messages, Responses, Gemini), already parsed, as the
    /// canonical chat request. What only the format's own provider honours (OpenAI's built-in
    /// tools, Anthropic's server tools, Gemini's own fields) does not stop a request that may go
    /// to that provider natively: the request is then read leniently, and the strict refusal is
    /// returned beside it for the pipeline to use with any other provider.
    pub fn from_client_format(
        endpoint: Endpoint,
        value: &serde_json::Value,
    ) -> Result<(Inbound, Option<ParseError>), ParseError> {
        match endpoint {
            Endpoint::Responses => match from_responses(value) {
                Ok(chat) => Ok((Inbound::Chat(chat), None)),
                Err(refused) => {
                    let lenient = crate::wire::responses::TranslateOptions {
                        drop_unsupported: true,
                    };
                    let chat = responses_to_chat(value, &lenient)?;
                    Ok((Inbound::Chat(chat), Some(refused)))
                }
            },
            Endpoint::GenerateContent => match from_gemini(value, false) {
                Ok(chat) => Ok((Inbound::Chat(chat), None)),
                // What only Gemini honours: dropped for a lenient reading, refused elsewhere.
                Err(refused) => Ok((Inbound::Chat(from_gemini(value, true)?), Some(refused))),
            },
            // What only Anthropic honours (server tools, `mcp_servers`, `container`, fields added
            // since): dropped for a lenient reading, refused when the call is not native.
            _ => match from_anthropic(value, false) {
                Ok(chat) => Ok((Inbound::Chat(chat), None)),
                Err(refused) => Ok((Inbound::Chat(from_anthropic(value, true)?), Some(refused))),
            },
        }
    }

    pub fn model(&self) -> &str {
        match self {
            Inbound::Chat(r) => &r.model,
            Inbound::Completion(r) => &r.model,
            Inbound::Embedding(r) => &r.model,
            Inbound::Operation(r) => &r.model,
            // The provider is chosen by the `batches` module, not by a model.
            Inbound::Resource(_) => "",
        }
    }

    pub fn set_model(&mut self, model: &str) {
        let slot = match self {
            Inbound::Operation(r) => return r.set_model(model),
            Inbound::Resource(_) => return,
            Inbound::Chat(r) => &mut r.model,
            Inbound::Completion(r) => &mut r.model,
            Inbound::Embedding(r) => &mut r.model,
        };
        model.clone_into(slot);
    }

    pub fn is_stream(&self) -> bool {
        match self {
            Inbound::Chat(r) => r.stream.unwrap_or(false),
            Inbound::Completion(r) => r.stream.unwrap_or(false),
            Inbound::Embedding(_) | Inbound::Operation(_) | Inbound::Resource(_) => false,
        }
    }

    /// Whether the client itself asked for the final usage chunk of a stream.
    pub fn client_wants_stream_usage(&self) -> bool {
        let options = match self {
            Inbound::Chat(r) => r.stream_options.as_ref(),
            Inbound::Completion(r) => r.stream_options.as_ref(),
            Inbound::Embedding(_) | Inbound::Operation(_) | Inbound::Resource(_) => None,
        };
        options.and_then(|o| o.include_usage).unwrap_or(false)
    }

    /// Asks the upstream for the usage chunk even when the client did not, so every streamed request
    /// is costed from the provider's own count; the relay strips that chunk for such clients.
    pub fn request_stream_usage(&mut self) {
        let options = match self {
            Inbound::Chat(r) => &mut r.stream_options,
            Inbound::Completion(r) => &mut r.stream_options,
            Inbound::Embedding(_) | Inbound::Operation(_) | Inbound::Resource(_) => return,
        };
        options
            .get_or_insert_with(StreamOptions::default)
            .include_usage = Some(true);
    }

    pub fn user(&self) -> Option<&str> {
        match self {
            Inbound::Chat(r) => r.user.as_deref(),
            Inbound::Completion(r) => r.user.as_deref(),
            Inbound::Embedding(r) => r.user.as_deref(),
            Inbound::Operation(r) => r.user(),
            Inbound::Resource(_) => None,
        }
    }

    /// The most output tokens the request allows (`max_completion_tokens`, else `max_tokens`;
    /// Messages' `max_tokens` and Responses' `max_output_tokens` arrive as the former), times
    /// the number of choices asked for; `None` when the client set no bound. Embeddings produce
    /// no output.
    pub fn max_output_tokens(&self) -> Option<u64> {
        let bounded = |rest: &serde_json::Map<String, serde_json::Value>| {
            let max = rest
                .get("max_completion_tokens")
                .or_else(|| rest.get("max_tokens"))
                .and_then(serde_json::Value::as_u64)?;
            let choices = rest
                .get("n")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(1);
            Some(max.saturating_mul(choices.max(1)))
        };
        match self {
            Inbound::Chat(r) => bounded(&r.rest),
            Inbound::Completion(r) => bounded(&r.rest),
            Inbound::Embedding(_) | Inbound::Operation(_) | Inbound::Resource(_) => Some(0),
        }
    }

    pub fn message_count(&self) -> usize {
        match self {
            Inbound::Chat(r) => r.messages.len(),
            Inbound::Completion(_)
            | Inbound::Embedding(_)
            | Inbound::Operation(_)
            | Inbound::Resource(_) => 0,
        }
    }

    /// Every piece of prompt text, for token estimation when the upstream reports no usage.
    pub fn prompt_texts(&self) -> Vec<&str> {
        match self {
            Inbound::Chat(r) => r.messages.iter().flat_map(ChatMessage::texts).collect(),
            Inbound::Completion(r) => json_strings(r.prompt.as_ref()),
            Inbound::Embedding(r) => json_strings(Some(&r.input)),
            Inbound::Operation(r) => r.texts(),
            Inbound::Resource(_) => Vec::new(),
        }
    }

    pub fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        let vec = match self {
            Inbound::Chat(r) => serde_json::to_vec(r)?,
            Inbound::Completion(r) => serde_json::to_vec(r)?,
            Inbound::Embedding(r) => serde_json::to_vec(r)?,
            Inbound::Operation(r) => return r.to_bytes(),
            Inbound::Resource(r) => return Ok(r.body.clone()),
        };
        Ok(Bytes::from(vec))
    }
}

fn parse_typed<T: DeserializeOwned>(body: &[u8]) -> Result<T, ParseError> {
    // Most bodies are valid: parse them without tracking the path, which costs about half again
    // as much as the parse itself, and parse again with it only to name the field of an error.
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize::<_, T>(&mut de);
    let value = match parsed {
        Ok(value) => value,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(syntax_error(&inner));
            }
            let param = (path != ".").then_some(path);
            let message = match &param {
                Some(p) => format!("invalid request: {p}: {inner}"),
                None => format!("invalid request: {inner}"),
            };
            return Err(ParseError { message, param });
        }
    };
    // Trailing bytes after the JSON value are a syntax error too.
    de.end().map_err(|e| syntax_error(&e))?;
    Ok(value)
}

/// An Anthropic Messages body, as the canonical chat request.
fn from_anthropic(value: &serde_json::Value, lenient: bool) -> Result<ChatRequest, ParseError> {
    let options = crate::wire::translate::TranslateOptions {
        drop_unsupported: lenient,
    };
    let chat = crate::wire::anthropic::request::to_chat(value, &options).map_err(|e| {
        use crate::wire::translate::TranslateError;
        match e {
            TranslateError::Unsupported { param, message }
            | TranslateError::Invalid { param, message } => ParseError {
                message: format!("invalid request: {param}: {message}"),
                param: Some(param),
            },
            other => ParseError {
                message: format!("invalid request: {other}"),
                param: None,
            },
        }
    })?;
    let bytes = serde_json::to_vec(&chat).map_err(|e| syntax_error(&e))?;
    parse_typed(&bytes)
}

/// A Gemini `generateContent` body (model and stream laid in from the URL), as the canonical
/// chat request; `lenient` drops what only Gemini honours.
fn from_gemini(value: &serde_json::Value, lenient: bool) -> Result<ChatRequest, ParseError> {
    let chat = crate::wire::gemini::request::to_chat(value, lenient).map_err(|e| {
        use crate::wire::translate::TranslateError;
        match e {
            TranslateError::Unsupported { param, message }
            | TranslateError::Invalid { param, message } => ParseError {
                message: format!("invalid request: {param}: {message}"),
                param: Some(param),
            },
            other => ParseError {
                message: format!("invalid request: {other}"),
                param: None,
            },
        }
    })?;
    let bytes = serde_json::to_vec(&chat).map_err(|e| syntax_error(&e))?;
    parse_typed(&bytes)
}

/// A Responses request (history already in `input`), as the canonical chat request; refuses
/// what only OpenAI honours.
pub fn from_responses(value: &serde_json::Value) -> Result<ChatRequest, ParseError> {
    responses_to_chat(value, &crate::wire::responses::TranslateOptions::default())
}

fn responses_to_chat(
    value: &serde_json::Value,
    options: &crate::wire::responses::TranslateOptions,
) -> Result<ChatRequest, ParseError> {
    let chat = crate::wire::responses::request::to_chat(value, options).map_err(|e| {
        use crate::wire::responses::TranslateError;
        match e {
            TranslateError::Unsupported { param, message }
            | TranslateError::Invalid { param, message } => ParseError {
                message: format!("invalid request: {param}: {message}"),
                param: Some(param),
            },
            other => ParseError {
                message: format!("invalid request: {other}"),
                param: None,
            },
        }
    })?;
    let bytes = serde_json::to_vec(&chat).map_err(|e| syntax_error(&e))?;
    parse_typed(&bytes)
}

fn syntax_error(err: &serde_json::Error) -> ParseError {
    ParseError {
        message: format!("request body is not valid JSON: {err}"),
        param: None,
    }
}

/// Strings found in a prompt-shaped value: a string, or an array of strings.
fn json_strings(value: Option<&serde_json::Value>) -> Vec<&str> {
    match value {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let body = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","x_extra":1}],"logit_bias":{"50256":-100},"metadata":{"a":"b"}}"#;
        let parsed = Inbound::parse(Endpoint::ChatCompletions, body).map_err(|e| e.message);
        let bytes = parsed.and_then(|p| p.to_bytes().map_err(|e| e.to_string()));
        let value: serde_json::Value =
            serde_json::from_slice(&bytes.unwrap_or_default()).unwrap_or_default();
        assert_eq!(value["logit_bias"]["50256"], -100);
        assert_eq!(value["metadata"]["a"], "b");
        assert_eq!(value["messages"][0]["x_extra"], 1);
    }

    #[test]
    fn wrong_type_names_the_field() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}"#;
        let err = Inbound::parse(Endpoint::ChatCompletions, body).err();
        assert_eq!(err.and_then(|e| e.param).as_deref(), Some("stream"));
    }

    #[test]
    fn bad_role_names_the_nested_field() {
        let body = br#"{"model":"m","messages":[{"role":"wizard","content":"hi"}]}"#;
        let err = Inbound::parse(Endpoint::ChatCompletions, body).err();
        assert_eq!(
            err.and_then(|e| e.param).as_deref(),
            Some("messages[0].role")
        );
    }

    #[test]
    fn missing_model_is_named() {
        let body = br#"{"messages":[]}"#;
        let err = Inbound::parse(Endpoint::ChatCompletions, body).err();
        let message = err.map(|e| e.message).unwrap_or_default();
        assert!(message.contains("model"), "{message}");
    }

    #[test]
    fn syntax_error_has_no_param() {
        let err = Inbound::parse(Endpoint::ChatCompletions, b"{not json").err();
        assert!(err.is_some_and(|e| e.param.is_none() && e.message.contains("not valid JSON")));
    }
}
