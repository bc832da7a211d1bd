//! Where a guardrail looks: every string of a chat request's messages (content parts, tool
//! results, tool-call arguments), and every string of an answer in any format except the fields
//! that only name things (ids, models, roles, types), which would otherwise read as tokens.

use serde_json::Value;

/// Fields whose strings are names, not text anyone wrote.
const NAME_FIELDS: &[&str] = &[
    "id",
    "model",
    "object",
    "type",
    "role",
    "finish_reason",
    "stop_reason",
    "system_fingerprint",
    "service_tier",
    "status",
    "tool_call_id",
    "call_id",
    "name",
    "signature",
    "previous_response_id",
];

/// Calls `f` on each text string in `value`, with its JSON path.
pub fn each_text(value: &Value, path: &mut String, f: &mut impl FnMut(&str, &str)) {
    match value {
        Value::String(s) => f(s, path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                each_text(item, path, f);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if NAME_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                each_text(item, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Calls `f` on each text string in `value`, which may replace it.
pub fn each_text_mut(value: &mut Value, f: &mut impl FnMut(&str) -> Option<String>) {
    match value {
        Value::String(s) => {
            if let Some(new) = f(s) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| each_text_mut(v, f)),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if !NAME_FIELDS.contains(&key.as_str()) {
                    each_text_mut(item, f);
                }
            }
        }
        _ => {}
    }
}
