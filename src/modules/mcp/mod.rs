//! `mcp`: the MCP gateway. One endpoint (`/mcp`, Streamable HTTP; see `server.rs`) in front of
//! many upstream MCP servers (`servers.rs`: child processes over stdio, remote servers over
//! Streamable HTTP). Their tools appear as one list named `server__tool`; a client sees and calls
//! only what the rules (`policy.rs`) allow its key or team, each call is checked against the
//! rules' argument schemas, limited per key, guarded (`guard.rs`), and recorded as a `mcp_calls`
//! row and an audit ledger entry naming the rule and its revision (`gateway.rs`).
//!
//! The module has no request-path hooks: `/mcp` is not a model call. Its state (open
//! connections, breakers, counters) lives in [`Gateway`], kept in `Shared`, so a rebuilt chain
//! installs new rules and servers without dropping the connections that did not change.

pub mod config;
pub mod gateway;
mod guard;
mod methods;
pub mod policy;
pub mod server;
mod servers;
pub mod upstream;

use std::sync::Arc;

use async_trait::async_trait;

pub use config::McpConfig;
pub use gateway::Gateway;
pub use policy::Caller;

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError};
use crate::secret::Secret;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "mcp",
    description: "MCP gateway at /mcp: many MCP servers as one namespaced tool list, per-key and per-team tool rules, every call traced and ledgered",
    order: 97,
    finish_order: 97,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: McpConfig::default_json,
    check: McpConfig::check,
    build,
};

/// Opens a server's sealed bearer token (by server name and config). Installed by the server
/// start-up, which holds the master key.
pub type TokenSource = dyn Fn(&str, &config::ServerConfig) -> Option<Secret<String>> + Send + Sync;

/// The id a server's token is sealed under (the associated data: a sealed token copied to
/// another server does not open).
pub fn token_id(server: &str) -> String {
    format!("mcp:{server}")
}

/// How a server's token is opened; installed once by whoever holds the master key.
#[derive(Default)]
pub struct Tokens {
    source: std::sync::OnceLock<Box<TokenSource>>,
}

impl Tokens {
    pub fn install(&self, source: Box<TokenSource>) {
        // Once per proxy: the vault is the same for every chain.
        let _ = self.source.set(source);
    }

    fn open(&self, name: &str, server: &config::ServerConfig) -> Option<Secret<String>> {
        if let Some(source) = self.source.get()
            && let Some(token) = source(name, server)
        {
            return Some(token);
        }
        let name = server.bearer_env.as_deref()?;
        std::env::var(name).ok().map(Secret::new)
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = McpConfig::parse(config).map_err(ModuleError::Config)?;
    let policy = policy::Policy::new(&config).map_err(ModuleError::Config)?;
    let guard = guard::ResultGuard::new(&config.guard).map_err(ModuleError::Config)?;
    let gateway = deps
        .shared
        .get_or_init(|| Gateway::new(deps.writer.clone()));
    let tokens = deps.shared.get_or_init(Tokens::default);
    let previous = gateway.current();
    let servers = servers::Servers::build(
        previous.as_ref().map(|p| &p.servers),
        &config,
        &|name, server| tokens.open(name, server),
    );
    let installed = Arc::new(gateway::Installed {
        config,
        policy,
        guard,
        servers,
    });
    gateway.register(&installed);
    Ok(Arc::new(Mcp {
        _installed: installed,
    }))
}

/// The gateway, when the module was ever built in this process.
pub fn gateway(deps: &ModuleDeps) -> Option<Arc<Gateway>> {
    deps.shared.get::<Gateway>()
}

/// Holds its copy of the settings alive while its chain is: that is how the gateway knows
/// which copy is in force.
struct Mcp {
    _installed: Arc<gateway::Installed>,
}

#[async_trait]
impl Module for Mcp {
    fn name(&self) -> &'static str {
        "mcp"
    }

    fn hooks(&self) -> Hooks {
        Hooks::NONE
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }
}
