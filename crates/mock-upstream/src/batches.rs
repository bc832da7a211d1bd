//! Files and batches, the only state the mock keeps between requests: OpenAI's `/v1/files`
//! (upload, list, retrieve, delete, content) and `/v1/batches` (create, retrieve, list, cancel),
//! and Anthropic's `/v1/messages/batches` (create, retrieve, list, cancel, delete, results).
//! Azure OpenAI's paths for the same (`/openai/v1/files`, and the dated `/openai/files?api-version=`)
//! reach the same objects.
//!
//! A batch completes on its first retrieve: the OpenAI one then names an output file holding a
//! chat completion for each input line, the Anthropic one serves its results, each a message.
//! Every result uses [`BATCH_LINE_USAGE`] tokens (input, output), so tests can price a batch.
//! Shapes: https://platform.openai.com/docs/api-reference/batch/object,
//! https://docs.anthropic.com/en/api/retrieving-message-batch-results

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::openai::Reply;
use crate::openai::operations::Form;

/// Input and output tokens of every batch result.
pub const BATCH_LINE_USAGE: (u64, u64) = (1000, 200);

#[derive(Debug, Default)]
pub(crate) struct Objects {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// id -> (file object, bytes)
    files: BTreeMap<String, (Value, Bytes)>,
    batches: BTreeMap<String, Value>,
    /// Anthropic: id -> (batch object, the requests' custom ids and models)
    message_batches: BTreeMap<String, (Value, Vec<(String, String)>)>,
}

/// Whether the path is one of these endpoints' (Azure's included, see [`openai_path`]).
pub(crate) fn serves(path: &str) -> bool {
    let path = openai_path(path);
    ["/v1/files", "/v1/batches", "/v1/messages/batches"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// The OpenAI path an Azure OpenAI path stands for: the v1 API's `/openai/v1/files...` and the
/// dated API's `/openai/files...` (its `?api-version=` in the query) both hold the same files and
/// batches as `/v1/files...`
/// (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch). Other paths are kept.
pub(crate) fn openai_path(path: &str) -> String {
    match path
        .strip_prefix("/openai/v1/")
        .or_else(|| path.strip_prefix("/openai/"))
    {
        Some(rest) => format!("/v1/{rest}"),
        None => path.to_string(),
    }
}

/// Azure's dated API refuses a call without `api-version`, as Azure does.
pub(crate) fn missing_api_version(path: &str, query: Option<&str>) -> Option<Reply> {
    let dated = path.starts_with("/openai/") && !path.starts_with("/openai/v1/");
    let versioned = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("api-version=")));
    (dated && !versioned).then(|| {
        openai_error(
            StatusCode::NOT_FOUND,
            "Resource not found: the dated API needs an api-version query parameter",
        )
    })
}

fn json_reply(value: &Value) -> Reply {
    Reply::Json(Bytes::from(value.to_string()))
}

fn openai_error(status: StatusCode, message: &str) -> Reply {
    Reply::error(
        status,
        crate::openai::error::body(message, "invalid_request_error", None),
    )
}

fn anthropic_error(status: StatusCode, message: &str, n: usize) -> Reply {
    let kind = if status == StatusCode::NOT_FOUND {
        "not_found_error"
    } else {
        "invalid_request_error"
    };
    Reply::error(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message},
               "request_id": crate::anthropic::request_id(n)})
        .to_string()
        .into_bytes(),
    )
}

fn list(items: Vec<Value>) -> Value {
    json!({
        "object": "list",
        "first_id": items.first().map(|i| i["id"].clone()),
        "last_id": items.last().map(|i| i["id"].clone()),
        "has_more": false,
        "data": items,
    })
}

impl Objects {
    pub(crate) fn reply(
        &self,
        method: &Method,
        path: &str,
        content_type: &str,
        raw: &Bytes,
        n: usize,
    ) -> Reply {
        let mut state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.next += 1;
        let seq = state.next;
        let path = openai_path(path);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match (method, segments.as_slice()) {
            (&Method::POST, ["v1", "files"]) => {
                let form = match Form::parse(content_type, raw) {
                    Ok(form) => form,
                    Err(message) => return openai_error(StatusCode::BAD_REQUEST, &message),
                };
                let Some(file) = form.files.iter().find(|f| f.name == "file") else {
                    return openai_error(StatusCode::BAD_REQUEST, "a file part is required");
                };
                let id = format!("file-mock{seq}");
                let object = json!({"id": id, "object": "file", "bytes": file.bytes.len(),
                    "created_at": 1_700_000_000 + seq, "filename": file.filename,
                    "purpose": form.text("purpose").unwrap_or("batch"), "status": "processed"});
                state.files.insert(id, (object.clone(), file.bytes.clone()));
                json_reply(&object)
            }
            (&Method::GET, ["v1", "files"]) => json_reply(&list(
                state.files.values().map(|(o, _)| o.clone()).collect(),
            )),
            (_, ["v1", "files", id, rest @ ..]) => {
                let Some((object, bytes)) = state.files.get(*id).cloned() else {
                    return openai_error(
                        StatusCode::NOT_FOUND,
                        &format!("No such File object: {id}"),
                    );
                };
                match (method, rest) {
                    (&Method::GET, []) => json_reply(&object),
                    (&Method::DELETE, []) => {
                        state.files.remove(*id);
                        json_reply(&json!({"id": id, "object": "file", "deleted": true}))
                    }
                    (&Method::GET, ["content"]) => Reply::Raw {
                        content_type: "application/octet-stream",
                        steps: [crate::body::Step::Data(bytes)].into_iter().collect(),
                    },
                    _ => openai_error(StatusCode::NOT_FOUND, "unknown file call"),
                }
            }
            (&Method::POST, ["v1", "batches"]) => {
                let Ok(req) = serde_json::from_slice::<Value>(raw) else {
                    return openai_error(StatusCode::BAD_REQUEST, "the body is not JSON");
                };
                let input = req["input_file_id"].as_str().unwrap_or_default();
                if !state.files.contains_key(input) {
                    return openai_error(
                        StatusCode::NOT_FOUND,
                        &format!("No such File object: {input}"),
                    );
                }
                let id = format!("batch_mock{seq}");
                let object = json!({"id": id, "object": "batch", "endpoint": req["endpoint"],
                    "input_file_id": input, "completion_window": req["completion_window"],
                    "status": "validating", "output_file_id": null, "error_file_id": null,
                    "created_at": 1_700_000_000 + seq, "metadata": req.get("metadata").cloned().unwrap_or(Value::Null),
                    "request_counts": {"total": 0, "completed": 0, "failed": 0}});
                state.batches.insert(id, object.clone());
                json_reply(&object)
            }
            (&Method::GET, ["v1", "batches"]) => {
                json_reply(&list(state.batches.values().cloned().collect()))
            }
            (_, ["v1", "batches", id, rest @ ..]) => {
                let Some(mut object) = state.batches.get(*id).cloned() else {
                    return openai_error(
                        StatusCode::NOT_FOUND,
                        &format!("No such Batch object: {id}"),
                    );
                };
                match (method, rest) {
                    (&Method::GET, []) if object["status"] == "validating" => {
                        complete_openai(&mut state, &mut object, seq);
                    }
                    (&Method::GET, []) => {}
                    (&Method::POST, ["cancel"]) => object["status"] = json!("cancelling"),
                    _ => return openai_error(StatusCode::NOT_FOUND, "unknown batch call"),
                }
                state.batches.insert((*id).to_string(), object.clone());
                json_reply(&object)
            }
            (&Method::POST, ["v1", "messages", "batches"]) => {
                let Ok(req) = serde_json::from_slice::<Value>(raw) else {
                    return anthropic_error(StatusCode::BAD_REQUEST, "the body is not JSON", n);
                };
                let requests: Vec<(String, String)> = req["requests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                        (text(&r["custom_id"]), text(&r["params"]["model"]))
                    })
                    .collect();
                let id = format!("msgbatch_mock{seq}");
                let object = json!({"id": id, "type": "message_batch", "processing_status": "in_progress",
                    "request_counts": {"processing": requests.len(), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
                    "created_at": "2026-01-01T00:00:00Z", "ended_at": null, "results_url": null});
                state.message_batches.insert(id, (object.clone(), requests));
                json_reply(&object)
            }
            (&Method::GET, ["v1", "messages", "batches"]) => json_reply(
                &json!({"data": state.message_batches.values().map(|(o, _)| o.clone()).collect::<Vec<_>>(), "has_more": false}),
            ),
            (_, ["v1", "messages", "batches", id, rest @ ..]) => {
                let Some((mut object, requests)) = state.message_batches.get(*id).cloned() else {
                    return anthropic_error(
                        StatusCode::NOT_FOUND,
                        &format!("no message batch {id}"),
                        n,
                    );
                };
                match (method, rest) {
                    (&Method::GET, []) if object["processing_status"] == "in_progress" => {
                        object["processing_status"] = json!("ended");
                        object["request_counts"] = json!({"processing": 0, "succeeded": requests.len(),
                            "errored": 0, "canceled": 0, "expired": 0});
                        object["results_url"] = json!(format!("/v1/messages/batches/{id}/results"));
                    }
                    (&Method::GET, []) => {}
                    (&Method::POST, ["cancel"]) => object["processing_status"] = json!("canceling"),
                    (&Method::DELETE, []) => {
                        state.message_batches.remove(*id);
                        return json_reply(&json!({"id": id, "type": "message_batch_deleted"}));
                    }
                    (&Method::GET, ["results"]) if object["processing_status"] == "ended" => {
                        let lines: String = requests
                            .iter()
                            .map(|(custom_id, model)| anthropic_line(custom_id, model) + "\n")
                            .collect();
                        return Reply::Raw {
                            content_type: "application/binary",
                            steps: [crate::body::Step::Data(Bytes::from(lines))]
                                .into_iter()
                                .collect(),
                        };
                    }
                    (&Method::GET, ["results"]) => {
                        return anthropic_error(
                            StatusCode::BAD_REQUEST,
                            "the batch has not ended",
                            n,
                        );
                    }
                    _ => {
                        return anthropic_error(
                            StatusCode::NOT_FOUND,
                            "unknown message batch call",
                            n,
                        );
                    }
                }
                state
                    .message_batches
                    .insert((*id).to_string(), (object.clone(), requests));
                json_reply(&object)
            }
            _ => openai_error(
                StatusCode::NOT_FOUND,
                &format!("unknown endpoint: {method} {path}"),
            ),
        }
    }
}

/// Ends an OpenAI batch: one chat completion per input line, in a new output file.
fn complete_openai(state: &mut State, object: &mut Value, seq: u64) {
    let input = object["input_file_id"].as_str().unwrap_or_default();
    let lines = state
        .files
        .get(input)
        .map(|(_, bytes)| bytes.clone())
        .unwrap_or_default();
    let (prompt, completion) = BATCH_LINE_USAGE;
    let mut output = String::new();
    let mut count = 0;
    for (i, line) in lines.split(|b| *b == b'\n').enumerate() {
        let Ok(request) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        count += 1;
        let body = json!({"id": format!("chatcmpl-batch{i}"), "object": "chat.completion",
            "created": 1_700_000_000, "model": request["body"]["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "batched"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}});
        let out = json!({"id": format!("batch_req_{i}"), "custom_id": request["custom_id"],
            "response": {"status_code": 200, "request_id": format!("req_{i}"), "body": body}, "error": null});
        output.push_str(&out.to_string());
        output.push('\n');
    }
    let file_id = format!("file-out{seq}");
    let file = json!({"id": file_id, "object": "file", "bytes": output.len(), "created_at": 1_700_000_000 + seq,
        "filename": "batch_output.jsonl", "purpose": "batch_output", "status": "processed"});
    state
        .files
        .insert(file_id.clone(), (file, Bytes::from(output)));
    object["status"] = json!("completed");
    object["output_file_id"] = json!(file_id);
    object["request_counts"] = json!({"total": count, "completed": count, "failed": 0});
}

fn anthropic_line(custom_id: &str, model: &str) -> String {
    let (input, output) = BATCH_LINE_USAGE;
    json!({"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": format!("msg_{custom_id}"), "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "batched"}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": input, "output_tokens": output}}}})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::{missing_api_version, openai_path, serves};

    #[test]
    fn azure_paths_reach_the_same_objects_and_the_dated_ones_need_a_version() {
        assert_eq!(
            openai_path("/openai/v1/files/f-1/content"),
            "/v1/files/f-1/content"
        );
        assert_eq!(openai_path("/openai/batches"), "/v1/batches");
        assert_eq!(openai_path("/v1/batches"), "/v1/batches");
        assert!(serves("/openai/files") && serves("/openai/v1/batches/b-1"));
        assert!(!serves("/openai/deployments/d/chat/completions"));
        assert!(missing_api_version("/openai/files", None).is_some());
        assert!(
            missing_api_version("/openai/files", Some("limit=1&api-version=2024-10-21")).is_none()
        );
        assert!(missing_api_version("/openai/v1/files", None).is_none());
    }
}
