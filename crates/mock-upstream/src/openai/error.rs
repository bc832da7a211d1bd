//! Error bodies in OpenAI's shape: `{"error":{"message","type","param","code"}}`. Used for
//! scripted status faults, unknown endpoints and unreadable requests.

use hyper::StatusCode;
use serde::Serialize;

use super::Reply;

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

pub(crate) fn body(message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
    // Not `to_json`: that falls back to this function, and these plain strings always serialize.
    serde_json::to_vec(&Envelope {
        error: Detail {
            message,
            kind,
            param: None,
            code,
        },
    })
    .unwrap_or_default()
}

/// The scripted failure: `Behavior::status` with the fixed "mock error" body.
pub(crate) fn fault(status: u16, retry_after_s: Option<u64>, code: Option<&str>) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = code
        .map(String::from)
        .unwrap_or_else(|| format!("mock_{}", status.as_u16()));
    Reply::Error {
        status,
        body: body("mock error", "mock_error", Some(&code)),
        retry_after_s,
    }
}

pub(crate) fn bad_request(message: &str, code: &str) -> Reply {
    Reply::error(
        StatusCode::BAD_REQUEST,
        body(message, "invalid_request_error", Some(code)),
    )
}

pub(crate) fn not_found(method: &str, path: &str) -> Reply {
    let message = format!(
        "unknown endpoint: {method} {path}; the mock serves POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, POST /v1/responses, GET /v1/models, POST /v1/messages, POST /v1/messages/count_tokens, Gemini's POST .../models/{{model}}:{{method}} and Bedrock's POST .../model/{{modelId}}/{{action}}"
    );
    Reply::error(
        StatusCode::NOT_FOUND,
        body(&message, "invalid_request_error", Some("unknown_url")),
    )
}
