//! Error answers in Bedrock's shape: a body `{"message"}` and the error's name in the
//! `x-amzn-ErrorType` header, for scripted status faults, unknown actions and refused requests on
//! Bedrock paths.
//!
//! Status to error name, from
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_Errors>:
//! 400 `ValidationException`, 401 `UnrecognizedClientException` (Bedrock has no 401; a bad
//! signature is this name), 403 `AccessDeniedException`, 404 `ResourceNotFoundException`, 408
//! `ModelTimeoutException`, 424 `ModelErrorException`, 429 `ThrottlingException`, 500
//! `InternalServerException`, 503 `ServiceUnavailableException`; any other 4XX gets
//! `ValidationException`, anything else `InternalServerException`.

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use serde::Serialize;

use crate::openai::Reply;

const ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
}

/// The error name Bedrock uses for `status`.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationException",
        401 => "UnrecognizedClientException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        500 => "InternalServerException",
        503 => "ServiceUnavailableException",
        code if (400..500).contains(&code) => "ValidationException",
        _ => "InternalServerException",
    }
}

fn reply(status: StatusCode, name: &str, message: &str, retry_after_s: Option<u64>) -> Reply {
    // Not `to_json`: its fallback is an OpenAI body, and a plain string always serializes.
    let body = serde_json::to_vec(&Body { message }).unwrap_or_default();
    let error = Reply::Error {
        status,
        body,
        retry_after_s,
    };
    match HeaderValue::from_str(name) {
        Ok(value) => Reply::WithHeaders(Box::new(error), vec![(ERROR_TYPE, value)]),
        // Only a scripted `error_code` with control characters gets here; send the body alone.
        Err(_) => error,
    }
}

/// The scripted failure: `Behavior::status` with the fixed "mock error" message; `name` (from
/// `Behavior::error_code`) replaces the status's error name.
pub(crate) fn fault(status: u16, retry_after_s: Option<u64>, name: Option<&str>) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let name = name.unwrap_or_else(|| error_type(status));
    reply(status, name, "mock error", retry_after_s)
}

/// A 400 `ValidationException`.
pub(crate) fn validation(message: &str) -> Reply {
    let status = StatusCode::BAD_REQUEST;
    reply(status, error_type(status), message, None)
}

pub(crate) fn not_found(method: &str, path: &str) -> Reply {
    let message = format!(
        "unknown endpoint: {method} {path}; on /model/{{modelId}}/... paths the mock serves POST converse, converse-stream, invoke and invoke-with-response-stream"
    );
    reply(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        &message,
        None,
    )
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;

    use super::error_type;

    #[test]
    fn statuses_map_to_bedrock_error_names() {
        let cases = [
            (400, "ValidationException"),
            (401, "UnrecognizedClientException"),
            (403, "AccessDeniedException"),
            (404, "ResourceNotFoundException"),
            (409, "ValidationException"),
            (424, "ModelErrorException"),
            (429, "ThrottlingException"),
            (500, "InternalServerException"),
            (502, "InternalServerException"),
            (503, "ServiceUnavailableException"),
        ];
        for (status, name) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(error_type(status), name, "{status}");
        }
    }
}
