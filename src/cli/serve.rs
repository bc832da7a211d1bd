//! `stockyard serve`: lock the database, open it, build the app, listen, publish the runtime file
//! beside the database, serve until SIGINT/SIGTERM, then remove the runtime file and let go of the
//! lock. The lock is taken before anything is read, so no offline change can slip in between
//! reading the module states and publishing the runtime file, and a second `serve` on the same
//! database is refused instead of replacing the first one's runtime file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use tokio::net::TcpListener;

use super::args::{Cli, ServeArgs};
use super::{CliError, load_config};
use crate::config::AuthMode;
use crate::server::db_lock::DbLock;
use crate::server::runtime_file::{self, RuntimeFile};
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
    // Without static keys, stored virtual keys may still require one, so the final word on the
    // mode comes once the database is open; with no database yet there are none, and nothing
    // is created for a refusal.
    let listen = config.listen;
    let db = config.db_path.clone();
    if config.auth_mode() == AuthMode::Local && !listen.ip().is_loopback() && !db.exists() {
        return Err(CliError::Failed(open_refused(listen)));
    }
    // A backend this build lacks is refused before any file (the lock's) is made beside it.
    crate::store::ensure_built(&config.store_url())?;
    let Some(_lock) = DbLock::try_acquire(&db)? else {
        return Err(CliError::Failed(already_served(&db)));
    };
    let app = App::open(config)?;
    let mode = app.auth_mode();
    if mode == AuthMode::Local && !listen.ip().is_loopback() {
        app.writer.shutdown().await?;
        return Err(CliError::Failed(open_refused(listen)));
    }
    let providers: Vec<String> = app
        .proxy
        .providers
        .providers()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    // Tells the CLI on this machine that changes must come here, not to the file. Dropped (and
    // the file removed) when `serve` returns after a clean shutdown.
    let _runtime = RuntimeFile::publish(&db, reachable(addr), &app.local_admin_token)?;
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

fn open_refused(listen: SocketAddr) -> String {
    format!(
        "refusing to listen on {listen} with no client keys (local mode); set STOCKYARD_API_KEYS, \
         create a key with `stockyard keys create`, or pass --allow-open to serve without \
         authentication"
    )
}

/// Why `serve` will not start: another process holds the database's lock.
fn already_served(db: &Path) -> String {
    match runtime_file::read(db) {
        Some(info) => format!(
            "another stockyard serve (pid {}, http://{}) is running on {}; stop it first, or \
             serve another --db",
            info.pid,
            info.addr,
            db.display()
        ),
        None => format!(
            "another stockyard process holds {} (a server starting up, or an offline change); \
             {} is in use, try again when it is done",
            DbLock::path_for(db).display(),
            db.display()
        ),
    }
}

/// An address the local CLI can connect to: a wildcard listen address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}
