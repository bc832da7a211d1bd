//! What a request may use, estimated before it goes upstream, for the modules that reserve
//! against a limit (`rate_limits` in tokens, `budgets` in nano-dollars): the prompt counted with
//! the model's tokenizer, plus the output the request allows (`max_tokens`, or the module's
//! default when the client set none). The prompt count is made once per request and kept in the
//! request's slots, whichever module asks first.

use crate::cost::{Price, PriceTable, Tokens};
use crate::providers::ProviderRegistry;
use crate::request::RequestCtx;

/// The prompt count and the model it was made for, kept in `ctx.slots`.
#[derive(Clone, Debug)]
struct Prompt {
    /// The provider the model resolves to by default (`""` when only routing knows it).
    provider: String,
    upstream_model: String,
    tokens: u64,
}

fn prompt<'a>(ctx: &'a mut RequestCtx, providers: &ProviderRegistry) -> &'a Prompt {
    let request = &ctx.request;
    ctx.slots.get_or_insert_with(|| {
        let requested = &request.requested_model;
        // Routing picks the deployment later; before it, the model's default route names the
        // tokenizer and the price. An alias or group only routing knows is priced by its name.
        let (provider, upstream_model) = match providers.resolve(requested) {
            Ok(route) => (route.provider.name().to_string(), route.upstream_model),
            Err(_) => (String::new(), requested.clone()),
        };
        let tokens = request.parsed.as_ref().map_or(0, |parsed| {
            crate::cost::tokenize::prompt_tokens(&upstream_model, parsed)
        });
        Prompt {
            provider,
            upstream_model,
            tokens,
        }
    })
}

/// The prompt count this request already has (a module before asked for an estimate), if it
/// was made in the vocabulary `model` counts in: a later module that needs the same count, such
/// as `context_fit` for a chat request, uses it instead of counting again. `None` when nothing
/// counted yet or a module changed the prompt or the model since ([`forget`]).
pub fn counted_prompt_tokens(ctx: &RequestCtx, model: &str) -> Option<u64> {
    let prompt = ctx.request.parsed.as_ref().and(ctx.slots.get::<Prompt>())?;
    crate::cost::tokenize::same_tokenizer(&prompt.upstream_model, model).then_some(prompt.tokens)
}

/// Forgets the prompt count made so far: a module changed the model (`route_rules`) or the
/// prompt (`context_fit`, `prompt_templates`, `responses` expanding a stored conversation, a
/// guardrail's redaction, the guardrail webhook's rewrite), so the next estimate counts again.
/// Every module that edits the prompt after the estimates (order 27 on) must call it.
pub fn forget(ctx: &mut RequestCtx) {
    ctx.slots.remove::<Prompt>();
}

/// Prompt tokens under the tokenizer of the model the request names now (counted once, kept
/// until [`forget`]).
pub fn prompt_tokens(ctx: &mut RequestCtx, providers: &ProviderRegistry) -> u64 {
    prompt(ctx, providers).tokens
}

/// Prompt tokens plus the output the request allows.
pub fn tokens(
    ctx: &mut RequestCtx,
    providers: &ProviderRegistry,
    default_max_tokens: u64,
) -> Tokens {
    let completion = ctx
        .request
        .parsed
        .as_ref()
        .and_then(|r| r.max_output_tokens())
        .unwrap_or(default_max_tokens);
    Tokens {
        prompt: prompt(ctx, providers).tokens,
        completion,
        ..Tokens::default()
    }
}

/// The most the request may cost at the model's prices, in nano-dollars; `None` when the model
/// has no price (its cost will be recorded as 0).
pub fn cost_nanos(
    ctx: &mut RequestCtx,
    providers: &ProviderRegistry,
    prices: &PriceTable,
    default_max_tokens: u64,
) -> Option<i64> {
    let mut tokens = tokens(ctx, providers, default_max_tokens);
    // An image, speech or transcription request is priced by what it asks for (images,
    // characters, seconds, an image's output tokens), which its prompt says nothing of.
    let expected = match &ctx.request.parsed {
        Some(crate::wire::openai::Inbound::Operation(request)) => {
            Some((request.expected(), request.model.clone()))
        }
        _ => None,
    };
    let model_price = price(ctx, providers, prices).copied();
    let Some((expected, named)) = expected else {
        return model_price.map(|price| price.cost_nanos(&tokens));
    };
    if let Some(completion) = expected.completion_tokens {
        tokens.completion = completion;
    }
    // The most specific name first (an image's size and quality), as the `cost` module prices
    // the answer, spelled with the model the request resolves to rather than as the client
    // named it (`openai/dall-e-3`, an alias).
    let (provider, upstream) = ctx.slots.get::<Prompt>().map_or(("", named.as_str()), |p| {
        (p.provider.as_str(), p.upstream_model.as_str())
    });
    let price = expected
        .price_name
        .as_deref()
        .map(|name| match name.strip_suffix(named.as_str()) {
            Some(size_and_quality) => format!("{size_and_quality}{upstream}"),
            None => name.to_string(),
        })
        .and_then(|name| prices.lookup(provider, &name).copied())
        .or(model_price)?;
    Some(price.cost_of(&tokens, &expected.units, false))
}

/// The prompt's token count and the price of the model the request resolves to by default;
/// `None` when the model has no price.
pub fn prompt_and_price(
    ctx: &mut RequestCtx,
    providers: &ProviderRegistry,
    prices: &PriceTable,
) -> Option<(u64, Price)> {
    let price = *price(ctx, providers, prices)?;
    Some((prompt(ctx, providers).tokens, price))
}

/// The price of the model the prompt was counted for, else of the model the client named.
fn price<'a>(
    ctx: &mut RequestCtx,
    providers: &ProviderRegistry,
    prices: &'a PriceTable,
) -> Option<&'a Price> {
    prompt(ctx, providers);
    let prompt = ctx.slots.get::<Prompt>()?;
    prices
        .lookup(&prompt.provider, &prompt.upstream_model)
        .or_else(|| prices.lookup(&prompt.provider, &ctx.request.requested_model))
}

/// Starts loading the tokenizers in the background when requests will need estimates: when
/// virtual keys exist (their budgets and limits reserve estimates) or `always` (a module's own
/// configuration asks for them). Called when a module is built, never on the request path.
pub fn preload_tokenizers(deps: &super::ModuleDeps, always: bool) {
    let keys_exist = || {
        deps.store
            .keys
            .virtual_keys()
            .is_ok_and(|keys| !keys.is_empty())
    };
    if always || keys_exist() {
        crate::cost::tokenize::preload();
    }
}
