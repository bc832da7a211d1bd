//! Gemini / Vertex AI errors (`{"error": {"code", "message", "status", "details"}}`, sometimes
//! wrapped in a one-element array) -> the OpenAI error shape
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! | Gemini `status` | HTTP | OpenAI `type` | OpenAI `code` |
//! |---|---|---|---|
//! | `INVALID_ARGUMENT` | 400 | `invalid_request_error` | `invalid_argument` |
//! | `INVALID_ARGUMENT` with detail reason `API_KEY_INVALID` | 400, sent on as 401 | `authentication_error` | `invalid_api_key` |
//! | `FAILED_PRECONDITION` (e.g. billing not enabled) | 400 | `invalid_request_error` | `failed_precondition` |
//! | `OUT_OF_RANGE` | 400 | `invalid_request_error` | `out_of_range` |
//! | `UNAUTHENTICATED` (Vertex token) | 401 | `authentication_error` | `invalid_api_key` |
//! | `PERMISSION_DENIED` | 403 | `permission_error` | `permission_denied` |
//! | `NOT_FOUND` (unknown model, file) | 404 | `invalid_request_error` | `not_found` |
//! | `RESOURCE_EXHAUSTED` (rate limit, quota) | 429 | `rate_limit_error` | `rate_limit_exceeded` |
//! | `CANCELLED` | 499 | `api_error` | `cancelled` |
//! | `INTERNAL`, `UNKNOWN`, `DATA_LOSS` | 500 | `api_error` | `server_error` |
//! | `UNAVAILABLE` (overloaded) | 503 | `api_error` | `service_unavailable` |
//! | `DEADLINE_EXCEEDED` | 504 | `api_error` | `timeout` |
//! | no `status`, or a body that is not JSON | as sent | by HTTP status: 400/404/422 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 429 `rate_limit_error`, other `api_error` | `null` |
//!
//! Sources: <https://ai.google.dev/gemini-api/docs/troubleshooting>,
//! <https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/api-errors>.

use serde_json::{Value, json};

use super::TranslateError;

/// The OpenAI-shaped error body for a Gemini error answer with HTTP `status`.
pub fn error_to_openai(status: u16, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(error_object) {
        Some(error) => from_error_object(status, error),
        None => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(500).collect();
            let message = if text.trim().is_empty() {
                format!("Gemini answered HTTP {status}")
            } else {
                format!("Gemini answered HTTP {status}: {}", text.trim())
            };
            json!({"error": {
                "message": message,
                "type": type_for_http(status),
                "param": null,
                "code": null,
            }})
        }
    }
}

/// The HTTP status to send the client: the upstream's, except an invalid API key (which Gemini
/// reports as 400) becomes 401.
pub fn client_status(status: u16, body: &[u8]) -> u16 {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(error_object) {
        Some(error) if is_bad_key(error) => 401,
        _ => status,
    }
}

/// An error object found inside a 200 answer or a stream event.
pub(crate) fn provider_error(error: &Value) -> TranslateError {
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .or_else(|| {
            error
                .get("status")
                .and_then(Value::as_str)
                .map(http_for_status)
        })
        .unwrap_or(500);
    let body = from_error_object(status, error);
    TranslateError::ProviderError {
        status: if is_bad_key(error) { 401 } else { status },
        message: body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body,
    }
}

fn error_object(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items.first().and_then(|i| i.get("error")),
        other => other.get("error"),
    }
    .filter(|e| e.is_object())
}

fn is_bad_key(error: &Value) -> bool {
    error
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
}

fn from_error_object(status: u16, error: &Value) -> Value {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("Gemini answered HTTP {status}"));
    let google_status = error.get("status").and_then(Value::as_str);
    let (kind, code): (&str, Value) = if is_bad_key(error) {
        ("authentication_error", json!("invalid_api_key"))
    } else {
        match google_status {
            Some("INVALID_ARGUMENT") => ("invalid_request_error", json!("invalid_argument")),
            Some("FAILED_PRECONDITION") => ("invalid_request_error", json!("failed_precondition")),
            Some("OUT_OF_RANGE") => ("invalid_request_error", json!("out_of_range")),
            Some("UNAUTHENTICATED") => ("authentication_error", json!("invalid_api_key")),
            Some("PERMISSION_DENIED") => ("permission_error", json!("permission_denied")),
            Some("NOT_FOUND") => ("invalid_request_error", json!("not_found")),
            Some("RESOURCE_EXHAUSTED") => ("rate_limit_error", json!("rate_limit_exceeded")),
            Some("CANCELLED") => ("api_error", json!("cancelled")),
            Some("INTERNAL" | "UNKNOWN" | "DATA_LOSS") => ("api_error", json!("server_error")),
            Some("UNAVAILABLE") => ("api_error", json!("service_unavailable")),
            Some("DEADLINE_EXCEEDED") => ("api_error", json!("timeout")),
            _ => (type_for_http(status), Value::Null),
        }
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn http_for_status(status: &str) -> u16 {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

fn type_for_http(status: u16) -> &'static str {
    match status {
        400 | 404 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::test_support::{assert_json_eq, parse};

    #[test]
    fn rate_limit_error_matches_golden() {
        let body = include_bytes!("../../../tests/fixtures/gemini/error_429.json");
        let expected = parse(include_str!(
            "../../../tests/fixtures/gemini/error_429.openai.json"
        ));
        assert_json_eq(&error_to_openai(429, body), &expected);
        assert_eq!(client_status(429, body), 429);
    }

    #[test]
    fn invalid_api_key_becomes_401() {
        let body = include_bytes!("../../../tests/fixtures/gemini/error_bad_key.json");
        let got = error_to_openai(400, body);
        assert_eq!(got["error"]["type"], json!("authentication_error"));
        assert_eq!(got["error"]["code"], json!("invalid_api_key"));
        assert_eq!(client_status(400, body), 401);
    }

    #[test]
    fn array_wrapped_and_unparsable_bodies() {
        let wrapped = br#"[{"error":{"code":404,"message":"models/gemini-9 is not found","status":"NOT_FOUND"}}]"#;
        let got = error_to_openai(404, wrapped);
        assert_eq!(got["error"]["code"], json!("not_found"));
        assert_eq!(
            got["error"]["message"],
            json!("models/gemini-9 is not found")
        );

        let html = b"<html>502 Bad Gateway</html>";
        let got = error_to_openai(502, html);
        assert_eq!(got["error"]["type"], json!("api_error"));
        assert_eq!(got["error"]["code"], Value::Null);
        assert_eq!(
            got["error"]["message"],
            json!("Gemini answered HTTP 502: <html>502 Bad Gateway</html>")
        );
    }
}
