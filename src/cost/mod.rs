//! Prices and cost, in integer nano-dollars (1e-9 USD) as `i64`; never floats.
//!
//! The price file's dollars-per-token floats are turned into nano-dollars per million tokens once,
//! when the table loads; from then on every sum is integer arithmetic, rounded once per request.

mod table;
pub mod tokenize;

pub use table::{PriceError, PriceTable};

use crate::config::RawPrice;

/// Tokens of each billing class for one request. `prompt` includes `cached_input` and
/// `cache_write`; `completion` includes `reasoning` (the OpenAI convention).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// Billable units other than tokens for one request: images (and their pixels), seconds of
/// audio, characters of speech input, rerank queries. Zero for a text call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Units {
    pub images: u64,
    /// Pixels of every image made, for prices per pixel (the price file's image sizes).
    pub pixels: u64,
    pub audio_ms: u64,
    pub characters: u64,
    pub queries: u64,
}

impl Units {
    pub fn is_zero(&self) -> bool {
        *self == Units::default()
    }
}

/// What a batch costs against the same requests made one by one, when the price file gives no
/// batch price of its own: OpenAI, Azure and Anthropic all bill batches at half price.
pub const BATCH_DISCOUNT_PERCENT: i64 = 50;

/// Prices of one model in nano-dollars per million tokens (or per million of the unit named).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub input: i64,
    pub cached_input: Option<i64>,
    pub cache_write: Option<i64>,
    pub output: i64,
    pub reasoning: Option<i64>,
    pub per_image: Option<i64>,
    pub per_pixel: Option<i64>,
    pub per_audio_second: Option<i64>,
    pub per_character: Option<i64>,
    pub per_query: Option<i64>,
    /// Token prices in a batch, when the price file gives them (else the discount applies).
    pub batch_input: Option<i64>,
    pub batch_output: Option<i64>,
}

const NANOS_PER_USD: f64 = 1e9;
const TOKENS_PER_MILLION: f64 = 1e6;

/// Converts a price given in USD per `per` tokens to nano-dollars per million tokens.
fn to_nanos_per_million(usd: f64, per: f64) -> Result<i64, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!("price must be a non-negative number (got {usd})"));
    }
    let nanos = (usd * NANOS_PER_USD * (TOKENS_PER_MILLION / per)).round();
    if nanos > i64::MAX as f64 / 1e7 {
        return Err(format!("price {usd} is implausibly large"));
    }
    Ok(nanos as i64)
}

/// Converts a price in USD per unit (an image, a second, a query) to nano-dollars per million
/// units. Units cost far more than tokens (an image is cents), so the bound is looser; sums are
/// done in `i128`.
fn unit_to_nanos_per_million(usd: f64) -> Result<i64, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!("price must be a non-negative number (got {usd})"));
    }
    let nanos = (usd * NANOS_PER_USD * TOKENS_PER_MILLION).round();
    if nanos > i64::MAX as f64 / 1e3 {
        return Err(format!("price {usd} is implausibly large"));
    }
    Ok(nanos as i64)
}

impl Price {
    /// From a config override, in USD per million tokens.
    pub fn from_usd_per_million(raw: &RawPrice) -> Result<Price, String> {
        let conv = |v: f64| to_nanos_per_million(v, TOKENS_PER_MILLION);
        let opt = |v: Option<f64>| v.map(conv).transpose();
        Ok(Price {
            input: conv(raw.input_per_million.unwrap_or(0.0))?,
            cached_input: opt(raw.cached_input_per_million)?,
            cache_write: opt(raw.cache_write_per_million)?,
            output: conv(raw.output_per_million.unwrap_or(0.0))?,
            reasoning: opt(raw.reasoning_per_million)?,
            ..Price::default()
        })
    }

    /// Whether the price says anything about `units` (else they cost nothing).
    pub fn prices_units(&self) -> bool {
        self.per_image.is_some()
            || self.per_pixel.is_some()
            || self.per_audio_second.is_some()
            || self.per_character.is_some()
            || self.per_query.is_some()
    }

    /// The cost of `tokens` and `units`, rounded half up once at the end; a batch request at the
    /// price file's batch prices, else at [`BATCH_DISCOUNT_PERCENT`] off.
    pub fn cost_of(&self, tokens: &Tokens, units: &Units, batch: bool) -> i64 {
        let w = |n: u64| i128::from(n);
        let p = |v: Option<i64>| i128::from(v.unwrap_or(0));
        let mut price = *self;
        let batch_priced = batch && (self.batch_input.is_some() || self.batch_output.is_some());
        if batch_priced {
            price.input = self.batch_input.unwrap_or(self.input);
            price.output = self.batch_output.unwrap_or(self.output);
            price.cached_input = self.cached_input.map(|c| c.min(price.input));
            price.reasoning = None;
        }
        // Per-million amounts, times 1000 so audio milliseconds stay exact.
        let per_million_milli: i128 = price.token_sum(tokens) * 1000
            + (w(units.images) * p(self.per_image)
                + w(units.pixels) * p(self.per_pixel)
                + w(units.characters) * p(self.per_character)
                + w(units.queries) * p(self.per_query))
                * 1000
            + w(units.audio_ms) * p(self.per_audio_second);
        let mut nanos = (per_million_milli + 500_000_000) / 1_000_000_000;
        if batch && !batch_priced {
            nanos = (nanos * i128::from(100 - BATCH_DISCOUNT_PERCENT) + 50) / 100;
        }
        i64::try_from(nanos).unwrap_or(i64::MAX)
    }

    /// Tokens times their prices, per million.
    fn token_sum(&self, tokens: &Tokens) -> i128 {
        let t = |n: u64| i128::from(n);
        let uncached = tokens
            .prompt
            .saturating_sub(tokens.cached_input)
            .saturating_sub(tokens.cache_write);
        let visible_output = tokens.completion.saturating_sub(tokens.reasoning);
        t(uncached) * i128::from(self.input)
            + t(tokens.cached_input) * i128::from(self.cached_input.unwrap_or(self.input))
            + t(tokens.cache_write) * i128::from(self.cache_write.unwrap_or(self.input))
            + t(visible_output) * i128::from(self.output)
            + t(tokens.reasoning) * i128::from(self.reasoning.unwrap_or(self.output))
    }

    /// The cost of `tokens` in nano-dollars, rounded half up once at the end.
    pub fn cost_nanos(&self, tokens: &Tokens) -> i64 {
        let nanos = (self.token_sum(tokens) + 500_000) / 1_000_000;
        i64::try_from(nanos).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gpt_4o_mini_prices_a_known_request_exactly() {
        // $0.15 / M input, $0.075 / M cached, $0.60 / M output.
        let price = Price {
            input: 150_000_000,
            cached_input: Some(75_000_000),
            cache_write: None,
            output: 600_000_000,
            reasoning: None,
            ..Price::default()
        };
        let tokens = Tokens {
            prompt: 1000,
            completion: 200,
            cached_input: 400,
            ..Tokens::default()
        };
        // 600 * 150 + 400 * 75 + 200 * 600 = 90_000 + 30_000 + 120_000 nanos
        assert_eq!(price.cost_nanos(&tokens), 240_000);
    }

    #[test]
    fn reasoning_uses_output_price_unless_given() {
        let price = Price {
            input: 0,
            output: 1_000_000,
            reasoning: Some(2_000_000),
            ..Price::default()
        };
        let tokens = Tokens {
            completion: 10,
            reasoning: 4,
            ..Tokens::default()
        };
        assert_eq!(price.cost_nanos(&tokens), 6 + 8);
    }

    #[test]
    fn usd_per_million_converts_to_nanos() {
        let raw = RawPrice {
            input_per_million: Some(2.5),
            output_per_million: Some(10.0),
            ..RawPrice::default()
        };
        let price = Price::from_usd_per_million(&raw).unwrap_or_default();
        assert_eq!(price.input, 2_500_000_000);
        assert_eq!(price.output, 10_000_000_000);
        assert!(
            Price::from_usd_per_million(&RawPrice {
                input_per_million: Some(-1.0),
                ..RawPrice::default()
            })
            .is_err()
        );
    }

    #[test]
    fn units_are_priced_exactly_and_batches_at_half() {
        // whisper-1: $0.0001 a second = 100_000 nanos a second.
        let whisper = Price {
            per_audio_second: Some(100_000 * 1_000_000),
            ..Price::default()
        };
        let units = Units {
            audio_ms: 2_500,
            ..Units::default()
        };
        assert_eq!(whisper.cost_of(&Tokens::default(), &units, false), 250_000);
        // dall-e-3 standard 1024x1024: $0.04 an image.
        let image = Price {
            per_image: Some(40_000_000 * 1_000_000),
            ..Price::default()
        };
        let two = Units {
            images: 2,
            ..Units::default()
        };
        assert_eq!(image.cost_of(&Tokens::default(), &two, false), 80_000_000);
        let mini = Price {
            input: 150_000_000,
            output: 600_000_000,
            ..Price::default()
        };
        let tokens = Tokens {
            prompt: 1000,
            completion: 200,
            ..Tokens::default()
        };
        assert_eq!(mini.cost_of(&tokens, &Units::default(), false), 270_000);
        assert_eq!(mini.cost_of(&tokens, &Units::default(), true), 135_000);
        let priced = Price {
            batch_input: Some(100_000_000),
            batch_output: Some(100_000_000),
            ..mini
        };
        assert_eq!(priced.cost_of(&tokens, &Units::default(), true), 120_000);
    }

    proptest! {
        /// Costing requests one by one and summing equals costing the summed per-million amounts,
        /// to within the half-nano rounding of each request.
        #[test]
        fn sums_of_costs_stay_exact(counts in proptest::collection::vec((0u64..2_000_000, 0u64..200_000), 1..50)) {
            let price = Price { input: 150_000_000, output: 600_000_000, ..Price::default() };
            let mut total = 0i64;
            let mut exact: i128 = 0;
            for (p, c) in &counts {
                total += price.cost_nanos(&Tokens { prompt: *p, completion: *c, ..Tokens::default() });
                exact += i128::from(*p) * 150_000_000 + i128::from(*c) * 600_000_000;
            }
            // Prices here are whole nanos per token, so there is no rounding at all.
            prop_assert_eq!(i128::from(total) * 1_000_000, exact);
        }

        #[test]
        fn cost_is_monotonic_in_tokens(p in 0u64..10_000_000, c in 0u64..10_000_000, extra in 1u64..1000) {
            let price = Price { input: 75_000, output: 300_000, ..Price::default() };
            let base = price.cost_nanos(&Tokens { prompt: p, completion: c, ..Tokens::default() });
            let more = price.cost_nanos(&Tokens { prompt: p + extra, completion: c, ..Tokens::default() });
            prop_assert!(more >= base);
        }
    }
}
