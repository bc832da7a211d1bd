//! OpenAI-compatible providers as rows of data: where they live, how they take the key, which bare
//! model names are theirs, and how their chat completions API departs from OpenAI's. Nothing here
//! does I/O; [`apply_quirks`] rewrites a canonical chat request for one provider, and
//! [`normalize_usage`] brings its usage back to the canonical convention. Who calls: the provider
//! registry (rows) and the OpenAI adapter's request path (quirks), once the lead wires them in.
//!
//! | preset | default base URL | key env | base URL env | bare-model prefixes | quirks |
//! |---|---|---|---|---|---|
//! | `groq` | `https://api.groq.com/openai/v1` | `GROQ_API_KEY` | - | - | no `messages[].name`; rejects `logprobs`, `logit_bias`, `top_logprobs`, `n` > 1 |
//! | `mistral` | `https://api.mistral.ai/v1` | `MISTRAL_API_KEY` | - | `mistral-`, `magistral-`, `codestral-`, `devstral-`, `ministral-`, `pixtral-`, `open-mistral-`, `open-mixtral-` | `max_tokens`; `random_seed`; no `stream_options` (usage sent unasked); no `user`; rejects unknown fields (422) |
//! | `together` | `https://api.together.ai/v1` | `TOGETHER_API_KEY` | - | - | `max_tokens` |
//! | `fireworks` | `https://api.fireworks.ai/inference/v1` | `FIREWORKS_API_KEY` | - | `accounts/fireworks/` | `max_tokens`; usage sent unasked |
//! | `deepseek` | `https://api.deepseek.com` | `DEEPSEEK_API_KEY` | - | `deepseek-chat`, `deepseek-reasoner`, `deepseek-v4`, `deepseek-flash` | `max_tokens`; keeps `reasoning_content` (thinking-mode tool turns require it back) |
//! | `xai` | `https://api.x.ai/v1` | `XAI_API_KEY` | - | `grok-` | `completion_tokens` excludes `reasoning_tokens` |
//! | `openrouter` | `https://openrouter.ai/api/v1` | `OPENROUTER_API_KEY` | - | - (its `vendor/model` ids clash with `provider/model` routing) | `max_tokens`; optional `HTTP-Referer` / `X-Title` |
//! | `perplexity` | `https://api.perplexity.ai` | `PERPLEXITY_API_KEY` | - | `sonar` | `max_tokens`; no tools; rejects `logit_bias`, `logprobs`, `top_logprobs` |
//! | `cerebras` | `https://api.cerebras.ai/v1` | `CEREBRAS_API_KEY` | - | - | no `developer` role; rejects `frequency_penalty`, `presence_penalty`, `logit_bias`, `parallel_tool_calls`, `service_tier` |
//! | `ollama` | `http://localhost:11434/v1` | `OLLAMA_API_KEY` (optional) | `OLLAMA_BASE_URL` | - | `max_tokens` |
//! | `vllm` | none: set `VLLM_BASE_URL` | `VLLM_API_KEY` (optional) | `VLLM_BASE_URL` | - | - |
//! | `lmstudio` | `http://localhost:1234/v1` | `LMSTUDIO_API_KEY` (optional) | `LMSTUDIO_BASE_URL` | - | `max_tokens`; no usage in streams |
//! | `cohere` | `https://api.cohere.com/v2` | `COHERE_API_KEY` | - | `rerank-v`, `rerank-english`, `rerank-multilingual` | rerank only |
//! | `jina` | `https://api.jina.ai/v1` | `JINA_API_KEY` | - | `jina-` | rerank (and embeddings) |
//! | `voyage` | `https://api.voyageai.com/v1` | `VOYAGE_API_KEY` | - | `voyage-`, `rerank-2`, `rerank-lite` | rerank takes `top_k` and answers in `data` |
//! | `azure` ([`AZURE`]) | none: `{endpoint}/openai/v1` from `AZURE_OPENAI_ENDPOINT` | `AZURE_OPENAI_API_KEY` | `AZURE_OPENAI_ENDPOINT` | - | `api-key` header; see [`azure_url`] |
//!
//! Every row (not OpenAI or Azure) also maps `developer` to `system`: `developer` is OpenAI's newer
//! name for the same instruction layer, and the open-model servers either reject it or hand it to
//! chat templates that know only `system`. `max_tokens` is used wherever the provider's reference
//! documents only that name; every server accepts it. Canonical-only fields (`x_thinking_blocks`,
//! and `reasoning_content` unless a row keeps it) never go upstream.
//!
//! Sources (read with the `search` tool; details and quotes in `tests/fixtures/openai_compatible/README.md`):
//! console.groq.com/docs/openai; docs.mistral.ai (and the 422 reports on `max_completion_tokens`,
//! `stream_options`, `seed`); docs.together.ai/docs/inference/openai-compatibility;
//! docs.fireworks.ai/tools-sdks/openai-compatibility; api-docs.deepseek.com (first call, thinking
//! mode); docs.x.ai/api/integrations and docs.x.ai consumption docs (reasoning tokens counted apart);
//! openrouter.ai/docs; docs.perplexity.ai/guides/chat-completions-guide;
//! inference-docs.cerebras.ai/resources/openai; docs.ollama.com/api/openai-compatibility;
//! docs.vllm.ai (OpenAI-compatible server); lmstudio.ai/docs/api/openai-api and
//! lmstudio-bug-tracker#713; learn.microsoft.com/azure/foundry/openai/api-version-lifecycle.
//!
//! Operations besides text and embeddings ([`Preset::operations`]): OpenAI all of images, audio
//! and moderations; Azure images (no variations) and audio; Groq audio; Together images, speech,
//! transcriptions and rerank; xAI image generation; vLLM transcriptions and rerank; Cohere, Jina
//! and Voyage rerank. A configured compatible server without a preset is taken to serve them all.
//!
//! This file holds the rows (the table above as [`PRESETS`] and [`AZURE`]), their lookups and the
//! Azure URLs; `quirks.rs` holds the [`Quirks`] a row carries and the code that applies them.

mod quirks;

use crate::wire::openai::Endpoint;

pub use quirks::{
    MaxTokensField, Quirks, StreamUsage, apply_quirks, drop_unsupported_params, normalize_usage,
    unsupported_params_present,
};

/// How the key is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader,
}

/// One OpenAI-compatible provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// Provider id (`provider/model` prefix, config name).
    pub name: &'static str,
    /// Base URL ending in the API version (`/v1`), before `/chat/completions`. `None`: it must be
    /// configured ([`Preset::base_url_env`]).
    pub default_base_url: Option<&'static str>,
    pub api_key_env: &'static str,
    /// Local servers run without a key; a configured one is still sent.
    pub key_required: bool,
    /// Overrides the default base URL (local servers, or required when there is no default).
    pub base_url_env: Option<&'static str>,
    pub auth: AuthStyle,
    /// Optional headers the provider documents (attribution), never required.
    pub optional_headers: &'static [&'static str],
    /// Bare model names starting with one of these route here (only names no other provider uses).
    pub model_prefixes: &'static [&'static str],
    pub quirks: Quirks,
    /// The operations besides chat, completions and embeddings it serves (images, audio,
    /// moderations, rerank), on OpenAI's paths below its base URL.
    pub operations: &'static [Endpoint],
    /// How its rerank body and answer are shaped.
    pub rerank: RerankShape,
    /// Where the facts above come from.
    pub docs: &'static str,
}

/// The two rerank dialects: Cohere's (`top_n` in, `results` out; Jina and Together too) and
/// Voyage's (`top_k` in, `data` out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RerankShape {
    Cohere,
    Voyage,
}

/// Every operation OpenAI itself serves.
pub const OPENAI_OPERATIONS: &[Endpoint] = &[
    Endpoint::ImagesGenerations,
    Endpoint::ImagesEdits,
    Endpoint::ImagesVariations,
    Endpoint::AudioSpeech,
    Endpoint::AudioTranscriptions,
    Endpoint::AudioTranslations,
    Endpoint::Moderations,
    Endpoint::Files,
    Endpoint::Batches,
];

impl Preset {
    /// The base URL: the override from `env` (its base-URL variable) if set, else the default.
    /// `env` is injected so this stays pure (`|name| std::env::var(name).ok()` in production).
    pub fn base_url(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        let configured = self
            .base_url_env
            .and_then(&env)
            .map(|url| url.trim().to_string())
            .filter(|url| !url.is_empty());
        configured
            .or_else(|| self.default_base_url.map(str::to_string))
            .map(|url| url.trim_end_matches('/').to_string())
    }

    /// The auth header (lowercase name, value) for `key`.
    pub fn auth_header(&self, key: &str) -> (&'static str, String) {
        match self.auth {
            AuthStyle::Bearer => ("authorization", format!("Bearer {key}")),
            AuthStyle::ApiKeyHeader => (AZURE_API_KEY_HEADER, key.to_string()),
        }
    }
}

const fn row(
    name: &'static str,
    base: Option<&'static str>,
    key: &'static str,
    docs: &'static str,
) -> Preset {
    Preset {
        name,
        default_base_url: base,
        api_key_env: key,
        key_required: true,
        base_url_env: None,
        auth: AuthStyle::Bearer,
        optional_headers: &[],
        model_prefixes: &[],
        quirks: Quirks::COMPATIBLE,
        operations: &[],
        rerank: RerankShape::Cohere,
        docs,
    }
}

/// The OpenAI-compatible presets, in the order of the module table.
pub const PRESETS: &[Preset] = &[
    Preset {
        quirks: Quirks {
            accepts_message_name: false,
            unsupported_params: &["logprobs", "logit_bias", "top_logprobs", "n"],
            ..Quirks::COMPATIBLE
        },
        operations: &[
            Endpoint::AudioTranscriptions,
            Endpoint::AudioTranslations,
            Endpoint::AudioSpeech,
        ],
        ..row(
            "groq",
            Some("https://api.groq.com/openai/v1"),
            "GROQ_API_KEY",
            "https://console.groq.com/docs/openai",
        )
    },
    Preset {
        model_prefixes: &[
            "mistral-",
            "magistral-",
            "codestral-",
            "devstral-",
            "ministral-",
            "pixtral-",
            "open-mistral-",
            "open-mixtral-",
        ],
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            stream_usage: StreamUsage::Always,
            rejects_stream_options: true,
            accepts_user: false,
            seed_field: "random_seed",
            unsupported_params: &[
                "logit_bias",
                "logprobs",
                "top_logprobs",
                "metadata",
                "store",
                "service_tier",
            ],
            ..Quirks::COMPATIBLE
        },
        ..row(
            "mistral",
            Some("https://api.mistral.ai/v1"),
            "MISTRAL_API_KEY",
            "https://docs.mistral.ai/api/#tag/chat",
        )
    },
    Preset {
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..Quirks::COMPATIBLE
        },
        operations: &[
            Endpoint::ImagesGenerations,
            Endpoint::AudioSpeech,
            Endpoint::AudioTranscriptions,
            Endpoint::Rerank,
        ],
        ..row(
            "together",
            Some("https://api.together.ai/v1"),
            "TOGETHER_API_KEY",
            "https://docs.together.ai/docs/inference/openai-compatibility",
        )
    },
    Preset {
        model_prefixes: &["accounts/fireworks/"],
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            stream_usage: StreamUsage::Always,
            ..Quirks::COMPATIBLE
        },
        ..row(
            "fireworks",
            Some("https://api.fireworks.ai/inference/v1"),
            "FIREWORKS_API_KEY",
            "https://docs.fireworks.ai/tools-sdks/openai-compatibility",
        )
    },
    Preset {
        model_prefixes: &[
            "deepseek-chat",
            "deepseek-reasoner",
            "deepseek-v4",
            "deepseek-flash",
        ],
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            keeps_reasoning_content: true,
            ..Quirks::COMPATIBLE
        },
        ..row(
            "deepseek",
            Some("https://api.deepseek.com"),
            "DEEPSEEK_API_KEY",
            "https://api-docs.deepseek.com/guides/thinking_mode",
        )
    },
    Preset {
        model_prefixes: &["grok-"],
        quirks: Quirks {
            completion_excludes_reasoning: true,
            ..Quirks::COMPATIBLE
        },
        operations: &[Endpoint::ImagesGenerations],
        ..row(
            "xai",
            Some("https://api.x.ai/v1"),
            "XAI_API_KEY",
            "https://docs.x.ai/api/integrations",
        )
    },
    Preset {
        optional_headers: &["HTTP-Referer", "X-Title"],
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..Quirks::COMPATIBLE
        },
        ..row(
            "openrouter",
            Some("https://openrouter.ai/api/v1"),
            "OPENROUTER_API_KEY",
            "https://openrouter.ai/docs/api-reference/overview",
        )
    },
    Preset {
        model_prefixes: &["sonar"],
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            unsupported_params: &[
                "tools",
                "tool_choice",
                "parallel_tool_calls",
                "logit_bias",
                "logprobs",
                "top_logprobs",
            ],
            ..Quirks::COMPATIBLE
        },
        ..row(
            "perplexity",
            Some("https://api.perplexity.ai"),
            "PERPLEXITY_API_KEY",
            "https://docs.perplexity.ai/guides/chat-completions-guide",
        )
    },
    Preset {
        quirks: Quirks {
            unsupported_params: &[
                "frequency_penalty",
                "presence_penalty",
                "logit_bias",
                "parallel_tool_calls",
                "service_tier",
            ],
            ..Quirks::COMPATIBLE
        },
        ..row(
            "cerebras",
            Some("https://api.cerebras.ai/v1"),
            "CEREBRAS_API_KEY",
            "https://inference-docs.cerebras.ai/resources/openai",
        )
    },
    Preset {
        key_required: false,
        base_url_env: Some("OLLAMA_BASE_URL"),
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..Quirks::COMPATIBLE
        },
        ..row(
            "ollama",
            Some("http://localhost:11434/v1"),
            "OLLAMA_API_KEY",
            "https://docs.ollama.com/api/openai-compatibility",
        )
    },
    Preset {
        key_required: false,
        base_url_env: Some("VLLM_BASE_URL"),
        operations: &[
            Endpoint::AudioTranscriptions,
            Endpoint::AudioTranslations,
            Endpoint::Rerank,
        ],
        ..row(
            "vllm",
            None,
            "VLLM_API_KEY",
            "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
        )
    },
    Preset {
        key_required: false,
        base_url_env: Some("LMSTUDIO_BASE_URL"),
        quirks: Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            stream_usage: StreamUsage::Never,
            ..Quirks::COMPATIBLE
        },
        ..row(
            "lmstudio",
            Some("http://localhost:1234/v1"),
            "LMSTUDIO_API_KEY",
            "https://lmstudio.ai/docs/api/openai-api",
        )
    },
    // Rerank services. Cohere's v2 API (chat there is Cohere's own format, which Stockyard does
    // not translate; its rerank and embeddings are what this row is for).
    Preset {
        model_prefixes: &["rerank-v", "rerank-english", "rerank-multilingual"],
        operations: &[Endpoint::Rerank],
        ..row(
            "cohere",
            Some("https://api.cohere.com/v2"),
            "COHERE_API_KEY",
            "https://docs.cohere.com/reference/rerank",
        )
    },
    Preset {
        model_prefixes: &["jina-"],
        operations: &[Endpoint::Rerank],
        ..row(
            "jina",
            Some("https://api.jina.ai/v1"),
            "JINA_API_KEY",
            "https://jina.ai/reranker/",
        )
    },
    Preset {
        model_prefixes: &["voyage-", "rerank-2", "rerank-lite"],
        operations: &[Endpoint::Rerank],
        rerank: RerankShape::Voyage,
        ..row(
            "voyage",
            Some("https://api.voyageai.com/v1"),
            "VOYAGE_API_KEY",
            "https://docs.voyageai.com/reference/reranker-api",
        )
    },
];

/// Azure OpenAI. Its base URL is built from the resource endpoint: [`azure_v1_url`] (the v1 API,
/// which Microsoft recommends since August 2025: OpenAI's paths, the deployment name as `model`,
/// no `api-version`) or [`azure_url`] (the dated, per-deployment API). The key goes in `api-key`.
pub const AZURE: Preset = Preset {
    name: "azure",
    default_base_url: None,
    api_key_env: "AZURE_OPENAI_API_KEY",
    key_required: true,
    base_url_env: Some("AZURE_OPENAI_ENDPOINT"),
    auth: AuthStyle::ApiKeyHeader,
    optional_headers: &[],
    model_prefixes: &[],
    quirks: Quirks::OPENAI,
    // Azure OpenAI has no moderations endpoint (content filters run on every call) and no
    // image variations.
    operations: &[
        Endpoint::ImagesGenerations,
        Endpoint::ImagesEdits,
        Endpoint::AudioSpeech,
        Endpoint::AudioTranscriptions,
        Endpoint::AudioTranslations,
        Endpoint::Files,
        Endpoint::Batches,
    ],
    rerank: RerankShape::Cohere,
    docs: "https://learn.microsoft.com/azure/foundry/openai/api-version-lifecycle",
};

/// The header Azure OpenAI reads the key from.
pub const AZURE_API_KEY_HEADER: &str = "api-key";

/// The preset called `name` (Azure included).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .chain(std::iter::once(&AZURE))
        .find(|p| p.name == name)
}

/// The preset whose bare-model prefix matches `model`, longest prefix first.
pub fn preset_for_model(model: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .flat_map(|p| p.model_prefixes.iter().map(move |prefix| (*prefix, p)))
        .filter(|(prefix, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, p)| p)
}

/// The dated Azure OpenAI URL:
/// `{endpoint}/openai/deployments/{deployment}{path}?api-version={api_version}`, e.g.
/// `https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21`.
/// `endpoint` is `https://{resource}.openai.azure.com` (a trailing slash is fine); `path` is the
/// OpenAI path below `/v1` (`/chat/completions`).
pub fn azure_url(endpoint: &str, deployment: &str, api_version: &str, path: &str) -> String {
    format!(
        "{}/openai/deployments/{}{}?api-version={}",
        endpoint.trim_end_matches('/'),
        deployment,
        leading_slash(path),
        api_version
    )
}

/// The dated Azure OpenAI URL of a resource's files and batches, which belong to the resource,
/// not a deployment: `{endpoint}/openai{path}?api-version={api_version}`, the client's query
/// (`limit`, `after`) kept after it. `path` is below `/v1` (`/files/file-1/content`).
pub fn azure_resource_url(endpoint: &str, api_version: &str, path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("&{query}")
    };
    format!(
        "{}/openai{}?api-version={api_version}{query}",
        endpoint.trim_end_matches('/'),
        leading_slash(path),
    )
}

/// The v1 Azure OpenAI URL: `{endpoint}/openai/v1{path}` (no `api-version`; the deployment name
/// goes in the body's `model`). With an empty `path` this is the base URL for the OpenAI adapter.
pub fn azure_v1_url(endpoint: &str, path: &str) -> String {
    let path = if path.is_empty() {
        String::new()
    } else {
        leading_slash(path)
    };
    format!("{}/openai/v1{}", endpoint.trim_end_matches('/'), path)
}

fn leading_slash(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

#[cfg(test)]
mod tests;
