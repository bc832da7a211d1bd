//! The HTTP server: [`app::App`] wires the parts together, [`routes`] maps paths to handlers, and
//! [`listener`] accepts connections and shuts down gracefully.

pub mod app;
pub mod listener;
pub mod routes;
pub mod shutdown;

pub use app::App;
pub use listener::{RunningServer, serve};
