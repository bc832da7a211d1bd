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

/// Prices of one model in nano-dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub input: i64,
    pub cached_input: Option<i64>,
    pub cache_write: Option<i64>,
    pub output: i64,
    pub reasoning: Option<i64>,
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
        })
    }

    /// The cost of `tokens` in nano-dollars, rounded half up once at the end.
    pub fn cost_nanos(&self, tokens: &Tokens) -> i64 {
        let t = |n: u64| i128::from(n);
        let uncached = tokens
            .prompt
            .saturating_sub(tokens.cached_input)
            .saturating_sub(tokens.cache_write);
        let visible_output = tokens.completion.saturating_sub(tokens.reasoning);
        let total_per_million: i128 = t(uncached) * i128::from(self.input)
            + t(tokens.cached_input) * i128::from(self.cached_input.unwrap_or(self.input))
            + t(tokens.cache_write) * i128::from(self.cache_write.unwrap_or(self.input))
            + t(visible_output) * i128::from(self.output)
            + t(tokens.reasoning) * i128::from(self.reasoning.unwrap_or(self.output));
        let nanos = (total_per_million + 500_000) / 1_000_000;
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
