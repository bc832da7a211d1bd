//! Token counting with the model's real tokenizer: cl100k_base for the GPT-4, GPT-3.5 and
//! embedding families, o200k_base for the GPT-4o, GPT-4.1, GPT-5 and o-series families and as
//! the stand-in for providers whose tokenizers are not public, plus OpenAI's documented chat framing of 3
//! tokens per message and 3 to prime the reply. Used to estimate usage an upstream did not report
//! and to estimate a request's prompt before it goes upstream (budgets, token rate limits).

use bpe_openai::Tokenizer;

use crate::wire::openai::Inbound;

const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

fn tokenizer_for(model: &str) -> &'static Tokenizer {
    let bare = model.rsplit('/').next().unwrap_or(model);
    // The GPT-4 and GPT-3.5 families and the embedding models count in cl100k_base; every
    // newer OpenAI model in o200k_base, which also stands in for providers whose tokenizers are
    // not public, so a deployment that serves no older OpenAI model loads one vocabulary.
    let o200k_prefixes = ["gpt-4o", "gpt-4.1", "gpt-4.5", "chatgpt-4o"];
    let cl100k_prefixes = ["gpt-4", "gpt-3.5", "text-embedding-", "davinci", "babbage"];
    let cl100k = cl100k_prefixes.iter().any(|p| bare.starts_with(p))
        && !o200k_prefixes.iter().any(|p| bare.starts_with(p));
    if cl100k {
        bpe_openai::cl100k_base()
    } else {
        bpe_openai::o200k_base()
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

/// Loads the vocabulary most models count in (o200k_base) on a thread of its own, once per process. A vocabulary takes tens
/// of milliseconds of CPU and tens of megabytes to load, so it is loaded only where requests
/// will need estimates (virtual keys with budgets or token limits exist), and early, so that the
/// first such request does not wait for it. A request that comes before the load has finished
/// waits for what is left of it.
pub fn preload() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("stockyard-tokenizer".into())
            .spawn(|| {
                let _ = bpe_openai::o200k_base();
            });
    });
}
