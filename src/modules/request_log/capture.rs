//! Body capture: the request as received and the answer as it went out (a complete body, or a
//! stream's events in order), each cut at a byte cap. Used by `request_log`, and by `trace` for
//! its deprecated `capture_bodies` switch.

use bytes::BytesMut;

/// Appends what still fits under `cap` of `bytes` to `buf`.
pub fn append(buf: &mut BytesMut, cap: usize, bytes: &[u8]) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// The first `cap` bytes of `bytes` as text (a cut inside a character shows as U+FFFD).
pub fn cut(bytes: &[u8], cap: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(cap)]).into_owned()
}
