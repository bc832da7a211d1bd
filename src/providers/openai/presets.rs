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

use serde_json::Value;

/// How the key is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader,
}

/// Which field carries the output-token limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxTokensField {
    MaxCompletionTokens,
    MaxTokens,
}

/// Whether a stream reports usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamUsage {
    /// In a last chunk when `stream_options.include_usage` is set (OpenAI's contract).
    OnRequest,
    /// In its last chunk without being asked.
    Always,
    /// Never: the proxy counts tokens itself and marks the usage estimated.
    Never,
}

/// How a provider's chat completions API departs from OpenAI's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quirks {
    pub max_tokens_field: MaxTokensField,
    pub stream_usage: StreamUsage,
    /// `stream_options` is an error (strict servers), so it is removed.
    pub rejects_stream_options: bool,
    /// `user` is known; otherwise it is removed (it only helps abuse tracking).
    pub accepts_user: bool,
    /// `developer` is a known role; otherwise it becomes `system`.
    pub accepts_developer_role: bool,
    /// `messages[].name` is accepted; otherwise it is removed.
    pub accepts_message_name: bool,
    /// Assistant `reasoning_content` goes back upstream (DeepSeek requires it on tool-call turns).
    pub keeps_reasoning_content: bool,
    /// The name of OpenAI's `seed` here.
    pub seed_field: &'static str,
    /// Usage reports `reasoning_tokens` outside `completion_tokens` ([`normalize_usage`] adds them).
    pub completion_excludes_reasoning: bool,
    /// Parameters the provider rejects. At their OpenAI default value they mean nothing and
    /// [`apply_quirks`] removes them; otherwise the caller rejects the request by name, or drops
    /// them when `drop_unsupported` ([`unsupported_params_present`], [`drop_unsupported_params`]).
    pub unsupported_params: &'static [&'static str],
}

impl Quirks {
    /// OpenAI itself (and Azure OpenAI): nothing to rewrite but canonical-only fields.
    pub const OPENAI: Quirks = Quirks {
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        stream_usage: StreamUsage::OnRequest,
        rejects_stream_options: false,
        accepts_user: true,
        accepts_developer_role: true,
        accepts_message_name: true,
        keeps_reasoning_content: false,
        seed_field: "seed",
        completion_excludes_reasoning: false,
        unsupported_params: &[],
    };

    /// The common case for compatible servers; rows start from here.
    pub const COMPATIBLE: Quirks = Quirks {
        accepts_developer_role: false,
        ..Quirks::OPENAI
    };
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
    /// Where the facts above come from.
    pub docs: &'static str,
}

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

/// Rewrites a canonical chat request for a provider's quirks (see [`Quirks`] for each rule).
/// Parameters in `unsupported_params` with a non-default value are left for the caller to reject
/// or drop.
pub fn apply_quirks(chat: &mut Value, quirks: &Quirks) {
    let Some(body) = chat.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for message in messages.iter_mut().filter_map(Value::as_object_mut) {
            // Canonical-only: Anthropic thinking blocks have no meaning to an OpenAI-style server.
            message.remove("x_thinking_blocks");
            if !quirks.keeps_reasoning_content {
                message.remove("reasoning_content");
            }
            if !quirks.accepts_message_name {
                message.remove("name");
            }
            if !quirks.accepts_developer_role
                && message.get("role").and_then(Value::as_str) == Some("developer")
            {
                message.insert("role".into(), "system".into());
            }
        }
    }
    if quirks.max_tokens_field == MaxTokensField::MaxTokens
        && let Some(limit) = body.remove("max_completion_tokens")
    {
        // With both set, the smaller limit holds, as it would have at OpenAI.
        let keep_existing = match (
            body.get("max_tokens").and_then(Value::as_u64),
            limit.as_u64(),
        ) {
            (Some(existing), Some(new)) => existing <= new,
            _ => false,
        };
        if !keep_existing && !limit.is_null() {
            body.insert("max_tokens".into(), limit);
        }
    }
    if quirks.rejects_stream_options {
        body.remove("stream_options");
    }
    if !quirks.accepts_user {
        body.remove("user");
    }
    if quirks.seed_field != "seed"
        && let Some(seed) = body.remove("seed")
    {
        body.insert(quirks.seed_field.into(), seed);
    }
    for name in quirks.unsupported_params {
        if body.get(*name).is_some_and(|v| means_nothing(name, v)) {
            body.remove(*name);
        }
    }
}

/// Unsupported parameters still set after [`apply_quirks`]: reject the request naming the first,
/// unless the client allowed dropping them.
pub fn unsupported_params_present(chat: &Value, quirks: &Quirks) -> Vec<&'static str> {
    let Some(body) = chat.as_object() else {
        return Vec::new();
    };
    quirks
        .unsupported_params
        .iter()
        .copied()
        .filter(|name| body.get(*name).is_some_and(|v| !means_nothing(name, v)))
        .collect()
}

/// Removes every unsupported parameter (the `drop_unsupported` path).
pub fn drop_unsupported_params(chat: &mut Value, quirks: &Quirks) {
    if let Some(body) = chat.as_object_mut() {
        for name in quirks.unsupported_params {
            body.remove(*name);
        }
    }
}

/// `null`, an empty list, or OpenAI's default value: sending it or not changes nothing.
fn means_nothing(name: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => match name {
            "parallel_tool_calls" => value.as_bool() == Some(true),
            "logprobs" | "store" => value.as_bool() == Some(false),
            "n" => value.as_u64() == Some(1),
            "frequency_penalty" | "presence_penalty" => value.as_f64() == Some(0.0),
            "service_tier" => value.as_str() == Some("auto"),
            "tool_choice" => value.as_str() == Some("none"),
            _ => false,
        },
    }
}

/// Brings a provider's usage object (answer or usage chunk) to the canonical convention:
/// `completion_tokens` includes reasoning tokens.
pub fn normalize_usage(usage: &mut Value, quirks: &Quirks) {
    if !quirks.completion_excludes_reasoning {
        return;
    }
    let reasoning = usage
        .pointer("/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if reasoning == 0 {
        return;
    }
    if let Some(map) = usage.as_object_mut() {
        let completion = map
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        map.insert("completion_tokens".into(), (completion + reasoning).into());
        let prompt = map
            .get("prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // xAI's own total already counts reasoning; keep the larger so nothing is counted twice.
        let total = map.get("total_tokens").and_then(Value::as_u64).unwrap_or(0);
        map.insert(
            "total_tokens".into(),
            total.max(prompt + completion + reasoning).into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn quirked(name: &str) -> Value {
        let mut chat = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/canonical_request.json"
        ));
        apply_quirks(&mut chat, &preset(name).unwrap().quirks);
        chat
    }

    fn assert_json_eq(got: &Value, want: &Value) {
        assert!(
            got == want,
            "--- got ---\n{}\n--- want ---\n{}",
            serde_json::to_string_pretty(got).unwrap(),
            serde_json::to_string_pretty(want).unwrap()
        );
    }

    #[test]
    fn every_row_is_complete_and_named_by_convention() {
        let mut names = std::collections::BTreeSet::new();
        for p in PRESETS.iter().chain([&AZURE]) {
            assert!(names.insert(p.name), "duplicate preset {}", p.name);
            assert!(
                p.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                p.name
            );
            assert!(p.docs.starts_with("https://"), "{}", p.name);
            if p.name != "azure" {
                assert_eq!(p.api_key_env, format!("{}_API_KEY", p.name.to_uppercase()));
                if let Some(var) = p.base_url_env {
                    assert_eq!(var, format!("{}_BASE_URL", p.name.to_uppercase()));
                }
                assert_eq!(p.auth, AuthStyle::Bearer);
                assert!(!p.quirks.accepts_developer_role, "{}", p.name);
            }
            if let Some(url) = p.default_base_url {
                assert!(
                    url.starts_with("https://") || url.starts_with("http://localhost:"),
                    "{url}"
                );
                assert!(!url.ends_with('/'), "{url}");
            } else {
                assert!(
                    p.base_url_env.is_some(),
                    "{} needs a way to set its URL",
                    p.name
                );
            }
            // Local servers need no key; hosted ones do.
            let local = p
                .default_base_url
                .is_none_or(|u| u.starts_with("http://localhost"));
            assert_eq!(p.key_required, !local || p.name == "azure", "{}", p.name);
        }
        assert_eq!(names.len(), 13);
    }

    #[test]
    fn base_urls_and_auth_per_row() {
        let no_env = |_: &str| None;
        let want = [
            ("groq", Some("https://api.groq.com/openai/v1")),
            ("mistral", Some("https://api.mistral.ai/v1")),
            ("together", Some("https://api.together.ai/v1")),
            ("fireworks", Some("https://api.fireworks.ai/inference/v1")),
            ("deepseek", Some("https://api.deepseek.com")),
            ("xai", Some("https://api.x.ai/v1")),
            ("openrouter", Some("https://openrouter.ai/api/v1")),
            ("perplexity", Some("https://api.perplexity.ai")),
            ("cerebras", Some("https://api.cerebras.ai/v1")),
            ("ollama", Some("http://localhost:11434/v1")),
            ("vllm", None),
            ("lmstudio", Some("http://localhost:1234/v1")),
            ("azure", None),
        ];
        for (name, url) in want {
            let p = preset(name).unwrap();
            assert_eq!(p.base_url(no_env).as_deref(), url, "{name}");
        }
        let env =
            |var: &str| (var == "VLLM_BASE_URL").then(|| "http://gpu-box:8000/v1/".to_string());
        assert_eq!(
            preset("vllm").unwrap().base_url(env).as_deref(),
            Some("http://gpu-box:8000/v1")
        );
        let env =
            |var: &str| (var == "OLLAMA_BASE_URL").then(|| "http://10.0.0.5:11434/v1".to_string());
        assert_eq!(
            preset("ollama").unwrap().base_url(env).as_deref(),
            Some("http://10.0.0.5:11434/v1")
        );
        let blank = |_: &str| Some("  ".to_string());
        assert_eq!(
            preset("lmstudio").unwrap().base_url(blank).as_deref(),
            Some("http://localhost:1234/v1")
        );
        // Hosted rows have no base-URL variable, so the environment cannot redirect their keys.
        let evil = |_: &str| Some("https://attacker.example".to_string());
        assert_eq!(
            preset("groq").unwrap().base_url(evil).as_deref(),
            Some("https://api.groq.com/openai/v1")
        );

        assert_eq!(
            preset("xai").unwrap().auth_header("k"),
            ("authorization", "Bearer k".to_string())
        );
        assert_eq!(AZURE.auth_header("k"), ("api-key", "k".to_string()));
        assert_eq!(
            preset("openrouter").unwrap().optional_headers,
            ["HTTP-Referer", "X-Title"]
        );
        assert!(preset("anthropic").is_none());
    }

    #[test]
    fn bare_model_prefixes_route_only_unambiguous_names() {
        let cases = [
            ("mistral-large-latest", Some("mistral")),
            ("codestral-2501", Some("mistral")),
            ("open-mistral-nemo", Some("mistral")),
            ("magistral-medium-latest", Some("mistral")),
            ("grok-4", Some("xai")),
            ("deepseek-chat", Some("deepseek")),
            ("deepseek-reasoner", Some("deepseek")),
            ("deepseek-r1-distill-llama-70b", None),
            ("sonar-pro", Some("perplexity")),
            (
                "accounts/fireworks/models/llama-v3p1-8b-instruct",
                Some("fireworks"),
            ),
            ("llama-3.3-70b-versatile", None),
            ("meta-llama/Llama-3.3-70B-Instruct-Turbo", None),
            ("gpt-4o", None),
            ("claude-sonnet-4-5", None),
        ];
        for (model, want) in cases {
            assert_eq!(preset_for_model(model).map(|p| p.name), want, "{model}");
        }
        // No two presets claim overlapping prefixes.
        let all: Vec<(&str, &str)> = PRESETS
            .iter()
            .flat_map(|p| p.model_prefixes.iter().map(move |x| (p.name, *x)))
            .collect();
        for (a_name, a) in &all {
            for (b_name, b) in &all {
                if a_name != b_name {
                    assert!(!a.starts_with(b), "{a_name}:{a} overlaps {b_name}:{b}");
                }
            }
        }
    }

    #[test]
    fn azure_urls_in_both_forms() {
        assert_eq!(
            azure_url(
                "https://myres.openai.azure.com/",
                "gpt-4o-prod",
                "2024-10-21",
                "/chat/completions"
            ),
            "https://myres.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            azure_url(
                "https://myres.openai.azure.com",
                "emb",
                "2024-10-21",
                "embeddings"
            ),
            "https://myres.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
        );
        assert_eq!(
            azure_v1_url("https://myres.openai.azure.com/", "/chat/completions"),
            "https://myres.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            azure_v1_url("https://myres.openai.azure.com", ""),
            "https://myres.openai.azure.com/openai/v1"
        );
        assert_eq!(AZURE.quirks, Quirks::OPENAI);
    }

    #[test]
    fn golden_mistral_request() {
        let want = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/mistral.json"
        ));
        assert_json_eq(&quirked("mistral"), &want);
        assert_eq!(
            unsupported_params_present(&want, &preset("mistral").unwrap().quirks),
            ["logit_bias"]
        );
    }

    #[test]
    fn golden_groq_request() {
        let want = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/groq.json"
        ));
        assert_json_eq(&quirked("groq"), &want);
        assert_eq!(
            unsupported_params_present(&want, &preset("groq").unwrap().quirks),
            ["logit_bias"]
        );
    }

    #[test]
    fn golden_deepseek_request_keeps_reasoning_content() {
        let want = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/deepseek.json"
        ));
        assert_json_eq(&quirked("deepseek"), &want);
    }

    #[test]
    fn golden_cerebras_request() {
        let want = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/cerebras.json"
        ));
        let got = quirked("cerebras");
        assert_json_eq(&got, &want);
        let quirks = preset("cerebras").unwrap().quirks;
        assert_eq!(
            unsupported_params_present(&got, &quirks),
            ["frequency_penalty", "logit_bias"]
        );
        let mut dropped = got;
        drop_unsupported_params(&mut dropped, &quirks);
        assert!(unsupported_params_present(&dropped, &quirks).is_empty());
        assert!(dropped.get("frequency_penalty").is_none());
    }

    #[test]
    fn each_quirk_on_its_own() {
        let base = Quirks::OPENAI;
        let run = |quirks: Quirks, chat: Value| {
            let mut chat = chat;
            apply_quirks(&mut chat, &quirks);
            chat
        };
        // Canonical-only fields never leave, even for OpenAI itself.
        let got = run(
            base,
            json!({"messages": [{"role": "assistant", "content": "a",
            "reasoning_content": "r", "x_thinking_blocks": [{"type": "thinking"}], "name": "bot"}]}),
        );
        assert_eq!(
            got["messages"][0],
            json!({"role": "assistant", "content": "a", "name": "bot"})
        );
        // keeps_reasoning_content
        let got = run(
            Quirks {
                keeps_reasoning_content: true,
                ..base
            },
            json!({"messages": [{"role": "assistant", "content": "a", "reasoning_content": "r"}]}),
        );
        assert_eq!(got["messages"][0]["reasoning_content"], "r");
        // accepts_message_name
        let got = run(
            Quirks {
                accepts_message_name: false,
                ..base
            },
            json!({"messages": [{"role": "user", "content": "a", "name": "alice"}]}),
        );
        assert!(got["messages"][0].get("name").is_none());
        // accepts_developer_role
        let got = run(
            Quirks::COMPATIBLE,
            json!({"messages": [{"role": "developer", "content": "x"}]}),
        );
        assert_eq!(got["messages"][0]["role"], "system");
        let got = run(
            base,
            json!({"messages": [{"role": "developer", "content": "x"}]}),
        );
        assert_eq!(got["messages"][0]["role"], "developer");
        // max_tokens_field
        let max = Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..base
        };
        assert_eq!(
            run(max, json!({"max_completion_tokens": 100})),
            json!({"max_tokens": 100})
        );
        assert_eq!(
            run(max, json!({"max_completion_tokens": 100, "max_tokens": 50})),
            json!({"max_tokens": 50})
        );
        assert_eq!(
            run(max, json!({"max_completion_tokens": 30, "max_tokens": 50})),
            json!({"max_tokens": 30})
        );
        assert_eq!(run(max, json!({"max_completion_tokens": null})), json!({}));
        assert_eq!(
            run(base, json!({"max_completion_tokens": 100})),
            json!({"max_completion_tokens": 100})
        );
        // rejects_stream_options
        let no_opts = Quirks {
            rejects_stream_options: true,
            ..base
        };
        assert_eq!(
            run(
                no_opts,
                json!({"stream": true, "stream_options": {"include_usage": true}})
            ),
            json!({"stream": true})
        );
        // accepts_user
        assert_eq!(
            run(
                Quirks {
                    accepts_user: false,
                    ..base
                },
                json!({"user": "u"})
            ),
            json!({})
        );
        assert_eq!(run(base, json!({"user": "u"})), json!({"user": "u"}));
        // seed_field
        assert_eq!(
            run(
                Quirks {
                    seed_field: "random_seed",
                    ..base
                },
                json!({"seed": 7})
            ),
            json!({"random_seed": 7})
        );
        // unsupported params at their default mean nothing and go silently
        let strict = Quirks {
            unsupported_params: &[
                "parallel_tool_calls",
                "n",
                "presence_penalty",
                "logprobs",
                "tools",
            ],
            ..base
        };
        let got = run(
            strict,
            json!({"parallel_tool_calls": true, "n": 1, "presence_penalty": 0, "logprobs": false, "tools": []}),
        );
        assert_eq!(got, json!({}));
        let got = run(
            strict,
            json!({"parallel_tool_calls": false, "n": 2, "tools": [{"type": "function"}]}),
        );
        assert_eq!(
            unsupported_params_present(&got, &strict),
            ["parallel_tool_calls", "n", "tools"]
        );
        // Non-objects are left alone.
        let mut odd = json!([1, 2]);
        apply_quirks(&mut odd, &strict);
        assert_eq!(odd, json!([1, 2]));
        assert!(unsupported_params_present(&odd, &strict).is_empty());
    }

    #[test]
    fn stream_usage_per_row() {
        let usage = |name: &str| preset(name).unwrap().quirks.stream_usage;
        assert_eq!(usage("lmstudio"), StreamUsage::Never);
        assert_eq!(usage("mistral"), StreamUsage::Always);
        assert_eq!(usage("fireworks"), StreamUsage::Always);
        for name in [
            "groq",
            "together",
            "deepseek",
            "xai",
            "openrouter",
            "perplexity",
            "cerebras",
            "ollama",
            "vllm",
            "azure",
        ] {
            assert_eq!(usage(name), StreamUsage::OnRequest, "{name}");
        }
        // Only Mistral needs stream_options removed, and then it still reports usage.
        for p in PRESETS {
            if p.quirks.rejects_stream_options {
                assert_eq!(p.quirks.stream_usage, StreamUsage::Always, "{}", p.name);
            }
        }
    }

    #[test]
    fn xai_usage_counts_reasoning_inside_completion_tokens() {
        let quirks = preset("xai").unwrap().quirks;
        let mut usage = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/xai_usage.json"
        ));
        normalize_usage(&mut usage, &quirks);
        assert_eq!(usage["completion_tokens"], 387);
        assert_eq!(usage["total_tokens"], 399);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 386);
        // Other rows leave usage untouched.
        let mut other = fixture(include_str!(
            "../../../tests/fixtures/openai_compatible/xai_usage.json"
        ));
        normalize_usage(&mut other, &preset("groq").unwrap().quirks);
        assert_eq!(other["completion_tokens"], 1);
        // No reasoning, nothing to do.
        let mut plain = json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7});
        normalize_usage(&mut plain, &quirks);
        assert_eq!(plain["completion_tokens"], 4);
    }

    #[test]
    fn rows_without_extra_quirks_only_map_roles_and_strip_canonical_fields() {
        for name in [
            "together",
            "openrouter",
            "ollama",
            "lmstudio",
            "vllm",
            "xai",
            "fireworks",
        ] {
            let got = quirked(name);
            assert_eq!(got["messages"][0]["role"], "system", "{name}");
            assert!(
                got["messages"][2].get("x_thinking_blocks").is_none(),
                "{name}"
            );
            assert!(
                got["messages"][2].get("reasoning_content").is_none(),
                "{name}"
            );
            assert_eq!(got["user"], "user-1234", "{name}");
            assert_eq!(
                got["stream_options"],
                json!({"include_usage": true}),
                "{name}"
            );
            let max_tokens =
                preset(name).unwrap().quirks.max_tokens_field == MaxTokensField::MaxTokens;
            assert_eq!(got.get("max_tokens").is_some(), max_tokens, "{name}");
            assert_eq!(
                got.get("max_completion_tokens").is_some(),
                !max_tokens,
                "{name}"
            );
        }
        let perplexity = quirked("perplexity");
        assert_eq!(
            unsupported_params_present(&perplexity, &preset("perplexity").unwrap().quirks),
            ["tools", "tool_choice", "logit_bias"]
        );
    }
}
