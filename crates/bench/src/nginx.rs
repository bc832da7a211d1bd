//! The optional floor: a plain nginx reverse proxy in front of the same mock, run the same way as
//! Stockyard (one process, same CPU pin), so the table shows what proxying itself costs on this
//! machine. Used only when `nginx` is on `PATH`; everything it writes stays in the temp dir.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::procs::{Proc, command_on};

const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes the config, starts nginx and waits until it accepts connections.
pub fn start(
    nginx: &Path,
    dir: &Path,
    mock: SocketAddr,
    cpu: Option<usize>,
) -> Result<(Proc, SocketAddr), String> {
    let listen = free_port()?;
    let prefix = dir.join("nginx");
    std::fs::create_dir(&prefix)
        .map_err(|e| format!("could not create {}: {e}", prefix.display()))?;
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config(&prefix, listen, mock))
        .map_err(|e| format!("could not write {}: {e}", conf.display()))?;

    let mut cmd = command_on(nginx, cpu);
    // `-e stderr` keeps nginx from opening its compiled-in error log (often /var/log/nginx,
    // not writable here) before it reads our config.
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg("stderr");
    let (mut proc, _) = Proc::start("nginx", cmd, dir, None, READY_TIMEOUT)?;
    // nginx prints nothing when ready, so poll the port.
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        proc.check_alive()?;
        if TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_ok() {
            return Ok((proc, listen));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "nginx did not accept connections on {listen} within {}s{}",
                READY_TIMEOUT.as_secs(),
                proc.stderr_report(40)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago. nginx can't report a port it picked itself, so
/// there is a small race with other programs; a clash shows up as nginx failing to start.
fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("could not find a free port for nginx: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("could not find a free port for nginx: {e}"))
}

fn config(prefix: &Path, listen: SocketAddr, mock: SocketAddr) -> String {
    let p = prefix.display();
    // One process, no daemon: the benchmark watches one pid's CPU and RSS, as for Stockyard.
    // `proxy_buffering off` relays SSE chunks as they arrive, as Stockyard does, so TTFB is
    // comparable. The keepalive_requests limits are raised because nginx otherwise closes a
    // keep-alive connection after 1000 requests, which would add reconnects to its numbers only.
    format!(
        "worker_processes 1;
daemon off;
master_process off;
error_log stderr;
pid {p}/nginx.pid;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;

    upstream mock {{
        server {mock};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
        }}
    }}
}}
"
    )
}
