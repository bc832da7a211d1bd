//! Is a server running on this database? Reads the runtime file the server writes beside it
//! (`server::runtime_file`) and checks that its pid lives and its address answers. Asked only
//! once the database's lock is found held (`server::db_lock`).
//!
//! Why: an offline change made beside a running server lands in the database and the ledger but
//! never in the server's chain, so the record and the behaviour part ways until a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::secret::Secret;
use crate::server::runtime_file;

#[derive(Debug)]
pub enum LocalServer {
    /// No runtime file, or one left by a server that is gone.
    None,
    /// A server answers on `url`; `token` is its per-run admin token.
    Running { url: String, token: Secret<String> },
    /// A server seems to run (its pid lives, something holds its address) but does not answer
    /// like one in time.
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
    let url = format!("http://{}", info.addr);
    match answers(info.addr).await {
        Ok(true) => LocalServer::Running {
            url,
            token: info.token,
        },
        // Nothing listens there any more: the pid was reused by another process.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(addr = %info.addr, "ignoring a stale server runtime file (nothing listens)");
            LocalServer::None
        }
        Ok(false) | Err(_) => LocalServer::Unreachable {
            pid: info.pid,
            addr: info.addr,
        },
    }
}

/// Whether `addr` answers `GET /health` like a Stockyard server within two seconds. A bare
/// connect is not enough: a wedged server accepts connections (the kernel does) but never answers.
async fn answers(addr: SocketAddr) -> std::io::Result<bool> {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let text = String::from_utf8_lossy(&answer);
        Ok(text.starts_with("HTTP/1.1 200") && text.contains("\"status\":\"ok\""))
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(result) => result,
        Err(_) => Ok(false),
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
