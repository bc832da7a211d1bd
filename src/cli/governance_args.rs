//! The governance commands' arguments (`keys`, `teams`, `admin-keys`, and the limits they share),
//! as clap structs; re-exported by [`super::args`].

use clap::{Args, Subcommand, ValueEnum};

use super::args::ServerArgs;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PeriodArg {
    Day,
    Week,
    Month,
    Total,
}

/// Limits of a key or a team; on `update`, only the flags given change.
#[derive(Debug, Default, Args)]
pub struct LimitArgs {
    /// Budget in US dollars (a decimal like 12.50), per --period.
    #[arg(long, value_name = "USD", requires = "period")]
    pub budget: Option<String>,
    /// The budget's period.
    #[arg(long, value_enum)]
    pub period: Option<PeriodArg>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Allowed models, as globs: `gpt-4o*,claude-*` (default: every model).
    #[arg(long, value_delimiter = ',', value_name = "GLOB,...")]
    pub models: Option<Vec<String>>,
}

/// A field `update --clear` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClearField {
    Budget,
    Rpm,
    Tpm,
    Models,
    Team,
    Expires,
    Metadata,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (once: only its hash is kept).
    Create {
        name: String,
        /// The team whose limits apply on top of the key's.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Expire after this long: `90d`, `12h`, `30m`.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// KEY=VALUE, recorded with the key (repeat for several).
        #[arg(long, value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// Print a JSON object (the key in its field `key`).
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show { id: String },
    /// Change a key's name, team, limits, expiry or metadata.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Replaces the metadata: KEY=VALUE (repeat for several).
        #[arg(long, value_name = "KEY=VALUE")]
        metadata: Vec<String>,
        /// Remove a limit, the team, the expiry or the metadata.
        #[arg(long, value_enum)]
        clear: Vec<ClearField>,
    },
    /// Revoke a key: refused from the next request on.
    Revoke { id: String },
    /// Replace a key's secret (same limits); the old one is revoked at once.
    Rotate {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct TeamsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: TeamsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team.
    Create {
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List teams.
    List,
    /// Show a team and its keys.
    Show { name: String },
    /// Change a team's limits; its keys see the change on their next request.
    Update {
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
        /// Remove a limit (budget, rpm, tpm, models).
        #[arg(long, value_enum)]
        clear: Vec<ClearField>,
    },
    /// Delete a team that has no live key.
    Delete { name: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Admin,
    ReadOnly,
}

#[derive(Debug, Args)]
pub struct AdminKeysArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: AdminKeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminKeysCommand {
    /// Create an admin key and print it (once).
    Create {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        json: bool,
    },
    /// List admin keys (never the keys themselves).
    List,
    /// Revoke an admin key, by id or name.
    Revoke { id: String },
}
