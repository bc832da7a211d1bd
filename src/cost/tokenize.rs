//! Token counting with the model's real tokenizer: o200k_base for the GPT-4o, GPT-4.1, GPT-5 and
//! o-series families, cl100k_base for everything else, plus OpenAI's documented chat framing of 3
//! tokens per message and 3 to prime the reply. Used to estimate usage an upstream did not report
//! and to estimate a request's prompt before it goes upstream (budgets, token rate limits).

use bpe_openai::Tokenizer;

use crate::wire::openai::Inbound;

const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

fn tokenizer_for(model: &str) -> &'static Tokenizer {
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
        bpe_openai::o200k_base()
    } else {
        bpe_openai::cl100k_base()
    }
}

/// Tokens of `text` under `model`'s tokenizer.
pub fn count_text(model: &str, text: &str) -> u64 {
    tokenizer_for(model).count(text) as u64
}

/// Prompt tokens of `request` under `model`'s tokenizer, chat framing included.
pub fn prompt_tokens(model: &str, request: &Inbound) -> u64 {
    let bpe = tokenizer_for(model);
    let mut prompt = 0;
    for text in request.prompt_texts() {
        prompt += bpe.count(text) as u64;
    }
    let messages = request.message_count() as u64;
    if messages > 0 {
        prompt += messages * TOKENS_PER_MESSAGE + REPLY_PRIMING;
    }
    prompt
}
