//! Asking a stream for its usage chunk by editing the client's bytes instead of encoding the
//! parsed request again. Every streamed chat is sent with `stream_options.include_usage` so it
//! is costed from the provider's own count; most clients never set `stream_options`, and for
//! them the member is written in front of the others, which leaves the rest of the body exactly
//! as the client sent it and costs a copy instead of a serialization.

use bytes::{BufMut, Bytes, BytesMut};

use super::Inbound;

const MEMBER: &[u8] = br#""stream_options":{"include_usage":true}"#;

impl Inbound {
    /// `body` (this request's own bytes) with `"stream_options":{"include_usage":true}` added as
    /// its first member, when the body names no `stream_options` anywhere and holds no `\u`
    /// escape: then the object cannot hold one, even `null`, and the added member is the only
    /// one. `None` for every
    /// other case (the client set options, another kind of request, a body that does not start
    /// as an object); the caller then encodes the request with [`Inbound::request_stream_usage`].
    pub fn body_asking_stream_usage(&self, body: &Bytes) -> Option<Bytes> {
        let options = match self {
            Inbound::Chat(r) => &r.stream_options,
            Inbound::Completion(r) => &r.stream_options,
            Inbound::Embedding(_) | Inbound::Operation(_) | Inbound::Resource(_) => return None,
        };
        // A key may also be spelled with `\u` escapes (`"stream\u005foptions": null` parses as
        // the same, absent-looking, option): a body with any such escape is encoded again.
        if options.is_some()
            || memchr::memmem::find(body, b"\"stream_options\"").is_some()
            || memchr::memmem::find(body, b"\\u").is_some()
        {
            return None;
        }
        let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
        if body[open] != b'{' {
            return None;
        }
        let rest = &body[open + 1..];
        let empty = rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'}');
        let mut edited = BytesMut::with_capacity(body.len() + MEMBER.len() + 1);
        edited.put_slice(&body[..=open]);
        edited.put_slice(MEMBER);
        if !empty {
            edited.put_u8(b',');
        }
        edited.put_slice(rest);
        Some(edited.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Inbound {
        let parsed: Result<Inbound, _> = Inbound::parse(
            crate::wire::openai::Endpoint::ChatCompletions,
            body.as_bytes(),
        );
        parsed.unwrap_or_else(|e| panic!("{body}: {}", e.message))
    }

    fn edited(body: &str) -> Option<serde_json::Value> {
        let bytes = Bytes::from(body.to_string());
        let out = chat(body).body_asking_stream_usage(&bytes)?;
        Some(serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{body}: {e}")))
    }

    #[test]
    fn adds_the_member_and_keeps_every_other_byte() {
        let body = r#"  {"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"x_extra":[1,2.50]}"#;
        let bytes = Bytes::from(body);
        let out = chat(body).body_asking_stream_usage(&bytes);
        assert_eq!(
            out.as_deref(),
            Some(
                br#"  {"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"x_extra":[1,2.50]}"#
                    .as_slice()
            )
        );
        let value = edited(body).unwrap_or_default();
        assert_eq!(value["stream_options"]["include_usage"], true);
        assert_eq!(value["x_extra"][1], 2.5);
    }

    #[test]
    fn leaves_options_the_client_named_to_the_encoder() {
        // Set, null, false, or only as a string in a message: the body names the key, so no edit.
        for body in [
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[]}"#,
            r#"{"model":"m","stream":true,"stream_options":null,"messages":[]}"#,
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"stream_options"}]}"#,
        ] {
            assert_eq!(edited(body), None, "{body}");
        }
    }

    #[test]
    fn a_key_spelled_with_escapes_is_left_to_the_encoder() {
        // Parsed, this is `stream_options: null`: an added member would be a second one.
        let body = r#"{"model":"m","stream":true,"stream\u005foptions":null,"messages":[]}"#;
        assert_eq!(edited(body), None);
        // Text escaped that way (as Python's `json.dumps` writes it) is encoded again too.
        let body =
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"caf\u00e9"}]}"#;
        assert_eq!(edited(body), None);
    }

    #[test]
    fn an_escaped_mention_is_no_member() {
        // Inside a string the quotes are escaped, so this is text, not a key: edited.
        let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"\"stream_options\""}]}"#;
        let value = edited(body).unwrap_or_default();
        assert_eq!(value["stream_options"]["include_usage"], true);
        assert_eq!(value["messages"][0]["content"], "\"stream_options\"");
    }

    #[test]
    fn only_chats_and_completions_are_edited() {
        let body = Bytes::from_static(br#"{"model":"e","input":"hi"}"#);
        let embedding = Inbound::parse(crate::wire::openai::Endpoint::Embeddings, &body);
        assert!(embedding.is_ok());
        if let Ok(embedding) = embedding {
            assert_eq!(embedding.body_asking_stream_usage(&body), None);
        }
    }
}
