//! `[providers.*]` from the file, checked, plus the providers that the environment alone turns
//! on: the zero-config presets here (OpenAI, Gemini, Anthropic) and the OpenAI-compatible rows
//! of `crate::providers::openai::presets`. A provider named in the file always wins over a preset
//! of the same name. Called only by [`super::validate`].

use std::time::Duration;

use url::Url;

use super::{AwsCredentials, ProviderConfig, ProviderKind, Timeouts};
use crate::config::{ConfigErrors, RawConfig, RawProvider, RawTimeouts};
use crate::providers::openai::presets as compat_presets;
use crate::secret::Secret;

/// Name prefixes of bare model names that belong to OpenAI.
const OPENAI_PREFIXES: &[&str] = &[
    "gpt-",
    "chatgpt-",
    "o1",
    "o3",
    "o4",
    "text-embedding-",
    "davinci-",
    "babbage-",
    "dall-e-",
    "whisper-",
    "tts-",
    "omni-moderation-",
    "text-moderation-",
];
const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";
const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com/v1";
/// Bare model names that belong to Anthropic.
const ANTHROPIC_PREFIXES: &[&str] = &["claude-"];
const GEMINI_DEFAULT_BASE: &str = crate::providers::gemini::request::GEMINI_API_BASE;
const GEMINI_PREFIXES: &[&str] = &["gemini-"];

/// The zero-config presets: a key in the environment is enough.
struct Preset {
    name: &'static str,
    kind: ProviderKind,
    key_env: &'static str,
    base_env: &'static str,
    default_base: &'static str,
    prefixes: &'static [&'static str],
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "openai",
        kind: ProviderKind::OpenAi,
        key_env: "OPENAI_API_KEY",
        base_env: "OPENAI_BASE_URL",
        default_base: OPENAI_DEFAULT_BASE,
        prefixes: OPENAI_PREFIXES,
    },
    Preset {
        name: "gemini",
        kind: ProviderKind::Gemini,
        key_env: "GEMINI_API_KEY",
        base_env: "GEMINI_BASE_URL",
        default_base: GEMINI_DEFAULT_BASE,
        prefixes: GEMINI_PREFIXES,
    },
    Preset {
        name: "anthropic",
        kind: ProviderKind::Anthropic,
        key_env: "ANTHROPIC_API_KEY",
        base_env: "ANTHROPIC_BASE_URL",
        default_base: ANTHROPIC_DEFAULT_BASE,
        prefixes: ANTHROPIC_PREFIXES,
    },
];

/// The environment variables that each turn on a provider without a `[providers]` entry, in
/// preset order: a key for hosted providers, the base URL for local servers (which run keyless).
pub fn provider_env_vars() -> Vec<&'static str> {
    let compat = compat_presets::PRESETS
        .iter()
        .chain(std::iter::once(&compat_presets::AZURE))
        .map(|p| match p.base_url_env {
            Some(base) if !p.key_required => base,
            _ => p.api_key_env,
        });
    PRESETS.iter().map(|p| p.key_env).chain(compat).collect()
}

pub(super) fn validate_providers(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut ConfigErrors,
) -> Vec<ProviderConfig> {
    let mut providers = Vec::new();
    for (name, p) in &raw.providers {
        let field = format!("providers.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            errors.push(&field, "name must be letters, digits, '_' or '-'");
            continue;
        }
        let preset = PRESETS.iter().find(|preset| preset.name == name);
        let kind = match p
            .kind
            .as_deref()
            .map(|text| (text, ProviderKind::parse(text)))
        {
            Some((_, Some(kind))) => kind,
            None => preset.map_or(ProviderKind::OpenAiCompatible, |preset| preset.kind),
            Some((other, None)) => {
                errors.push(
                    &format!("{field}.kind"),
                    format!(
                        "unknown kind {other:?}; expected openai, openai_compatible, anthropic, gemini, vertex or bedrock"
                    ),
                );
                continue;
            }
        };
        // A provider of a preset's kind takes its defaults (base URL, key variable, prefixes).
        let preset = PRESETS.iter().find(|preset| preset.kind == kind);
        // A compatible provider named like a known one (groq, mistral, azure, ...) takes its row.
        let compat = (kind == ProviderKind::OpenAiCompatible)
            .then(|| compat_presets::preset(name))
            .flatten();
        let base_text = match (p.base_url.clone(), preset) {
            // Azure's configured endpoint is the resource; the v1 API sits below it.
            (Some(url), _) if compat.is_some_and(|c| c.name == compat_presets::AZURE.name) => {
                if p.api_version.is_some() {
                    url
                } else {
                    compat_presets::azure_v1_url(&url, "")
                }
            }
            (Some(url), _) => url,
            (None, _) if compat.is_some_and(|c| compat_base(c, env).is_some()) => {
                compat.and_then(|c| compat_base(c, env)).unwrap_or_default()
            }
            (None, Some(preset)) => {
                env(preset.base_env).unwrap_or_else(|| preset.default_base.to_string())
            }
            (None, None) if kind == ProviderKind::Bedrock => {
                let region = p
                    .region
                    .clone()
                    .or_else(|| aws_region(env))
                    .unwrap_or_default();
                crate::providers::bedrock::request::endpoint(&region)
            }
            (None, None) if kind == ProviderKind::Vertex => {
                crate::providers::gemini::request::vertex_base(
                    p.location.as_deref().unwrap_or("global"),
                )
            }
            (None, None) => {
                errors.push(
                    &format!("{field}.base_url"),
                    "is required (no preset of this name and kind)",
                );
                continue;
            }
        };
        let aws = if kind == ProviderKind::Bedrock {
            match aws_credentials(p, env) {
                Ok(aws) => Some(aws),
                Err(problem) => {
                    errors.push(&field, problem);
                    continue;
                }
            }
        } else {
            None
        };
        let vertex = match (kind, &p.project) {
            (ProviderKind::Vertex, Some(project)) => Some((
                project.clone(),
                p.location.clone().unwrap_or_else(|| "global".into()),
            )),
            (ProviderKind::Vertex, None) => {
                errors.push(&format!("{field}.project"), "is required for vertex");
                continue;
            }
            _ => None,
        };
        let Some(base_url) = parse_base_url(&base_text, &format!("{field}.base_url"), errors)
        else {
            continue;
        };
        let key_env = p
            .api_key_env
            .clone()
            .or_else(|| preset.map(|preset| preset.key_env.to_string()))
            .or_else(|| compat.map(|c| c.api_key_env.to_string()));
        let api_key = match (&p.api_key, &key_env) {
            (Some(key), _) => Some(Secret::new(key.clone())),
            (None, Some(var)) => match env(var) {
                Some(key) => Some(Secret::new(key)),
                None if p.api_key_env.is_some() => {
                    errors.push(
                        &format!("{field}.api_key_env"),
                        format!("environment variable {var} is not set"),
                    );
                    None
                }
                None => None,
            },
            (None, None) => None,
        };
        let mut model_prefixes = p.model_prefixes.clone();
        if let Some(preset) = preset
            && model_prefixes.is_empty()
        {
            model_prefixes = preset.prefixes.iter().map(|s| s.to_string()).collect();
        }
        if let Some(compat) = compat
            && model_prefixes.is_empty()
        {
            model_prefixes = compat
                .model_prefixes
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        providers.push(ProviderConfig {
            name: name.clone(),
            kind,
            base_url,
            api_key,
            model_prefixes,
            models: p.models.clone(),
            timeouts: validate_timeouts(&p.timeouts, &format!("{field}.timeouts"), errors),
            vertex,
            aws,
            preset: compat,
            drop_unsupported: p.drop_unsupported,
            api_version: p.api_version.clone(),
        });
    }

    // OpenAI-compatible presets: a key in the environment (or, for local servers, a base URL)
    // is enough.
    for compat in compat_presets::PRESETS
        .iter()
        .chain(std::iter::once(&compat_presets::AZURE))
    {
        if raw.providers.contains_key(compat.name)
            || providers.iter().any(|p| p.name == compat.name)
        {
            continue;
        }
        let key = env(compat.api_key_env);
        let base_from_env = compat.base_url_env.and_then(env);
        let wanted = if compat.key_required {
            key.is_some()
        } else {
            base_from_env.is_some()
        };
        let Some(base_text) = compat_base(compat, env).filter(|_| wanted) else {
            continue;
        };
        let field = compat.base_url_env.unwrap_or(compat.api_key_env);
        if let Some(base_url) = parse_base_url(&base_text, field, errors) {
            providers.push(ProviderConfig {
                name: compat.name.into(),
                kind: ProviderKind::OpenAiCompatible,
                base_url,
                api_key: key.map(Secret::new),
                model_prefixes: compat
                    .model_prefixes
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                models: Vec::new(),
                timeouts: validate_timeouts(&RawTimeouts::default(), "", errors),
                vertex: None,
                aws: None,
                preset: Some(compat),
                drop_unsupported: false,
                api_version: None,
            });
        }
    }

    // The zero-config presets: a key in the environment is enough.
    for preset in PRESETS {
        if raw.providers.contains_key(preset.name) {
            continue;
        }
        let Some(key) = env(preset.key_env) else {
            continue;
        };
        let base_text = env(preset.base_env).unwrap_or_else(|| preset.default_base.to_string());
        if let Some(base_url) = parse_base_url(&base_text, preset.base_env, errors) {
            providers.push(ProviderConfig {
                name: preset.name.into(),
                kind: preset.kind,
                base_url,
                api_key: Some(Secret::new(key)),
                model_prefixes: preset.prefixes.iter().map(|s| s.to_string()).collect(),
                models: Vec::new(),
                timeouts: validate_timeouts(&RawTimeouts::default(), "", errors),
                vertex: None,
                aws: None,
                preset: None,
                drop_unsupported: false,
                api_version: None,
            });
        }
    }
    providers
}

impl ProviderKind {
    /// The kind as written in `[providers.NAME] kind` and `stockyard providers add --kind`.
    pub fn parse(text: &str) -> Option<ProviderKind> {
        Some(match text {
            "openai" => ProviderKind::OpenAi,
            "openai_compatible" => ProviderKind::OpenAiCompatible,
            "anthropic" => ProviderKind::Anthropic,
            "gemini" => ProviderKind::Gemini,
            "vertex" => ProviderKind::Vertex,
            "bedrock" => ProviderKind::Bedrock,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenAiCompatible => "openai_compatible",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Vertex => "vertex",
            ProviderKind::Bedrock => "bedrock",
        }
    }
}

/// The config of a provider that only stored credentials define (`stockyard providers add NAME
/// --kind K [--base-url U]`): what `[providers.NAME]` with that kind and base URL and no key
/// would give, checked the same way. Its keys come from the store, never from the environment.
pub fn provider_config_for(
    name: &str,
    kind: ProviderKind,
    base_url: Option<&str>,
) -> Result<ProviderConfig, String> {
    let mut raw = RawConfig::default();
    raw.providers.insert(
        name.to_string(),
        RawProvider {
            kind: Some(kind.as_str().to_string()),
            base_url: base_url.map(String::from),
            ..RawProvider::default()
        },
    );
    let mut errors = ConfigErrors::default();
    let providers = validate_providers(&raw, &|_| None, &mut errors);
    if !errors.0.is_empty() {
        return Err(errors.to_string().replace('\n', "; "));
    }
    providers
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("provider {name} could not be built"))
}

fn aws_region(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"))
}

/// Bedrock's credentials: from the variables the config names, else the standard AWS ones.
fn aws_credentials(
    p: &RawProvider,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<AwsCredentials, String> {
    let var = |configured: &Option<String>, default: &str| {
        configured.clone().unwrap_or_else(|| default.to_string())
    };
    let key_var = var(&p.access_key_id_env, "AWS_ACCESS_KEY_ID");
    let secret_var = var(&p.secret_access_key_env, "AWS_SECRET_ACCESS_KEY");
    let token_var = var(&p.session_token_env, "AWS_SESSION_TOKEN");
    let access_key_id =
        env(&key_var).ok_or_else(|| format!("environment variable {key_var} is not set"))?;
    let secret =
        env(&secret_var).ok_or_else(|| format!("environment variable {secret_var} is not set"))?;
    let region = p
        .region
        .clone()
        .or_else(|| aws_region(env))
        .ok_or("region is required (or AWS_REGION)")?;
    Ok(AwsCredentials {
        access_key_id,
        secret_access_key: Secret::new(secret),
        session_token: env(&token_var).map(Secret::new),
        region,
    })
}

/// A compatible preset's base URL: its variable's value, else its default; Azure's endpoint
/// becomes the v1 API root.
fn compat_base(
    compat: &compat_presets::Preset,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let base = compat.base_url(env)?;
    if compat.name == compat_presets::AZURE.name {
        return Some(compat_presets::azure_v1_url(&base, ""));
    }
    Some(base)
}

fn parse_base_url(text: &str, field: &str, errors: &mut ConfigErrors) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Some(url),
        Ok(_) => {
            errors.push(field, format!("{text:?} must be an http or https URL"));
            None
        }
        Err(e) => {
            errors.push(field, format!("{text:?} is not a URL ({e})"));
            None
        }
    }
}

fn validate_timeouts(raw: &RawTimeouts, field: &str, errors: &mut ConfigErrors) -> Timeouts {
    let defaults = Timeouts::default();
    let mut ms = |value: Option<u64>, name: &str, default: Duration| {
        let v = value.unwrap_or(default.as_millis() as u64);
        if v == 0 {
            errors.push(&format!("{field}.{name}"), "must be greater than 0");
        }
        Duration::from_millis(v.max(1))
    };
    Timeouts {
        connect: ms(raw.connect_ms, "connect_ms", defaults.connect),
        first_byte: ms(raw.first_byte_ms, "first_byte_ms", defaults.first_byte),
        total: ms(raw.total_ms, "total_ms", defaults.total),
        stream_idle: ms(raw.stream_idle_ms, "stream_idle_ms", defaults.stream_idle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate;

    #[test]
    fn openai_key_in_env_adds_the_preset() {
        let env = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-test".to_string()),
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1".to_string()),
            _ => None,
        };
        let valid = validate(&RawConfig::default(), &env).map_err(|e| e.to_string());
        let providers = valid.map(|v| v.providers).unwrap_or_default();
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].base_url.as_str(), "http://127.0.0.1:9/v1");
    }
}
