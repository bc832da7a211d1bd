//! Error bodies in Google's shape, `{"error": {"code", "message", "status", "details"?}}`, for
//! scripted status faults, unknown methods and refused requests on Gemini paths; and the error
//! event a stream fails with (`error_event_after_chunks`).
//!
//! Status to `error.status`, from <https://ai.google.dev/gemini-api/docs/troubleshooting> and
//! <https://cloud.google.com/apis/design/errors>: 400 `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`,
//! 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`, 409 `ABORTED`, 429 `RESOURCE_EXHAUSTED`, 499
//! `CANCELLED`, 500 `INTERNAL`, 501 `UNIMPLEMENTED`, 503 `UNAVAILABLE`, 504 `DEADLINE_EXCEEDED`;
//! any other 4XX gets `FAILED_PRECONDITION`, anything else `INTERNAL`. A fault with
//! `retry_after_s` also carries a `google.rpc.RetryInfo` detail (`retryDelay: "<s>s"`), where
//! Gemini puts its retry hint, besides the `retry-after` header every mode sends.

use hyper::StatusCode;
use serde::Serialize;

use crate::openai::Reply;

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<[RetryInfo; 1]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetryInfo {
    #[serde(rename = "@type")]
    kind: &'static str,
    retry_delay: String,
}

/// The `error.status` Google uses for `status`.
pub(crate) fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        code if (400..500).contains(&code) => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

fn body(status: StatusCode, message: &str, name: &str, retry_after_s: Option<u64>) -> Vec<u8> {
    // Not `to_json`: its fallback is an OpenAI body, and these plain fields always serialize.
    serde_json::to_vec(&Envelope {
        error: Detail {
            code: status.as_u16(),
            message,
            status: name,
            details: retry_after_s.map(|s| {
                [RetryInfo {
                    kind: "type.googleapis.com/google.rpc.RetryInfo",
                    retry_delay: format!("{s}s"),
                }]
            }),
        },
    })
    .unwrap_or_default()
}

/// The scripted failure: `Behavior::status` with the fixed "mock error" message; `name` (from
/// `Behavior::error_code`) replaces the status's `error.status`.
pub(crate) fn fault(status: u16, retry_after_s: Option<u64>, name: Option<&str>) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let name = name.unwrap_or_else(|| status_name(status));
    Reply::Error {
        status,
        body: body(status, "mock error", name, retry_after_s),
        retry_after_s,
    }
}

/// A 400 `INVALID_ARGUMENT`.
pub(crate) fn bad_request(message: &str) -> Reply {
    let status = StatusCode::BAD_REQUEST;
    Reply::error(status, body(status, message, status_name(status), None))
}

pub(crate) fn not_found(method: &str, path: &str) -> Reply {
    let message = format!(
        "unknown endpoint: {method} {path}; on .../models/{{model}}:{{method}} paths the mock serves POST generateContent, streamGenerateContent, batchEmbedContents and predict"
    );
    let status = StatusCode::NOT_FOUND;
    Reply::error(status, body(status, &message, status_name(status), None))
}

/// The data of the event a stream fails with: Gemini's answer when the model is overloaded.
pub(crate) fn overloaded_event() -> Vec<u8> {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    body(
        status,
        "The model is overloaded. Please try again later.",
        status_name(status),
        None,
    )
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;

    use super::status_name;

    #[test]
    fn statuses_map_to_google_status_names() {
        let cases = [
            (400, "INVALID_ARGUMENT"),
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (409, "ABORTED"),
            (422, "FAILED_PRECONDITION"),
            (429, "RESOURCE_EXHAUSTED"),
            (500, "INTERNAL"),
            (502, "INTERNAL"),
            (503, "UNAVAILABLE"),
            (504, "DEADLINE_EXCEEDED"),
        ];
        for (status, name) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(status_name(status), name, "{status}");
        }
    }
}
