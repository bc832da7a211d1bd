//! `ApiError`: every way a request can fail, mapped to an HTTP status and the OpenAI error body
//! `{"error":{"message","type","param","code"}}` through exhaustive matches. Messages never carry a
//! key: they are built from names and numbers, and upstream bodies are forwarded only for that
//! upstream's own errors.

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::HeaderMap;
use serde_json::json;

use crate::providers::UpstreamError;

/// Who caused the failure; decides retries (later) and what the trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    Client,
    Upstream,
    Internal,
}

/// Why a request failed, as the trace records it: every [`ApiError`] code, and the two endings
/// that are not errors the proxy answers with (the client left; the upstream failed mid-stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidJson,
    InvalidValue,
    MissingApiKey,
    InvalidApiKey,
    RevokedApiKey,
    ExpiredApiKey,
    ModelNotAllowed,
    InsufficientQuota,
    RateLimitExceeded,
    ModelNotFound,
    NotFound,
    MethodNotAllowed,
    BodyTooLarge,
    TooManyMessages,
    RequestTimeout,
    ContentPolicyViolation,
    CostLimitExceeded,
    AddressNotAllowed,
    Cancelled,
    Overloaded,
    UpstreamUnreachable,
    UpstreamTimeout,
    UpstreamProtocolError,
    UpstreamStatus,
    /// The upstream sent an error event after the stream had started.
    UpstreamStreamError,
    AdminDisabled,
    InvalidAdminKey,
    ReadOnlyAdminKey,
    InvalidAdminRequest,
    Unavailable,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::RevokedApiKey => "revoked_api_key",
            ErrorCode::ExpiredApiKey => "expired_api_key",
            ErrorCode::ModelNotAllowed => "model_not_allowed",
            ErrorCode::InsufficientQuota => "insufficient_quota",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::TooManyMessages => "too_many_messages",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::ContentPolicyViolation => "content_policy_violation",
            ErrorCode::CostLimitExceeded => "cost_limit_exceeded",
            ErrorCode::AddressNotAllowed => "address_not_allowed",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::UpstreamUnreachable => "upstream_unreachable",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::UpstreamProtocolError => "upstream_protocol_error",
            ErrorCode::UpstreamStatus => "upstream_status",
            ErrorCode::UpstreamStreamError => "upstream_stream_error",
            ErrorCode::AdminDisabled => "admin_disabled",
            ErrorCode::InvalidAdminKey => "invalid_admin_key",
            ErrorCode::ReadOnlyAdminKey => "read_only_admin_key",
            ErrorCode::InvalidAdminRequest => "invalid_admin_request",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// Whether the upstream, not the client or the proxy, failed.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            ErrorCode::UpstreamUnreachable
                | ErrorCode::UpstreamTimeout
                | ErrorCode::UpstreamProtocolError
                | ErrorCode::UpstreamStatus
                | ErrorCode::UpstreamStreamError
        )
    }
}

#[derive(Clone, Debug)]
pub enum ApiError {
    InvalidJson {
        message: String,
    },
    InvalidField {
        param: Option<String>,
        message: String,
    },
    MissingKey,
    InvalidKey,
    /// A virtual key that was revoked.
    RevokedKey,
    /// A virtual key past its expiry.
    ExpiredKey,
    /// The key's (or its team's) model list does not include `model`.
    ModelNotAllowed {
        model: String,
    },
    /// A budget is spent: `message` gives the budget, the spend and the reset time.
    BudgetExceeded {
        message: String,
    },
    /// A rate limit is reached; the client may retry after `retry_after_s` seconds.
    RateLimited {
        message: String,
        retry_after_s: u64,
    },
    UnknownModel {
        message: String,
    },
    NotFound {
        path: String,
    },
    MethodNotAllowed {
        method: String,
        path: String,
    },
    BodyTooLarge {
        limit_bytes: usize,
    },
    TooManyMessages {
        limit: usize,
        got: usize,
    },
    /// A guardrail refused the request or the answer. Names the detector and the rule, never the
    /// text that matched.
    ContentPolicy {
        detector: &'static str,
        rule: String,
    },
    /// The request's estimated cost, or a stream's running cost, passes a ceiling; `message`
    /// names the ceiling and where it is set.
    CostLimit {
        message: String,
    },
    /// The client's address may not use this proxy (or this key); `message` says which list.
    AddressNotAllowed {
        message: String,
    },
    /// The client did not finish sending its body in time.
    BodyTimeout {
        timeout_ms: u64,
    },
    /// The client went away before its request was complete.
    ClientClosed,
    /// The server is at a capacity limit (`what`); the client may retry after a second.
    Overloaded {
        what: &'static str,
    },
    UpstreamUnreachable {
        message: String,
    },
    UpstreamTimeout {
        message: String,
    },
    UpstreamProtocol {
        message: String,
    },
    /// The upstream answered with an error: its status, body and rate-limit headers pass through.
    Upstream {
        status: StatusCode,
        body: Bytes,
        headers: Box<HeaderMap>,
    },
    AdminDisabled,
    AdminUnauthorized,
    /// A read-only admin key asked for a change.
    AdminReadOnly,
    AdminInvalid {
        message: String,
    },
    AdminNotFound {
        message: String,
    },
    Unavailable {
        message: String,
        /// When it is known to end (a cool-down, a provider's rate limit): `retry-after`.
        retry_after_s: Option<u64>,
    },
    Internal {
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson { .. }
            | ApiError::InvalidField { .. }
            | ApiError::TooManyMessages { .. }
            | ApiError::CostLimit { .. }
            | ApiError::ContentPolicy { .. } => StatusCode::BAD_REQUEST,
            ApiError::AdminInvalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::MissingKey
            | ApiError::InvalidKey
            | ApiError::RevokedKey
            | ApiError::ExpiredKey
            | ApiError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AdminDisabled
            | ApiError::AdminReadOnly
            | ApiError::AddressNotAllowed { .. }
            | ApiError::ModelNotAllowed { .. } => StatusCode::FORBIDDEN,
            ApiError::BudgetExceeded { .. } | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::UnknownModel { .. }
            | ApiError::NotFound { .. }
            | ApiError::AdminNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            // nginx's "client closed request": nobody reads this answer; it is for the trace.
            ApiError::ClientClosed => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpstreamUnreachable { .. } | ApiError::UpstreamProtocol { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ApiError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Upstream { status, .. } => *status,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::InvalidJson { .. }
            | ApiError::InvalidField { .. }
            | ApiError::TooManyMessages { .. }
            | ApiError::ContentPolicy { .. }
            | ApiError::CostLimit { .. }
            | ApiError::UnknownModel { .. }
            | ApiError::NotFound { .. }
            | ApiError::MethodNotAllowed { .. }
            | ApiError::BodyTooLarge { .. }
            | ApiError::BodyTimeout { .. }
            | ApiError::ClientClosed
            | ApiError::AdminInvalid { .. }
            | ApiError::AdminNotFound { .. } => "invalid_request_error",
            ApiError::MissingKey
            | ApiError::InvalidKey
            | ApiError::RevokedKey
            | ApiError::ExpiredKey
            | ApiError::AdminUnauthorized => "authentication_error",
            ApiError::AdminDisabled
            | ApiError::AdminReadOnly
            | ApiError::AddressNotAllowed { .. }
            | ApiError::ModelNotAllowed { .. } => "permission_error",
            ApiError::BudgetExceeded { .. } => "insufficient_quota",
            ApiError::RateLimited { .. } => "rate_limit_error",
            ApiError::UpstreamUnreachable { .. }
            | ApiError::UpstreamTimeout { .. }
            | ApiError::UpstreamProtocol { .. }
            | ApiError::Upstream { .. } => "upstream_error",
            ApiError::Unavailable { .. } | ApiError::Overloaded { .. } => "service_unavailable",
            ApiError::Internal { .. } => "server_error",
        }
    }

    /// Stable machine-readable code, as clients see it.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The code as the trace's error class.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidJson { .. } => ErrorCode::InvalidJson,
            ApiError::InvalidField { .. } => ErrorCode::InvalidValue,
            ApiError::MissingKey => ErrorCode::MissingApiKey,
            ApiError::InvalidKey => ErrorCode::InvalidApiKey,
            ApiError::RevokedKey => ErrorCode::RevokedApiKey,
            ApiError::ExpiredKey => ErrorCode::ExpiredApiKey,
            ApiError::ModelNotAllowed { .. } => ErrorCode::ModelNotAllowed,
            ApiError::BudgetExceeded { .. } => ErrorCode::InsufficientQuota,
            ApiError::RateLimited { .. } => ErrorCode::RateLimitExceeded,
            ApiError::UnknownModel { .. } => ErrorCode::ModelNotFound,
            ApiError::NotFound { .. } | ApiError::AdminNotFound { .. } => ErrorCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::BodyTooLarge { .. } => ErrorCode::BodyTooLarge,
            ApiError::TooManyMessages { .. } => ErrorCode::TooManyMessages,
            ApiError::ContentPolicy { .. } => ErrorCode::ContentPolicyViolation,
            ApiError::CostLimit { .. } => ErrorCode::CostLimitExceeded,
            ApiError::AddressNotAllowed { .. } => ErrorCode::AddressNotAllowed,
            ApiError::BodyTimeout { .. } => ErrorCode::RequestTimeout,
            ApiError::ClientClosed => ErrorCode::Cancelled,
            ApiError::Overloaded { .. } => ErrorCode::Overloaded,
            ApiError::UpstreamUnreachable { .. } => ErrorCode::UpstreamUnreachable,
            ApiError::UpstreamTimeout { .. } => ErrorCode::UpstreamTimeout,
            ApiError::UpstreamProtocol { .. } => ErrorCode::UpstreamProtocolError,
            ApiError::Upstream { .. } => ErrorCode::UpstreamStatus,
            ApiError::AdminDisabled => ErrorCode::AdminDisabled,
            ApiError::AdminUnauthorized => ErrorCode::InvalidAdminKey,
            ApiError::AdminReadOnly => ErrorCode::ReadOnlyAdminKey,
            ApiError::AdminInvalid { .. } => ErrorCode::InvalidAdminRequest,
            ApiError::Unavailable { .. } => ErrorCode::Unavailable,
            ApiError::Internal { .. } => ErrorCode::InternalError,
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            ApiError::InvalidField { param, .. } => param.as_deref(),
            ApiError::UnknownModel { .. } | ApiError::ModelNotAllowed { .. } => Some("model"),
            ApiError::TooManyMessages { .. } => Some("messages"),
            _ => None,
        }
    }

    pub fn source(&self) -> ErrorSource {
        match self {
            ApiError::UpstreamUnreachable { .. }
            | ApiError::UpstreamTimeout { .. }
            | ApiError::UpstreamProtocol { .. }
            | ApiError::Upstream { .. } => ErrorSource::Upstream,
            ApiError::Internal { .. }
            | ApiError::Unavailable { .. }
            | ApiError::Overloaded { .. } => ErrorSource::Internal,
            _ => ErrorSource::Client,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::InvalidJson { message }
            | ApiError::InvalidField { message, .. }
            | ApiError::UnknownModel { message }
            | ApiError::BudgetExceeded { message }
            | ApiError::CostLimit { message }
            | ApiError::AddressNotAllowed { message }
            | ApiError::RateLimited { message, .. }
            | ApiError::UpstreamUnreachable { message }
            | ApiError::UpstreamTimeout { message }
            | ApiError::UpstreamProtocol { message }
            | ApiError::AdminInvalid { message }
            | ApiError::AdminNotFound { message }
            | ApiError::Unavailable { message, .. }
            | ApiError::Internal { message } => message.clone(),
            ApiError::MissingKey => {
                "missing API key; send it as 'Authorization: Bearer KEY' (or 'x-api-key: KEY')"
                    .to_string()
            }
            ApiError::InvalidKey => "invalid API key: no such key".to_string(),
            ApiError::RevokedKey => "this API key has been revoked".to_string(),
            ApiError::ExpiredKey => "this API key has expired".to_string(),
            ApiError::ModelNotAllowed { model } => {
                format!("this API key may not use the model {model:?}")
            }
            ApiError::NotFound { path } => format!("no route for {path}"),
            ApiError::MethodNotAllowed { method, path } => {
                format!("{method} is not allowed on {path}")
            }
            ApiError::BodyTooLarge { limit_bytes } => {
                format!("request body is larger than the limit of {limit_bytes} bytes")
            }
            ApiError::TooManyMessages { limit, got } => {
                format!("request has {got} messages; the limit is {limit}")
            }
            ApiError::ContentPolicy { detector, rule } => {
                format!("content policy violation: guardrail {detector}, rule {rule}")
            }
            ApiError::BodyTimeout { timeout_ms } => {
                format!("the request body did not arrive within {timeout_ms} ms")
            }
            ApiError::ClientClosed => "the client closed the connection mid-request".to_string(),
            ApiError::Overloaded { what } => {
                format!("the server is at its limit of {what}; retry shortly")
            }
            ApiError::Upstream { status, .. } => format!("upstream answered {status}"),
            ApiError::AdminDisabled => {
                "the admin API is disabled; set STOCKYARD_ADMIN_KEY (or [admin] key) to enable it"
                    .to_string()
            }
            ApiError::AdminUnauthorized => "invalid or missing admin key".to_string(),
            ApiError::AdminReadOnly => {
                "this admin key is read-only: it may only read (GET)".to_string()
            }
        }
    }

    /// The OpenAI error object as JSON bytes.
    pub fn body(&self) -> Bytes {
        if let ApiError::Upstream { body, .. } = self {
            return body.clone();
        }
        let value = json!({
            "error": {
                "message": self.message(),
                "type": self.error_type(),
                "param": self.param(),
                "code": self.code(),
            }
        });
        Bytes::from(value.to_string())
    }

    /// The same error as one SSE event, for failures after a stream has started.
    pub fn sse_event(&self) -> Bytes {
        let value = json!({
            "error": {
                "message": self.message(),
                "type": self.error_type(),
                "param": self.param(),
                "code": self.code(),
            }
        });
        Bytes::from(format!("data: {value}\n\n"))
    }
}

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        let message = err.to_string();
        match err {
            UpstreamError::Connect { .. } => ApiError::UpstreamUnreachable { message },
            UpstreamError::Timeout { .. } => ApiError::UpstreamTimeout { message },
            UpstreamError::Protocol { .. } => ApiError::UpstreamProtocol { message },
            UpstreamError::Build { .. } => ApiError::Internal { message },
            UpstreamError::Refused { param, .. } => ApiError::InvalidField {
                param: Some(param.to_string()),
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_openai_shape() {
        let err = ApiError::InvalidField {
            param: Some("messages[0].role".into()),
            message: "bad role".into(),
        };
        let value: serde_json::Value = serde_json::from_slice(&err.body()).unwrap_or_default();
        assert_eq!(value["error"]["param"], "messages[0].role");
        assert_eq!(value["error"]["type"], "invalid_request_error");
        assert_eq!(value["error"]["code"], "invalid_value");
        assert_eq!(value["error"]["message"], "bad role");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn statuses_match_the_failure() {
        assert_eq!(ApiError::BodyTooLarge { limit_bytes: 1 }.status(), 413);
        assert_eq!(
            ApiError::UnknownModel {
                message: String::new()
            }
            .status(),
            404
        );
        assert_eq!(
            ApiError::UpstreamUnreachable {
                message: String::new()
            }
            .status(),
            502
        );
        assert_eq!(
            ApiError::UpstreamTimeout {
                message: String::new()
            }
            .status(),
            504
        );
        assert_eq!(ApiError::MissingKey.status(), 401);
        assert_eq!(ApiError::AdminDisabled.status(), 403);
    }
}
