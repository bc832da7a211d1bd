//! The one list of modules: name, description, place in the chain, default state, config check
//! and constructor. Adding a module is adding a row here and a folder beside this file.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Module, ModuleDeps, ModuleError};

/// Builds a module from its config.
pub type BuildFn = fn(&Value, &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError>;

pub struct ModuleSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Position in the chain for `on_headers`, `on_request`, `on_response` and `on_event`; lower
    /// runs first.
    pub order: u16,
    /// Position for `on_finish`, lower first: `cost` prices early, so what settles or records
    /// after it sees the real cost; `trace` records last.
    pub finish_order: u16,
    pub enabled_by_default: bool,
    /// Why the module cannot be disabled with these dependencies (`None`: it can). A disable is
    /// then refused by the admin path, and a stored disabled state is overridden at start-up.
    pub required: fn(&ModuleDeps) -> Option<&'static str>,
    pub default_config: fn() -> Value,
    /// Checks a config without building anything (for `config check`).
    pub check: fn(&Value) -> Result<(), String>,
    pub build: BuildFn,
}

pub static MODULES: &[ModuleSpec] = &[
    super::auth::SPEC,
    super::request_limits::SPEC,
    super::rate_limits::SPEC,
    super::budgets::SPEC,
    super::responses::SPEC,
    super::batches::SPEC,
    super::routing::SPEC,
    super::cost::SPEC,
    super::trace::SPEC,
    super::cache::SPEC,
    super::semantic_cache::SPEC,
    super::metrics::SPEC,
    super::retention::SPEC,
    super::backups::SPEC,
    super::alerts::SPEC,
    super::otel::SPEC,
    super::guard_policy::SPEC,
    super::guard_injection::SPEC,
    super::guard_secrets::SPEC,
    super::guard_pii::SPEC,
    super::guard_webhook::SPEC,
    super::guard_schema::SPEC,
    super::tags::SPEC,
    super::route_rules::SPEC,
    super::context_fit::SPEC,
    super::fan_out::SPEC,
    super::prompt_templates::SPEC,
    super::defaults_and_overrides::SPEC,
    super::cost_guard::SPEC,
    super::session_limits::SPEC,
    super::ip_filter::SPEC,
    super::fixtures::SPEC,
    super::request_log::SPEC,
    super::mcp::SPEC,
    super::moderations::SPEC,
];

/// For modules that may always be disabled.
pub fn never_required(_: &ModuleDeps) -> Option<&'static str> {
    None
}

/// The modules a proxy knows: the built-in ones, and any an embedder (or a test) adds.
pub struct Catalogue {
    specs: Vec<&'static ModuleSpec>,
}

impl Catalogue {
    pub fn builtin() -> Catalogue {
        Catalogue::with(&[])
    }

    /// The built-in modules and `extra`; an extra module of a built-in one's name replaces it.
    pub fn with(extra: &[&'static ModuleSpec]) -> Catalogue {
        let mut specs: Vec<&'static ModuleSpec> = MODULES
            .iter()
            .filter(|m| !extra.iter().any(|e| e.name == m.name))
            .collect();
        specs.extend_from_slice(extra);
        Catalogue { specs }
    }

    pub fn specs(&self) -> &[&'static ModuleSpec] {
        &self.specs
    }

    pub fn find(&self, name: &str) -> Option<&'static ModuleSpec> {
        self.specs.iter().copied().find(|m| m.name == name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.specs.iter().map(|m| m.name).collect()
    }
}

pub fn find(name: &str) -> Option<&'static ModuleSpec> {
    MODULES.iter().find(|m| m.name == name)
}

pub fn names() -> Vec<&'static str> {
    MODULES.iter().map(|m| m.name).collect()
}

/// Checks `config` for the module `name`, naming an unknown module.
pub fn check_config(name: &str, config: &Value) -> Result<(), String> {
    match find(name) {
        Some(spec) => (spec.check)(config),
        None => Err(format!(
            "unknown module {name:?}; known: {}",
            names().join(", ")
        )),
    }
}

/// A module's typed config: parsed strictly from JSON, then validated.
pub trait ModuleConfig: DeserializeOwned + Serialize + Default {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    fn parse(value: &Value) -> Result<Self, String> {
        let config: Self = if value.is_null() {
            Self::default()
        } else {
            serde_path_to_error::deserialize(value.clone()).map_err(|e| {
                let path = e.path().to_string();
                if path == "." {
                    e.into_inner().to_string()
                } else {
                    format!("{path}: {}", e.into_inner())
                }
            })?
        };
        config.validate()?;
        Ok(config)
    }

    fn default_json() -> Value {
        serde_json::to_value(Self::default()).unwrap_or(Value::Null)
    }

    fn check(value: &Value) -> Result<(), String> {
        Self::parse(value).map(|_| ())
    }
}
