//! The Gemini provider, for the Gemini API (key in `x-goog-api-key`) and for Vertex AI (bearer
//! token, project and location in the URL): the only file here that builds HTTP. Chat requests
//! are translated from the canonical form ([`super::request::from_chat`]), answers back
//! ([`super::response::to_chat`]), streams event by event ([`super::stream::Decoder`]), errors
//! into the OpenAI shape ([`super::error::error_to_openai`]).
//! References: <https://ai.google.dev/api/generate-content>,
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference>.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use super::request::VertexTarget;
use super::{TranslateOptions, embeddings, error, request, response, stream};
use crate::config::{ProviderConfig, ProviderKind, Timeouts};
use crate::providers::http::HttpClient;
use crate::providers::key_pool::{KeyPool, KeyStyle};
use crate::providers::{
    ChatStreamDecoder, Provider, SseEventDecoder, SseFraming, Untranslatable, UpstreamCall,
    UpstreamError, answer_body, request_body,
};
use crate::wire::openai::{Endpoint, Inbound};
use crate::wire::sse::RawEvent;

pub struct Gemini {
    config: ProviderConfig,
    base_url: String,
    vertex: Option<VertexTarget>,
    /// `x-goog-api-key: KEY` for the Gemini API, `authorization: Bearer TOKEN` for Vertex; from
    /// the config, the environment or the store.
    keys: Arc<KeyPool>,
    client: HttpClient,
}

impl Gemini {
    pub fn new(config: &ProviderConfig) -> Result<Gemini, String> {
        Gemini::with_keys(config, None)
    }

    /// With `keys` shared (a copy with other timeouts), else a pool of the config's key.
    pub fn with_keys(
        config: &ProviderConfig,
        keys: Option<Arc<KeyPool>>,
    ) -> Result<Gemini, String> {
        let vertex = config
            .vertex
            .clone()
            .map(|(project, location)| VertexTarget { project, location });
        let keys = match keys {
            Some(keys) => keys,
            None => KeyPool::new(
                &config.name,
                Gemini::key_style(config),
                config.api_key.as_ref(),
            )?,
        };
        Ok(Gemini {
            config: config.clone(),
            base_url: config.base_url.as_str().trim_end_matches('/').to_string(),
            vertex,
            keys,
            client: HttpClient::new(config.timeouts.connect)?,
        })
    }

    pub fn key_style(config: &ProviderConfig) -> KeyStyle {
        match config.vertex {
            Some(_) => KeyStyle {
                header: AUTHORIZATION,
                bearer: true,
            },
            None => KeyStyle {
                header: HeaderName::from_static("x-goog-api-key"),
                bearer: false,
            },
        }
    }
}

impl Provider for Gemini {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn kind(&self) -> ProviderKind {
        self.config.kind
    }

    fn passes_openai_body(&self, _request: Option<&Inbound>) -> bool {
        false
    }

    fn translates_answers(&self) -> bool {
        true
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
            response::to_chat(value, value["modelVersion"].as_str().unwrap_or_default())
        })
    }

    fn translate_embeddings(
        &self,
        request: &Value,
        upstream_model: &str,
    ) -> Result<Bytes, Untranslatable> {
        let opts = TranslateOptions {
            drop_unsupported: self.config.drop_unsupported,
        };
        request_body(match self.vertex {
            Some(_) => embeddings::vertex_from_openai(request, upstream_model, &opts),
            None => embeddings::from_openai(request, upstream_model, &opts),
        })
    }

    fn translate_embeddings_answer(
        &self,
        body: &[u8],
        upstream_model: &str,
        request: &Value,
    ) -> Result<Bytes, String> {
        let format = embeddings::encoding_format(request).map_err(|e| e.to_string())?;
        answer_body(body, |value| match self.vertex {
            Some(_) => embeddings::vertex_to_openai(value, upstream_model, format),
            None => embeddings::to_openai(value, upstream_model, format),
        })
    }

    fn translate_error(&self, status: u16, body: &[u8]) -> Bytes {
        Bytes::from(error::error_to_openai(status, body).to_string())
    }

    fn chat_stream_decoder(&self, upstream_model: &str) -> Option<Box<dyn ChatStreamDecoder>> {
        Some(sse_decoder(upstream_model))
    }

    /// Image generation on Imagen.
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::ImagesGenerations
    }

    fn operation_body(
        &self,
        request: &crate::wire::openai::OperationRequest,
    ) -> Result<Bytes, Untranslatable> {
        let map = request.json().ok_or_else(|| Untranslatable {
            param: "body".into(),
            message: "Imagen takes a JSON body".into(),
        })?;
        let body = super::images::to_imagen(map)?;
        Ok(Bytes::from(body.to_string()))
    }

    fn operation_answer(
        &self,
        _request: &crate::wire::openai::OperationRequest,
        body: Bytes,
    ) -> Result<Bytes, String> {
        answer_body(&body, super::images::from_imagen)
    }

    /// A Gemini-format client's body goes to Gemini and Vertex AI as it is.
    fn native(
        &self,
        endpoint: Endpoint,
        upstream_model: &str,
    ) -> Option<Box<dyn crate::providers::NativeCall>> {
        (endpoint == Endpoint::GenerateContent).then(|| {
            Box::new(super::native::GenerateContent::new(upstream_model))
                as Box<dyn crate::providers::NativeCall>
        })
    }

    fn build_request(
        &self,
        call: &UpstreamCall<'_>,
        body: Bytes,
        _client_headers: &hyper::HeaderMap,
    ) -> Result<hyper::Request<Full<Bytes>>, UpstreamError> {
        let build_error = |detail: String| UpstreamError::Build {
            provider: self.config.name.clone(),
            detail,
        };
        // The model goes into the URL's path: a name that is not a bare model id could reach
        // another method or resource with the operator's key, or be priced as unknown.
        request::check_model(call.model).map_err(|message| UpstreamError::Refused {
            param: "model",
            message,
        })?;
        let url = match call.endpoint {
            Endpoint::ChatCompletions => request::url(
                &self.base_url,
                call.model,
                call.stream,
                self.vertex.as_ref(),
            ),
            Endpoint::Embeddings => {
                embeddings::url(&self.base_url, call.model, self.vertex.as_ref())
            }
            Endpoint::ImagesGenerations => {
                request::model_url(&self.base_url, call.model, "predict", self.vertex.as_ref())
            }
            other => {
                return Err(build_error(format!(
                    "{} is not served by this provider",
                    other.path()
                )));
            }
        };
        let builder = hyper::Request::post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut request = builder
            .body(Full::new(body))
            .map_err(|e| build_error(e.to_string()))?;
        self.keys.authorize(&mut request)?;
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
        Ok(Arc::new(Gemini::with_keys(
            &config,
            Some(self.keys.clone()),
        )?))
    }
}

/// Gemini's SSE stream as canonical chunks.
pub(super) fn sse_decoder(upstream_model: &str) -> Box<dyn ChatStreamDecoder> {
    Box::new(SseFraming::new(StreamDecoder(stream::Decoder::new(
        upstream_model,
    ))))
}

struct StreamDecoder(stream::Decoder);

impl SseEventDecoder for StreamDecoder {
    fn event(&mut self, raw_event: &[u8]) -> Result<Vec<Value>, String> {
        let event = RawEvent {
            bytes: Bytes::copy_from_slice(raw_event),
        };
        match event.data() {
            Some(data) if !data.trim().is_empty() => self.0.push(&data).map_err(|e| e.to_string()),
            _ => Ok(Vec::new()),
        }
    }

    fn finish(&mut self) -> Result<Vec<Value>, String> {
        self.0.finish().map_err(|e| e.to_string())
    }
}
