//! `bare-proxy`, the bench's second floor, must relay what the mock answers unchanged: whole
//! answers, and streams whose chunks it joins into fewer writes. A floor that dropped or mangled
//! bytes would make every figure beside it meaningless.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mock_upstream::MockUpstream;

/// Kills the child on every exit path, so a failed assertion leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bare(upstream: SocketAddr) -> (Killed, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bare-proxy"))
        .arg(upstream.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bare-proxy starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("bare-proxy prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr)
}

/// One request on its own connection; the whole response, head and body, as text.
fn post(addr: SocketAddr, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// The body of a chunked response with the chunk-size lines taken out.
fn dechunk(response: &str) -> String {
    let (_, mut rest) = response.split_once("\r\n\r\n").expect("a head");
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// An answer with the fields that differ between two answers to one request (ids, clocks) left
/// out.
fn steady(text: &str) -> String {
    text.split(',')
        .filter(|field| !field.contains("\"id\"") && !field.contains("\"created\""))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_whole_answers_and_streams_unchanged() {
    let mock = MockUpstream::start().await.expect("mock starts");
    let upstream = mock.addr();
    let (_bare, bare) = start_bare(upstream);
    let whole_request = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let stream_request =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (whole, whole_direct, stream, stream_direct) = tokio::task::spawn_blocking(move || {
        (
            post(bare, whole_request),
            post(upstream, whole_request),
            post(bare, stream_request),
            post(upstream, stream_request),
        )
    })
    .await
    .expect("requests ran");

    assert!(whole.starts_with("HTTP/1.1 200"), "{whole}");
    let body = |r: &str| r.split_once("\r\n\r\n").map(|(_, b)| steady(b));
    assert_eq!(body(&whole), body(&whole_direct));
    assert!(whole.contains(mock_upstream::DEFAULT_CONTENT), "{whole}");

    assert!(stream.starts_with("HTTP/1.1 200"), "{stream}");
    let (relayed, direct) = (dechunk(&stream), dechunk(&stream_direct));
    assert_eq!(steady(&relayed), steady(&direct));
    assert!(relayed.ends_with("data: [DONE]\n\n"), "{relayed}");
    assert!(relayed.matches("data: ").count() > mock_upstream::DEFAULT_CHUNKS);
    // Both requests went upstream, on the proxy's side and directly.
    assert_eq!(mock.request_count(), 4);
}
