//! Administration: [`apply::Admin::apply`] is the one function every change goes through
//! (validate, persist, append to the ledger, apply); [`http`] is the `/admin` API over it;
//! [`keys`] holds the key, team and admin-key changes, with their API in `keys_http`.

pub mod apply;
pub mod cache_http;
pub mod credentials;
pub mod http;
pub mod keys;
mod keys_http;
pub mod mcp;
mod mcp_http;
mod ops_http;
pub mod prompts;
pub(crate) mod providers_http;
pub mod spend;

pub use apply::{Admin, AdminChange, AdminError};
pub use credentials::Vault;
