//! What makes two requests the same for a cache: the normalised request after alias resolution
//! (the model that will answer, the messages, tools, tool choice, response format and every other
//! parameter that changes the output), hashed; and the namespace it is looked up in, so one tenant
//! never sees another's answers.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::request::RequestCtx;
use crate::wire::openai::{ChatRequest, Inbound};

/// Request fields that change how an answer is delivered or billed, never what it says.
const NOT_OUTPUT: &[&str] = &["stream", "stream_options", "user", "metadata", "store"];

/// Whose answers a request may be given.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceBy {
    /// Every client shares one cache (an operator's explicit choice).
    Global,
    /// A virtual key's team (a key with no team: that key).
    Team,
    /// Each client key its own (the default); in local mode, without keys, one global namespace.
    #[default]
    Key,
}

/// The namespace of a request: `global`, `team:<id>` or `key:<id>`, and below it, when the
/// client named one and config allows it, `/<name>`: a client can split its own cache, never
/// reach into another tenant's.
pub fn namespace(ctx: &RequestCtx, by: NamespaceBy, client: Option<&str>) -> String {
    let grant = ctx.identity.grant.as_deref();
    let key = grant
        .map(|g| g.key_id.clone())
        .or_else(|| ctx.identity.key_id.clone());
    let base = match by {
        NamespaceBy::Global => "global".to_string(),
        NamespaceBy::Team => match (grant.and_then(|g| g.team_id()), &key) {
            (Some(team), _) => format!("team:{team}"),
            (None, Some(key)) => format!("key:{key}"),
            (None, None) => "global".to_string(),
        },
        NamespaceBy::Key => key.map_or_else(|| "global".to_string(), |k| format!("key:{k}")),
    };
    match client {
        Some(name) => format!("{base}/{name}"),
        None => base,
    }
}

/// The chat request of a request a response cache can serve (Chat Completions and Messages
/// clients; both are read into the canonical chat form, so they share entries).
pub fn chat_request(ctx: &RequestCtx) -> Option<&ChatRequest> {
    match &ctx.request.parsed {
        Some(Inbound::Chat(chat)) => Some(chat),
        _ => None,
    }
}

/// The model that will answer: the alias resolved by routing, else what the client asked.
pub fn target_model(ctx: &RequestCtx) -> String {
    ctx.route
        .target_model
        .clone()
        .unwrap_or_else(|| ctx.request.requested_model.clone())
}

/// The normalised request: the canonical chat request with the model resolved and the fields
/// that don't change the output removed.
pub fn normalised(chat: &ChatRequest, model: &str) -> Value {
    let mut value = serde_json::to_value(chat).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for field in NOT_OUTPUT {
            map.remove(*field);
        }
        map.insert("model".into(), Value::String(model.to_string()));
        // Two spellings of one limit (a Messages request's `max_tokens` arrives as the newer).
        if let Some(max) = map.remove("max_tokens") {
            map.entry("max_completion_tokens").or_insert(max);
        }
        if let Some(Value::Array(messages)) = map.get_mut("messages") {
            for message in messages {
                flatten_text(message);
            }
        }
    }
    value
}

/// Content made only of text parts is the same as that text as a string.
fn flatten_text(message: &mut Value) {
    let Some(Value::Array(parts)) = message.get("content") else {
        return;
    };
    let mut text = String::new();
    for part in parts {
        match (part["type"].as_str(), part["text"].as_str()) {
            (Some("text"), Some(t)) if part.as_object().is_some_and(|p| p.len() == 2) => {
                text.push_str(t)
            }
            _ => return,
        }
    }
    message["content"] = Value::String(text);
}

/// Hex SHA-256 of `value` in a canonical encoding (object keys sorted), so the order a client
/// wrote its fields in never splits one entry into two.
pub fn hash(value: &Value) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, value);
    hex::encode(hasher.finalize())
}

fn feed(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                feed(hasher, &Value::String(key.clone()));
                hasher.update(b":");
                feed(hasher, &map[key]);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                feed(hasher, item);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_order_and_delivery_fields_do_not_change_the_key() {
        let a: ChatRequest = serde_json::from_value(json!({"model": "m", "temperature": 0,
            "messages": [{"role": "user", "content": "hi"}], "stream": true, "user": "u"}))
        .unwrap_or_else(|e| panic!("{e}"));
        let b: ChatRequest = serde_json::from_value(json!({"messages": [{"content": "hi",
            "role": "user"}], "temperature": 0, "model": "alias"}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hash(&normalised(&a, "m")), hash(&normalised(&b, "m")));
        let c: ChatRequest = serde_json::from_value(json!({"model": "m", "temperature": 0.5,
            "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(hash(&normalised(&a, "m")), hash(&normalised(&c, "m")));
    }
}
