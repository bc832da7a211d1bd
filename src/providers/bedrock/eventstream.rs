//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`) that Bedrock uses for
//! `ConverseStream` (and `InvokeModelWithResponseStream`). [`Decoder::push`] takes bytes as they
//! arrive, split anywhere, and returns each complete, CRC-checked [`Frame`]; [`encode_frame`] is
//! the inverse (tests and the mock upstream).
//!
//! A message (<https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html>,
//! smithy `aws-smithy-eventstream`):
//!
//! ```text
//! [total length u32 BE][headers length u32 BE][prelude CRC32 of the 8 bytes before]
//! [headers ...][payload ...][message CRC32 of every byte before it]
//! header = [name length u8][name][type u8][value]
//! types: 0 true, 1 false (no value), 2 byte, 3 i16, 4 i32, 5 i64 (BE), 6 bytes / 7 string
//!        (u16 BE length + data), 8 timestamp (i64 ms BE), 9 uuid (16 bytes)
//! ```
//!
//! Invariant: a frame is returned only after both CRCs matched, so a corrupted or truncated stream
//! yields an error, never a wrong frame. The prelude CRC is checked as soon as the 12 prelude
//! bytes are in, before trusting the length to wait for more. After an error the decoder stays
//! failed (the framing is lost; nothing after it can be trusted).

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

const PRELUDE_LEN: usize = 12;
/// Prelude + message CRC: the smallest possible message (no headers, no payload).
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + 4;
/// Limits from the event-stream spec: a message is at most 16 MiB, its headers at most 128 KiB.
const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
const MAX_HEADERS_LEN: usize = 128 * 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EventStreamError {
    #[error("event stream prelude CRC mismatch (expected {expected:08x}, computed {computed:08x})")]
    PreludeCrc { expected: u32, computed: u32 },
    #[error("event stream message CRC mismatch (expected {expected:08x}, computed {computed:08x})")]
    MessageCrc { expected: u32, computed: u32 },
    #[error("event stream message length {total} with headers length {headers} is invalid")]
    InvalidLength { total: usize, headers: usize },
    #[error("event stream header is malformed: {0}")]
    InvalidHeader(String),
    #[error("event stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
    #[error("event stream decoder already failed: {0}")]
    Failed(Box<EventStreamError>),
}

/// A header value of any of the event-stream types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl HeaderValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One decoded message. The `:event-type`, `:message-type`, `:exception-type`, `:error-code` and
/// `:error-message` string headers are lifted into fields; all headers stay in `headers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub event_type: Option<String>,
    pub message_type: Option<String>,
    pub exception_type: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Frame {
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Incremental decoder: buffers a partial message until its last byte arrives.
#[derive(Default)]
pub struct Decoder {
    buffer: BytesMut,
    failed: Option<EventStreamError>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds `bytes` and returns every message completed by them, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, EventStreamError> {
        if let Some(err) = &self.failed {
            return Err(EventStreamError::Failed(Box::new(err.clone())));
        }
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        loop {
            match self.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return Ok(frames),
                Err(err) => {
                    self.failed = Some(err.clone());
                    return Err(err);
                }
            }
        }
    }

    /// Ends the stream: an error if a partial message is still buffered.
    pub fn finish(&mut self) -> Result<(), EventStreamError> {
        if let Some(err) = &self.failed {
            return Err(EventStreamError::Failed(Box::new(err.clone())));
        }
        match self.buffer.len() {
            0 => Ok(()),
            n => Err(EventStreamError::Truncated(n)),
        }
    }

    /// Bytes of a message still waiting for the rest of it.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, EventStreamError> {
        if self.buffer.len() < PRELUDE_LEN {
            return Ok(None);
        }
        let prelude = &self.buffer[..PRELUDE_LEN];
        let total = be_u32(&prelude[0..4]) as usize;
        let headers_len = be_u32(&prelude[4..8]) as usize;
        let expected = be_u32(&prelude[8..12]);
        let computed = crc32fast::hash(&prelude[..8]);
        if expected != computed {
            return Err(EventStreamError::PreludeCrc { expected, computed });
        }
        if !(MIN_MESSAGE_LEN..=MAX_MESSAGE_LEN).contains(&total)
            || headers_len > MAX_HEADERS_LEN
            || headers_len > total - MIN_MESSAGE_LEN
        {
            return Err(EventStreamError::InvalidLength {
                total,
                headers: headers_len,
            });
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        let message = self.buffer.split_to(total).freeze();
        let expected = be_u32(&message[total - 4..]);
        let computed = crc32fast::hash(&message[..total - 4]);
        if expected != computed {
            return Err(EventStreamError::MessageCrc { expected, computed });
        }
        let headers = parse_headers(&message[PRELUDE_LEN..PRELUDE_LEN + headers_len])?;
        let payload = message.slice(PRELUDE_LEN + headers_len..total - 4);
        let string_header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
        };
        Ok(Some(Frame {
            event_type: string_header(":event-type"),
            message_type: string_header(":message-type"),
            exception_type: string_header(":exception-type"),
            error_code: string_header(":error-code"),
            error_message: string_header(":error-message"),
            headers,
            payload,
        }))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    let short = |what: &str| EventStreamError::InvalidHeader(format!("truncated {what}"));
    let mut headers = Vec::new();
    while b.has_remaining() {
        let name_len = b.get_u8() as usize;
        if b.remaining() < name_len {
            return Err(short("name"));
        }
        let name = std::str::from_utf8(&b[..name_len])
            .map_err(|_| EventStreamError::InvalidHeader("name is not UTF-8".into()))?
            .to_string();
        b.advance(name_len);
        if !b.has_remaining() {
            return Err(short("type"));
        }
        let kind = b.get_u8();
        let fixed = |b: &[u8], n: usize| {
            if b.remaining() < n {
                Err(short("value"))
            } else {
                Ok(())
            }
        };
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => {
                fixed(b, 1)?;
                HeaderValue::Byte(b.get_i8())
            }
            3 => {
                fixed(b, 2)?;
                HeaderValue::Short(b.get_i16())
            }
            4 => {
                fixed(b, 4)?;
                HeaderValue::Int(b.get_i32())
            }
            5 => {
                fixed(b, 8)?;
                HeaderValue::Long(b.get_i64())
            }
            6 | 7 => {
                fixed(b, 2)?;
                let len = b.get_u16() as usize;
                fixed(b, len)?;
                let data = b[..len].to_vec();
                b.advance(len);
                if kind == 6 {
                    HeaderValue::Bytes(data)
                } else {
                    HeaderValue::String(String::from_utf8(data).map_err(|_| {
                        EventStreamError::InvalidHeader(format!("{name} is not UTF-8"))
                    })?)
                }
            }
            8 => {
                fixed(b, 8)?;
                HeaderValue::Timestamp(b.get_i64())
            }
            9 => {
                fixed(b, 16)?;
                let mut uuid = [0u8; 16];
                b.copy_to_slice(&mut uuid);
                HeaderValue::Uuid(uuid)
            }
            other => {
                return Err(EventStreamError::InvalidHeader(format!(
                    "{name} has unknown type {other}"
                )));
            }
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encodes one message. Header names longer than 255 bytes and string/bytes values longer than
/// 65535 bytes do not fit the format and are truncated; callers (tests, the mock) stay far below.
pub fn encode_frame(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        match value {
            HeaderValue::Bool(true) => h.push(0),
            HeaderValue::Bool(false) => h.push(1),
            HeaderValue::Byte(v) => {
                h.push(2);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                h.push(5);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(data) => {
                h.push(6);
                push_sized(&mut h, data);
            }
            HeaderValue::String(s) => {
                h.push(7);
                push_sized(&mut h, s.as_bytes());
            }
            HeaderValue::Timestamp(v) => {
                h.push(8);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                h.push(9);
                h.extend_from_slice(v);
            }
        }
    }
    let total = PRELUDE_LEN + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn push_sized(out: &mut Vec<u8>, data: &[u8]) {
    let data = &data[..data.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// An `event` message as Bedrock sends it: `:event-type`, `:content-type: application/json`,
/// `:message-type: event`, JSON payload.
pub fn encode_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type", HeaderValue::String(event_type.into())),
            (
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
            (":message-type", HeaderValue::String("event".into())),
        ],
        payload,
    )
}

/// An `exception` message as Bedrock sends it mid-stream (`throttlingException`, ...).
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (
                ":exception-type",
                HeaderValue::String(exception_type.into()),
            ),
            (
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
            (":message-type", HeaderValue::String("exception".into())),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Modelled on the AWS test-suite vector `encoded/positive/all_headers`: one header of every
    /// type, round-tripped through the encoder and the decoder.
    #[test]
    fn decodes_a_frame_with_every_header_type() {
        let headers = vec![
            ("event-type", HeaderValue::Int(0x0000_00A0)),
            (
                "content-type",
                HeaderValue::String("application/json".into()),
            ),
            ("bool false", HeaderValue::Bool(false)),
            ("bool true", HeaderValue::Bool(true)),
            ("byte", HeaderValue::Byte(-49)),
            (
                "byte buf",
                HeaderValue::Bytes(b"I'm a little teapot!".to_vec()),
            ),
            ("timestamp", HeaderValue::Timestamp(8_675_309)),
            ("int16", HeaderValue::Short(42)),
            ("int64", HeaderValue::Long(42_424_242)),
            (
                "uuid",
                HeaderValue::Uuid(
                    *b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
                ),
            ),
        ];
        let payload = br#"{'foo':'bar'}"#;
        let bytes = encode_frame(&headers, payload);
        let frames = Decoder::new().push(&bytes).expect("decodes");
        assert_eq!(frames.len(), 1);
        let frame = &frames[0];
        assert_eq!(&frame.payload[..], payload);
        let want: Vec<(String, HeaderValue)> = headers
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        assert_eq!(frame.headers, want);
    }

    /// Byte-exact check against the AWS event-stream test-suite vector
    /// `encoded/positive/payload_no_headers` (aws-c-event-stream, also used by smithy-rs): no
    /// headers, payload `{'foo':'bar'}`, encoded as `0000001d 00000000 fd528c5a <payload> c3653936`.
    #[test]
    fn prelude_matches_the_aws_payload_no_headers_vector() {
        let bytes = encode_frame(&[], br#"{'foo':'bar'}"#);
        assert_eq!(
            &bytes[..12],
            &[0, 0, 0, 0x1d, 0, 0, 0, 0, 0xfd, 0x52, 0x8c, 0x5a]
        );
        assert_eq!(bytes.len(), 0x1d);
        assert_eq!(&bytes[bytes.len() - 4..], &[0xc3, 0x65, 0x39, 0x36]);
    }

    #[test]
    fn truncated_input_is_reported_at_finish() {
        let bytes = encode_event("messageStart", br#"{"role":"assistant"}"#);
        let mut decoder = Decoder::new();
        assert_eq!(decoder.push(&bytes[..bytes.len() - 1]), Ok(vec![]));
        assert_eq!(
            decoder.finish(),
            Err(EventStreamError::Truncated(bytes.len() - 1))
        );
    }

    #[test]
    fn bad_lengths_are_rejected_without_waiting() {
        // A valid prelude CRC over an impossible length (headers longer than the message).
        let mut prelude = Vec::new();
        prelude.extend_from_slice(&20u32.to_be_bytes());
        prelude.extend_from_slice(&10u32.to_be_bytes());
        let crc = crc32fast::hash(&prelude);
        prelude.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            Decoder::new().push(&prelude),
            Err(EventStreamError::InvalidLength { .. })
        ));
    }

    fn header_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            any::<bool>().prop_map(HeaderValue::Bool),
            any::<i8>().prop_map(HeaderValue::Byte),
            any::<i16>().prop_map(HeaderValue::Short),
            any::<i32>().prop_map(HeaderValue::Int),
            any::<i64>().prop_map(HeaderValue::Long),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(HeaderValue::Bytes),
            "[a-zA-Z0-9 :/._-]{0,40}".prop_map(HeaderValue::String),
            any::<i64>().prop_map(HeaderValue::Timestamp),
            any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
        ]
    }

    fn frame_strategy() -> impl Strategy<Value = RawFrame> {
        (
            proptest::collection::vec(("[:a-z-]{1,20}", header_value()), 0..6),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
    }

    type RawFrame = (Vec<(String, HeaderValue)>, Vec<u8>);

    fn encode_all(frames: &[RawFrame]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|(headers, payload)| {
                let headers: Vec<(&str, HeaderValue)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.clone()))
                    .collect();
                encode_frame(&headers, payload)
            })
            .collect()
    }

    fn decode_in_pieces(
        bytes: &[u8],
        cuts: &[usize],
    ) -> (Vec<Frame>, Result<(), EventStreamError>) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut decoder = Decoder::new();
        let mut frames = Vec::new();
        let mut at = 0;
        for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            match decoder.push(&bytes[at..cut]) {
                Ok(f) => frames.extend(f),
                Err(e) => return (frames, Err(e)),
            }
            at = cut;
        }
        (frames, decoder.finish())
    }

    proptest! {
        #[test]
        fn any_split_yields_the_same_frames(
            frames in proptest::collection::vec(frame_strategy(), 1..5),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let bytes = encode_all(&frames);
            let (decoded, end) = decode_in_pieces(&bytes, &cuts);
            prop_assert_eq!(end, Ok(()));
            prop_assert_eq!(decoded.len(), frames.len());
            for (got, (headers, payload)) in decoded.iter().zip(&frames) {
                prop_assert_eq!(&got.headers, headers);
                prop_assert_eq!(&got.payload[..], &payload[..]);
            }
        }

        #[test]
        fn a_flipped_byte_is_an_error_never_a_wrong_frame(
            frames in proptest::collection::vec(frame_strategy(), 1..4),
            position in any::<usize>(),
            flip in 1u8..=255,
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let clean = encode_all(&frames);
            let mut bytes = clean.clone();
            let at = position % bytes.len();
            bytes[at] ^= flip;
            let (decoded, end) = decode_in_pieces(&bytes, &cuts);
            prop_assert!(end.is_err(), "corruption at byte {} went unnoticed", at);
            // Whatever was returned before the error is exactly the untouched frames before it.
            prop_assert!(decoded.len() < frames.len());
            for (got, (headers, payload)) in decoded.iter().zip(&frames) {
                prop_assert_eq!(&got.headers, headers);
                prop_assert_eq!(&got.payload[..], &payload[..]);
            }
        }
    }
}
