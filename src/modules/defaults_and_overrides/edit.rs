//! The edits of one rule on a request: on the canonical request (every provider of another
//! dialect is translated from it) and on the client's own body (a provider that speaks the
//! client's format takes that as it is), so Chat, Messages and Responses clients all get them.
//!
//! `max_tokens` names the output bound in every format: the canonical request may carry it as
//! `max_tokens` or `max_completion_tokens` (Messages' `max_tokens` arrives as the latter), a
//! Messages body as `max_tokens`, a Responses body as `max_output_tokens`.

use serde_json::{Map, Value, json};

use super::config::Rule;
use crate::wire::openai::{ChatMessage, Endpoint, Inbound, Role};

/// The canonical names a parameter may go by.
fn canonical_names(name: &str) -> &[&str] {
    match name {
        "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
            &["max_completion_tokens", "max_tokens"]
        }
        _ => &[],
    }
}

/// What the client's own format calls `name`, when it takes it at all (a parameter the format
/// does not know is left to the canonical request: adding it would make the provider refuse).
fn client_name(endpoint: Endpoint, name: &str) -> Option<&str> {
    let output = matches!(
        name,
        "max_tokens" | "max_completion_tokens" | "max_output_tokens"
    );
    match endpoint {
        Endpoint::Messages if output => Some("max_tokens"),
        Endpoint::Messages if name == "stop" => Some("stop_sequences"),
        Endpoint::Messages => [
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
            "metadata",
            "tool_choice",
            "thinking",
        ]
        .contains(&name)
        .then_some(name),
        Endpoint::Responses if output => Some("max_output_tokens"),
        Endpoint::Responses => [
            "temperature",
            "top_p",
            "metadata",
            "tool_choice",
            "parallel_tool_calls",
            "reasoning",
            "text",
            "truncation",
            "store",
            "service_tier",
            "user",
            "top_logprobs",
        ]
        .contains(&name)
        .then_some(name),
        _ => None,
    }
}

/// Applies `rule` to a parameter map in the canonical form; whether anything changed.
fn edit_params(rest: &mut Map<String, Value>, rule: &Rule) -> bool {
    let mut changed = false;
    for name in &rule.strip {
        changed |= rest.remove(name.as_str()).is_some();
        for alias in canonical_names(name) {
            changed |= rest.remove(*alias).is_some();
        }
    }
    for (name, value) in &rule.defaults {
        let aliases = canonical_names(name);
        let present =
            rest.contains_key(name.as_str()) || aliases.iter().any(|a| rest.contains_key(*a));
        if !present {
            rest.insert(name.clone(), value.clone());
            changed = true;
        }
    }
    for (name, value) in &rule.force {
        // Set the name the request already uses, so it never carries two output bounds.
        let target = canonical_names(name)
            .iter()
            .find(|a| rest.contains_key(**a))
            .map_or(name.as_str(), |a| *a);
        if rest.get(target) != Some(value) {
            rest.insert(target.to_string(), value.clone());
            changed = true;
        }
    }
    changed
}

/// Applies `rule` to the canonical request; whether anything changed (else the client's bytes
/// still stand for it).
pub fn canonical(request: &mut Inbound, rule: &Rule) -> bool {
    match request {
        Inbound::Chat(chat) => {
            let mut changed = edit_params(&mut chat.rest, rule);
            if let Some(prompt) = &rule.system_prompt {
                changed = true;
                chat.messages.insert(
                    0,
                    ChatMessage {
                        role: Role::System,
                        content: Some(Value::String(prompt.clone())),
                        rest: Map::new(),
                    },
                );
            }
            changed
        }
        Inbound::Completion(completion) => edit_params(&mut completion.rest, rule),
        // Embeddings and other operations (images, audio, ...) take no sampling parameters and
        // no system prompt.
        Inbound::Embedding(_) | Inbound::Operation(_) | Inbound::Resource(_) => false,
    }
}

/// Applies `rule` to the client's own body (Messages, Responses).
pub fn client(endpoint: Endpoint, body: &mut Value, rule: &Rule) {
    let Some(map) = body.as_object_mut() else {
        return;
    };
    for name in &rule.strip {
        if let Some(own) = client_name(endpoint, name) {
            // Messages requires `max_tokens`: a strip there is left to the canonical request.
            if !(endpoint == Endpoint::Messages && own == "max_tokens") {
                map.remove(own);
            }
        }
    }
    for (name, value) in &rule.defaults {
        if let Some(own) = client_name(endpoint, name) {
            map.entry(own.to_string()).or_insert_with(|| value.clone());
        }
    }
    for (name, value) in &rule.force {
        if let Some(own) = client_name(endpoint, name) {
            map.insert(own.to_string(), value.clone());
        }
    }
    if let Some(prompt) = &rule.system_prompt {
        let field = match endpoint {
            Endpoint::Messages => "system",
            Endpoint::Responses => "instructions",
            _ => return,
        };
        let joined = match map.remove(field) {
            Some(Value::String(own)) if !own.is_empty() => json!(format!("{prompt}\n\n{own}")),
            Some(Value::Array(mut blocks)) => {
                blocks.insert(0, json!({"type": "text", "text": prompt}));
                Value::Array(blocks)
            }
            _ => json!(prompt),
        };
        map.insert(field.to_string(), joined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: Value) -> Rule {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn output_bounds_are_one_parameter_under_their_names() {
        let mut rest = Map::new();
        rest.insert("max_completion_tokens".into(), json!(900));
        let changed = edit_params(
            &mut rest,
            &rule(json!({"defaults": {"max_tokens": 10}, "force": {"temperature": 0}})),
        );
        assert!(changed);
        assert!(!edit_params(
            &mut rest,
            &rule(json!({"strip": ["logit_bias"], "force": {"temperature": 0}}))
        ));
        assert_eq!(rest.get("max_completion_tokens"), Some(&json!(900)));
        assert!(!rest.contains_key("max_tokens"));
        edit_params(&mut rest, &rule(json!({"force": {"max_tokens": 5}})));
        assert_eq!(rest.get("max_completion_tokens"), Some(&json!(5)));
        edit_params(&mut rest, &rule(json!({"strip": ["max_tokens"]})));
        assert!(rest.is_empty() || !rest.contains_key("max_completion_tokens"));
    }

    #[test]
    fn a_system_prompt_joins_the_client_s_own() {
        let mut body = json!({"system": [{"type": "text", "text": "own"}], "max_tokens": 9});
        client(
            Endpoint::Messages,
            &mut body,
            &rule(
                json!({"system_prompt": "first", "force": {"max_tokens": 3, "frequency_penalty": 1}}),
            ),
        );
        assert_eq!(body["system"][0]["text"], "first");
        assert_eq!(body["system"][1]["text"], "own");
        assert_eq!(body["max_tokens"], 3);
        assert!(body.get("frequency_penalty").is_none());
        let mut body = json!({"instructions": "own"});
        client(
            Endpoint::Responses,
            &mut body,
            &rule(json!({"system_prompt": "first"})),
        );
        assert_eq!(body["instructions"], "first\n\nown");
    }
}
