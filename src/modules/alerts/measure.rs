//! What the rules measure: a bounded window of finished requests (fed by `on_finish`), and the
//! figures each rule kind reads from it or from the proxy's state.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Samples kept at most, whatever the windows: a flood costs memory only up to this.
pub const MAX_SAMPLES: usize = 100_000;

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub ts_ms: i64,
    pub server_error: bool,
    pub latency_ms: u32,
    pub cost_nanos: i64,
}

#[derive(Default)]
pub struct RequestWindow {
    samples: Mutex<VecDeque<Sample>>,
}

/// Figures over the samples since a moment.
#[derive(Debug, Default, PartialEq)]
pub struct WindowFigures {
    pub requests: usize,
    pub error_rate: f64,
    pub latency_p95_ms: f64,
    pub spend_usd: f64,
}

impl RequestWindow {
    pub fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() >= MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Drops samples older than `oldest_ms`.
    pub fn trim(&self, oldest_ms: i64) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        while samples.front().is_some_and(|s| s.ts_ms < oldest_ms) {
            samples.pop_front();
        }
    }

    pub fn figures(&self, since_ms: i64) -> WindowFigures {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let recent: Vec<Sample> = samples
            .iter()
            .filter(|s| s.ts_ms >= since_ms)
            .copied()
            .collect();
        drop(samples);
        if recent.is_empty() {
            return WindowFigures::default();
        }
        let errors = recent.iter().filter(|s| s.server_error).count();
        let mut latencies: Vec<u32> = recent.iter().map(|s| s.latency_ms).collect();
        latencies.sort_unstable();
        // Nearest rank: the smallest value with at least 95% of samples at or below it.
        let rank = (latencies.len() * 95).div_ceil(100).max(1) - 1;
        WindowFigures {
            requests: recent.len(),
            error_rate: errors as f64 / recent.len() as f64,
            latency_p95_ms: f64::from(latencies[rank]),
            spend_usd: recent.iter().map(|s| s.cost_nanos).sum::<i64>() as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_only_the_window() {
        let window = RequestWindow::default();
        for i in 0..100 {
            window.push(Sample {
                ts_ms: 1_000 + i,
                server_error: i % 4 == 0,
                latency_ms: i as u32 + 1,
                cost_nanos: 1_000_000_000,
            });
        }
        let all = window.figures(0);
        assert_eq!(all.requests, 100);
        assert_eq!(all.error_rate, 0.25);
        assert_eq!(all.latency_p95_ms, 95.0);
        assert_eq!(all.spend_usd, 100.0);
        assert_eq!(window.figures(1_090).requests, 10);
        window.trim(1_050);
        assert_eq!(window.figures(0).requests, 50);
    }
}
