//! The Anthropic provider: the only file here that builds HTTP. Chat requests are translated
//! from the canonical form ([`super::request::from_chat`]), answers back
//! ([`super::response::to_chat`]), streams event by event ([`super::stream::Decoder`]), and error
//! bodies into the OpenAI shape ([`super::error::error_to_openai`]).
//! Reference: <https://platform.claude.com/docs/en/api/messages>.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use super::{TranslateOptions, error, native, request, response, stream};
use crate::config::{ProviderConfig, ProviderKind, Timeouts};
use crate::providers::http::HttpClient;
use crate::providers::key_pool::{KeyPool, KeyStyle};
use crate::providers::{
    ChatStreamDecoder, NativeCall, Provider, SseEventDecoder, SseFraming, Untranslatable,
    UpstreamCall, UpstreamError, answer_body, request_body,
};
use crate::wire::openai::{Endpoint, Inbound};

/// The API version this adapter's translators follow.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    config: ProviderConfig,
    base_url: String,
    /// `x-api-key`, from the config, the environment or the store.
    keys: Arc<KeyPool>,
    client: HttpClient,
}

impl Anthropic {
    pub fn new(config: &ProviderConfig) -> Result<Anthropic, String> {
        Anthropic::with_keys(config, None)
    }

    /// With `keys` shared (a copy with other timeouts), else a pool of the config's key.
    pub fn with_keys(
        config: &ProviderConfig,
        keys: Option<Arc<KeyPool>>,
    ) -> Result<Anthropic, String> {
        let keys = match keys {
            Some(keys) => keys,
            None => KeyPool::new(
                &config.name,
                Anthropic::key_style(),
                config.api_key.as_ref(),
            )?,
        };
        Ok(Anthropic {
            config: config.clone(),
            base_url: config.base_url.as_str().trim_end_matches('/').to_string(),
            keys,
            client: HttpClient::new(config.timeouts.connect)?,
        })
    }

    pub fn key_style() -> KeyStyle {
        KeyStyle {
            header: HeaderName::from_static("x-api-key"),
            bearer: false,
        }
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn passes_openai_body(&self, _request: Option<&Inbound>) -> bool {
        false
    }

    fn translates_answers(&self) -> bool {
        true
    }

    /// Message batches, Anthropic's own.
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::MessageBatches
    }

    fn native(&self, endpoint: Endpoint, upstream_model: &str) -> Option<Box<dyn NativeCall>> {
        (endpoint == Endpoint::Messages)
            .then(|| Box::new(native::Messages::new(upstream_model)) as Box<dyn NativeCall>)
    }

    fn timeouts(&self) -> &Timeouts {
        &self.config.timeouts
    }

    fn declared_models(&self) -> &[String] {
        &self.config.models
    }

    fn translate_chat(&self, chat: &Value, upstream_model: &str) -> Result<Bytes, Untranslatable> {
        let options = TranslateOptions {
            drop_unsupported: self.config.drop_unsupported,
        };
        request_body(request::from_chat(chat, upstream_model, &options))
    }

    fn translate_answer(&self, body: &[u8], _upstream_model: &str) -> Result<Bytes, String> {
        answer_body(body, |value| {
            response::to_chat(value, value["model"].as_str().unwrap_or_default())
        })
    }

    fn translate_error(&self, status: u16, body: &[u8]) -> Bytes {
        Bytes::from(error::error_to_openai(status, body).to_string())
    }

    fn chat_stream_decoder(&self, upstream_model: &str) -> Option<Box<dyn ChatStreamDecoder>> {
        Some(sse_decoder(upstream_model))
    }

    fn build_request(
        &self,
        call: &UpstreamCall<'_>,
        body: Bytes,
        client_headers: &hyper::HeaderMap,
    ) -> Result<hyper::Request<Full<Bytes>>, UpstreamError> {
        let build_error = |detail: String| UpstreamError::Build {
            provider: self.config.name.clone(),
            detail,
        };
        let endpoint = call.endpoint;
        let (method, url) = match call.resource {
            // Message batches: Anthropic's own calls, passed as they are.
            Some((method, path)) if endpoint == Endpoint::MessageBatches => {
                (method.clone(), format!("{}{path}", self.base_url))
            }
            None if endpoint == Endpoint::ChatCompletions => {
                (hyper::Method::POST, format!("{}/messages", self.base_url))
            }
            _ => {
                return Err(build_error(format!(
                    "{} is not served by Anthropic",
                    endpoint.path()
                )));
            }
        };
        let mut builder = hyper::Request::builder().method(method).uri(url);
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        builder = builder.header(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        // Beta features the client opted into travel with its request.
        for beta in client_headers.get_all("anthropic-beta") {
            builder = builder.header(HeaderName::from_static("anthropic-beta"), beta.clone());
        }
        let mut request = builder
            .body(Full::new(body))
            .map_err(|e| build_error(e.to_string()))?;
        self.keys.authorize_as(&mut request, call.credential)?;
        Ok(request)
    }

    fn client(&self) -> &HttpClient {
        &self.client
    }

    fn key_pool(&self) -> Option<&Arc<KeyPool>> {
        Some(&self.keys)
    }

    fn with_timeouts(&self, timeouts: Timeouts) -> Result<Arc<dyn Provider>, String> {
        let mut config = self.config.clone();
        config.timeouts = timeouts;
        Ok(Arc::new(Anthropic::with_keys(
            &config,
            Some(self.keys.clone()),
        )?))
    }
}

/// A decoder of an Anthropic SSE stream into canonical chunks (also used beside native streams
/// from other hosts of Claude, such as Bedrock).
pub fn sse_decoder(upstream_model: &str) -> Box<dyn ChatStreamDecoder> {
    let created = (crate::store::now_ms() / 1000).max(0) as u64;
    Box::new(SseFraming::new(StreamDecoder(stream::Decoder::new(
        upstream_model,
        created,
    ))))
}

struct StreamDecoder(stream::Decoder);

impl SseEventDecoder for StreamDecoder {
    fn event(&mut self, raw_event: &[u8]) -> Result<Vec<Value>, String> {
        self.0.push_sse(raw_event).map_err(|e| e.to_string())
    }

    fn finish(&mut self) -> Result<Vec<Value>, String> {
        self.0.finish().map_err(|e| e.to_string())
    }
}
