//! Token counting with the model's real tokenizer: cl100k_base for the GPT-4, GPT-3.5 and
//! embedding families, o200k_base for the GPT-4o, GPT-4.1, GPT-5 and o-series families and as
//! the stand-in for providers whose tokenizers are not public, plus OpenAI's documented chat framing of 3
//! tokens per message and 3 to prime the reply. Used to estimate usage an upstream did not report
//! and to estimate a request's prompt before it goes upstream (budgets, token rate limits).
//!
//! The counts are tiktoken's, made with our own compact tokenizer: `split` cuts a text into
//! pieces, `merge` counts one piece, `vocab` finds a token's rank, `load` holds the two
//! vocabularies and `encoding` puts them together. A loaded o200k_base adds about 5 MB to the
//! resident set, where bpe-openai, which we used before, added 67 MB; `reference_tests` holds
//! our counts to bpe-openai's, which is now a dev-dependency only.

mod encoding;
mod load;
mod merge;
#[cfg(test)]
mod reference_tests;
mod split;
mod vocab;

use encoding::Encoding;

use crate::wire::openai::Inbound;

const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// The vocabularies models count in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Vocabulary {
    Cl100k,
    O200k,
}

fn vocabulary_of(model: &str) -> Vocabulary {
    let bare = model.rsplit('/').next().unwrap_or(model);
    // The GPT-4 and GPT-3.5 families and the embedding models count in cl100k_base; every
    // newer OpenAI model in o200k_base, which also stands in for providers whose tokenizers are
    // not public, so a deployment that serves no older OpenAI model loads one vocabulary.
    let o200k_prefixes = ["gpt-4o", "gpt-4.1", "gpt-4.5", "chatgpt-4o"];
    let cl100k_prefixes = ["gpt-4", "gpt-3.5", "text-embedding-", "davinci", "babbage"];
    let cl100k = cl100k_prefixes.iter().any(|p| bare.starts_with(p))
        && !o200k_prefixes.iter().any(|p| bare.starts_with(p));
    if cl100k {
        Vocabulary::Cl100k
    } else {
        Vocabulary::O200k
    }
}

fn tokenizer_for(model: &str) -> &'static Encoding {
    match vocabulary_of(model) {
        Vocabulary::Cl100k => load::cl100k(),
        Vocabulary::O200k => load::o200k(),
    }
}

/// Whether `a` and `b` count in the same vocabulary, so a count made for one holds for the
/// other. Loads nothing.
pub fn same_tokenizer(a: &str, b: &str) -> bool {
    vocabulary_of(a) == vocabulary_of(b)
}

/// Tokens of `text` under `model`'s tokenizer.
pub fn count_text(model: &str, text: &str) -> u64 {
    tokenizer_for(model).count(text) as u64
}

/// Tokens of one message's `text` under `model`'s tokenizer, remembered (see [`recent`]).
pub fn count_message_text(model: &str, text: &str) -> u64 {
    let vocabulary = vocabulary_of(model);
    recent::count(vocabulary, text, || tokenizer_for(model).count(text))
}

/// Prompt tokens of `request` under `model`'s tokenizer, chat framing included.
pub fn prompt_tokens(model: &str, request: &Inbound) -> u64 {
    let vocabulary = vocabulary_of(model);
    let mut prompt = 0;
    for text in request.prompt_texts() {
        prompt += recent::count(vocabulary, text, || tokenizer_for(model).count(text));
    }
    let messages = request.message_count() as u64;
    if messages > 0 {
        prompt += messages * TOKENS_PER_MESSAGE + REPLY_PRIMING;
    }
    prompt
}

/// The counts of texts seen lately. Clients send the same texts again and again (a system
/// prompt on every request, a whole conversation on every turn of it), and counting a text is
/// BPE over every word of it, where finding it here is one hash. Per thread, so no lock; a
/// thread's table is emptied when full. A text is known by a seeded 64-bit hash and its length:
/// a collision (about one in 2^64 per pair, with a seed a client cannot know) would cost one
/// estimate's accuracy, never an answer.
mod recent {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    use std::sync::OnceLock;

    use super::Vocabulary;

    const ENTRIES: usize = 4096;

    type Key = (Vocabulary, u64, usize);

    thread_local! {
        static COUNTS: RefCell<HashMap<Key, u64, foldhash::fast::RandomState>> =
            RefCell::new(HashMap::default());
    }

    fn seed() -> &'static foldhash::quality::RandomState {
        static SEED: OnceLock<foldhash::quality::RandomState> = OnceLock::new();
        SEED.get_or_init(foldhash::quality::RandomState::default)
    }

    pub fn count(vocabulary: Vocabulary, text: &str, count: impl FnOnce() -> usize) -> u64 {
        let key = (vocabulary, seed().hash_one(text), text.len());
        if let Some(known) = COUNTS.with(|c| c.borrow().get(&key).copied()) {
            return known;
        }
        let counted = count() as u64;
        COUNTS.with(|c| {
            let mut counts = c.borrow_mut();
            if counts.len() >= ENTRIES {
                counts.clear();
            }
            counts.insert(key, counted);
        });
        counted
    }
}

/// Loads the vocabulary most models count in (o200k_base) on a thread of its own, once per
/// process. A vocabulary takes milliseconds of CPU and a few megabytes to load (mostly its
/// pre-tokenizer's Unicode classes and its hash table), so it is loaded only where requests
/// will need estimates (virtual keys with budgets or token limits exist), and early, so that the
/// first such request does not wait for it. A request that comes before the load has finished
/// waits for what is left of it.
pub fn preload() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("stockyard-tokenizer".into())
            .spawn(|| {
                let _ = load::o200k();
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_counts_are_the_counts_and_kept_apart_by_text_and_vocabulary() {
        let text = "The quick brown fox jumps over the lazy dog, again and again.";
        let fresh = count_text("gpt-4o", text);
        assert_eq!(count_message_text("gpt-4o", text), fresh);
        // Asked again: answered from the table, the same.
        assert_eq!(count_message_text("gpt-4o", text), fresh);
        // cl100k counts this text differently; its entry is its own.
        let older = count_text("gpt-4", "ünïcödé ✓✓✓ text");
        assert_eq!(count_message_text("gpt-4", "ünïcödé ✓✓✓ text"), older);
        assert_ne!(
            count_message_text("gpt-4o", "ünïcödé ✓✓✓ text"),
            older,
            "the vocabularies disagree on this text"
        );
        // Same length, other content: counted, not taken from the first text's entry.
        let same_length = "a".repeat(text.len());
        assert_eq!(
            count_message_text("gpt-4o", &same_length),
            count_text("gpt-4o", &same_length)
        );
        assert!(same_tokenizer("gpt-4o-mini", "gpt-5"));
        assert!(!same_tokenizer("gpt-4", "gpt-4o"));
    }
}
