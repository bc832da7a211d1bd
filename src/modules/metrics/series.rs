//! The handles of a finished request's series, resolved once per label set.
//!
//! Counting a request touches six series of five families. Asking each family for its child
//! (`with_label_values`) hashes the labels and takes the family's lock every time, and the model
//! and provider caps take theirs: eight hashed lookups per request, for series that barely ever
//! change. Here one lookup by a hash of the request's labels finds all six handles; a series made
//! on a miss goes through the caps and the families exactly as before.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{OnceLock, PoisonError, RwLock};

use prometheus::{Counter, Histogram, IntCounter};

use super::families::Families;

/// Label sets kept. Past this (only a client inventing model names gets here: capped labels
/// collapse into `other`, but the raw names they came from differ), handles are resolved per
/// request again: correct, only slower.
const MAX_CACHED: usize = 4096;

/// A finished request's labels, as the request gives them: model and provider not yet capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesLabels<'a> {
    pub endpoint: &'static str,
    pub model: &'a str,
    pub provider: &'a str,
    pub status: &'static str,
    pub answered_by: &'static str,
}

/// The handles of one label set. Series a request may leave untouched (time to first token,
/// tokens, cost) are made at first use, so `/metrics` lists only series that counted something.
pub struct Series {
    /// The labels this was made for (a hash hit is confirmed against them).
    model: String,
    provider: String,
    endpoint: &'static str,
    status: &'static str,
    answered_by: &'static str,
    /// Model and provider as the caps admitted them: the label values of every handle here.
    capped_model: String,
    capped_provider: String,
    pub requests: IntCounter,
    pub latency: Histogram,
    pub overhead: Histogram,
    ttft: OnceLock<Histogram>,
    input_tokens: OnceLock<IntCounter>,
    output_tokens: OnceLock<IntCounter>,
    cost_usd: OnceLock<Counter>,
}

impl Series {
    fn resolve(f: &Families, labels: SeriesLabels<'_>) -> Series {
        let model = f.models.admit(labels.model);
        let provider = f.providers.admit(labels.provider);
        Series {
            model: labels.model.to_string(),
            provider: labels.provider.to_string(),
            endpoint: labels.endpoint,
            status: labels.status,
            answered_by: labels.answered_by,
            requests: f.requests.with_label_values(&[
                labels.endpoint,
                model,
                provider,
                labels.status,
                labels.answered_by,
            ]),
            latency: f.latency.with_label_values(&[model, provider]),
            overhead: f.overhead.with_label_values(&[labels.endpoint]),
            capped_model: model.to_string(),
            capped_provider: provider.to_string(),
            ttft: OnceLock::new(),
            input_tokens: OnceLock::new(),
            output_tokens: OnceLock::new(),
            cost_usd: OnceLock::new(),
        }
    }

    fn is_for(&self, labels: SeriesLabels<'_>) -> bool {
        self.endpoint == labels.endpoint
            && self.status == labels.status
            && self.answered_by == labels.answered_by
            && self.model == labels.model
            && self.provider == labels.provider
    }

    fn pair(&self) -> [&str; 2] {
        [&self.capped_model, &self.capped_provider]
    }

    pub fn ttft(&self, f: &Families) -> &Histogram {
        self.ttft
            .get_or_init(|| f.ttft.with_label_values(&self.pair()))
    }

    pub fn input_tokens(&self, f: &Families) -> &IntCounter {
        self.input_tokens.get_or_init(|| {
            let [model, provider] = self.pair();
            f.tokens.with_label_values(&[model, provider, "input"])
        })
    }

    pub fn output_tokens(&self, f: &Families) -> &IntCounter {
        self.output_tokens.get_or_init(|| {
            let [model, provider] = self.pair();
            f.tokens.with_label_values(&[model, provider, "output"])
        })
    }

    pub fn cost_usd(&self, f: &Families) -> &Counter {
        self.cost_usd
            .get_or_init(|| f.cost_usd.with_label_values(&self.pair()))
    }
}

/// Series by a hash of their labels (foldhash: labels come from requests, but a collision costs
/// only the slow path, never a wrong count).
#[derive(Default)]
pub struct SeriesCache {
    hasher: foldhash::fast::RandomState,
    by_hash: RwLock<HashMap<u64, Series, foldhash::fast::RandomState>>,
}

impl SeriesCache {
    /// Calls `count` with the series of `labels`, made and kept on first sight. A label set that
    /// finds the cache full, or its hash's slot taken by another set, is counted through handles
    /// resolved for this request alone.
    pub fn with(&self, f: &Families, labels: SeriesLabels<'_>, count: impl FnOnce(&Series)) {
        let hash = self.hasher.hash_one(labels);
        {
            let cached = self.by_hash.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = cached.get(&hash).filter(|s| s.is_for(labels)) {
                return count(series);
            }
        }
        let mut cached = self.by_hash.write().unwrap_or_else(PoisonError::into_inner);
        if cached.len() < MAX_CACHED && !cached.contains_key(&hash) {
            cached.insert(hash, Series::resolve(f, labels));
        }
        match cached.get(&hash).filter(|s| s.is_for(labels)) {
            Some(series) => count(series),
            None => {
                drop(cached);
                count(&Series::resolve(f, labels))
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(model: &str) -> SeriesLabels<'_> {
        SeriesLabels {
            endpoint: "chat_completions",
            model,
            provider: "openai",
            status: "200",
            answered_by: "upstream",
        }
    }

    #[test]
    fn one_label_set_is_resolved_once_and_counts_into_the_families() {
        let f = Families::new().unwrap();
        for _ in 0..3 {
            f.series
                .with(&f, labels("gpt-4o-mini"), |s| s.requests.inc());
        }
        f.series.with(&f, labels("gpt-4o"), |s| s.requests.inc());
        assert_eq!(f.series.len(), 2);
        let count = |model: &str| {
            f.requests
                .with_label_values(&["chat_completions", model, "openai", "200", "upstream"])
                .get()
        };
        assert_eq!((count("gpt-4o-mini"), count("gpt-4o")), (3, 1));
    }

    #[test]
    fn series_left_untouched_are_not_listed() {
        let f = Families::new().unwrap();
        f.series.with(&f, labels("gpt-4o-mini"), |s| {
            s.requests.inc();
            s.input_tokens(&f).inc_by(5);
        });
        let text = f.render();
        assert!(text.contains(r#"direction="input""#), "{text}");
        assert!(!text.contains(r#"direction="output""#), "{text}");
        assert!(
            !text.contains("stockyard_time_to_first_token_seconds_count{"),
            "{text}"
        );
    }

    #[test]
    fn the_model_cap_still_applies_and_the_cache_stays_bounded() {
        let f = Families::new().unwrap();
        let names: Vec<String> = (0..MAX_CACHED + 10).map(|i| format!("m{i}")).collect();
        for name in &names {
            f.series.with(&f, labels(name), |s| s.requests.inc());
        }
        assert_eq!(f.series.len(), MAX_CACHED);
        let other = f
            .requests
            .with_label_values(&["chat_completions", "other", "openai", "200", "upstream"])
            .get();
        assert_eq!(other as usize, names.len() - super::super::MAX_LABEL_VALUES);
    }
}
