//! What the web console (`/ui`) reads: a filtered, keyset-paginated trace list, one trace whole,
//! and the overview's sums from the hourly and daily roll-ups (`trace_rollup`, kept by the writer in the
//! trace batch's transaction, migration 0016). Methods block; async callers use `spawn_blocking`.
//!
//! The trace filter is a list of typed conditions that the backend turns into SQL one by one, so
//! a new filter (a tag) is one variant here and one arm there.

use serde::Serialize;

use super::{StoreError, TraceRecord};

/// How a trace's status is filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Below 400.
    Ok,
    /// 400 and over.
    Errors,
    Exact(u16),
}

/// The trace list's filters; every set field must match.
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    /// Inclusive, epoch ms.
    pub since_ms: Option<i64>,
    /// Exclusive, epoch ms.
    pub until_ms: Option<i64>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    /// One of the request's tags (the `tags` module).
    pub tag: Option<String>,
    pub status: Option<StatusFilter>,
    /// `hit`, `semantic-hit`, `miss` or `skip`.
    pub cache: Option<String>,
    /// A substring of the captured request or response body.
    pub text: Option<String>,
}

impl TraceFilter {
    /// The terms a query with this filter repeats so that both backends' planners use the key
    /// and team indexes, which hold only rows with a key or a team (migration 0021).
    pub fn partial_index_terms(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("key_id IS NOT NULL", &self.key_id),
            ("team_id IS NOT NULL", &self.team_id),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some())
        .map(|(term, _)| term)
    }
}

/// A free-text search reads at most this many of the newest traces in its range: bodies have no
/// index, and a page must answer in well under a second. The page says when it stopped there.
pub const TEXT_SCAN_ROWS: i64 = 100_000;

/// Where the next page starts: the last row's `(ts_ms, rowid)`, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceCursor {
    pub ts_ms: i64,
    pub row: i64,
}

impl TraceCursor {
    /// As it travels in a URL: `TS.ROW`.
    pub fn encode(self) -> String {
        format!("{}.{}", self.ts_ms, self.row)
    }

    pub fn parse(text: &str) -> Option<TraceCursor> {
        let (ts, row) = text.split_once('.')?;
        Some(TraceCursor {
            ts_ms: ts.parse().ok()?,
            row: row.parse().ok()?,
        })
    }
}

/// A trace as the list shows it (no bodies).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TraceSummary {
    pub id: String,
    pub ts_ms: i64,
    pub endpoint: String,
    pub requested_model: String,
    pub provider: Option<String>,
    pub status: u16,
    pub error_class: Option<String>,
    pub stream: bool,
    pub latency_us: i64,
    pub ttft_us: Option<i64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
    pub key_id: Option<String>,
    pub team_id: Option<String>,
    pub cache: Option<String>,
    pub attempts: u32,
}

impl TraceSummary {
    pub fn of(t: &TraceRecord) -> TraceSummary {
        TraceSummary {
            id: t.id.clone(),
            ts_ms: t.ts_ms,
            endpoint: t.endpoint.clone(),
            requested_model: t.requested_model.clone(),
            provider: t.provider.clone(),
            status: t.status,
            error_class: t.error_class.clone(),
            stream: t.stream,
            latency_us: t.latency_us,
            ttft_us: t.ttft_us,
            prompt_tokens: t.tokens.prompt as i64,
            completion_tokens: t.tokens.completion as i64,
            cost_nanos: t.cost_nanos,
            key_id: t.key_id.clone(),
            team_id: t.team_id.clone(),
            cache: t.cache.clone(),
            attempts: t.attempts,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct TracePage {
    pub rows: Vec<TraceSummary>,
    /// Set when more rows may follow.
    pub next: Option<TraceCursor>,
    /// A text search stopped after [`TEXT_SCAN_ROWS`] rows of its range.
    pub scan_capped: bool,
}

/// What the overview breaks its figures down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Model,
    Provider,
    Key,
    Team,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Model,
        Dimension::Provider,
        Dimension::Key,
        Dimension::Team,
    ];

    pub fn parse(text: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Key => "key",
            Dimension::Team => "team",
        }
    }

    /// Its column in `trace_rollup`.
    pub fn column(self) -> &'static str {
        match self {
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Key => "key_id",
            Dimension::Team => "team_id",
        }
    }
}

#[derive(Clone, Debug)]
pub struct OverviewQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    pub by: Dimension,
    /// Only rows whose dimensions have these values (all of them).
    pub only: Vec<(Dimension, String)>,
}

/// Log-spaced latency buckets: bucket `i` holds values in `[100 µs · 2^(i/4), 100 µs · 2^((i+1)/4))`
/// (about 19% wide), the last one everything above ~23 minutes.
pub const HIST_BUCKETS: usize = 96;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram(pub [u32; HIST_BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram([0; HIST_BUCKETS])
    }
}

impl Histogram {
    pub fn bucket(us: i64) -> usize {
        if us <= 100 {
            return 0;
        }
        let i = (4.0 * (us as f64 / 100.0).log2()).floor();
        (i as usize).min(HIST_BUCKETS - 1)
    }

    pub fn add(&mut self, us: i64) {
        let b = Histogram::bucket(us);
        self.0[b] = self.0[b].saturating_add(1);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|c| u64::from(*c)).sum()
    }

    /// The `q` quantile (0..=1) as the bucket's geometric middle, µs; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for (i, c) in self.0.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some((100.0 * 2f64.powf((i as f64 + 0.5) / 4.0)).round() as i64);
            }
        }
        None
    }

    /// Sparse bytes: `(u8 bucket, u32 LE count)` per non-empty bucket.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, c) in self.0.iter().enumerate() {
            if *c > 0 {
                out.push(i as u8);
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        out
    }

    /// Adds what `bytes` (from [`Histogram::encode`]) holds; a malformed tail is ignored.
    pub fn merge_encoded(&mut self, bytes: &[u8]) {
        for pair in bytes.chunks_exact(5) {
            let i = usize::from(pair[0]).min(HIST_BUCKETS - 1);
            let c = u32::from_le_bytes([pair[1], pair[2], pair[3], pair[4]]);
            self.0[i] = self.0[i].saturating_add(c);
        }
    }
}

/// Sums over some hours of traces.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests: i64,
    pub errors: i64,
    pub cache_hits: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
    pub saved_nanos: i64,
    pub latency_us_sum: i64,
    pub ttft_us_sum: i64,
    pub ttft_count: i64,
    pub latency: Histogram,
    pub ttft: Histogram,
}

impl Stats {
    pub fn merge(&mut self, o: &Stats) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.cache_hits += o.cache_hits;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cost_nanos += o.cost_nanos;
        self.saved_nanos += o.saved_nanos;
        self.latency_us_sum += o.latency_us_sum;
        self.ttft_us_sum += o.ttft_us_sum;
        self.ttft_count += o.ttft_count;
        self.latency.merge(&o.latency);
        self.ttft.merge(&o.ttft);
    }

    /// Adds one trace (what the writer does for the roll-up).
    pub fn add(&mut self, t: &TraceRecord) {
        self.requests += 1;
        self.errors += i64::from(t.status >= 400);
        self.cache_hits += i64::from(matches!(t.cache.as_deref(), Some("hit" | "semantic-hit")));
        self.prompt_tokens += t.tokens.prompt as i64;
        self.completion_tokens += t.tokens.completion as i64;
        self.cost_nanos += t.cost_nanos;
        self.saved_nanos += t.saved_nanos;
        self.latency_us_sum += t.latency_us;
        self.latency.add(t.latency_us);
        if let Some(ttft) = t.ttft_us {
            self.ttft_us_sum += ttft;
            self.ttft_count += 1;
            self.ttft.add(ttft);
        }
    }
}

/// The overview of a range: totals, a time series and a breakdown.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    pub total: Stats,
    /// Width of a series point: an hour, or a day for ranges past three days.
    pub bucket_ms: i64,
    /// `(bucket start, stats)`, oldest first; empty buckets are absent.
    pub series: Vec<(i64, Stats)>,
    /// By the query's dimension, most requests first; '' is "none".
    pub by: Vec<(String, Stats)>,
    /// Roll-up rows read (for the benchmark's report).
    pub rows_read: usize,
}

pub const HOUR_MS: i64 = 3_600_000;

pub trait DashboardStore: Send + Sync {
    /// Newest first, at most `limit` (1..=500), after `after` when set.
    fn trace_page(
        &self,
        filter: &TraceFilter,
        after: Option<TraceCursor>,
        limit: usize,
    ) -> Result<TracePage, StoreError>;
    /// One trace, bodies included.
    fn trace(&self, id: &str) -> Result<Option<TraceRecord>, StoreError>;
    fn overview(&self, query: &OverviewQuery) -> Result<Overview, StoreError>;
    /// The distinct values of a dimension seen since `since_ms` (for the filters' choices).
    fn dimension_values(&self, dim: Dimension, since_ms: i64) -> Result<Vec<String>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_and_reads_quantiles() {
        let mut h = Histogram::default();
        for us in [1_000, 2_000, 3_000, 100_000] {
            h.add(us);
        }
        let mut back = Histogram::default();
        back.merge_encoded(&h.encode());
        assert_eq!(back, h);
        let p50 = h.quantile(0.5).unwrap_or_default();
        assert!((1_600..=2_500).contains(&p50), "p50 {p50}");
        let p95 = h.quantile(0.95).unwrap_or_default();
        assert!((84_000..=120_000).contains(&p95), "p95 {p95}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn cursor_round_trips() {
        let c = TraceCursor {
            ts_ms: 1_700_000_000_000,
            row: 42,
        };
        assert_eq!(TraceCursor::parse(&c.encode()), Some(c));
        assert_eq!(TraceCursor::parse("x.1"), None);
    }
}
