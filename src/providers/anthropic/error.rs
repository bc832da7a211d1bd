//! Anthropic error bodies -> the OpenAI error shape. Called by the Anthropic provider on a non-2xx
//! answer; the HTTP status passes through unchanged. Anthropic errors look like
//! `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_..."}`
//! (<https://platform.claude.com/docs/en/api/errors>).
//!
//! | status | Anthropic `error.type` | OpenAI `type` | OpenAI `code` |
//! |---|---|---|---|
//! | 400 | `invalid_request_error` | `invalid_request_error` | `invalid_request_error` |
//! | 401 | `authentication_error` | `authentication_error` | `authentication_error` |
//! | 402 | `billing_error` | `insufficient_quota` | `billing_error` |
//! | 403 | `permission_error` | `permission_error` | `permission_error` |
//! | 404 | `not_found_error` | `invalid_request_error` | `not_found_error` |
//! | 413 | `request_too_large` | `invalid_request_error` | `request_too_large` |
//! | 429 | `rate_limit_error` | `rate_limit_error` | `rate_limit_exceeded` |
//! | 500 | `api_error` | `server_error` | `api_error` |
//! | 504 | `timeout_error` | `server_error` | `timeout_error` |
//! | 529 | `overloaded_error` | `server_error` | `overloaded_error` |
//!
//! The `type` in the body wins over the status when both are present (Anthropic uses
//! `invalid_request_error` for other 4xx codes too); an unparsable body falls back to the status
//! and keeps its text, cut to 1000 bytes, as the message. `code` always keeps Anthropic's type.
//! `request_id` is appended to the message so support can trace it.

use serde_json::{Value, json};

pub use crate::wire::anthropic::error::{status_for_type, type_for_status};

/// OpenAI-shaped error `{"error":{"message","type","param","code"}}` for an Anthropic error answer.
pub fn error_to_openai(status: u16, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let anthropic_type = err
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| type_for_status(status).to_string());
    let mut message = match err.and_then(|e| e.get("message")).and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("anthropic answered with status {status}")
            } else {
                truncate(text, 1000).to_string()
            }
        }
    };
    if let Some(id) = parsed
        .as_ref()
        .and_then(|v| v.get("request_id"))
        .and_then(Value::as_str)
    {
        message.push_str(&format!(" (request_id {id})"));
    }
    let (openai_type, code) = openai_type_and_code(&anthropic_type);
    json!({
        "error": {
            "message": message,
            "type": openai_type,
            "param": null,
            "code": code,
        }
    })
}

fn openai_type_and_code(anthropic_type: &str) -> (&'static str, String) {
    let openai_type = match anthropic_type {
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            "invalid_request_error"
        }
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "billing_error" => "insufficient_quota",
        "rate_limit_error" => "rate_limit_error",
        _ => "server_error",
    };
    let code = match anthropic_type {
        "rate_limit_error" => "rate_limit_exceeded".to_string(),
        other => other.to_string(),
    };
    (openai_type, code)
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::assert_json_eq;

    #[test]
    fn overloaded_body_matches_golden() {
        let body = include_bytes!("../../../tests/fixtures/anthropic/error_overloaded.json");
        let expected: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/anthropic/error_overloaded.openai.json"
        ))
        .expect("fixture is JSON");
        assert_json_eq(&error_to_openai(529, body), &expected);
    }

    #[test]
    fn every_documented_status_maps() {
        for (status, anthropic, openai, code) in [
            (
                400,
                "invalid_request_error",
                "invalid_request_error",
                "invalid_request_error",
            ),
            (
                401,
                "authentication_error",
                "authentication_error",
                "authentication_error",
            ),
            (402, "billing_error", "insufficient_quota", "billing_error"),
            (
                403,
                "permission_error",
                "permission_error",
                "permission_error",
            ),
            (
                404,
                "not_found_error",
                "invalid_request_error",
                "not_found_error",
            ),
            (
                413,
                "request_too_large",
                "invalid_request_error",
                "request_too_large",
            ),
            (
                429,
                "rate_limit_error",
                "rate_limit_error",
                "rate_limit_exceeded",
            ),
            (500, "api_error", "server_error", "api_error"),
            (504, "timeout_error", "server_error", "timeout_error"),
            (529, "overloaded_error", "server_error", "overloaded_error"),
        ] {
            assert_eq!(type_for_status(status), anthropic);
            assert_eq!(status_for_type(anthropic), status);
            let body = json!({"type": "error", "error": {"type": anthropic, "message": "m"}});
            let got = error_to_openai(status, body.to_string().as_bytes());
            assert_eq!(got["error"]["type"], openai, "{status}");
            assert_eq!(got["error"]["code"], code, "{status}");
            // Without a body the status alone decides.
            let got = error_to_openai(status, b"");
            assert_eq!(got["error"]["code"], code, "{status} without body");
        }
    }

    #[test]
    fn non_json_body_keeps_its_text() {
        let got = error_to_openai(413, b"<html>Request Entity Too Large</html>");
        assert_eq!(
            got["error"]["message"],
            "<html>Request Entity Too Large</html>"
        );
        assert_eq!(got["error"]["code"], "request_too_large");
        assert_eq!(got["error"]["param"], Value::Null);
    }
}
