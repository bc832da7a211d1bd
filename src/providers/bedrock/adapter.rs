//! The AWS Bedrock provider (Converse and ConverseStream), the only file here that builds HTTP.
//! Requests are translated from the canonical form ([`super::request::from_chat`]) and signed
//! with SigV4 ([`super::sigv4::sign`]); answers come back through [`super::response::to_chat`];
//! streams arrive in AWS's binary event-stream framing ([`super::eventstream::Decoder`]) and are
//! decoded frame by frame ([`super::stream::Decoder`]).
//! Reference: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use super::{
    TranslateOptions, embeddings, error, eventstream, images, native, request, rerank, response,
    sigv4, stream,
};
use crate::config::{AwsCredentials, ProviderConfig, ProviderKind, Timeouts};
use crate::providers::http::HttpClient;
use crate::providers::{
    ChatStreamDecoder, NativeCall, Provider, Untranslatable, UpstreamCall, UpstreamError,
    answer_body, request_body,
};
use crate::wire::openai::{Endpoint, Inbound, OperationRequest};

pub struct Bedrock {
    config: ProviderConfig,
    aws: AwsCredentials,
    base_url: String,
    client: HttpClient,
}

impl Bedrock {
    pub fn new(config: &ProviderConfig) -> Result<Bedrock, String> {
        let aws = config.aws.clone().ok_or_else(|| {
            format!(
                "providers.{}: bedrock needs AWS credentials and a region",
                config.name
            )
        })?;
        Ok(Bedrock {
            config: config.clone(),
            aws,
            base_url: config.base_url.as_str().trim_end_matches('/').to_string(),
            client: HttpClient::new(config.timeouts.connect)?,
        })
    }
}

impl Provider for Bedrock {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Bedrock
    }

    fn passes_openai_body(&self, _request: Option<&Inbound>) -> bool {
        false
    }

    fn translates_answers(&self) -> bool {
        true
    }

    /// Claude on Bedrock takes Anthropic's body through InvokeModel.
    fn native(&self, endpoint: Endpoint, upstream_model: &str) -> Option<Box<dyn NativeCall>> {
        (endpoint == Endpoint::Messages && native::is_claude(upstream_model))
            .then(|| Box::new(native::Claude::new(upstream_model)) as Box<dyn NativeCall>)
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

    fn translate_answer(&self, body: &[u8], upstream_model: &str) -> Result<Bytes, String> {
        answer_body(body, |value| response::to_chat(value, upstream_model))
    }

    /// Titan takes one text per call, so only single inputs go to it; Cohere takes a list.
    fn translate_embeddings(
        &self,
        request: &Value,
        upstream_model: &str,
    ) -> Result<Bytes, Untranslatable> {
        let opts = TranslateOptions {
            drop_unsupported: self.config.drop_unsupported,
        };
        let body = match embeddings::family(upstream_model) {
            Some(embeddings::Family::Cohere) => {
                embeddings::cohere_from_openai(request, upstream_model, &opts)
                    .map_err(Untranslatable::from)?
            }
            Some(embeddings::Family::TitanV2) => {
                let mut bodies =
                    embeddings::titan_from_openai(request, &opts).map_err(Untranslatable::from)?;
                if bodies.len() != 1 {
                    return Err(Untranslatable {
                        param: "input".into(),
                        message: "Titan embeds one text per request; send one input".into(),
                    });
                }
                bodies.remove(0)
            }
            None => {
                return Err(Untranslatable {
                    param: "model".into(),
                    message: format!(
                        "{upstream_model} is not a Titan V2 or Cohere embedding model"
                    ),
                });
            }
        };
        request_body(Ok::<_, Untranslatable>(body))
    }

    fn translate_embeddings_answer(
        &self,
        body: &[u8],
        upstream_model: &str,
        request: &Value,
    ) -> Result<Bytes, String> {
        let format = embeddings::encoding_format(request).map_err(|e| e.to_string())?;
        answer_body(body, |value| match embeddings::family(upstream_model) {
            Some(embeddings::Family::Cohere) => {
                embeddings::cohere_to_openai(value, upstream_model, format, None)
            }
            _ => embeddings::titan_to_openai(std::slice::from_ref(value), upstream_model, format),
        })
    }

    /// Image models (Nova Canvas, Titan Image Generator, Stability AI) and rerank models (Cohere
    /// Rerank 3.5, Amazon Rerank 1.0), each through InvokeModel.
    fn serves(&self, endpoint: Endpoint) -> bool {
        matches!(
            endpoint,
            Endpoint::ImagesGenerations
                | Endpoint::ImagesEdits
                | Endpoint::ImagesVariations
                | Endpoint::Rerank
        )
    }

    fn operation_body(&self, request: &OperationRequest) -> Result<Bytes, Untranslatable> {
        let drop = self.config.drop_unsupported;
        let body = match request.endpoint {
            Endpoint::Rerank => {
                let map = request.json().ok_or_else(|| Untranslatable {
                    param: "body".into(),
                    message: "rerank takes a JSON body".into(),
                })?;
                rerank::to_bedrock(map, &request.model, drop)?
            }
            _ => images::to_bedrock(request, &request.model, drop)?,
        };
        request_body(Ok::<_, Untranslatable>(body))
    }

    fn operation_answer(&self, request: &OperationRequest, body: Bytes) -> Result<Bytes, String> {
        match (request.endpoint, request.json()) {
            (Endpoint::Rerank, Some(map)) => {
                answer_body(&body, |v| rerank::from_bedrock(v, map, &request.model))
            }
            _ => answer_body(&body, |v| images::from_bedrock(v, request, &request.model)),
        }
    }

    fn translate_error(&self, status: u16, body: &[u8]) -> Bytes {
        Bytes::from(error::error_to_openai(status, body).to_string())
    }

    fn chat_stream_decoder(&self, upstream_model: &str) -> Option<Box<dyn ChatStreamDecoder>> {
        Some(Box::new(FrameDecoder {
            frames: eventstream::Decoder::new(),
            chunks: stream::Decoder::new(upstream_model),
        }))
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
        let url = match call.endpoint {
            // Claude on Bedrock, natively: InvokeModel with Anthropic's own body.
            Endpoint::ChatCompletions if call.native => {
                let url = request::invoke_url(&self.base_url, call.model);
                if call.stream {
                    format!("{url}-with-response-stream")
                } else {
                    url
                }
            }
            Endpoint::ChatCompletions => request::url(&self.base_url, call.model, call.stream),
            // Embeddings, images and rerank: the model's own body through InvokeModel.
            Endpoint::Embeddings
            | Endpoint::ImagesGenerations
            | Endpoint::ImagesEdits
            | Endpoint::ImagesVariations
            | Endpoint::Rerank => request::invoke_url(&self.base_url, call.model),
            other => {
                return Err(build_error(format!(
                    "{} is not served by this provider",
                    other.path()
                )));
            }
        };
        let signed = sigv4::sign(&sigv4::SigningInput {
            method: "POST",
            url: &url,
            headers: &[("content-type", "application/json")],
            body: &body,
            region: &self.aws.region,
            service: sigv4::SERVICE,
            access_key_id: &self.aws.access_key_id,
            secret_access_key: &self.aws.secret_access_key,
            session_token: self.aws.session_token.as_ref(),
            time: SystemTime::now(),
        })
        .map_err(|e| build_error(format!("signing failed: {e}")))?;
        let mut builder = hyper::Request::post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in signed {
            let mut value =
                HeaderValue::from_str(&value).map_err(|e| build_error(e.to_string()))?;
            // The signature and session token authenticate: never logged.
            value.set_sensitive(true);
            builder = builder.header(HeaderName::from_static(name), value);
        }
        builder
            .body(Full::new(body))
            .map_err(|e| build_error(e.to_string()))
    }

    fn client(&self) -> &HttpClient {
        &self.client
    }

    fn with_timeouts(&self, timeouts: Timeouts) -> Result<Arc<dyn Provider>, String> {
        let mut config = self.config.clone();
        config.timeouts = timeouts;
        Ok(Arc::new(Bedrock::new(&config)?))
    }
}

/// Binary event-stream frames, then ConverseStream events, to canonical chunks.
struct FrameDecoder {
    frames: eventstream::Decoder,
    chunks: stream::Decoder,
}

impl ChatStreamDecoder for FrameDecoder {
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for frame in self.frames.push(bytes).map_err(|e| e.to_string())? {
            out.extend(self.chunks.push(&frame).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<Value>, String> {
        self.frames.finish().map_err(|e| e.to_string())?;
        self.chunks.finish().map_err(|e| e.to_string())
    }
}
