//! OpenAI and every server that speaks its API (`openai_compatible`): the request body passes
//! through as the client sent it (model name rewritten), with the provider key as a bearer token.
//! Reference: https://platform.openai.com/docs/api-reference/chat

pub mod native;
mod operations;
pub mod presets;
pub mod responses_side;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use url::Url;

use super::http::HttpClient;
use super::key_pool::{KeyPool, KeyStyle};
use super::{NativeCall, Provider, Untranslatable, UpstreamCall, UpstreamError};
use crate::config::{ProviderConfig, ProviderKind, Timeouts};
use crate::wire::openai::{Endpoint, Inbound};

pub struct OpenAi {
    config: ProviderConfig,
    name: String,
    kind: ProviderKind,
    base_url: String,
    /// `Bearer <key>` (or Azure's `api-key`), from the config, the environment or the store.
    keys: Arc<KeyPool>,
    timeouts: Timeouts,
    models: Vec<String>,
    client: HttpClient,
}

impl OpenAi {
    pub fn new(config: &ProviderConfig) -> Result<OpenAi, String> {
        OpenAi::with_keys(config, None)
    }

    /// With `keys` shared (a copy with other timeouts), else a pool of the config's key.
    pub fn with_keys(
        config: &ProviderConfig,
        keys: Option<Arc<KeyPool>>,
    ) -> Result<OpenAi, String> {
        let keys = match keys {
            Some(keys) => keys,
            None => KeyPool::new(
                &config.name,
                OpenAi::key_style(config),
                config.api_key.as_ref(),
            )?,
        };
        Ok(OpenAi {
            config: config.clone(),
            name: config.name.clone(),
            kind: config.kind,
            base_url: trim_slash(&config.base_url),
            keys,
            timeouts: config.timeouts,
            models: config.models.clone(),
            client: HttpClient::new(config.timeouts.connect)?,
        })
    }

    /// Azure takes the key alone in `api-key`; everyone else a bearer token.
    pub fn key_style(config: &ProviderConfig) -> KeyStyle {
        match config.preset.map(|p| p.auth) {
            Some(presets::AuthStyle::ApiKeyHeader) => KeyStyle {
                header: hyper::header::HeaderName::from_static(presets::AZURE_API_KEY_HEADER),
                bearer: false,
            },
            _ => KeyStyle {
                header: AUTHORIZATION,
                bearer: true,
            },
        }
    }
}

impl OpenAi {
    /// The preset's quirks, when they differ from OpenAI's own.
    fn quirks(&self) -> Option<&'static presets::Quirks> {
        self.config
            .preset
            .map(|p| &p.quirks)
            .filter(|q| **q != presets::Quirks::OPENAI)
    }
}

fn trim_slash(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// Quirks concern chat requests; completions and embeddings pass through as they are.
    fn passes_openai_body(&self, request: Option<&Inbound>) -> bool {
        self.quirks().is_none() || !matches!(request, Some(Inbound::Chat(_)))
    }

    fn translates_answers(&self) -> bool {
        self.quirks().is_some()
    }

    /// OpenAI serves the Responses API itself (built-in tools, its own stored conversations).
    fn native(&self, endpoint: Endpoint, upstream_model: &str) -> Option<Box<dyn NativeCall>> {
        (endpoint == Endpoint::Responses && self.kind == ProviderKind::OpenAi)
            .then(|| Box::new(native::Responses::new(upstream_model)) as Box<dyn NativeCall>)
    }

    /// OpenAI's own operations; a preset's row; a compatible server without a row is taken at its
    /// word (it serves what it serves, and says so itself).
    fn serves(&self, endpoint: Endpoint) -> bool {
        match (self.kind, self.config.preset) {
            (_, Some(preset)) => preset.operations.contains(&endpoint),
            (ProviderKind::OpenAi, None) => presets::OPENAI_OPERATIONS.contains(&endpoint),
            (_, None) => endpoint.is_operation(),
        }
    }

    fn operation_body(
        &self,
        request: &crate::wire::openai::OperationRequest,
    ) -> Result<Bytes, Untranslatable> {
        let voyage = self
            .config
            .preset
            .is_some_and(|p| p.rerank == presets::RerankShape::Voyage);
        match request.json() {
            Some(map) if voyage && request.endpoint == Endpoint::Rerank => {
                Ok(Bytes::from(operations::rerank_to_voyage(map).to_string()))
            }
            _ => request.to_bytes().map_err(|e| Untranslatable {
                param: "model".into(),
                message: e.to_string(),
            }),
        }
    }

    fn operation_answer(
        &self,
        request: &crate::wire::openai::OperationRequest,
        body: Bytes,
    ) -> Result<Bytes, String> {
        let voyage = self
            .config
            .preset
            .is_some_and(|p| p.rerank == presets::RerankShape::Voyage);
        if voyage && request.endpoint == Endpoint::Rerank {
            return super::answer_body(&body, |v| {
                Ok::<_, String>(operations::rerank_from_voyage(v))
            });
        }
        Ok(body)
    }

    fn translate_chat(&self, chat: &Value, upstream_model: &str) -> Result<Bytes, Untranslatable> {
        let Some(preset) = self.config.preset else {
            return serde_json::to_vec(chat)
                .map(Bytes::from)
                .map_err(|e| Untranslatable {
                    param: "messages".into(),
                    message: e.to_string(),
                });
        };
        let mut chat = chat.clone();
        chat["model"] = Value::String(upstream_model.to_string());
        presets::apply_quirks(&mut chat, &preset.quirks);
        if self.config.drop_unsupported {
            presets::drop_unsupported_params(&mut chat, &preset.quirks);
        }
        if let Some(param) = presets::unsupported_params_present(&chat, &preset.quirks).first() {
            return Err(Untranslatable {
                param: (*param).to_string(),
                message: format!("not supported by {}", preset.name),
            });
        }
        serde_json::to_vec(&chat)
            .map(Bytes::from)
            .map_err(|e| Untranslatable {
                param: "messages".into(),
                message: e.to_string(),
            })
    }

    fn translate_answer(&self, body: &[u8], _upstream_model: &str) -> Result<Bytes, String> {
        match self.quirks() {
            Some(quirks) if quirks.completion_excludes_reasoning => {
                let mut value: Value =
                    serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
                if let Some(usage) = value.get_mut("usage") {
                    presets::normalize_usage(usage, quirks);
                }
                serde_json::to_vec(&value)
                    .map(Bytes::from)
                    .map_err(|e| e.to_string())
            }
            _ => Ok(Bytes::copy_from_slice(body)),
        }
    }

    fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    fn declared_models(&self) -> &[String] {
        &self.models
    }

    fn build_request(
        &self,
        call: &UpstreamCall<'_>,
        body: Bytes,
        _client_headers: &hyper::HeaderMap,
    ) -> Result<hyper::Request<Full<Bytes>>, UpstreamError> {
        let url = match (&self.config.api_version, call.resource) {
            // Files and batches are the resource's, not a deployment's: Azure's dated API has
            // them at `/openai/files?api-version=...`.
            (Some(version), Some((_, path))) => {
                presets::azure_resource_url(&self.base_url, version, path)
            }
            (None, Some((_, path))) => [self.base_url.as_str(), path].concat(),
            // Azure's dated API: one URL per deployment, the version as a query parameter.
            (Some(version), None) => {
                // The model names the deployment, a segment of the URL's path.
                if !super::is_url_safe_model(call.model) {
                    return Err(UpstreamError::Refused {
                        param: "model",
                        message: format!(
                            "{:?} is not an Azure deployment name: expected letters, digits, \
                             '.', '_' and '-' only",
                            call.model
                        ),
                    });
                }
                presets::azure_url(&self.base_url, call.model, version, call.endpoint.path())
            }
            (None, None) => [self.base_url.as_str(), call.endpoint.path()].concat(),
        };
        let content_type = match call.content_type {
            Some(form) => HeaderValue::from_str(form).map_err(|e| UpstreamError::Build {
                provider: self.name.clone(),
                detail: format!("content type: {e}"),
            })?,
            None => HeaderValue::from_static("application/json"),
        };
        let method = call
            .resource
            .map_or(hyper::Method::POST, |(m, _)| m.clone());
        let mut builder = hyper::Request::builder().method(method).uri(url);
        if !body.is_empty() || call.resource.is_none() {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        let mut request = builder
            .body(Full::new(body))
            .map_err(|e| UpstreamError::Build {
                provider: self.name.clone(),
                detail: e.to_string(),
            })?;
        self.keys.authorize_as(&mut request, call.credential)?;
        Ok(request)
    }

    fn client(&self) -> &HttpClient {
        &self.client
    }

    fn key_pool(&self) -> Option<&Arc<KeyPool>> {
        Some(&self.keys)
    }

    fn with_timeouts(&self, timeouts: Timeouts) -> Result<std::sync::Arc<dyn Provider>, String> {
        let mut config = self.config.clone();
        config.timeouts = timeouts;
        Ok(Arc::new(OpenAi::with_keys(
            &config,
            Some(self.keys.clone()),
        )?))
    }
}
