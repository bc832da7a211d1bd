//! Token estimation for answers that carry no usage (some OpenAI-compatible servers omit it in
//! streams), with the model's real tokenizer ([`crate::cost::tokenize`]).

use crate::cost::Tokens;
use crate::cost::tokenize::{count_text, prompt_tokens};
use crate::wire::openai::Inbound;

/// Estimates prompt and completion tokens for `request` answered with `completion_text`.
pub fn estimate(model: &str, request: Option<&Inbound>, completion_text: &str) -> Tokens {
    Tokens {
        prompt: request.map_or(0, |r| prompt_tokens(model, r)),
        completion: count_text(model, completion_text),
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
