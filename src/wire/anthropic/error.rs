//! OpenAI-shaped errors (the proxy's own, or a non-Anthropic provider's) -> the Anthropic error
//! shape `{"type":"error","error":{"type","message"}}`, for an Anthropic-SDK client. The HTTP status
//! is kept; the Anthropic `type` comes from it
//! (<https://platform.claude.com/docs/en/api/errors>):
//!
//! | status | Anthropic `type` |
//! |---|---|
//! | 400 and other 4xx | `invalid_request_error` |
//! | 401 | `authentication_error` |
//! | 402 | `billing_error` |
//! | 403 | `permission_error` |
//! | 404 | `not_found_error` |
//! | 413 | `request_too_large` |
//! | 429 | `rate_limit_error` |
//! | 500 and other 5xx | `api_error` |
//! | 504 | `timeout_error` |
//! | 503, 529 | `overloaded_error` |

use serde_json::{Value, json};

use super::TranslateError;

/// The Anthropic error body for an OpenAI-shaped error body answered with `status`. A body that is
/// not an OpenAI error keeps its text (cut to 1000 bytes) as the message.
pub fn from_openai(status: u16, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("upstream answered with status {status}")
            } else {
                text.chars().take(1000).collect()
            }
        });
    error_body(type_for_status(status), &message)
}

/// Anthropic's error type for an HTTP status (the table in the module doc).
pub fn type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The HTTP status an Anthropic error type has outside a stream (for `error` events mid-stream).
pub fn status_for_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// `{"type":"error","error":{"type": error_type,"message": message}}`.
pub fn error_body(error_type: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type, "message": message}})
}

/// A translation failure as the HTTP status and Anthropic body to answer with: the client's
/// request could not be translated (400), the provider's answer could not be read (502), or the
/// provider reported an error mid-stream (its own type and status).
pub fn from_translate_error(err: &TranslateError) -> (u16, Value) {
    match err {
        TranslateError::Unsupported { .. } | TranslateError::Invalid { .. } => {
            (400, error_body("invalid_request_error", &err.to_string()))
        }
        TranslateError::Malformed(_) => (502, error_body("api_error", &err.to_string())),
        TranslateError::ProviderErrorOfType {
            error_type,
            message,
            ..
        } => (status_for_type(error_type), error_body(error_type, message)),
        TranslateError::ProviderError {
            status, message, ..
        } => (*status, error_body(type_for_status(*status), message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_anthropic_types() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (409, "invalid_request_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ] {
            let body =
                json!({"error": {"message": "boom", "type": "x", "param": null, "code": null}});
            let got = from_openai(status, body.to_string().as_bytes());
            assert_eq!(got, error_body(kind, "boom"), "{status}");
        }
    }

    #[test]
    fn proxy_error_body_matches_golden() {
        let body = include_bytes!("../../../tests/fixtures/anthropic/outbound_openai_error.json");
        let expected: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/anthropic/outbound_anthropic_error.json"
        ))
        .expect("fixture is JSON");
        assert_eq!(from_openai(429, body), expected);
    }

    #[test]
    fn plain_text_body_is_kept() {
        let got = from_openai(502, b"bad gateway");
        assert_eq!(got, error_body("api_error", "bad gateway"));
    }

    #[test]
    fn translate_errors_answer_with_their_status() {
        let (status, body) = from_translate_error(&TranslateError::Unsupported {
            param: "tools[0]".into(),
            message: "server and built-in tools cannot be translated".into(),
        });
        assert_eq!(status, 400);
        assert_eq!(
            body["error"]["message"],
            "tools[0]: server and built-in tools cannot be translated"
        );
        let (status, body) = from_translate_error(&TranslateError::ProviderErrorOfType {
            status: 529,
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
        });
        assert_eq!(
            (status, body),
            (529, error_body("overloaded_error", "Overloaded"))
        );
    }
}
