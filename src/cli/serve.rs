//! `stockyard serve`: open the database, build the app, listen, serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use tokio::net::TcpListener;

use super::args::{Cli, ServeArgs};
use super::{CliError, load_config};
use crate::config::AuthMode;
use crate::server::{App, serve, shutdown};

pub async fn run(cli: &Cli, args: &ServeArgs) -> Result<ExitCode, CliError> {
    let mut config = load_config(cli)?;
    if let Some(listen) = &args.listen {
        config.listen = listen.parse().map_err(|e| {
            CliError::Failed(format!(
                "--listen: not an address like 127.0.0.1:4000 ({e})"
            ))
        })?;
    }
    config.allow_open |= args.allow_open;
    let mode = config.auth_mode();
    if mode == AuthMode::Local && !config.listen.ip().is_loopback() {
        return Err(CliError::Failed(format!(
            "refusing to listen on {} with no client keys configured (local mode); set STOCKYARD_API_KEYS, \
             or pass --allow-open to serve without authentication",
            config.listen
        )));
    }
    let listen = config.listen;
    let db = config.db_path.clone();
    let app = App::open(config)?;
    let providers: Vec<String> = app
        .proxy
        .providers
        .providers()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        db = %db.display(),
        providers = %providers.join(","),
        auth = mode.describe(),
        "stockyard listening"
    );
    // A line on stdout that scripts (and tests) can wait for.
    println!("listening on http://{addr}");
    serve(std::sync::Arc::new(app), listener, shutdown::signal()).await?;
    Ok(ExitCode::SUCCESS)
}
