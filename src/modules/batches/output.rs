//! A batch's output, read for pricing: one JSON object a line, each the answer to one request of
//! the batch with its usage. OpenAI's output file
//! (https://platform.openai.com/docs/api-reference/batch/request-output) carries
//! `response.body` (a chat completion, embeddings answer...) with OpenAI's `usage`; Anthropic's
//! results (https://docs.anthropic.com/en/api/retrieving-message-batch-results) carry
//! `result.message` with Anthropic's `usage`, whose cache reads and writes are not part of
//! `input_tokens` (summed here, as everywhere else). Lines that failed, or carry no usage, bill
//! nothing and are skipped.

use serde_json::Value;

use crate::cost::Tokens;
use crate::wire::openai::Usage;

/// One priced request of a batch: the model that answered and what it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineUsage {
    pub model: String,
    pub tokens: Tokens,
}

fn lines(body: &[u8]) -> impl Iterator<Item = Value> + '_ {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .filter_map(|line| serde_json::from_slice(line).ok())
}

/// The priced lines of an OpenAI batch output file.
pub fn openai(body: &[u8]) -> Vec<LineUsage> {
    lines(body)
        .filter_map(|line| {
            let response = &line["response"];
            if response["status_code"].as_u64().is_none_or(|s| s >= 300) {
                return None;
            }
            let answer = &response["body"];
            let model = answer["model"].as_str()?.to_string();
            let usage: Usage = serde_json::from_value(answer.get("usage")?.clone()).ok()?;
            Some(LineUsage {
                model,
                tokens: Tokens {
                    prompt: usage.prompt_tokens,
                    completion: usage.completion_tokens,
                    cached_input: usage.cached_tokens(),
                    cache_write: usage.cache_write_tokens(),
                    reasoning: usage.reasoning_tokens(),
                },
            })
        })
        .collect()
}

/// The priced lines of Anthropic message batch results.
pub fn anthropic(body: &[u8]) -> Vec<LineUsage> {
    lines(body)
        .filter_map(|line| {
            let result = &line["result"];
            if result["type"] != "succeeded" {
                return None;
            }
            let message = &result["message"];
            let model = message["model"].as_str()?.to_string();
            let usage = message.get("usage")?;
            let count = |field: &str| usage[field].as_u64().unwrap_or(0);
            let (read, write) = (
                count("cache_read_input_tokens"),
                count("cache_creation_input_tokens"),
            );
            Some(LineUsage {
                model,
                tokens: Tokens {
                    prompt: count("input_tokens") + read + write,
                    completion: count("output_tokens"),
                    cached_input: read,
                    cache_write: write,
                    reasoning: 0,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_lines_with_usage_are_priced_and_failed_ones_skipped() {
        let body = br#"{"id":"r1","custom_id":"a","response":{"status_code":200,"body":{"model":"gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}}}},"error":null}
{"id":"r2","custom_id":"b","response":{"status_code":400,"body":{"error":{"message":"bad"}}},"error":null}

{"id":"r3","custom_id":"c","response":null,"error":{"code":"batch_expired"}}
"#;
        let priced = openai(body);
        assert_eq!(priced.len(), 1);
        assert_eq!(priced[0].model, "gpt-4o-mini");
        assert_eq!(priced[0].tokens.prompt, 10);
        assert_eq!(priced[0].tokens.cached_input, 4);
    }

    #[test]
    fn anthropic_cache_tokens_join_the_prompt() {
        let body = br#"{"custom_id":"a","result":{"type":"succeeded","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":20,"cache_creation_input_tokens":5}}}}
{"custom_id":"b","result":{"type":"errored","error":{"type":"invalid_request_error"}}}"#;
        let priced = anthropic(body);
        assert_eq!(priced.len(), 1);
        assert_eq!(priced[0].tokens.prompt, 35);
        assert_eq!(priced[0].tokens.cached_input, 20);
        assert_eq!(priced[0].tokens.cache_write, 5);
    }
}
