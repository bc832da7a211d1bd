//! Is a server running on this database? Reads the runtime file the server writes beside it
//! (`server::runtime_file`) and checks that its pid lives and its address answers.
//!
//! Why: an offline change made beside a running server lands in the database and the ledger but
//! never in the server's chain, so the record and the behaviour part ways until a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::server::runtime_file;

pub enum LocalServer {
    /// No runtime file, or one left by a server that is gone: changing the file directly is safe.
    None,
    /// A server answers on `url`; `token` is its per-run admin token.
    Running { url: String, token: String },
    /// A server seems to run (its pid lives) but its address does not answer in time.
    Unreachable { pid: u32, addr: SocketAddr },
}

pub async fn find(db: &Path) -> LocalServer {
    let Some(info) = runtime_file::read(db) else {
        return LocalServer::None;
    };
    if !pid_alive(info.pid) {
        tracing::info!(
            pid = info.pid,
            "ignoring a stale server runtime file (process gone)"
        );
        return LocalServer::None;
    }
    let connect = tokio::net::TcpStream::connect(info.addr);
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => LocalServer::Running {
            url: format!("http://{}", info.addr),
            token: info.token,
        },
        // Nothing listens there any more: the pid was reused by another process.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(addr = %info.addr, "ignoring a stale server runtime file (nothing listens)");
            LocalServer::None
        }
        Ok(Err(_)) | Err(_) => LocalServer::Unreachable {
            pid: info.pid,
            addr: info.addr,
        },
    }
}

#[cfg(target_os = "linux")]
fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Elsewhere there is no cheap check without libc; the address check decides alone.
#[cfg(not(target_os = "linux"))]
fn pid_alive(_pid: u32) -> bool {
    true
}
