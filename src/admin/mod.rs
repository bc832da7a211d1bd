//! Administration: [`apply::Admin::apply`] is the one function every change goes through
//! (validate, persist, append to the ledger, apply); [`http`] is the `/admin` API over it.

pub mod apply;
pub mod http;
pub mod spend;

pub use apply::{Admin, AdminChange, AdminError};
