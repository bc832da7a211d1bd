//! Token estimation for answers that carry no usage (some OpenAI-compatible servers omit it in
//! streams). Uses the model's real tokenizer: o200k_base for the GPT-4o, GPT-4.1, GPT-5 and o-series
//! families, cl100k_base for everything else, plus OpenAI's documented chat framing of 3 tokens per
//! message and 3 to prime the reply.

use tiktoken_rs::CoreBPE;

use crate::cost::Tokens;
use crate::wire::openai::Inbound;

const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

fn tokenizer_for(model: &str) -> &'static CoreBPE {
    let bare = model.rsplit('/').next().unwrap_or(model);
    let o200k = [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "chatgpt-4o",
    ];
    if o200k.iter().any(|p| bare.starts_with(p)) {
        tiktoken_rs::o200k_base_singleton()
    } else {
        tiktoken_rs::cl100k_base_singleton()
    }
}

fn count(bpe: &CoreBPE, text: &str) -> u64 {
    bpe.encode_ordinary(text).len() as u64
}

/// Tokens of `text` under `model`'s tokenizer.
pub fn count_text(model: &str, text: &str) -> u64 {
    count(tokenizer_for(model), text)
}

/// Estimates prompt and completion tokens for `request` answered with `completion_text`.
pub fn estimate(model: &str, request: Option<&Inbound>, completion_text: &str) -> Tokens {
    let bpe = tokenizer_for(model);
    let mut prompt = 0;
    if let Some(request) = request {
        for text in request.prompt_texts() {
            prompt += count(bpe, text);
        }
        let messages = request.message_count() as u64;
        if messages > 0 {
            prompt += messages * TOKENS_PER_MESSAGE + REPLY_PRIMING;
        }
    }
    Tokens {
        prompt,
        completion: count(bpe, completion_text),
        ..Tokens::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::openai::Endpoint;

    #[test]
    fn counts_with_the_real_tokenizer() {
        let body =
            br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello world"}]}"#;
        let request = Inbound::parse(Endpoint::ChatCompletions, body).ok();
        let tokens = estimate("gpt-4o-mini", request.as_ref(), "Hello there, friend.");
        // "Hello world" is 2 tokens in o200k_base; + 3 per message + 3 priming.
        assert_eq!(tokens.prompt, 2 + 3 + 3);
        assert_eq!(tokens.completion, 5);
    }
}
