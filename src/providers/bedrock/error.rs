//! Bedrock errors -> the OpenAI error shape `{"error": {"message", "type", "param", "code"}}`.
//!
//! Bedrock answers an error with a JSON body `{"message": "..."}` (sometimes `Message`) and names
//! the error in the `x-amzn-ErrorType` header (`ThrottlingException:http://internal.amazon.com/...`)
//! or, for some front-end errors, in a body `__type` (`com.amazon.coral.service#...`). Mid-stream,
//! the same names arrive as `:exception-type` on an event-stream `exception` frame.
//!
//! | Bedrock error | HTTP | OpenAI `type` | OpenAI `code` |
//! |---|---|---|---|
//! | `ValidationException` | 400 | `invalid_request_error` | `invalid_request` |
//! | `ConflictException` | 400 | `invalid_request_error` | `conflict` |
//! | `ServiceQuotaExceededException` | 400 | `rate_limit_error` | `quota_exceeded` |
//! | `UnrecognizedClientException`, `InvalidSignatureException`, `IncompleteSignature`, `ExpiredTokenException`, `InvalidClientTokenId`, `MissingAuthenticationTokenException` | 400/403 | `authentication_error` | `invalid_api_key` |
//! | `AccessDeniedException` | 403 | `permission_error` | `access_denied` |
//! | `ResourceNotFoundException` | 404 | `invalid_request_error` | `model_not_found` |
//! | `ModelTimeoutException` | 408 | `api_error` | `timeout` |
//! | `ModelErrorException` | 424 | `api_error` | `model_error` |
//! | `ModelStreamErrorException` | 424 | `api_error` | `model_stream_error` |
//! | `ThrottlingException` | 429 | `rate_limit_error` | `rate_limit_exceeded` |
//! | `ModelNotReadyException` | 429 | `api_error` | `model_not_ready` |
//! | `InternalServerException` | 500 | `api_error` | `server_error` |
//! | `ServiceUnavailableException` | 503 | `api_error` | `service_unavailable` |
//! | unknown or missing | as sent | by HTTP status: 400/404 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`, 429 `rate_limit_error`, other `api_error` | `null` |
//!
//! Sources: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors>,
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/troubleshooting-api-error-codes.html>.

use serde_json::{Value, json};

use super::TranslateError;

/// The OpenAI-shaped error body for a Bedrock error answer, the error type read from the body's
/// `__type` if any. Prefer [`error_to_openai_typed`] with the `x-amzn-ErrorType` header.
pub fn error_to_openai(status: u16, body: &[u8]) -> Value {
    error_to_openai_typed(status, None, body)
}

/// Like [`error_to_openai`], with the `x-amzn-ErrorType` header value.
pub fn error_to_openai_typed(status: u16, error_type: Option<&str>, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let body_type = parsed
        .as_ref()
        .and_then(|b| b.get("__type"))
        .and_then(Value::as_str);
    let name = error_type.or(body_type).map(short_name);
    let message = parsed
        .as_ref()
        .and_then(|b| b.get("message").or_else(|| b.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text: String = String::from_utf8_lossy(body).chars().take(500).collect();
            match (text.trim().is_empty(), name) {
                (true, Some(n)) => format!("Bedrock answered HTTP {status} ({n})"),
                (true, None) => format!("Bedrock answered HTTP {status}"),
                (false, _) => format!("Bedrock answered HTTP {status}: {}", text.trim()),
            }
        });
    shape(status, name, message)
}

/// The HTTP status an error type stands for (used for mid-stream exceptions, which arrive after
/// the 200 header).
pub fn status_for(error_type: &str) -> u16 {
    match upper_first(short_name(error_type)).as_str() {
        "ValidationException"
        | "ConflictException"
        | "ServiceQuotaExceededException"
        | "IncompleteSignature"
        | "MissingAuthenticationTokenException" => 400,
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "InvalidClientTokenId"
        | "AccessDeniedException" => 403,
        "ResourceNotFoundException" => 404,
        "ModelTimeoutException" => 408,
        "ModelErrorException" | "ModelStreamErrorException" => 424,
        "ThrottlingException" | "ModelNotReadyException" => 429,
        "ServiceUnavailableException" => 503,
        _ => 500,
    }
}

/// A mid-stream `exception` (or `error`) frame -> `TranslateError::ProviderError`. Stream
/// exception names are camel-cased (`throttlingException`); they are matched like the others.
pub(crate) fn stream_exception(exception_type: &str, payload: &[u8]) -> TranslateError {
    let name = upper_first(short_name(exception_type));
    let status = status_for(&name);
    let body = error_to_openai_typed(status, Some(&name), payload);
    TranslateError::ProviderError {
        status,
        message: body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body,
    }
}

/// `ThrottlingException:http://internal...` or `com.amazon.coral.service#ThrottlingException`
/// -> `ThrottlingException`.
fn short_name(error_type: &str) -> &str {
    let before_colon = error_type.split(':').next().unwrap_or(error_type);
    before_colon
        .rsplit('#')
        .next()
        .unwrap_or(before_colon)
        .trim()
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn shape(status: u16, name: Option<&str>, message: String) -> Value {
    let upper = name.map(upper_first);
    let (kind, code): (&str, Value) = match upper.as_deref() {
        Some("ValidationException") => ("invalid_request_error", json!("invalid_request")),
        Some("ConflictException") => ("invalid_request_error", json!("conflict")),
        Some("ServiceQuotaExceededException") => ("rate_limit_error", json!("quota_exceeded")),
        Some(
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "MissingAuthenticationTokenException",
        ) => ("authentication_error", json!("invalid_api_key")),
        Some("AccessDeniedException") => ("permission_error", json!("access_denied")),
        Some("ResourceNotFoundException") => ("invalid_request_error", json!("model_not_found")),
        Some("ModelTimeoutException") => ("api_error", json!("timeout")),
        Some("ModelErrorException") => ("api_error", json!("model_error")),
        Some("ModelStreamErrorException") => ("api_error", json!("model_stream_error")),
        Some("ThrottlingException") => ("rate_limit_error", json!("rate_limit_exceeded")),
        Some("ModelNotReadyException") => ("api_error", json!("model_not_ready")),
        Some("InternalServerException") => ("api_error", json!("server_error")),
        Some("ServiceUnavailableException") => ("api_error", json!("service_unavailable")),
        _ => (
            match status {
                400 | 404 | 422 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                429 => "rate_limit_error",
                _ => "api_error",
            },
            Value::Null,
        ),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::test_support::{assert_json_eq, parse};

    #[test]
    fn throttling_matches_golden() {
        let body = include_bytes!("../../../tests/fixtures/bedrock/error_throttling.json");
        let expected = parse(include_str!(
            "../../../tests/fixtures/bedrock/error_throttling.openai.json"
        ));
        let got = error_to_openai_typed(
            429,
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            body,
        );
        assert_json_eq(&got, &expected);
    }

    #[test]
    fn validation_and_auth_errors() {
        let got = error_to_openai_typed(
            400,
            Some("ValidationException"),
            br#"{"message":"The model returned the following errors: max_tokens: 100000 > 64000"}"#,
        );
        assert_eq!(got["error"]["type"], json!("invalid_request_error"));
        assert_eq!(got["error"]["code"], json!("invalid_request"));

        let got = error_to_openai(
            403,
            br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#,
        );
        assert_eq!(got["error"]["type"], json!("authentication_error"));
        assert_eq!(
            got["error"]["message"],
            json!("The security token included in the request is invalid.")
        );

        let got = error_to_openai(502, b"");
        assert_eq!(got["error"]["message"], json!("Bedrock answered HTTP 502"));
        assert_eq!(got["error"]["type"], json!("api_error"));
    }

    #[test]
    fn stream_exceptions_map_to_statuses() {
        match stream_exception("throttlingException", br#"{"message":"Too many requests"}"#) {
            TranslateError::ProviderError { status, body, .. } => {
                assert_eq!(status, 429);
                assert_eq!(body["error"]["code"], json!("rate_limit_exceeded"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(status_for("modelStreamErrorException"), 424);
        assert_eq!(status_for("ModelStreamErrorException"), 424);
        assert_eq!(status_for("validationException"), 400);
        assert_eq!(status_for("somethingNew"), 500);
    }
}
