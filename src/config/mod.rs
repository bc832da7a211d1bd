//! Configuration: defaults, then a TOML file, then `STOCKYARD_*` environment variables
//! ([`load`]), checked by [`validate`] into the types runtime code sees ([`ValidConfig`]).

mod error;
mod load;
mod raw;
mod valid;

pub use error::{ConfigError, ConfigErrors};
pub use load::{load, load_from_str};
pub use raw::{
    RawAdmin, RawAuth, RawConfig, RawModel, RawPrice, RawProvider, RawServer, RawStore, RawTimeouts,
};
pub use valid::{
    AuthMode, AwsCredentials, ModelEntry, ModuleSetting, ProviderConfig, ProviderKind,
    QueueFullPolicy, ServerLimits, StoreConfig, Timeouts, ValidConfig, provider_config_for,
    provider_env_vars, validate,
};
