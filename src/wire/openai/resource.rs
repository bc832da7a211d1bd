//! Files and batches: OpenAI's `/v1/files` and `/v1/batches`, and Anthropic's
//! `/v1/messages/batches`. Objects a provider holds, created, read, listed, cancelled and deleted
//! by id: unlike the other endpoints the method and the path say what is asked, and most requests
//! carry no body. The body of a create goes upstream as the client sent it; it is checked here
//! first, so a request that could never work gets a 400 naming the field and nothing goes
//! upstream. References: https://platform.openai.com/docs/api-reference/files,
//! https://platform.openai.com/docs/api-reference/batch,
//! https://docs.anthropic.com/en/api/creating-message-batches

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use super::{Endpoint, ParseError};
use crate::wire::multipart::Form;

/// What a request asks of the object (or the list of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    List,
    Retrieve,
    Delete,
    /// A file's bytes (`/v1/files/{id}/content`).
    Content,
    Cancel,
    /// A message batch's results, JSONL (`/v1/messages/batches/{id}/results`).
    Results,
}

#[derive(Clone, Debug)]
pub struct ResourceRequest {
    pub endpoint: Endpoint,
    pub method: Method,
    pub action: Action,
    /// The object named in the path.
    pub id: Option<String>,
    /// The path below the provider's base URL (`/files/file-abc/content`), query included.
    pub path: String,
    /// The body's content type when it has one (an upload's multipart form).
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// Why a request is not one of these endpoints' calls.
#[derive(Debug)]
pub enum ResourceError {
    /// No such call (an unknown sub-path or method): a 404.
    NotServed(String),
    Invalid(ParseError),
}

fn invalid(param: &str, message: &str) -> ResourceError {
    ResourceError::Invalid(ParseError {
        message: format!("invalid request: {param}: {message}"),
        param: Some(param.to_string()),
    })
}

/// The client-facing prefix of each endpoint's paths.
pub fn prefix(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Files => "/v1/files",
        Endpoint::Batches => "/v1/batches",
        _ => "/v1/messages/batches",
    }
}

impl ResourceRequest {
    pub fn parse(
        endpoint: Endpoint,
        method: &Method,
        uri: &hyper::Uri,
        content_type: Option<&str>,
        body: &Bytes,
    ) -> Result<ResourceRequest, ResourceError> {
        let base = prefix(endpoint);
        let rest = uri.path().strip_prefix(base).unwrap_or_default();
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let action = match (endpoint, method, segments.as_slice()) {
            (_, &Method::POST, []) => Action::Create,
            (_, &Method::GET, []) => Action::List,
            (_, &Method::GET, [_]) => Action::Retrieve,
            (Endpoint::Files | Endpoint::MessageBatches, &Method::DELETE, [_]) => Action::Delete,
            (Endpoint::Files, &Method::GET, [_, "content"]) => Action::Content,
            (Endpoint::Batches | Endpoint::MessageBatches, &Method::POST, [_, "cancel"]) => {
                Action::Cancel
            }
            (Endpoint::MessageBatches, &Method::GET, [_, "results"]) => Action::Results,
            _ => {
                return Err(ResourceError::NotServed(format!(
                    "{method} {} is not served",
                    uri.path()
                )));
            }
        };
        if action == Action::Create {
            check_create(endpoint, content_type, body)?;
        }
        let upstream_prefix = base.trim_start_matches("/v1");
        let mut path = format!("{upstream_prefix}{rest}");
        if let Some(query) = uri.query() {
            path.push('?');
            path.push_str(query);
        }
        Ok(ResourceRequest {
            endpoint,
            method: method.clone(),
            action,
            id: segments.first().map(|s| (*s).to_string()),
            path,
            content_type: (action == Action::Create)
                .then(|| content_type.map(String::from))
                .flatten(),
            body: body.clone(),
        })
    }

    /// The create body, parsed, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The fields a create cannot do without, each of the right type.
fn check_create(
    endpoint: Endpoint,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<(), ResourceError> {
    if endpoint == Endpoint::Files {
        let form = Form::parse(content_type.unwrap_or_default(), body.clone()).map_err(|e| {
            ResourceError::Invalid(ParseError {
                message: format!("invalid request: {e}"),
                param: None,
            })
        })?;
        if !form.has_file("file") {
            return Err(invalid("file", "a file part is required"));
        }
        if form.text("purpose").is_none_or(|p| p.trim().is_empty()) {
            return Err(invalid("purpose", "is required"));
        }
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ResourceError::Invalid(ParseError {
            message: format!("request body is not valid JSON: {e}"),
            param: None,
        })
    })?;
    let Value::Object(map) = value else {
        return Err(ResourceError::Invalid(ParseError {
            message: "invalid request: the body must be a JSON object".into(),
            param: None,
        }));
    };
    if endpoint == Endpoint::Batches {
        for field in ["input_file_id", "endpoint", "completion_window"] {
            match map.get(field) {
                Some(Value::String(s)) if !s.is_empty() => {}
                None | Some(Value::Null) => return Err(invalid(field, "is required")),
                Some(_) => return Err(invalid(field, "must be a non-empty string")),
            }
        }
        if !matches!(
            map.get("metadata"),
            None | Some(Value::Null | Value::Object(_))
        ) {
            return Err(invalid("metadata", "must be an object"));
        }
        return Ok(());
    }
    let Some(Value::Array(requests)) = map.get("requests") else {
        return Err(invalid("requests", "must be a non-empty array"));
    };
    if requests.is_empty() {
        return Err(invalid("requests", "must be a non-empty array"));
    }
    for (i, request) in requests.iter().enumerate() {
        if !request["custom_id"].is_string() {
            return Err(invalid(
                &format!("requests[{i}].custom_id"),
                "must be a string",
            ));
        }
        if !request["params"]["model"].is_string() {
            return Err(invalid(
                &format!("requests[{i}].params.model"),
                "must be a string",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(endpoint: Endpoint, method: Method, path: &str, body: &str) -> ResourceRequest {
        let uri: hyper::Uri = path.parse().unwrap_or_default();
        match ResourceRequest::parse(
            endpoint,
            &method,
            &uri,
            Some("application/json"),
            &Bytes::copy_from_slice(body.as_bytes()),
        ) {
            Ok(request) => request,
            Err(e) => panic!("{path}: {e:?}"),
        }
    }

    #[test]
    fn the_method_and_path_name_the_action_and_the_upstream_path() {
        let r = parse(Endpoint::Files, Method::GET, "/v1/files/file-1/content", "");
        assert_eq!(
            (r.action, r.id.as_deref()),
            (Action::Content, Some("file-1"))
        );
        assert_eq!(r.path, "/files/file-1/content");
        let r = parse(Endpoint::Batches, Method::GET, "/v1/batches?limit=2", "");
        assert_eq!(
            (r.action, r.path.as_str()),
            (Action::List, "/batches?limit=2")
        );
        let r = parse(
            Endpoint::MessageBatches,
            Method::GET,
            "/v1/messages/batches/msgbatch_1/results",
            "",
        );
        assert_eq!(r.action, Action::Results);
        assert_eq!(r.path, "/messages/batches/msgbatch_1/results");
    }

    #[test]
    fn a_batch_create_names_its_missing_or_mistyped_field() {
        let uri: hyper::Uri = "/v1/batches".parse().unwrap_or_default();
        let err = |body: &str| match ResourceRequest::parse(
            Endpoint::Batches,
            &Method::POST,
            &uri,
            Some("application/json"),
            &Bytes::copy_from_slice(body.as_bytes()),
        ) {
            Err(ResourceError::Invalid(e)) => e.param,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            err(r#"{"endpoint":"/v1/chat/completions","completion_window":"24h"}"#).as_deref(),
            Some("input_file_id")
        );
        assert_eq!(
            err(
                r#"{"input_file_id":7,"endpoint":"/v1/chat/completions","completion_window":"24h"}"#
            )
            .as_deref(),
            Some("input_file_id")
        );
        assert_eq!(err(r#"{"input_file_id":"f","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":[]}"#).as_deref(), Some("metadata"));
        assert_eq!(err("{not json"), None);
    }
}
