//! Errors on the `/v1/responses` route use the OpenAI error shape, the same as chat completions:
//! `{"error": {"message", "type", "param", "code"}}` with the HTTP status, before any byte of the
//! answer went out. Once a stream has started, an error is two events instead (see
//! [`super::stream::Encoder::fail`]): `error` (`{code, message, param}`) then `response.failed`
//! (the response object with `status: "failed"` and `error: {code, message}`), as OpenAI's
//! Responses streaming reference describes; never `response.completed`.
//!
//! Upstream errors reach this route already in the OpenAI shape (every provider adapter maps its
//! own errors to it); [`error_to_openai`] only fills in what a compatible server left out, using
//! this table for `type`:
//!
//! | status | `type` |
//! |---|---|
//! | 400, 404, 409, 413, 422 | `invalid_request_error` |
//! | 401 | `authentication_error` |
//! | 403 | `permission_error` |
//! | 429 | `rate_limit_error` |
//! | 500..=599 | `server_error` |
//! | anything else | `api_error` |
//!
//! Translation failures ([`translate_error_to_openai`]): `Unsupported` -> 400
//! `invalid_request_error` / `unsupported_parameter`; `Invalid` -> 400 `invalid_request_error` /
//! `invalid_value`; `Malformed` (the provider's answer broke the format) -> 502 `upstream_error` /
//! `upstream_protocol_error`. `param` names the Responses field (`tools[0]`, `input[2].content[1]`).

use serde_json::{Value, json};

use super::TranslateError;

/// The longest upstream text quoted when an error body is not JSON.
const MAX_QUOTED_BYTES: usize = 512;

/// The `type` for an HTTP status, per the table above.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "api_error",
    }
}

/// An upstream error body in the OpenAI shape, whatever the upstream sent: an OpenAI-shaped body
/// keeps its fields (missing ones filled in), `{"error": "text"}` and `{"message": ...}` are
/// wrapped, and anything else is quoted (shortened) as the message.
pub fn error_to_openai(status: u16, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (message, error_type, param, code) = match parsed.as_ref() {
        Some(Value::Object(map)) => match map.get("error") {
            Some(Value::Object(error)) => (
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                error
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                error.get("param").cloned().unwrap_or(Value::Null),
                error.get("code").cloned().unwrap_or(Value::Null),
            ),
            Some(Value::String(text)) => (Some(text.clone()), None, Value::Null, Value::Null),
            _ => (
                map.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                None,
                Value::Null,
                map.get("code").cloned().unwrap_or(Value::Null),
            ),
        },
        _ => (quote(body), None, Value::Null, Value::Null),
    };
    json!({
        "error": {
            "message": message.unwrap_or_else(|| format!("the provider answered HTTP {status}")),
            "type": error_type.unwrap_or_else(|| error_type_for_status(status).to_string()),
            "param": param,
            "code": code,
        }
    })
}

/// HTTP status and OpenAI error body for a request or answer that could not be translated.
pub fn translate_error_to_openai(err: &TranslateError) -> (u16, Value) {
    let (status, error_type, code, param) = match err {
        TranslateError::Unsupported { param, .. } => (
            400,
            "invalid_request_error",
            "unsupported_parameter",
            Value::String(param.clone()),
        ),
        TranslateError::Invalid { param, .. } => (
            400,
            "invalid_request_error",
            "invalid_value",
            Value::String(param.clone()),
        ),
        TranslateError::Malformed(_) => (
            502,
            "upstream_error",
            "upstream_protocol_error",
            Value::Null,
        ),
        TranslateError::ProviderError { status, .. }
        | TranslateError::ProviderErrorOfType { status, .. } => {
            (*status, "upstream_error", "provider_error", Value::Null)
        }
    };
    let body = json!({
        "error": {"message": err.to_string(), "type": error_type, "param": param, "code": code}
    });
    (status, body)
}

fn quote(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(MAX_QUOTED_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_shaped_bodies_keep_their_fields() {
        let body = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            error_to_openai(429, body),
            json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        );
    }

    #[test]
    fn partial_and_foreign_bodies_are_completed_from_the_status() {
        let partial = error_to_openai(401, br#"{"error":{"message":"bad key"}}"#);
        assert_eq!(partial["error"]["type"], "authentication_error");
        assert_eq!(partial["error"]["code"], Value::Null);

        let plain = error_to_openai(
            422,
            br#"{"message":"extra fields not permitted","code":"3051"}"#,
        );
        assert_eq!(plain["error"]["message"], "extra fields not permitted");
        assert_eq!(plain["error"]["type"], "invalid_request_error");
        assert_eq!(plain["error"]["code"], "3051");

        let string_error = error_to_openai(500, br#"{"error":"model crashed"}"#);
        assert_eq!(string_error["error"]["message"], "model crashed");
        assert_eq!(string_error["error"]["type"], "server_error");

        let html = error_to_openai(502, b"<html>Bad Gateway</html>");
        assert_eq!(html["error"]["message"], "<html>Bad Gateway</html>");
        let empty = error_to_openai(503, b"");
        assert_eq!(empty["error"]["message"], "the provider answered HTTP 503");
        assert_eq!(error_to_openai(418, b"")["error"]["type"], "api_error");
        assert_eq!(error_type_for_status(403), "permission_error");
    }

    #[test]
    fn long_text_bodies_are_shortened_on_a_char_boundary() {
        let body = "é".repeat(600);
        let message = error_to_openai(500, body.as_bytes())["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.len() <= MAX_QUOTED_BYTES);
        assert!(message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn translation_errors_map_to_400_or_502() {
        let (status, body) = translate_error_to_openai(&TranslateError::Unsupported {
            param: "tools[0]".into(),
            message: "built-in tool \"web_search\" is only available from OpenAI".into(),
        });
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "tools[0]");
        assert_eq!(body["error"]["code"], "unsupported_parameter");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("tools[0]: ")
        );

        let (status, body) = translate_error_to_openai(&TranslateError::Invalid {
            param: "input".into(),
            message: "must contain at least one message".into(),
        });
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_value"))
        );

        let (status, body) =
            translate_error_to_openai(&TranslateError::Malformed("no choices".into()));
        assert_eq!(status, 502);
        assert_eq!(body["error"]["type"], "upstream_error");
        assert_eq!(body["error"]["param"], Value::Null);
    }
}
