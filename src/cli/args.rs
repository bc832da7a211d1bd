//! The command line, as clap structs only; each subcommand runs in its own file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stockyard: one binary, one SQLite file, every LLM provider behind the OpenAI API.
#[derive(Debug, Parser)]
#[command(name = "stockyard", version, about, long_about = None)]
pub struct Cli {
    /// TOML config file (see README for every field).
    #[arg(long, global = true, env = "STOCKYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// SQLite database file [default: stockyard.db].
    #[arg(long, global = true, env = "STOCKYARD_DB")]
    pub db: Option<PathBuf>,
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
    /// Manage the price table.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Print the version and the database schema version.
    Version,
    /// Copy the database to FILE, consistently, while the server runs.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
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
    /// Set config fields: `stockyard modules set trace capture_bodies=true`.
    Set {
        name: String,
        /// KEY=VALUE pairs; VALUE is read as JSON when it parses, else as a string.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct RoutingArgs {
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

#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// Load a price file (the bundled file's format) into the database.
    Update { file: PathBuf },
}
