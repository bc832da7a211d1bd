//! The price table: the bundled `data/model_prices.json` (see `data/README.md` for its source and
//! licence), then prices loaded by `stockyard prices update`, then config overrides.
//!
//! The file format maps a model name to an object with `input_cost_per_token`,
//! `output_cost_per_token`, `cache_read_input_token_cost`, `cache_creation_input_token_cost` and
//! `output_cost_per_reasoning_token`, all USD per token, plus `litellm_provider` and `mode`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use thiserror::Error;

use super::{Price, to_nanos_per_million, unit_to_nanos_per_million};

static BUNDLED: &str = include_str!("../../data/model_prices.json");

#[derive(Debug, Error)]
pub enum PriceError {
    #[error("price file is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("price file entry {model:?}: {problem}")]
    Entry { model: String, problem: String },
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PriceEntry {
    #[serde(default)]
    pub litellm_provider: Option<String>,
    #[serde(default)]
    pub input_cost_per_token: Option<f64>,
    #[serde(default)]
    pub output_cost_per_token: Option<f64>,
    #[serde(default)]
    pub cache_read_input_token_cost: Option<f64>,
    #[serde(default)]
    pub cache_creation_input_token_cost: Option<f64>,
    #[serde(default)]
    pub output_cost_per_reasoning_token: Option<f64>,
    /// The model's context window for input, in tokens (read by `context_fit`); a number of
    /// any JSON kind, so an odd value in a loaded file never costs a model its price.
    #[serde(default)]
    pub max_input_tokens: Option<f64>,
    #[serde(default)]
    pub input_cost_per_image: Option<f64>,
    #[serde(default)]
    pub output_cost_per_image: Option<f64>,
    #[serde(default)]
    pub input_cost_per_pixel: Option<f64>,
    #[serde(default)]
    pub input_cost_per_second: Option<f64>,
    #[serde(default)]
    pub output_cost_per_second: Option<f64>,
    #[serde(default)]
    pub input_cost_per_character: Option<f64>,
    #[serde(default)]
    pub input_cost_per_query: Option<f64>,
    #[serde(default)]
    pub input_cost_per_token_batches: Option<f64>,
    #[serde(default)]
    pub output_cost_per_token_batches: Option<f64>,
}

impl PriceEntry {
    fn to_price(&self) -> Result<Price, String> {
        let per_token = |v: f64| to_nanos_per_million(v, 1.0);
        let opt = |v: Option<f64>| v.map(per_token).transpose();
        let unit = |v: Option<f64>| v.map(unit_to_nanos_per_million).transpose();
        Ok(Price {
            input: per_token(self.input_cost_per_token.unwrap_or(0.0))?,
            cached_input: opt(self.cache_read_input_token_cost)?,
            cache_write: opt(self.cache_creation_input_token_cost)?,
            output: per_token(self.output_cost_per_token.unwrap_or(0.0))?,
            reasoning: opt(self.output_cost_per_reasoning_token)?,
            per_image: unit(self.output_cost_per_image.or(self.input_cost_per_image))?,
            per_pixel: unit(self.input_cost_per_pixel)?,
            // The file gives whisper both; a second of audio is billed once.
            per_audio_second: unit(self.input_cost_per_second.or(self.output_cost_per_second))?,
            per_character: unit(self.input_cost_per_character)?,
            per_query: unit(self.input_cost_per_query)?,
            batch_input: opt(self.input_cost_per_token_batches)?,
            batch_output: opt(self.output_cost_per_token_batches)?,
        })
    }

    /// Whether the entry prices anything at all.
    fn has_price(&self) -> bool {
        [
            self.input_cost_per_token,
            self.input_cost_per_image,
            self.output_cost_per_image,
            self.input_cost_per_pixel,
            self.input_cost_per_second,
            self.output_cost_per_second,
            self.input_cost_per_character,
            self.input_cost_per_query,
        ]
        .iter()
        .any(Option::is_some)
    }
}

/// foldhash: the table is looked up several times for every request (estimates, cost, context
/// windows), and it is built from files, not from what clients send.
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    by_model: Map<Price>,
    /// Bare model names whose entry names this provider, for `GET /v1/models`.
    by_provider: Map<Vec<String>>,
    /// Context windows for input, in tokens, of the models whose entry gives one.
    windows: Map<u64>,
    /// The table this one is layered over ([`PriceTable::layered`]): read where this one has no
    /// entry. Shared, not copied: the bundled table takes about 2 MB and lives once per process.
    under: Option<Arc<PriceTable>>,
}

/// `provider/model` as one key, in a stack buffer when it fits (it always does for real names),
/// so a lookup allocates nothing.
fn with_qualified<T>(provider: &str, model: &str, f: impl FnOnce(&str) -> T) -> T {
    let mut buf = [0u8; 160];
    let len = provider.len() + 1 + model.len();
    if len > buf.len() {
        return f(&format!("{provider}/{model}"));
    }
    buf[..provider.len()].copy_from_slice(provider.as_bytes());
    buf[provider.len()] = b'/';
    buf[provider.len() + 1..len].copy_from_slice(model.as_bytes());
    // Two `str`s and an ASCII slash are UTF-8.
    f(std::str::from_utf8(&buf[..len]).unwrap_or_default())
}

impl PriceTable {
    /// The table bundled in the binary, parsed once per process.
    pub fn bundled() -> Arc<PriceTable> {
        static TABLE: OnceLock<Arc<PriceTable>> = OnceLock::new();
        TABLE
            .get_or_init(|| {
                // The bundled file is checked by the `bundled_table_parses` test, so this branch
                // only guards against a broken build; an empty table still serves (costs are 0).
                Arc::new(PriceTable::from_json(BUNDLED.as_bytes()).unwrap_or_default())
            })
            .clone()
    }

    /// Parses a whole file of the bundled format. Entries with no price at all (the format's own
    /// `sample_spec`) are skipped; a malformed price is an error naming the model. Images are
    /// priced per image or pixel (`{quality}/{W}-x-{H}/{model}` entries), audio per second, speech
    /// per character, rerank per query.
    pub fn from_json(bytes: &[u8]) -> Result<PriceTable, PriceError> {
        let raw: HashMap<String, serde_json::Value> = serde_json::from_slice(bytes)?;
        let mut table = PriceTable::default();
        for (model, value) in raw {
            let Ok(entry) = serde_json::from_value::<PriceEntry>(value) else {
                continue;
            };
            if !entry.has_price() {
                continue;
            }
            let price = entry.to_price().map_err(|problem| PriceError::Entry {
                model: model.clone(),
                problem,
            })?;
            if let Some(window) = entry
                .max_input_tokens
                .filter(|w| w.is_finite() && *w >= 1.0)
            {
                table.windows.insert(model.clone(), window as u64);
            }
            table.insert(&model, price, entry.litellm_provider.as_deref());
        }
        Ok(table)
    }

    fn insert(&mut self, model: &str, price: Price, provider: Option<&str>) {
        if let Some(provider) = provider
            && !model.contains('/')
        {
            self.by_provider
                .entry(provider.to_string())
                .or_default()
                .push(model.to_string());
        }
        self.by_model.insert(model.to_string(), price);
    }

    /// `layers` over `base`, the later layer winning. The base is shared, not copied; the
    /// layers' entries are, so each key's winner is found in at most two maps.
    pub fn layered(base: Arc<PriceTable>, layers: &[&PriceTable]) -> PriceTable {
        let mut table = PriceTable::default();
        for layer in layers {
            table.overlay(layer);
        }
        table.under = Some(base);
        table
    }

    fn price_of(&self, key: &str) -> Option<&Price> {
        self.by_model
            .get(key)
            .or_else(|| self.under.as_deref()?.price_of(key))
    }

    fn window_of(&self, key: &str) -> Option<u64> {
        self.windows
            .get(key)
            .copied()
            .or_else(|| self.under.as_deref()?.window_of(key))
    }

    /// Layers `other` over this table (`other`'s own base, if it has one, is not copied).
    pub fn overlay(&mut self, other: &PriceTable) {
        for (model, price) in &other.by_model {
            self.by_model.insert(model.clone(), *price);
        }
        for (model, window) in &other.windows {
            self.windows.insert(model.clone(), *window);
        }
    }

    /// The model's context window for input, in tokens: `provider/model` first, then the bare
    /// name; `None` when the table does not say.
    pub fn context_window(&self, provider: &str, model: &str) -> Option<u64> {
        with_qualified(provider, model, |qualified| self.window_of(qualified))
            .or_else(|| self.window_of(model))
    }

    pub fn set(&mut self, model: &str, price: Price) {
        self.by_model.insert(model.to_string(), price);
    }

    /// Looks up `provider/model` first (a provider-specific price), then the bare model name.
    /// The price of `model` on `provider`. Google's SDKs name models `models/<id>`: priced as
    /// the bare id, or the prefix would make a model free (and let it past budgets).
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&Price> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        with_qualified(provider, model, |qualified| self.price_of(qualified))
            .or_else(|| self.price_of(model))
    }

    /// Models priced, the base's included.
    pub fn len(&self) -> usize {
        let under = self.under.as_deref();
        let own = self
            .by_model
            .keys()
            .filter(|model| under.is_none_or(|u| u.price_of(model).is_none()))
            .count();
        own + under.map_or(0, PriceTable::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bare model names the base file attributes to `provider` (e.g. `openai`), sorted. Layers
    /// add prices, not providers' model lists.
    pub fn models_of(&self, provider: &str) -> Vec<String> {
        if let Some(under) = self.under.as_deref() {
            return under.models_of(provider);
        }
        let mut models = self.by_provider.get(provider).cloned().unwrap_or_default();
        models.sort();
        models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_windows_come_from_the_table_and_follow_overlays() {
        let mut table = PriceTable::from_json(BUNDLED.as_bytes()).unwrap_or_default();
        assert_eq!(table.context_window("openai", "gpt-4o-mini"), Some(128_000));
        assert_eq!(table.context_window("openai", "no-such-model"), None);
        let loaded = PriceTable::from_json(
            br#"{"gpt-4o-mini": {"input_cost_per_token": 1e-7, "max_input_tokens": 1000.0}}"#,
        )
        .unwrap_or_default();
        table.overlay(&loaded);
        assert_eq!(table.context_window("openai", "gpt-4o-mini"), Some(1000));
    }

    #[test]
    fn a_layered_table_reads_as_the_base_with_its_layers_copied_over_it() {
        let price = |input| Price {
            input,
            ..Price::default()
        };
        let mut base = PriceTable::default();
        base.insert("m1", price(1), Some("openai"));
        base.insert("azure/m1", price(2), None);
        base.insert("m2", price(3), Some("openai"));
        base.windows.insert("m2".into(), 100);
        let base = Arc::new(base);
        let mut stored = PriceTable::default();
        stored.set("m2", price(30));
        stored.set("m3", price(40));
        stored.windows.insert("m2".into(), 200);
        let mut overrides = PriceTable::default();
        overrides.set("m3", price(50));
        overrides.set("m1", price(10));
        let mut flat = (*base).clone();
        flat.overlay(&stored);
        flat.overlay(&overrides);
        let layered = PriceTable::layered(base.clone(), &[&stored, &overrides]);
        for (provider, model) in [
            ("openai", "m1"),
            ("azure", "m1"),
            ("openai", "m2"),
            ("openai", "m3"),
            ("openai", "m4"),
        ] {
            assert_eq!(
                layered.lookup(provider, model).map(|p| p.input),
                flat.lookup(provider, model).map(|p| p.input),
                "{provider}/{model}"
            );
            assert_eq!(
                layered.context_window(provider, model),
                flat.context_window(provider, model)
            );
        }
        assert_eq!(layered.lookup("openai", "m1").map(|p| p.input), Some(10));
        assert_eq!(layered.lookup("azure", "m1").map(|p| p.input), Some(2));
        assert_eq!(layered.context_window("openai", "m2"), Some(200));
        assert_eq!((layered.len(), flat.len()), (4, 4));
        assert_eq!(layered.models_of("openai"), ["m1", "m2"]);
        // The base is shared, not copied.
        assert_eq!(Arc::strong_count(&base), 2);
    }

    #[test]
    fn a_provider_qualified_price_wins_over_the_bare_name_whatever_the_length() {
        let mut table = PriceTable::default();
        let price = |input| Price {
            input,
            ..Price::default()
        };
        let long = "m".repeat(300);
        for model in ["gpt-4o-mini", long.as_str()] {
            table.set(model, price(1));
            table.set(&format!("azure/{model}"), price(2));
            assert_eq!(table.lookup("azure", model).map(|p| p.input), Some(2));
            assert_eq!(table.lookup("openai", model).map(|p| p.input), Some(1));
        }
        assert!(table.lookup("openai", "nothing").is_none());
    }

    #[test]
    fn bundled_table_parses_and_knows_current_models() {
        let table = PriceTable::from_json(BUNDLED.as_bytes()).map_err(|e| e.to_string());
        let table = table.unwrap_or_default();
        assert!(table.len() > 1000, "only {} models", table.len());
        let mini = table
            .lookup("openai", "gpt-4o-mini")
            .copied()
            .unwrap_or_default();
        assert_eq!(mini.input, 150_000_000);
        assert_eq!(mini.output, 600_000_000);
        assert_eq!(mini.cached_input, Some(75_000_000));
        assert!(table.models_of("openai").iter().any(|m| m == "gpt-4o"));
        // Units: an image, a second of audio, a character, a search.
        let image = table.lookup("openai", "hd/1024-x-1024/dall-e-3").copied();
        assert_eq!(
            image.and_then(|p| p.per_image),
            Some(80_000_000 * 1_000_000)
        );
        let whisper = table.lookup("openai", "whisper-1").copied();
        assert_eq!(
            whisper.and_then(|p| p.per_audio_second),
            Some(100_000 * 1_000_000)
        );
        let tts = table.lookup("openai", "tts-1").copied();
        assert_eq!(tts.and_then(|p| p.per_character), Some(15_000 * 1_000_000));
        let rerank = table.lookup("cohere", "rerank-v3.5").copied();
        assert_eq!(
            rerank.and_then(|p| p.per_query),
            Some(2_000_000 * 1_000_000)
        );
        // Bedrock: a Nova Canvas image by tier, a query of Amazon Rerank.
        let nova = table.lookup("bedrock", "premium/2048-x-2048/amazon.nova-canvas-v1:0");
        assert_eq!(nova.and_then(|p| p.per_image), Some(80_000_000 * 1_000_000));
        let amazon_rerank = table.lookup("bedrock", "amazon.rerank-v1:0");
        assert_eq!(
            amazon_rerank.and_then(|p| p.per_query),
            Some(1_000_000 * 1_000_000)
        );
    }

    #[test]
    fn malformed_price_names_the_model() {
        let err = PriceTable::from_json(br#"{"m1":{"input_cost_per_token":-1}}"#).err();
        assert!(err.is_some_and(|e| e.to_string().contains("\"m1\"")));
    }
}
