//! OpenAI and every server that speaks its API (`openai_compatible`): the request body passes
//! through as the client sent it (model name rewritten), with the provider key as a bearer token.
//! Reference: https://platform.openai.com/docs/api-reference/chat

pub mod presets;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use url::Url;

use super::http::HttpClient;
use super::{Provider, UpstreamCall, UpstreamError};
use crate::config::{ProviderConfig, ProviderKind, Timeouts};
use crate::secret::Secret;

pub struct OpenAi {
    config: ProviderConfig,
    name: String,
    kind: ProviderKind,
    base_url: String,
    /// `Bearer <key>`, built once, marked sensitive so hyper never logs it.
    auth_header: Option<Secret<HeaderValue>>,
    timeouts: Timeouts,
    models: Vec<String>,
    client: HttpClient,
}

impl OpenAi {
    pub fn new(config: &ProviderConfig) -> Result<OpenAi, String> {
        let auth_header = match &config.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        format!(
                            "providers.{}: api key has characters not allowed in a header",
                            config.name
                        )
                    })?;
                value.set_sensitive(true);
                Some(Secret::new(value))
            }
            None => None,
        };
        Ok(OpenAi {
            config: config.clone(),
            name: config.name.clone(),
            kind: config.kind,
            base_url: trim_slash(&config.base_url),
            auth_header,
            timeouts: config.timeouts,
            models: config.models.clone(),
            client: HttpClient::new(config.timeouts.connect)?,
        })
    }
}

fn trim_slash(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProviderKind {
        self.kind
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
        let mut builder =
            hyper::Request::post(format!("{}{}", self.base_url, call.endpoint.path()))
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.auth_header {
            builder = builder.header(AUTHORIZATION, auth.expose().clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|e| UpstreamError::Build {
                provider: self.name.clone(),
                detail: e.to_string(),
            })
    }

    fn client(&self) -> &HttpClient {
        &self.client
    }

    fn with_timeouts(&self, timeouts: Timeouts) -> Result<std::sync::Arc<dyn Provider>, String> {
        let mut config = self.config.clone();
        config.timeouts = timeouts;
        Ok(std::sync::Arc::new(OpenAi::new(&config)?))
    }
}
