//! Checked configuration: the only form runtime code sees. [`validate`] is pure (the environment is
//! passed in) and reports every problem at once, each naming its field.
//!
//! This file holds the checked types and [`validate`] with the checks of the listener, keys,
//! modules, models, store and limits; `providers.rs` resolves `[providers.*]` and the presets
//! that a key in the environment turns on.

mod providers;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::{ConfigErrors, RawConfig};
use crate::cost::Price;
use crate::secret::Secret;
use crate::store::StoreUrl;
use providers::validate_providers;

pub use providers::{provider_config_for, provider_env_vars};

#[derive(Clone, Debug)]
pub struct ValidConfig {
    pub listen: SocketAddr,
    /// The SQLite file (`db`, `--db`, or the path of a `sqlite:` store URL); the ledger key and
    /// head files sit beside it.
    pub db_path: PathBuf,
    /// A store URL naming another backend; `None` means SQLite at `db_path` (see
    /// [`ValidConfig::store_url`]).
    pub store_url: Option<StoreUrl>,
    pub allow_open: bool,
    pub shutdown_grace: Duration,
    pub auth_keys: Vec<Secret<String>>,
    pub admin_key: Option<Secret<String>>,
    /// `STOCKYARD_LEDGER_KEY` (hex or base64); without it the key file beside the database is used.
    pub ledger_key: Option<Secret<String>>,
    /// `STOCKYARD_MASTER_KEY` (hex or base64 of 32 bytes), sealing provider credentials at rest;
    /// without it the key file beside the database is used.
    pub master_key: Option<Secret<String>>,
    pub providers: Vec<ProviderConfig>,
    pub models: Vec<ModelEntry>,
    /// Initial module state from the file, by module name.
    pub module_config: BTreeMap<String, ModuleSetting>,
    pub store: StoreConfig,
    pub limits: ServerLimits,
    pub price_overrides: Vec<(String, Price)>,
    /// The web console at `/ui` (`[ui] enabled`, default on; it still needs an admin key to log in).
    pub ui_enabled: bool,
    /// Minutes a console session lasts without use (`[ui] session_idle_minutes`, default 60).
    pub ui_session_idle: Duration,
}

impl ValidConfig {
    /// The store to open: the configured non-SQLite URL, else SQLite at `db_path`. Derived on
    /// each call so `--db` (applied after validation) moves the SQLite file as it always has.
    pub fn store_url(&self) -> StoreUrl {
        self.store_url
            .clone()
            .unwrap_or_else(|| StoreUrl::Sqlite(self.db_path.clone()))
    }

    /// Who may use the proxy, from the keys and `allow_open` alone: no module toggle changes it.
    pub fn auth_mode(&self) -> AuthMode {
        if !self.auth_keys.is_empty() {
            AuthMode::Keys
        } else if self.allow_open {
            AuthMode::Open
        } else {
            AuthMode::Local
        }
    }
}

/// The effective client authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Client keys are configured: every proxied and listed route requires one.
    Keys,
    /// No keys, loopback only: whoever reaches the port may use it.
    Local,
    /// No keys, and `allow_open` says any address may be bound.
    Open,
}

impl AuthMode {
    pub fn describe(self) -> &'static str {
        match self {
            AuthMode::Keys => "keys (every /v1 route requires a client key)",
            AuthMode::Local => "local mode (no client keys; loopback only)",
            AuthMode::Open => "open (no client keys; allow_open set)",
        }
    }
}

/// What the server lets clients hold before any module runs.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    pub body_read_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_body_bytes_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        // Sized so a 2-core machine with little memory stays up under a flood: a thousand
        // requests in flight is far more than two cores proxy at once, and 256 MiB of bodies is
        // what 25 maximal (10 MiB) requests hold.
        ServerLimits {
            body_read_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            max_body_bytes_in_flight: 256 * 1024 * 1024,
        }
    }
}

/// `[modules.NAME]` from the file: `enabled` apart, the rest is the module's own config.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleSetting {
    pub enabled: Option<bool>,
    pub config: serde_json::Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    OpenAiCompatible,
    Anthropic,
    /// The Gemini API, key in `x-goog-api-key`.
    Gemini,
    /// Gemini on Vertex AI: bearer token, project and location.
    Vertex,
    /// AWS Bedrock (Converse), signed with SigV4.
    Bedrock,
}

/// AWS credentials and region for Bedrock.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    pub session_token: Option<Secret<String>>,
    pub region: String,
}

#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Url,
    pub api_key: Option<Secret<String>>,
    pub model_prefixes: Vec<String>,
    pub models: Vec<String>,
    pub timeouts: Timeouts,
    /// Vertex AI only: (project, location).
    pub vertex: Option<(String, String)>,
    /// Bedrock only.
    pub aws: Option<AwsCredentials>,
    /// Drop parameters the provider cannot honour instead of refusing the request.
    pub drop_unsupported: bool,
    /// Azure OpenAI's dated API version, when the classic deployment URLs are wanted.
    pub api_version: Option<String>,
    /// The OpenAI-compatible preset this provider follows (its quirks and auth style).
    pub preset: Option<&'static crate::providers::openai::presets::Preset>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub total: Duration,
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            total: Duration::from_secs(600),
            stream_idle: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    pub name: String,
    pub provider: String,
    pub upstream_model: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueFullPolicy {
    /// Drop the record at once and count it.
    Drop,
    /// Wait up to this long for room, then drop and count.
    Wait(Duration),
}

#[derive(Clone, Copy, Debug)]
pub struct StoreConfig {
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub batch_interval: Duration,
    pub queue_full: QueueFullPolicy,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            queue_capacity: 65_536,
            batch_size: 512,
            batch_interval: Duration::from_millis(50),
            queue_full: QueueFullPolicy::Wait(Duration::from_millis(100)),
        }
    }
}

pub fn validate(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ValidConfig, ConfigErrors> {
    let mut errors = ConfigErrors::default();

    let listen_text = raw.listen.as_deref().unwrap_or("127.0.0.1:4000");
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|e| {
        errors.push(
            "listen",
            format!("not an address like 127.0.0.1:4000 ({e})"),
        );
        SocketAddr::from(([127, 0, 0, 1], 4000))
    });

    let mut db_path = PathBuf::from(raw.db.as_deref().unwrap_or("stockyard.db"));
    if db_path.as_os_str().is_empty() {
        errors.push("db", "must not be empty");
    }
    let store_url = match raw.store.url.as_deref().map(StoreUrl::parse) {
        None => None,
        Some(Err(problem)) => {
            errors.push("store.url", problem);
            None
        }
        // A SQLite URL is another way to write `db`: keep one source of the path.
        Some(Ok(StoreUrl::Sqlite(path))) => {
            match raw.db.as_deref() {
                Some(db) if path != std::path::Path::new(db) => errors.push(
                    "store.url",
                    format!(
                        "names sqlite file {} but db names {db}; set only one",
                        path.display()
                    ),
                ),
                _ => db_path = path,
            }
            None
        }
        Some(Ok(other)) => Some(other),
    };

    let auth_keys = raw
        .auth
        .keys
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            if key.trim().is_empty() {
                errors.push(&format!("auth.keys[{i}]"), "must not be empty");
                None
            } else {
                Some(Secret::new(key.clone()))
            }
        })
        .collect();
    let admin_key = match raw.admin.key.as_deref() {
        Some(k) if k.len() < 16 => {
            errors.push("admin.key", "must be at least 16 characters");
            None
        }
        Some(k) => Some(Secret::new(k.to_string())),
        None => None,
    };

    let ledger_key = env("STOCKYARD_LEDGER_KEY").filter(|k| !k.trim().is_empty());
    if let Some(Err(e)) = ledger_key
        .as_deref()
        .map(crate::ledger::LedgerKey::from_env_value)
    {
        errors.push("STOCKYARD_LEDGER_KEY", e);
    }
    let ledger_key = ledger_key.map(Secret::new);

    let master_key = env("STOCKYARD_MASTER_KEY").filter(|k| !k.trim().is_empty());
    if let Some(Err(e)) = master_key
        .as_deref()
        .map(crate::secrets::MasterKey::from_env_value)
    {
        errors.push("STOCKYARD_MASTER_KEY", e);
    }
    let master_key = master_key.map(Secret::new);

    let providers = validate_providers(raw, env, &mut errors);
    let models = validate_models(raw, &providers, &mut errors);

    let mut module_config = BTreeMap::new();
    for (name, value) in &raw.modules {
        let field = format!("modules.{name}");
        let mut json = match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                errors.push(&field, "must be a table");
                continue;
            }
            Err(e) => {
                errors.push(&field, e);
                continue;
            }
        };
        let enabled = match json.remove("enabled") {
            None => None,
            Some(serde_json::Value::Bool(b)) => Some(b),
            Some(other) => {
                errors.push(
                    &format!("{field}.enabled"),
                    format!("must be true or false (got {other})"),
                );
                None
            }
        };
        let config = serde_json::Value::Object(json);
        if let Err(problem) = crate::modules::registry::check_config(name, &config) {
            errors.push(&field, problem);
        }
        module_config.insert(name.clone(), ModuleSetting { enabled, config });
    }

    let store = validate_store(raw, &mut errors);
    let limits = validate_limits(raw, &mut errors);

    let mut price_overrides = Vec::new();
    for (model, price) in &raw.prices {
        match Price::from_usd_per_million(price) {
            Ok(p) => price_overrides.push((model.clone(), p)),
            Err(problem) => errors.push(&format!("prices.{model}"), problem),
        }
    }

    let ui_idle_minutes = raw.ui.session_idle_minutes.unwrap_or(60);
    if ui_idle_minutes == 0 {
        errors.push("ui.session_idle_minutes", "must be at least 1");
    }

    if !errors.0.is_empty() {
        return Err(errors);
    }
    Ok(ValidConfig {
        listen,
        db_path,
        store_url,
        allow_open: raw.allow_open,
        shutdown_grace: Duration::from_millis(raw.shutdown_grace_ms.unwrap_or(30_000)),
        auth_keys,
        admin_key,
        ledger_key,
        master_key,
        providers,
        models,
        module_config,
        store,
        limits,
        price_overrides,
        ui_enabled: raw.ui.enabled.unwrap_or(true),
        ui_session_idle: Duration::from_secs(60 * ui_idle_minutes),
    })
}

fn validate_limits(raw: &RawConfig, errors: &mut ConfigErrors) -> ServerLimits {
    let defaults = ServerLimits::default();
    let server = &raw.server;
    let timeout_ms = server
        .body_read_timeout_ms
        .unwrap_or(defaults.body_read_timeout.as_millis() as u64);
    if timeout_ms == 0 {
        errors.push("server.body_read_timeout_ms", "must be at least 1");
    }
    let concurrent = server
        .max_concurrent_requests
        .unwrap_or(defaults.max_concurrent_requests);
    if concurrent == 0 {
        errors.push("server.max_concurrent_requests", "must be at least 1");
    }
    let in_flight = server
        .max_body_bytes_in_flight
        .unwrap_or(defaults.max_body_bytes_in_flight);
    if in_flight < 1024 {
        errors.push(
            "server.max_body_bytes_in_flight",
            format!("must be at least 1024 (got {in_flight})"),
        );
    }
    ServerLimits {
        body_read_timeout: Duration::from_millis(timeout_ms),
        max_concurrent_requests: concurrent,
        max_body_bytes_in_flight: in_flight,
    }
}

fn validate_models(
    raw: &RawConfig,
    providers: &[ProviderConfig],
    errors: &mut ConfigErrors,
) -> Vec<ModelEntry> {
    let mut models = Vec::new();
    for (i, m) in raw.models.iter().enumerate() {
        let field = format!("models[{i}]");
        if m.name.is_empty() {
            errors.push(&format!("{field}.name"), "must not be empty");
            continue;
        }
        let Some((provider, upstream)) = m.target.split_once('/') else {
            errors.push(&format!("{field}.target"), "must be provider/model");
            continue;
        };
        if !providers.iter().any(|p| p.name == provider) {
            let known: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            errors.push(
                &format!("{field}.target"),
                format!(
                    "unknown provider {provider:?}; configured: {}",
                    known.join(", ")
                ),
            );
            continue;
        }
        models.push(ModelEntry {
            name: m.name.clone(),
            provider: provider.to_string(),
            upstream_model: upstream.to_string(),
        });
    }
    models
}

fn validate_store(raw: &RawConfig, errors: &mut ConfigErrors) -> StoreConfig {
    let defaults = StoreConfig::default();
    let queue_capacity = raw.store.queue_capacity.unwrap_or(defaults.queue_capacity);
    if queue_capacity == 0 {
        errors.push("store.queue_capacity", "must be at least 1");
    }
    let batch_size = raw.store.batch_size.unwrap_or(defaults.batch_size);
    if batch_size == 0 || batch_size > 100_000 {
        errors.push(
            "store.batch_size",
            format!("must be 1..=100000 (got {batch_size})"),
        );
    }
    let batch_interval = raw
        .store
        .batch_interval_ms
        .map(Duration::from_millis)
        .unwrap_or(defaults.batch_interval);
    let wait = Duration::from_millis(raw.store.queue_wait_ms.unwrap_or(100));
    let queue_full = match raw.store.queue_full.as_deref() {
        None | Some("wait") => QueueFullPolicy::Wait(wait),
        Some("drop") => QueueFullPolicy::Drop,
        Some(other) => {
            errors.push(
                "store.queue_full",
                format!("unknown policy {other:?}; expected wait or drop"),
            );
            defaults.queue_full
        }
    };
    StoreConfig {
        queue_capacity: queue_capacity.max(1),
        batch_size: batch_size.clamp(1, 100_000),
        batch_interval,
        queue_full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_from_str;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_config_is_local_mode_on_port_4000() {
        let raw = RawConfig::default();
        let valid = validate(&raw, &no_env).map_err(|e| e.to_string());
        assert!(
            valid
                .as_ref()
                .is_ok_and(|v| v.listen.port() == 4000 && v.auth_keys.is_empty())
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let raw = load_from_str(
            "listen = \"nowhere\"\n[store]\nbatch_size = 0\nqueue_full = \"panic\"\n[providers.local]\nkind = \"weird\"\n",
        );
        let err = raw
            .ok()
            .map(|r| validate(&r, &no_env))
            .and_then(|v| v.err());
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        for field in [
            "listen:",
            "store.batch_size:",
            "store.queue_full:",
            "providers.local.kind:",
        ] {
            assert!(text.contains(field), "missing {field} in {text}");
        }
    }

    #[test]
    fn model_target_must_name_a_provider() {
        let raw = load_from_str("[[models]]\nname = \"fast\"\ntarget = \"nowhere/llama\"\n");
        let err = raw
            .ok()
            .map(|r| validate(&r, &no_env))
            .and_then(|v| v.err());
        assert!(err.is_some_and(|e| e.to_string().contains("models[0].target")));
    }

    #[test]
    fn store_url_defaults_to_the_db_file_and_is_checked_by_field() {
        let store = |toml: &str| {
            load_from_str(toml)
                .ok()
                .map(|r| validate(&r, &no_env).map_err(|e| e.to_string()))
        };
        let url = |toml: &str| store(toml).and_then(|v| v.ok()).map(|v| v.store_url());
        assert_eq!(
            url("db = \"x.db\"\n"),
            Some(StoreUrl::Sqlite("x.db".into()))
        );
        assert_eq!(
            url("[store]\nurl = \"sqlite:y.db\"\n"),
            Some(StoreUrl::Sqlite("y.db".into()))
        );
        assert_eq!(
            url("[store]\nurl = \"postgres://postgres@127.0.0.1:5432/test\"\n")
                .map(|u| u.backend()),
            Some("postgres")
        );
        let err = store("[store]\nurl = \"mysql://h/db\"\n").and_then(|v| v.err());
        assert!(err.is_some_and(|e| e.starts_with("store.url: unknown store \"mysql\"")));
        let err = store("db = \"a.db\"\n[store]\nurl = \"sqlite:b.db\"\n").and_then(|v| v.err());
        assert!(err.is_some_and(|e| e.contains("store.url:") && e.contains("set only one")));
    }
}
