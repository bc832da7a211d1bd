//! What one target collects in one scenario ([`Measurement`]) and the arithmetic the report needs
//! (percentiles, rates, CPU per request). `load.rs` fills measurements; `report.rs` reads them.

use std::collections::BTreeMap;
use std::time::Duration;

/// A process whose CPU time the benchmark charges to a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Mock,
    Stockyard,
    Nginx,
    /// `bare-proxy`: hyper with nothing on top.
    Bare,
}

/// CPU time in nanoseconds of each watched process at one instant; `None` where it could not be
/// read, so a missing sample shows as "n/a" rather than as zero CPU.
pub type CpuSnapshot = Vec<(Role, Option<u64>)>;

/// The results of one scenario against one target, summed over its rounds.
#[derive(Debug, Default)]
pub struct Measurement {
    /// Time to the complete body of each timed request that succeeded, in microseconds.
    pub latency_us: Vec<u64>,
    /// Time to the first body bytes of each timed request that succeeded, in microseconds.
    pub ttfb_us: Vec<u64>,
    /// Successful timed requests.
    pub ok: u64,
    /// Failed requests, warm-ups and primers included: an error is an error wherever it happens.
    pub errors: u64,
    /// The first error's text, so a failing run says why.
    pub first_error: Option<String>,
    /// Wall time of the timed sections only.
    pub elapsed: Duration,
    /// CPU nanoseconds each process used during the timed sections.
    pub cpu_ns: BTreeMap<Role, u64>,
    /// Requests whose CPU is in `cpu_ns` (timed ones, successful or not).
    pub cpu_requests: u64,
    /// Set once a CPU sample was missing, so per-request CPU is not reported from partial sums.
    pub cpu_incomplete: bool,
    /// The CPU of this target's proxy over each of its sections (warm-up, rounds) plus a settle
    /// pause after each, and every request it got in them. Wider than the timed sections on
    /// purpose: work the proxy defers (the batched trace writer) lands after a section ends.
    /// Per section rather than per scenario because one proxy process can serve two targets
    /// (a model and a routing group) in the same scenario.
    pub proxy_cpu: CpuCharge,
    /// Set once a proxy CPU sample was missing.
    pub proxy_cpu_incomplete: bool,
    /// Successful timed requests per provider named in `x-stockyard-deployment`, for targets
    /// that check it.
    pub served_by: BTreeMap<&'static str, u64>,
}

/// CPU time charged to a number of requests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuCharge {
    pub ns: u64,
    pub requests: u64,
}

impl CpuCharge {
    pub fn us_per_request(self) -> Option<f64> {
        (self.requests > 0).then(|| self.ns as f64 / 1e3 / self.requests as f64)
    }
}

impl Measurement {
    /// Records one successful timed request.
    pub fn record(&mut self, total: Duration, ttfb: Option<Duration>) {
        self.ok += 1;
        self.latency_us.push(micros(total));
        if let Some(ttfb) = ttfb {
            self.ttfb_us.push(micros(ttfb));
        }
    }

    /// Counts one successful timed request as served by `provider`.
    pub fn tally_provider(&mut self, provider: &'static str) {
        *self.served_by.entry(provider).or_default() += 1;
    }

    pub fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }

    /// Folds in a client's share of a concurrent run.
    pub fn merge(&mut self, other: Measurement) {
        self.latency_us.extend(other.latency_us);
        self.ttfb_us.extend(other.ttfb_us);
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        for (provider, n) in other.served_by {
            *self.served_by.entry(provider).or_default() += n;
        }
    }

    /// Charges one section's proxy CPU (`None` if a sample was missing) to `requests` requests.
    pub fn add_proxy_cpu(&mut self, ns: Option<u64>, requests: u64) {
        match ns {
            Some(ns) => {
                self.proxy_cpu.ns += ns;
                self.proxy_cpu.requests += requests;
            }
            None => self.proxy_cpu_incomplete = true,
        }
    }

    /// Proxy CPU microseconds per request over this target's sections.
    pub fn proxy_us_per_request(&self) -> Option<f64> {
        if self.proxy_cpu_incomplete {
            return None;
        }
        self.proxy_cpu.us_per_request()
    }

    /// Charges the CPU used between two snapshots to `requests` timed requests.
    pub fn add_cpu(&mut self, before: &CpuSnapshot, after: &CpuSnapshot, requests: u64) {
        self.cpu_requests += requests;
        for ((role, b), (_, a)) in before.iter().zip(after) {
            match (b, a) {
                (Some(b), Some(a)) => {
                    *self.cpu_ns.entry(*role).or_default() += a.saturating_sub(*b);
                }
                _ => self.cpu_incomplete = true,
            }
        }
    }

    /// CPU microseconds per timed request that `role` used during the timed sections.
    pub fn cpu_us_per_request(&self, role: Role) -> Option<f64> {
        if self.cpu_incomplete {
            return None;
        }
        CpuCharge {
            ns: *self.cpu_ns.get(&role)?,
            requests: self.cpu_requests,
        }
        .us_per_request()
    }

    /// Successful requests per second of timed wall time.
    pub fn requests_per_s(&self) -> Option<f64> {
        let secs = self.elapsed.as_secs_f64();
        (secs > 0.0 && self.ok > 0).then(|| self.ok as f64 / secs)
    }

    pub fn latency_percentile(&self, p: f64) -> Option<u64> {
        percentile_of(&self.latency_us, p)
    }

    pub fn ttfb_percentile(&self, p: f64) -> Option<u64> {
        percentile_of(&self.ttfb_us, p)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn percentile_of(samples: &[u64], p: f64) -> Option<u64> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, p)
}

/// Nearest-rank percentile of ascending `sorted`: the smallest sample with at least `p` percent
/// of the samples at or below it. No interpolation, so the answer is always a measured value.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50.0), Some(50));
        assert_eq!(percentile(&hundred, 99.0), Some(99));
        assert_eq!(percentile(&hundred, 100.0), Some(100));
        assert_eq!(percentile(&hundred, 0.0), Some(1));
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten: Vec<u64> = (1..=10).map(|n| n * 10).collect();
        assert_eq!(percentile(&ten, 99.0), Some(100));
        assert_eq!(percentile(&ten, 50.0), Some(50));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn cpu_per_request_needs_every_sample() {
        let mut m = Measurement::default();
        let before = vec![(Role::Stockyard, Some(1_000)), (Role::Mock, Some(10))];
        let after = vec![
            (Role::Stockyard, Some(501_000)),
            (Role::Mock, Some(100_010)),
        ];
        m.add_cpu(&before, &after, 1000);
        // 0.5 ms over 1000 requests = 0.5 µs each.
        assert_eq!(m.cpu_us_per_request(Role::Stockyard), Some(0.5));
        assert_eq!(m.cpu_us_per_request(Role::Mock), Some(0.1));
        assert_eq!(m.cpu_us_per_request(Role::Nginx), None);
        m.add_cpu(&vec![(Role::Mock, None)], &vec![(Role::Mock, Some(1))], 1);
        assert_eq!(m.cpu_us_per_request(Role::Stockyard), None);
        let charge = CpuCharge {
            ns: 3_000,
            requests: 2,
        };
        assert_eq!(charge.us_per_request(), Some(1.5));
    }

    #[test]
    fn proxy_cpu_sums_sections_and_needs_every_sample() {
        let mut m = Measurement::default();
        assert_eq!(m.proxy_us_per_request(), None);
        m.add_proxy_cpu(Some(2_000), 1);
        m.add_proxy_cpu(Some(4_000), 3);
        assert_eq!(m.proxy_us_per_request(), Some(1.5));
        m.add_proxy_cpu(None, 1);
        assert_eq!(m.proxy_us_per_request(), None);
    }

    #[test]
    fn merge_adds_up_the_providers() {
        let mut a = Measurement::default();
        let mut b = Measurement::default();
        a.tally_provider("d1");
        b.tally_provider("d1");
        b.tally_provider("d2");
        a.merge(b);
        assert_eq!(a.served_by.get("d1"), Some(&2));
        assert_eq!(a.served_by.get("d2"), Some(&1));
    }
}
