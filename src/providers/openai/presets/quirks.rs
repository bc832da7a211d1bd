//! How an OpenAI-compatible provider's chat completions API departs from OpenAI's ([`Quirks`],
//! one per row of the preset table in `mod.rs`), and the pure functions that apply them: the
//! request rewrite ([`apply_quirks`]), the unsupported-parameter check and drop, and the usage
//! fix ([`normalize_usage`]). Who calls: the OpenAI adapter's request and response paths.

use serde_json::Value;

/// Which field carries the output-token limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxTokensField {
    MaxCompletionTokens,
    MaxTokens,
}

/// Whether a stream reports usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamUsage {
    /// In a last chunk when `stream_options.include_usage` is set (OpenAI's contract).
    OnRequest,
    /// In its last chunk without being asked.
    Always,
    /// Never: the proxy counts tokens itself and marks the usage estimated.
    Never,
}

/// How a provider's chat completions API departs from OpenAI's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quirks {
    pub max_tokens_field: MaxTokensField,
    pub stream_usage: StreamUsage,
    /// `stream_options` is an error (strict servers), so it is removed.
    pub rejects_stream_options: bool,
    /// `user` is known; otherwise it is removed (it only helps abuse tracking).
    pub accepts_user: bool,
    /// `developer` is a known role; otherwise it becomes `system`.
    pub accepts_developer_role: bool,
    /// `messages[].name` is accepted; otherwise it is removed.
    pub accepts_message_name: bool,
    /// Assistant `reasoning_content` goes back upstream (DeepSeek requires it on tool-call turns).
    pub keeps_reasoning_content: bool,
    /// The name of OpenAI's `seed` here.
    pub seed_field: &'static str,
    /// Usage reports `reasoning_tokens` outside `completion_tokens` ([`normalize_usage`] adds them).
    pub completion_excludes_reasoning: bool,
    /// Parameters the provider rejects. At their OpenAI default value they mean nothing and
    /// [`apply_quirks`] removes them; otherwise the caller rejects the request by name, or drops
    /// them when `drop_unsupported` ([`unsupported_params_present`], [`drop_unsupported_params`]).
    pub unsupported_params: &'static [&'static str],
}

impl Quirks {
    /// OpenAI itself (and Azure OpenAI): nothing to rewrite but canonical-only fields.
    pub const OPENAI: Quirks = Quirks {
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        stream_usage: StreamUsage::OnRequest,
        rejects_stream_options: false,
        accepts_user: true,
        accepts_developer_role: true,
        accepts_message_name: true,
        keeps_reasoning_content: false,
        seed_field: "seed",
        completion_excludes_reasoning: false,
        unsupported_params: &[],
    };

    /// The common case for compatible servers; rows start from here.
    pub const COMPATIBLE: Quirks = Quirks {
        accepts_developer_role: false,
        ..Quirks::OPENAI
    };
}

/// Rewrites a canonical chat request for a provider's quirks (see [`Quirks`] for each rule).
/// Parameters in `unsupported_params` with a non-default value are left for the caller to reject
/// or drop.
pub fn apply_quirks(chat: &mut Value, quirks: &Quirks) {
    let Some(body) = chat.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for message in messages.iter_mut().filter_map(Value::as_object_mut) {
            // Canonical-only: Anthropic thinking blocks have no meaning to an OpenAI-style server.
            message.remove("x_thinking_blocks");
            if !quirks.keeps_reasoning_content {
                message.remove("reasoning_content");
            }
            if !quirks.accepts_message_name {
                message.remove("name");
            }
            if !quirks.accepts_developer_role
                && message.get("role").and_then(Value::as_str) == Some("developer")
            {
                message.insert("role".into(), "system".into());
            }
        }
    }
    if quirks.max_tokens_field == MaxTokensField::MaxTokens
        && let Some(limit) = body.remove("max_completion_tokens")
    {
        // With both set, the smaller limit holds, as it would have at OpenAI.
        let keep_existing = match (
            body.get("max_tokens").and_then(Value::as_u64),
            limit.as_u64(),
        ) {
            (Some(existing), Some(new)) => existing <= new,
            _ => false,
        };
        if !keep_existing && !limit.is_null() {
            body.insert("max_tokens".into(), limit);
        }
    }
    if quirks.rejects_stream_options {
        body.remove("stream_options");
    }
    if !quirks.accepts_user {
        body.remove("user");
    }
    if quirks.seed_field != "seed"
        && let Some(seed) = body.remove("seed")
    {
        body.insert(quirks.seed_field.into(), seed);
    }
    for name in quirks.unsupported_params {
        if body.get(*name).is_some_and(|v| means_nothing(name, v)) {
            body.remove(*name);
        }
    }
}

/// Unsupported parameters still set after [`apply_quirks`]: reject the request naming the first,
/// unless the client allowed dropping them.
pub fn unsupported_params_present(chat: &Value, quirks: &Quirks) -> Vec<&'static str> {
    let Some(body) = chat.as_object() else {
        return Vec::new();
    };
    quirks
        .unsupported_params
        .iter()
        .copied()
        .filter(|name| body.get(*name).is_some_and(|v| !means_nothing(name, v)))
        .collect()
}

/// Removes every unsupported parameter (the `drop_unsupported` path).
pub fn drop_unsupported_params(chat: &mut Value, quirks: &Quirks) {
    if let Some(body) = chat.as_object_mut() {
        for name in quirks.unsupported_params {
            body.remove(*name);
        }
    }
}

/// `null`, an empty list, or OpenAI's default value: sending it or not changes nothing.
fn means_nothing(name: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => match name {
            "parallel_tool_calls" => value.as_bool() == Some(true),
            "logprobs" | "store" => value.as_bool() == Some(false),
            "n" => value.as_u64() == Some(1),
            "frequency_penalty" | "presence_penalty" => value.as_f64() == Some(0.0),
            "service_tier" => value.as_str() == Some("auto"),
            "tool_choice" => value.as_str() == Some("none"),
            _ => false,
        },
    }
}

/// Brings a provider's usage object (answer or usage chunk) to the canonical convention:
/// `completion_tokens` includes reasoning tokens.
pub fn normalize_usage(usage: &mut Value, quirks: &Quirks) {
    if !quirks.completion_excludes_reasoning {
        return;
    }
    let reasoning = usage
        .pointer("/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if reasoning == 0 {
        return;
    }
    if let Some(map) = usage.as_object_mut() {
        let completion = map
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        map.insert("completion_tokens".into(), (completion + reasoning).into());
        let prompt = map
            .get("prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // xAI's own total already counts reasoning; keep the larger so nothing is counted twice.
        let total = map.get("total_tokens").and_then(Value::as_u64).unwrap_or(0);
        map.insert(
            "total_tokens".into(),
            total.max(prompt + completion + reasoning).into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::preset;
    use super::*;
    use serde_json::json;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn quirked(name: &str) -> Value {
        let mut chat = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/canonical_request.json"
        ));
        apply_quirks(&mut chat, &preset(name).unwrap().quirks);
        chat
    }

    fn assert_json_eq(got: &Value, want: &Value) {
        assert!(
            got == want,
            "--- got ---\n{}\n--- want ---\n{}",
            serde_json::to_string_pretty(got).unwrap(),
            serde_json::to_string_pretty(want).unwrap()
        );
    }

    #[test]
    fn golden_mistral_request() {
        let want = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/mistral.json"
        ));
        assert_json_eq(&quirked("mistral"), &want);
        assert_eq!(
            unsupported_params_present(&want, &preset("mistral").unwrap().quirks),
            ["logit_bias"]
        );
    }

    #[test]
    fn golden_groq_request() {
        let want = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/groq.json"
        ));
        assert_json_eq(&quirked("groq"), &want);
        assert_eq!(
            unsupported_params_present(&want, &preset("groq").unwrap().quirks),
            ["logit_bias"]
        );
    }

    #[test]
    fn golden_deepseek_request_keeps_reasoning_content() {
        let want = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/deepseek.json"
        ));
        assert_json_eq(&quirked("deepseek"), &want);
    }

    #[test]
    fn golden_cerebras_request() {
        let want = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/cerebras.json"
        ));
        let got = quirked("cerebras");
        assert_json_eq(&got, &want);
        let quirks = preset("cerebras").unwrap().quirks;
        assert_eq!(
            unsupported_params_present(&got, &quirks),
            ["frequency_penalty", "logit_bias"]
        );
        let mut dropped = got;
        drop_unsupported_params(&mut dropped, &quirks);
        assert!(unsupported_params_present(&dropped, &quirks).is_empty());
        assert!(dropped.get("frequency_penalty").is_none());
    }

    #[test]
    fn each_quirk_on_its_own() {
        let base = Quirks::OPENAI;
        let run = |quirks: Quirks, chat: Value| {
            let mut chat = chat;
            apply_quirks(&mut chat, &quirks);
            chat
        };
        // Canonical-only fields never leave, even for OpenAI itself.
        let got = run(
            base,
            json!({"messages": [{"role": "assistant", "content": "a",
            "reasoning_content": "r", "x_thinking_blocks": [{"type": "thinking"}], "name": "bot"}]}),
        );
        assert_eq!(
            got["messages"][0],
            json!({"role": "assistant", "content": "a", "name": "bot"})
        );
        // keeps_reasoning_content
        let got = run(
            Quirks {
                keeps_reasoning_content: true,
                ..base
            },
            json!({"messages": [{"role": "assistant", "content": "a", "reasoning_content": "r"}]}),
        );
        assert_eq!(got["messages"][0]["reasoning_content"], "r");
        // accepts_message_name
        let got = run(
            Quirks {
                accepts_message_name: false,
                ..base
            },
            json!({"messages": [{"role": "user", "content": "a", "name": "alice"}]}),
        );
        assert!(got["messages"][0].get("name").is_none());
        // accepts_developer_role
        let got = run(
            Quirks::COMPATIBLE,
            json!({"messages": [{"role": "developer", "content": "x"}]}),
        );
        assert_eq!(got["messages"][0]["role"], "system");
        let got = run(
            base,
            json!({"messages": [{"role": "developer", "content": "x"}]}),
        );
        assert_eq!(got["messages"][0]["role"], "developer");
        // max_tokens_field
        let max = Quirks {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..base
        };
        assert_eq!(
            run(max, json!({"max_completion_tokens": 100})),
            json!({"max_tokens": 100})
        );
        assert_eq!(
            run(max, json!({"max_completion_tokens": 100, "max_tokens": 50})),
            json!({"max_tokens": 50})
        );
        assert_eq!(
            run(max, json!({"max_completion_tokens": 30, "max_tokens": 50})),
            json!({"max_tokens": 30})
        );
        assert_eq!(run(max, json!({"max_completion_tokens": null})), json!({}));
        assert_eq!(
            run(base, json!({"max_completion_tokens": 100})),
            json!({"max_completion_tokens": 100})
        );
        // rejects_stream_options
        let no_opts = Quirks {
            rejects_stream_options: true,
            ..base
        };
        assert_eq!(
            run(
                no_opts,
                json!({"stream": true, "stream_options": {"include_usage": true}})
            ),
            json!({"stream": true})
        );
        // accepts_user
        assert_eq!(
            run(
                Quirks {
                    accepts_user: false,
                    ..base
                },
                json!({"user": "u"})
            ),
            json!({})
        );
        assert_eq!(run(base, json!({"user": "u"})), json!({"user": "u"}));
        // seed_field
        assert_eq!(
            run(
                Quirks {
                    seed_field: "random_seed",
                    ..base
                },
                json!({"seed": 7})
            ),
            json!({"random_seed": 7})
        );
        // unsupported params at their default mean nothing and go silently
        let strict = Quirks {
            unsupported_params: &[
                "parallel_tool_calls",
                "n",
                "presence_penalty",
                "logprobs",
                "tools",
            ],
            ..base
        };
        let got = run(
            strict,
            json!({"parallel_tool_calls": true, "n": 1, "presence_penalty": 0, "logprobs": false, "tools": []}),
        );
        assert_eq!(got, json!({}));
        let got = run(
            strict,
            json!({"parallel_tool_calls": false, "n": 2, "tools": [{"type": "function"}]}),
        );
        assert_eq!(
            unsupported_params_present(&got, &strict),
            ["parallel_tool_calls", "n", "tools"]
        );
        // Non-objects are left alone.
        let mut odd = json!([1, 2]);
        apply_quirks(&mut odd, &strict);
        assert_eq!(odd, json!([1, 2]));
        assert!(unsupported_params_present(&odd, &strict).is_empty());
    }

    #[test]
    fn xai_usage_counts_reasoning_inside_completion_tokens() {
        let quirks = preset("xai").unwrap().quirks;
        let mut usage = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/xai_usage.json"
        ));
        normalize_usage(&mut usage, &quirks);
        assert_eq!(usage["completion_tokens"], 387);
        assert_eq!(usage["total_tokens"], 399);
        assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 386);
        // Other rows leave usage untouched.
        let mut other = fixture(include_str!(
            "../../../../tests/fixtures/openai_compatible/xai_usage.json"
        ));
        normalize_usage(&mut other, &preset("groq").unwrap().quirks);
        assert_eq!(other["completion_tokens"], 1);
        // No reasoning, nothing to do.
        let mut plain = json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7});
        normalize_usage(&mut plain, &quirks);
        assert_eq!(plain["completion_tokens"], 4);
    }

    #[test]
    fn rows_without_extra_quirks_only_map_roles_and_strip_canonical_fields() {
        for name in [
            "together",
            "openrouter",
            "ollama",
            "lmstudio",
            "vllm",
            "xai",
            "fireworks",
        ] {
            let got = quirked(name);
            assert_eq!(got["messages"][0]["role"], "system", "{name}");
            assert!(
                got["messages"][2].get("x_thinking_blocks").is_none(),
                "{name}"
            );
            assert!(
                got["messages"][2].get("reasoning_content").is_none(),
                "{name}"
            );
            assert_eq!(got["user"], "user-1234", "{name}");
            assert_eq!(
                got["stream_options"],
                json!({"include_usage": true}),
                "{name}"
            );
            let max_tokens =
                preset(name).unwrap().quirks.max_tokens_field == MaxTokensField::MaxTokens;
            assert_eq!(got.get("max_tokens").is_some(), max_tokens, "{name}");
            assert_eq!(
                got.get("max_completion_tokens").is_some(),
                !max_tokens,
                "{name}"
            );
        }
        let perplexity = quirked("perplexity");
        assert_eq!(
            unsupported_params_present(&perplexity, &preset("perplexity").unwrap().quirks),
            ["tools", "tool_choice", "logit_bias"]
        );
    }
}
