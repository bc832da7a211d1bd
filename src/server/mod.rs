//! The HTTP server: [`app::App`] wires the parts together, [`routes`] maps paths to handlers, and
//! [`listener`] accepts connections and shuts down gracefully; [`runtime_file`] tells the CLI a
//! server runs on the database, and [`db_lock`] keeps a second writer off it.

pub mod app;
pub mod db_lock;
mod follow;
pub mod listener;
mod parse_errors;
pub mod routes;
pub mod runtime_file;
pub mod shutdown;

pub use app::App;
pub use listener::{RunningServer, serve};
