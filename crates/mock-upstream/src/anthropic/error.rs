//! Error bodies in Anthropic's shape, `{"type":"error","error":{"type","message"},"request_id"}`,
//! for scripted status faults, unknown `/v1/messages...` paths and refused requests on them; and
//! the `error` event a stream fails with (`error_event_after_chunks`), which has no `request_id`.
//!
//! Status to `error.type`, from <https://platform.claude.com/docs/en/api/errors>: 400
//! `invalid_request_error` (also "other 4XX status codes not listed"), 401 `authentication_error`,
//! 402 `billing_error`, 403 `permission_error`, 404 `not_found_error`, 413 `request_too_large`,
//! 429 `rate_limit_error`, 500 `api_error`, 504 `timeout_error`, 529 `overloaded_error`; any other
//! status gets `api_error`.

use hyper::StatusCode;
use serde::Serialize;

use super::request_id;
use crate::openai::Reply;

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Detail<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// The `error.type` Anthropic uses for `status`.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        // "This error type may also be used for other 4XX status codes."
        code if (400..500).contains(&code) => "invalid_request_error",
        _ => "api_error",
    }
}

fn body(kind: &str, message: &str, request_id: Option<&str>) -> Vec<u8> {
    // Not `to_json`: its fallback is an OpenAI body, and these plain strings always serialize.
    serde_json::to_vec(&Envelope {
        kind: "error",
        error: Detail { kind, message },
        request_id,
    })
    .unwrap_or_default()
}

/// The scripted failure: `Behavior::status` with the fixed "mock error" message; `kind` (from
/// `Behavior::error_code`) replaces the status's `error.type`.
pub(crate) fn fault(
    status: u16,
    retry_after_s: Option<u64>,
    kind: Option<&str>,
    n: usize,
) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = kind.unwrap_or_else(|| error_type(status));
    Reply::Error {
        status,
        body: body(kind, "mock error", Some(&request_id(n))),
        retry_after_s,
    }
}

/// A 400 `invalid_request_error` for request number `n`.
pub(crate) fn invalid_request(message: &str, n: usize) -> Reply {
    let status = StatusCode::BAD_REQUEST;
    Reply::error(
        status,
        body(error_type(status), message, Some(&request_id(n))),
    )
}

pub(crate) fn not_found(method: &str, path: &str, n: usize) -> Reply {
    let message = format!(
        "unknown endpoint: {method} {path}; the mock serves POST /v1/messages and POST /v1/messages/count_tokens"
    );
    let status = StatusCode::NOT_FOUND;
    Reply::error(
        status,
        body(error_type(status), &message, Some(&request_id(n))),
    )
}

/// The data of the `error` event a stream fails with, as in Anthropic's streaming docs.
pub(crate) fn overloaded_event() -> Vec<u8> {
    body("overloaded_error", "Overloaded", None)
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;

    use super::error_type;

    #[test]
    fn statuses_map_to_anthropic_error_types() {
        let cases = [
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
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ];
        for (status, kind) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(error_type(status), kind, "{status}");
        }
    }
}
