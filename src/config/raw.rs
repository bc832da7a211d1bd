//! The configuration as written in TOML. Every field has a default, so an empty file (or none) is
//! a working configuration. The doc comment on each field is its reference documentation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Address to listen on. Default `127.0.0.1:4000`.
    pub listen: Option<String>,
    /// Path of the SQLite database file. Default `stockyard.db` in the working directory.
    pub db: Option<String>,
    /// Allow binding a non-loopback address with no client keys configured.
    pub allow_open: bool,
    /// Milliseconds that in-flight requests and streams get to finish on shutdown. Default 30000.
    pub shutdown_grace_ms: Option<u64>,
    pub auth: RawAuth,
    pub admin: RawAdmin,
    /// Upstream providers by name; the name is the `name/` prefix of model names.
    pub providers: BTreeMap<String, RawProvider>,
    /// Public model names and what they resolve to.
    pub models: Vec<RawModel>,
    /// Initial configuration of each module, by module name (`[modules.request_limits]`). State
    /// changed later through the admin API is kept in the database and takes precedence.
    pub modules: BTreeMap<String, toml::Value>,
    pub store: RawStore,
    pub server: RawServer,
    /// Price overrides by model name, in USD per million tokens.
    pub prices: BTreeMap<String, RawPrice>,
    pub ui: RawUi,
}

/// The web console at `/ui` on the proxy's port.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUi {
    /// Serve the console. Default true (logging in still takes an admin key). Also
    /// `STOCKYARD_UI__ENABLED`.
    pub enabled: Option<bool>,
    /// Minutes a console session lasts without use. Default 60.
    pub session_idle_minutes: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// Client keys accepted as `Authorization: Bearer KEY` on `/v1`. Empty means local mode.
    /// Also `STOCKYARD_API_KEYS` (comma-separated).
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    /// Bearer key for `/admin`. Without it the admin API is off. Also `STOCKYARD_ADMIN_KEY`.
    pub key: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawProvider {
    /// `openai`, `openai_compatible`, `anthropic`, `gemini`, `vertex` or `bedrock`. Default: the preset of the
    /// same name (`openai`, `anthropic`, `gemini`), else `openai_compatible`.
    pub kind: Option<String>,
    /// Base URL including the version path, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: Option<String>,
    /// The provider key itself. Prefer `api_key_env`.
    pub api_key: Option<String>,
    /// Name of the environment variable holding the provider key.
    pub api_key_env: Option<String>,
    /// Drop request parameters this provider cannot honour instead of refusing the request (400).
    pub drop_unsupported: bool,
    /// Azure OpenAI: use the dated per-deployment API with this `api-version` instead of the v1 API.
    pub api_version: Option<String>,
    /// Bedrock: the AWS region (else `AWS_REGION`).
    pub region: Option<String>,
    /// Bedrock: variables holding the credentials (default the standard `AWS_*` ones).
    pub access_key_id_env: Option<String>,
    pub secret_access_key_env: Option<String>,
    pub session_token_env: Option<String>,
    /// Vertex AI: the Google Cloud project.
    pub project: Option<String>,
    /// Vertex AI: the location (`us-central1`, `global`). Default `global`.
    pub location: Option<String>,
    /// Bare model-name prefixes routed to this provider (`llama-` sends `llama-3` here).
    pub model_prefixes: Vec<String>,
    /// Models this provider serves, listed by `GET /v1/models`.
    pub models: Vec<String>,
    pub timeouts: RawTimeouts,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    /// TCP (and TLS) connect timeout. Default 5000.
    pub connect_ms: Option<u64>,
    /// Time from sending the request to the response headers. Default 60000.
    pub first_byte_ms: Option<u64>,
    /// Whole request, body included. Default 600000.
    pub total_ms: Option<u64>,
    /// Longest gap between two chunks of a stream. Default 60000.
    pub stream_idle_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// The name clients send.
    pub name: String,
    /// What it resolves to: `provider/upstream-model`.
    pub target: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStore {
    /// Where state lives: `sqlite:PATH` (SQLite file) or `postgres://USER@HOST:PORT/DB` (a
    /// PostgreSQL database; `db` is then the local path for the ledger key and head files).
    /// Default `sqlite:` + `db`. Also `STOCKYARD_STORE` and `--store`.
    pub url: Option<String>,
    /// Trace records the writer queue holds before the full-queue policy applies. Default 65536.
    pub queue_capacity: Option<usize>,
    /// Most rows committed in one transaction. Default 512.
    pub batch_size: Option<usize>,
    /// Longest a record waits for its batch to fill before commit. Default 50.
    pub batch_interval_ms: Option<u64>,
    /// `wait` (wait up to `queue_wait_ms`, then drop) or `drop` (drop at once). Default `wait`.
    pub queue_full: Option<String>,
    /// How long `wait` waits for room in the queue. Default 100.
    pub queue_wait_ms: Option<u64>,
}

/// Limits on what clients may hold of the server before any module runs.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// Longest a client may take to send its request body, in milliseconds (408 after). Default
    /// 30000.
    pub body_read_timeout_ms: Option<u64>,
    /// Requests handled at once; over it a request gets 503 with `retry-after`. Default 1024.
    pub max_concurrent_requests: Option<usize>,
    /// Bytes of request bodies held at once by all requests; over it a request gets 503 with
    /// `retry-after`. Default 256 MiB.
    pub max_body_bytes_in_flight: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrice {
    /// USD per million input tokens.
    pub input_per_million: Option<f64>,
    /// USD per million input tokens read from cache.
    pub cached_input_per_million: Option<f64>,
    /// USD per million input tokens written to cache.
    pub cache_write_per_million: Option<f64>,
    /// USD per million output tokens.
    pub output_per_million: Option<f64>,
    /// USD per million reasoning tokens, when billed apart from output.
    pub reasoning_per_million: Option<f64>,
}
