//! The command line, as clap structs only; each subcommand runs in its own file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use super::governance_args::*;

/// Stockyard: one binary, one SQLite file, every LLM provider behind the OpenAI API.
#[derive(Debug, Parser)]
#[command(name = "stockyard", version, about, long_about = None)]
pub struct Cli {
    /// TOML config file (see README for every field).
    #[arg(long, global = true, env = "STOCKYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// SQLite database file [default: stockyard.db]. With a `--store` server database, the
    /// local state path: the ledger key and head files, the lock and runtime files go beside it.
    #[arg(long, global = true, env = "STOCKYARD_DB")]
    pub db: Option<PathBuf>,
    /// Where state lives: sqlite:PATH or postgres://USER@HOST:PORT/DB (also STOCKYARD_STORE,
    /// or `store.url` in the config file).
    #[arg(long, global = true)]
    pub store: Option<String>,
    /// Log line format on stderr: text, or one JSON object per line (with the request id).
    #[arg(
        long,
        global = true,
        env = "STOCKYARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: crate::telemetry::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve(ServeArgs),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print recent traces.
    Traces(TracesArgs),
    /// Print spend grouped by key, team, user, model, provider or day (from the daily rollups).
    Spend(SpendArgs),
    /// Verify or export the audit ledger.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// List, enable, disable or configure modules.
    Modules(ModulesArgs),
    /// Aliases, groups and circuit breakers.
    Routing(RoutingArgs),
    /// Prompt templates: put a new version, get, list, roll back.
    Prompts(PromptsArgs),
    /// Manage the price table.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Virtual (client) keys: create, list, show, update, revoke, rotate.
    Keys(KeysArgs),
    /// Teams: budgets, limits and models that apply on top of their keys'.
    Teams(TeamsArgs),
    /// Keys for the admin API, each with a role (admin or read-only).
    AdminKeys(AdminKeysArgs),
    /// Provider credentials stored encrypted in the database.
    Providers(ProvidersArgs),
    /// The MCP gateway: upstream MCP servers, their tools, and who may call them.
    Mcp(McpArgs),
    /// The master key that encrypts provider credentials.
    Secrets(SecretsArgs),
    /// Print the version and the database schema version.
    Version,
    /// Copy the database to FILE, consistently, while the server runs.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
    /// Response and embeddings caches: figures, and purging entries.
    Cache(CacheArgs),
    /// Replace the database with a backup (no server may be running on it): the backup is
    /// checked, migrated forward if older, and the restore is recorded in the audit ledger.
    Restore {
        /// The backup file to restore from.
        file: PathBuf,
        /// Accept a backup whose audit ledger carries no MAC at all (made by a build from
        /// before the ledger was anchored): its chain is checked, and it is anchored under this
        /// database's key. Without it such a backup is refused, as a ledger whose MACs were
        /// cleared would be.
        #[arg(long)]
        accept_unanchored_ledger: bool,
    },
    /// Alerts fired by the alerts module, newest first.
    Alerts(AlertsArgs),
    /// Copy a single node's SQLite file into an empty PostgreSQL store (keys, teams,
    /// credentials, module state, prompts, the audit ledger with its chain, traces, spend,
    /// cache); no server may be running on the file.
    MigrateStore {
        /// The file to copy, as sqlite:PATH.
        #[arg(long)]
        from: String,
        /// The empty store to fill, as postgres://USER@HOST:PORT/DB.
        #[arg(long)]
        to: String,
    },
    /// Database upkeep: sizes, and converting a file so that retention shrinks it.
    #[command(subcommand)]
    Db(DbCommand),
    /// Tools for developing and measuring Stockyard.
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Fill the database with synthetic traces (keys, teams, models, errors, cache hits) spread
    /// over the last days, to try the console at scale; no server may be running on it.
    Seed {
        /// How many traces.
        #[arg(long)]
        traces: u64,
        /// Over how many days back from now.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// How far back (`24h`, `7d`).
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Most alerts shown.
    #[arg(long, default_value_t = 50)]
    pub last: usize,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Rows and bytes per table, free pages, WAL size; with a server running, also its writer's
    /// queue depth and last checkpoint.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert the database to incremental auto-vacuum (a full VACUUM, once), so that deleted
    /// rows give their space back; no server may be running on it.
    Compact,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4000].
    #[arg(long, env = "STOCKYARD_LISTEN")]
    pub listen: Option<String>,
    /// Allow a non-loopback address with no client keys configured.
    #[arg(long)]
    pub allow_open: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (with STOCKYARD_* overrides); names every bad field.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct TracesArgs {
    /// How many of the newest traces to print.
    #[arg(long, default_value_t = 20)]
    pub last: usize,
    /// Only this requested model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only this HTTP status.
    #[arg(long)]
    pub status: Option<u16>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SpendGroup {
    Key,
    Team,
    User,
    Model,
    Provider,
    Day,
    /// A request tag (the `tags` module); a request counts under each of its tags.
    Tag,
}

#[derive(Debug, Args)]
pub struct SpendArgs {
    /// How to group.
    #[arg(long, value_enum, default_value_t = SpendGroup::Model)]
    pub by: SpendGroup,
    /// How far back: `90m`, `24h`, `7d` (counted in whole UTC days: the day the cut-off falls
    /// in and every day after it).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, each entry's MAC under the ledger key and the published head; exit 0
    /// printing the head as SEQ:HASH, or 1 naming the first bad entry or the cut.
    Verify {
        /// A head published elsewhere (a log line, a ticket), as SEQ:HASH; the ledger must hold it.
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<crate::ledger::Head>,
    },
    /// Write every entry as JSON lines.
    Export {
        /// Output file [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ModulesArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: ModulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModulesCommand {
    /// List modules, their state and config.
    List,
    /// Enable a module.
    Enable { name: String },
    /// Disable a module.
    Disable { name: String },
    /// Set config fields: `stockyard modules set request_log capture=all`.
    Set {
        name: String,
        /// KEY=VALUE pairs; VALUE is read as JSON when it parses, else as a string.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct RoutingArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: RoutingCommand,
}

#[derive(Debug, Subcommand)]
pub enum RoutingCommand {
    /// Print aliases and groups.
    Show,
    /// Point an alias at a group or a model: `stockyard routing alias fast groq/llama-3.3-70b-versatile`.
    Alias { name: String, target: String },
    /// Delete an alias.
    Unalias { name: String },
    /// Create or replace a group from a JSON file (see README for its fields).
    Group {
        name: String,
        /// The group as JSON.
        file: PathBuf,
    },
    /// Delete a group.
    Ungroup { name: String },
    /// List circuit breakers (needs --server: breaker state lives in the running server).
    Breakers,
    /// Force a deployment's breaker open.
    Open {
        deployment: String,
        /// For how long.
        #[arg(long, default_value_t = 60_000)]
        for_ms: u64,
    },
    /// Reset (close) a deployment's breaker.
    Reset { deployment: String },
}

#[derive(Debug, Args)]
pub struct PromptsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: PromptsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PromptsCommand {
    /// Store a new version of a template from a JSON file (`{"messages": [...]}` or
    /// `{"variants": [...]}`); it goes in force at once.
    Put {
        name: String,
        /// The template as JSON.
        file: PathBuf,
    },
    /// Print a version's definition (default: the one in force).
    Get {
        name: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// List templates with their version in force and newest version.
    List,
    /// Put an older version back in force (default: the one before the version in force).
    Rollback {
        name: String,
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Load a price file (the bundled file's format) into the database.
    Update { file: PathBuf },
}

/// Where a key change goes: `--server URL --admin-key KEY`, else the server running on the
/// database, else the database directly.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// A running server (`http://127.0.0.1:4000`); without it the database is changed directly.
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// Admin key for --server.
    #[arg(
        long,
        global = true,
        env = "STOCKYARD_ADMIN_KEY",
        hide_env_values = true
    )]
    pub admin_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProvidersArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: ProvidersCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Store a provider key, encrypted: `echo "$KEY" | stockyard providers add groq --kind
    /// openai_compatible --key-stdin`. A NAME the config does not define becomes a provider; a
    /// NAME with keys already gets one more in its pool.
    Add {
        name: String,
        /// openai, openai_compatible, anthropic, gemini or vertex.
        #[arg(long)]
        kind: String,
        /// For a provider the config does not define, when not the kind's default.
        #[arg(long)]
        base_url: Option<String>,
        /// Read the key from standard input (the only way: a key on the command line ends up in
        /// shell history and process listings).
        #[arg(long)]
        key_stdin: bool,
        /// A name to tell this key apart in listings.
        #[arg(long)]
        label: Option<String>,
    },
    /// List providers and their stored credentials (id, fingerprint), never a key.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a stored credential by id, or every stored credential of a provider by name.
    Remove { target: String },
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every stored credential under a new master key, in one transaction, and
    /// replace the key file. With STOCKYARD_MASTER_KEY set, give the new key with
    /// --new-key-file and set the variable to it before the next start.
    Rotate {
        /// The new key (hex or base64 of 32 bytes) [default: a new random key].
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes, hits, misses and savings of each cache.
    Stats,
    /// Remove entries: those of a model, of a client key, or all of them.
    Purge {
        /// Only entries of this model (after alias resolution).
        #[arg(long)]
        model: Option<String>,
        /// Only entries of this client key's namespace.
        #[arg(long)]
        key: Option<String>,
        /// Every entry.
        #[arg(long, conflicts_with_all = ["model", "key"])]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: McpCommand,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// List, add or remove upstream MCP servers (no subcommand: list).
    Servers {
        #[command(subcommand)]
        action: Option<McpServersAction>,
    },
    /// Every upstream server's tools, asked of the running server.
    Tools {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add (or replace) a rule that allows tools: `stockyard mcp allow ci-echo --key KEY_ID
    /// --mcp-server github --tool 'search_*'`.
    Allow(McpRuleArgs),
    /// Add (or replace) a rule that refuses tools, evaluated in order with the others.
    Deny(McpRuleArgs),
    /// Remove a rule by id.
    Unrule { id: String },
}

#[derive(Debug, Subcommand)]
pub enum McpServersAction {
    List {
        #[arg(long)]
        json: bool,
    },
    /// A local server run over stdio (`stockyard mcp servers add files -- npx -y server-files`)
    /// or a remote one over Streamable HTTP (`--url`).
    Add {
        name: String,
        #[arg(long)]
        url: Option<String>,
        /// The program and its arguments, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
        /// Read a bearer token for a remote server from standard input; it is stored sealed.
        #[arg(long)]
        token_stdin: bool,
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    Remove {
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct McpRuleArgs {
    /// The rule's id, named in refusals and in the ledger.
    pub id: String,
    /// Key ids the rule is for (repeatable); with no --key and no --team, everyone.
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Team ids the rule is for (repeatable).
    #[arg(long = "team")]
    pub teams: Vec<String>,
    /// MCP server name globs (repeatable; none: every server). Not `--server`, which names the
    /// running stockyard server.
    #[arg(long = "mcp-server")]
    pub servers: Vec<String>,
    /// Tool name globs, without the server prefix (repeatable; none: every tool).
    #[arg(long = "tool")]
    pub tools: Vec<String>,
    /// A JSON Schema the arguments must satisfy (allow rules only).
    #[arg(long)]
    pub arguments: Option<String>,
}
