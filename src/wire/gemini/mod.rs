//! Gemini's own API as clients send it (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`, Google's `google-genai` SDK), served through the canonical chat form
//! so it reaches any provider: `request.rs` turns the body into a canonical chat request,
//! `response.rs` a canonical answer into a `GenerateContentResponse`, `stream.rs` canonical
//! chunks into streamed responses (SSE with `alt=sse`, else one JSON array), and [`error`] an
//! OpenAI-shaped error into Google's. Reference: https://ai.google.dev/api/generate-content

pub mod request;
pub mod response;
pub mod stream;

use serde_json::{Value, json};

/// The model and method of a `.../models/{model}:{method}` path, when it is one.
pub fn target(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, method))
}

/// Whether a streamed answer goes out as SSE (`alt=sse`), else as one JSON array.
pub fn wants_sse(query: Option<&str>) -> bool {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .any(|pair| pair == "alt=sse")
}

/// The facts the URL carries, laid into the body for the translator: `model`, and `stream` for
/// `streamGenerateContent`. The native pass-through removes them again ([`strip_path_facts`]).
pub fn add_path_facts(uri: &hyper::Uri, body: &mut Value) {
    let Some((model, method)) = target(uri.path()) else {
        return;
    };
    if let Value::Object(map) = body {
        map.insert("model".into(), Value::String(model.to_string()));
        map.insert(
            "stream".into(),
            Value::Bool(method == "streamGenerateContent"),
        );
    }
}

pub fn strip_path_facts(body: &mut Value) {
    if let Value::Object(map) = body {
        map.remove("model");
        map.remove("stream");
    }
}

/// Google's status name for an HTTP status.
fn status_name(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        402 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 => "UNIMPLEMENTED",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// An OpenAI-shaped error body in Google's shape: `{"error": {"code", "message", "status"}}`.
pub fn error(status: u16, openai_body: &[u8]) -> Value {
    let parsed: Value = serde_json::from_slice(openai_body).unwrap_or(Value::Null);
    // An upstream Gemini error may already be in Google's shape.
    if parsed["error"]["status"].is_string() && parsed["error"]["code"].is_number() {
        return parsed;
    }
    let message = parsed["error"]["message"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| String::from_utf8_lossy(openai_body).into_owned());
    json!({"error": {"code": status, "message": message, "status": status_name(status)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_model_and_method() {
        assert_eq!(
            target("/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
            Some(("gemini-2.5-flash", "streamGenerateContent"))
        );
        assert_eq!(target("/v1beta/models/:generateContent"), None);
        assert!(wants_sse(Some("key=x&alt=sse")));
        assert!(!wants_sse(None));
    }

    #[test]
    fn errors_take_googles_shape() {
        let e = error(
            429,
            br#"{"error":{"message":"slow down","type":"rate_limit"}}"#,
        );
        assert_eq!(e["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(e["error"]["code"], 429);
        assert_eq!(e["error"]["message"], "slow down");
    }
}
