//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) of ConverseStream and
//! InvokeModelWithResponseStream, encoding only, and the stream faults applied to a list of events.
//!
//! A message (smithy `aws-smithy-eventstream`, AWS "event stream encoding"):
//!
//! ```text
//! [total length u32 BE][headers length u32 BE][CRC32 of those 8 bytes]
//! [headers][payload][CRC32 of every byte before it]
//! header = [name length u8][name][type u8 = 7, string][value length u16 BE][value]
//! ```
//!
//! The mock only ever sends string headers. [`encode_event_frame`] and
//! [`encode_exception_frame`] are public so tests can build the frames they expect.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::body::Step;
use crate::script::Behavior;

/// Prelude (two lengths and their CRC) plus the trailing message CRC.
const OVERHEAD: usize = 16;
/// The header value type of a string.
const STRING: u8 = 7;
/// The event the stream faults count.
const DELTA: &str = "contentBlockDelta";

/// The exception frame `exception_after_chunks` sends.
const EXCEPTION_TYPE: &str = "throttlingException";
const EXCEPTION_PAYLOAD: &[u8] = br#"{"message":"Too many requests"}"#;

/// One `:message-type: event` frame as Bedrock sends it: headers `:event-type` (`event_type`),
/// `:content-type: application/json` and `:message-type: event`, then `payload`, with both CRCs.
pub fn encode_event_frame(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// One `:message-type: exception` frame, as Bedrock fails mid-stream: headers `:exception-type`
/// (`exception_type`, e.g. `throttlingException`), `:content-type: application/json` and
/// `:message-type: exception`, then `payload` (e.g. `{"message":"Too many requests"}`).
pub fn encode_exception_frame(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

/// Frames string `headers` and `payload`. A header name over 255 bytes or a value over 65535
/// bytes doesn't fit the format and is cut; the mock's are short constants and event names.
fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(64);
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(usize::from(u8::MAX))];
        let value = &value.as_bytes()[..value.len().min(usize::from(u16::MAX))];
        // Both lengths were just capped to their type's range, so the casts keep every bit.
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        h.push(STRING);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value);
    }
    let total = OVERHEAD + h.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    // A frame over 4 GiB can't be framed; the mock's are a few hundred bytes.
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// One event of a planned stream, before framing and faults.
pub(crate) struct Event {
    pub(crate) event_type: &'static str,
    pub(crate) payload: Vec<u8>,
}

/// Frames `events` and applies the stream faults of `b` (see the module doc of `bedrock/mod.rs`).
pub(crate) fn into_steps(events: &[Event], b: &Behavior) -> VecDeque<Step> {
    into_steps_counting(events, b, |_, e| e.event_type == DELTA)
}

/// [`into_steps`], the faults counting the events `is_delta` picks (by index and event): an
/// InvokeModelWithResponseStream `chunk` hides its kind in base64, so its caller knows which
/// count. A `malformed_body` frame copies the first delta's event type.
pub(crate) fn into_steps_counting(
    events: &[Event],
    b: &Behavior,
    is_delta: impl Fn(usize, &Event) -> bool,
) -> VecDeque<Step> {
    let deltas: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(i, e)| is_delta(*i, e))
        .map(|(i, _)| i)
        .collect();
    let first_delta = deltas.first().copied();
    // Where a fault after `n` deltas cuts: just after the nth delta, or before the first one.
    let cut_after = |n: usize| match n.min(deltas.len()).checked_sub(1) {
        Some(last) => deltas.get(last).map_or(events.len(), |&i| i + 1),
        None => first_delta.unwrap_or(events.len()),
    };
    let exception_at = b.exception_after_chunks.map(cut_after);
    let reset_at = b.reset_after_chunks.map(cut_after);
    let end = exception_at.into_iter().chain(reset_at).min();

    let mut steps = VecDeque::with_capacity(events.len() + 2);
    for (i, event) in events.iter().enumerate() {
        if b.malformed_body && Some(i) == first_delta {
            // Well framed, but half of a payload's JSON is never valid JSON: the object closes
            // only at its last byte.
            let half = &event.payload[..event.payload.len() / 2];
            let frame = encode_event_frame(event.event_type, half);
            steps.push_back(Step::Data(Bytes::from(frame)));
        }
        if Some(i) == end {
            break;
        }
        let frame = encode_event_frame(event.event_type, &event.payload);
        steps.push_back(Step::Data(Bytes::from(frame)));
    }
    if end.is_some() && exception_at == end {
        let frame = encode_exception_frame(EXCEPTION_TYPE, EXCEPTION_PAYLOAD);
        steps.push_back(Step::Data(Bytes::from(frame)));
    }
    if end.is_some() && reset_at == end {
        steps.push_back(Step::Abort);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::{encode, encode_event_frame};

    /// Byte-exact check against the AWS event-stream test-suite vector
    /// `encoded/positive/payload_no_headers` (aws-c-event-stream): no headers, payload
    /// `{'foo':'bar'}`, encoded as `0000001d 00000000 fd528c5a <payload> c3653936`.
    #[test]
    fn matches_the_aws_payload_no_headers_vector() {
        let bytes = encode(&[], br"{'foo':'bar'}");
        assert_eq!(
            &bytes[..12],
            &[0, 0, 0, 0x1d, 0, 0, 0, 0, 0xfd, 0x52, 0x8c, 0x5a]
        );
        assert_eq!(&bytes[12..bytes.len() - 4], br"{'foo':'bar'}");
        assert_eq!(&bytes[bytes.len() - 4..], &[0xc3, 0x65, 0x39, 0x36]);
    }

    #[test]
    fn event_headers_are_length_prefixed_strings() {
        let bytes = encode_event_frame("messageStart", b"{}");
        let headers_len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let headers = &bytes[12..12 + headers_len];
        let mut expected = Vec::new();
        for (name, value) in [
            (":event-type", "messageStart"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ] {
            expected.push(name.len() as u8);
            expected.extend_from_slice(name.as_bytes());
            expected.push(7);
            expected.extend_from_slice(&(value.len() as u16).to_be_bytes());
            expected.extend_from_slice(value.as_bytes());
        }
        assert_eq!(headers, &expected[..]);
        assert_eq!(&bytes[12 + headers_len..bytes.len() - 4], b"{}");
    }
}
