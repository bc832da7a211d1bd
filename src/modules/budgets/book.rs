//! `BudgetBook`: spend per key and team per calendar period, in hot counters, shared by every
//! chain the proxy builds. Each budget has two counters in its period's window: `spend` (settled
//! cost plus the estimates held by requests in flight, which is what a reservation checks
//! against the limit) and `held` (the estimates alone, so a refusal can say what is spent and
//! what is merely held).
//!
//! At start-up the book is seeded from the spend rollups (read once when the module is first
//! built, added to the counters by the first request), so a restart keeps the period's spend.
//! Spend is counted for every period of every virtual key and team, budget or not, so a budget
//! set mid-period starts from what was already spent.

use std::collections::{HashMap, HashSet};

use futures_util::FutureExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::request::{Budget, Period};
use crate::store::counters::{calendar, counter_key};
use crate::store::{
    BudgetAlert, CalendarUnit, HotCounters, Reservation, ReserveError, SpendBy, Store, StoreError,
    Window, now_ms,
};

pub const PERIODS: [Period; 4] = [Period::Day, Period::Week, Period::Month, Period::Total];

/// Who a budget belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject {
    /// `key` or `team`.
    pub scope: &'static str,
    pub id: String,
}

pub fn period_name(period: Period) -> &'static str {
    match period {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
        Period::Total => "total",
    }
}

pub fn window(period: Period) -> Window {
    Window::Calendar(match period {
        Period::Day => CalendarUnit::Day,
        Period::Week => CalendarUnit::Week,
        Period::Month => CalendarUnit::Month,
        Period::Total => CalendarUnit::Total,
    })
}

fn spend_key(subject: &Subject, period: Period) -> String {
    counter_key(&["spend", subject.scope, &subject.id, period_name(period)])
}

fn held_key(subject: &Subject, period: Period) -> String {
    counter_key(&["held", subject.scope, &subject.id, period_name(period)])
}

/// Where `period` sits in [`PERIODS`] and in a [`Counted`]'s arrays.
fn slot(period: Period) -> usize {
    match period {
        Period::Day => 0,
        Period::Week => 1,
        Period::Month => 2,
        Period::Total => 3,
    }
}

/// A subject and the names of its counters in every period, made the first time the subject
/// is counted and kept: a governed request counts up to a dozen of them, and building each name
/// on every request cost more than the counting.
#[derive(Debug)]
pub struct Counted {
    pub subject: Subject,
    spend: [String; 4],
    held: [String; 4],
}

impl Counted {
    fn new(subject: Subject) -> Counted {
        Counted {
            spend: PERIODS.map(|p| spend_key(&subject, p)),
            held: PERIODS.map(|p| held_key(&subject, p)),
            subject,
        }
    }
}

/// The [`Counted`] of every key and team seen, by scope then id. Bounded by the keys and teams
/// that exist; a removed one's entry is a few names.
type CountedMap = HashMap<String, Arc<Counted>, foldhash::fast::RandomState>;

/// An estimate held against one budget until the request finishes.
#[derive(Clone, Debug)]
pub struct Held {
    pub counted: Arc<Counted>,
    pub budget: Budget,
    pub reservation: Reservation,
}

/// Why a reservation was refused, with what the message needs.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub subject: Subject,
    pub budget: Budget,
    pub spent: i64,
    pub held: i64,
    pub estimate: i64,
    pub resets_at_ms: Option<i64>,
}

pub struct BudgetBook {
    counters: Arc<dyn HotCounters>,
    /// Spend per (subject, period) read from the rollups at start-up, added by the first request.
    seed: Mutex<Option<Vec<(String, i64, Window)>>>,
    seed_pending: AtomicBool,
    /// Thresholds already alerted: (subject, period, period start, percent).
    alerted: Mutex<HashSet<(Subject, &'static str, i64, u8)>>,
    /// Keys', then teams' counter names.
    counted: [RwLock<CountedMap>; 2],
}

impl BudgetBook {
    pub fn new(counters: Arc<dyn HotCounters>) -> BudgetBook {
        BudgetBook {
            counters,
            seed: Mutex::new(None),
            seed_pending: AtomicBool::new(false),
            alerted: Mutex::default(),
            counted: Default::default(),
        }
    }

    /// The subject `scope`/`id` with its counter names, made on first sight.
    pub fn counted(&self, scope: &'static str, id: &str) -> Arc<Counted> {
        let map = &self.counted[usize::from(scope == "team")];
        if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(id) {
            return found.clone();
        }
        let made = Arc::new(Counted::new(Subject {
            scope,
            id: id.to_string(),
        }));
        map.write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_string())
            .or_insert(made)
            .clone()
    }

    /// Reads each key's and team's spend in its current periods from the rollups, and the alerts
    /// already raised. Called when the module is built, never on the request path.
    pub fn load(&self, store: &Store) -> Result<(), StoreError> {
        let now = now_ms();
        // A key's spend counts under the first key of its rotation chain, with its
        // predecessors' (`Grant::limits_id`).
        let keys: std::collections::BTreeMap<String, crate::store::VirtualKeyRecord> = store
            .keys
            .virtual_keys()?
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        let firsts = crate::store::first_of_rotations(&keys);
        let limits_id = |id: String| match firsts.get(id.as_str()) {
            Some(first) => first.to_string(),
            None => id,
        };
        let mut seed = Vec::new();
        for period in PERIODS {
            let window = window(period);
            let start = window.bucket_start(now);
            let mut sums: std::collections::HashMap<Subject, i64> = Default::default();
            for (by, scope) in [(SpendBy::Key, "key"), (SpendBy::Team, "team")] {
                for row in store.spend.spend(by, start)? {
                    if row.key == crate::store::SPEND_NONE || row.cost_nanos == 0 {
                        continue;
                    }
                    let id = if scope == "key" {
                        limits_id(row.key)
                    } else {
                        row.key
                    };
                    *sums.entry(Subject { scope, id }).or_default() += row.cost_nanos;
                }
            }
            for (subject, nanos) in sums {
                seed.push((spend_key(&subject, period), nanos, window));
            }
        }
        let mut alerted = self.alerted.lock().unwrap_or_else(PoisonError::into_inner);
        for alert in store.spend.budget_alerts(0)? {
            let scope = if alert.scope == "team" { "team" } else { "key" };
            let Some(period) = PERIODS
                .into_iter()
                .find(|p| period_name(*p) == alert.period)
            else {
                continue;
            };
            let subject = Subject {
                scope,
                id: alert.subject,
            };
            alerted.insert((
                subject,
                period_name(period),
                alert.period_start_ms,
                alert.percent,
            ));
        }
        // In-memory counters answer at once, so the seed is in them before any request; only a
        // backend that would have to wait is left for the first request to seed. Shared counters
        // take a seed only for a bucket no node counted yet (the rollups hold that spend too).
        let mut left = Vec::new();
        for (key, nanos, window) in seed {
            if self
                .counters
                .seed(&key, nanos, window)
                .now_or_never()
                .is_none()
            {
                left.push((key, nanos, window));
            }
        }
        if !left.is_empty() {
            *self.seed.lock().unwrap_or_else(PoisonError::into_inner) = Some(left);
            self.seed_pending.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Adds what [`BudgetBook::load`] could not add at once, on the first request (a shared
    /// backend's counters); requests racing that one may reserve before it is added.
    async fn seeded(&self) {
        // Checked without the lock: after the first request there is never anything to add.
        if !self.seed_pending.load(Ordering::Acquire) {
            return;
        }
        let seed = self
            .seed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.seed_pending.store(false, Ordering::Release);
        for (key, nanos, window) in seed.into_iter().flatten() {
            let _ = self.counters.seed(&key, nanos, window).await;
        }
    }

    /// Holds `estimate` against `budget`: refused when spend + what is held + `estimate` would
    /// pass the limit.
    pub async fn reserve(
        &self,
        counted: &Arc<Counted>,
        budget: &Budget,
        estimate: i64,
    ) -> Result<Held, Refusal> {
        self.seeded().await;
        let window = window(budget.period);
        let at = slot(budget.period);
        match self
            .counters
            .quick_reserve(&counted.spend[at], estimate, budget.limit_nanos, window)
            .await
        {
            Ok(reservation) => {
                let _ = self
                    .counters
                    .quick_add(&counted.held[at], estimate, window)
                    .await;
                Ok(Held {
                    counted: counted.clone(),
                    budget: budget.clone(),
                    reservation,
                })
            }
            Err(err) => {
                let current = match err {
                    ReserveError::Exceeded(over) => over.current,
                    ReserveError::Store(_) => 0,
                };
                let held = self
                    .counters
                    .quick_read(&counted.held[at], window)
                    .await
                    .unwrap_or(0);
                let now = now_ms();
                Err(Refusal {
                    subject: counted.subject.clone(),
                    budget: budget.clone(),
                    spent: current - held,
                    held,
                    estimate,
                    resets_at_ms: (budget.period != Period::Total).then(|| window.resets_at(now)),
                })
            }
        }
    }

    /// Swaps a held estimate for the real cost (0 for a request that cost nothing); returns the
    /// settled spend of the budget's period (estimates still held by others excluded), with the
    /// hold's subject and budget for its alerts.
    pub async fn settle(&self, held: Held, cost_nanos: i64) -> (i64, Arc<Counted>, Budget) {
        self.seeded().await;
        let Held {
            counted,
            budget,
            reservation,
        } = held;
        let window = window(budget.period);
        let amount = reservation.amount;
        let total = self
            .counters
            .quick_settle(reservation, cost_nanos)
            .await
            .unwrap_or(0);
        let still_held = self
            .counters
            .quick_add(&counted.held[slot(budget.period)], -amount, window)
            .await
            .unwrap_or(0);
        (total - still_held, counted, budget)
    }

    /// Counts `cost_nanos` in a period no reservation covered.
    pub async fn add(&self, counted: &Counted, period: Period, cost_nanos: i64) {
        self.seeded().await;
        let _ = self
            .counters
            .quick_add(&counted.spend[slot(period)], cost_nanos, window(period))
            .await;
    }

    /// The thresholds of `budget` that `spent` has reached and that were not alerted yet in this
    /// period; each is marked alerted as it is returned.
    pub fn crossed(&self, subject: &Subject, budget: &Budget, spent: i64) -> Vec<BudgetAlert> {
        if budget.alert_percents.is_empty() {
            return Vec::new();
        }
        let now = now_ms();
        let period_start = window(budget.period).bucket_start(now);
        let period = period_name(budget.period);
        let mut alerted = self.alerted.lock().unwrap_or_else(PoisonError::into_inner);
        let mut alerts = Vec::new();
        for &percent in &budget.alert_percents {
            let threshold = i128::from(budget.limit_nanos) * i128::from(percent) / 100;
            if i128::from(spent) < threshold {
                continue;
            }
            if alerted.insert((subject.clone(), period, period_start, percent)) {
                alerts.push(BudgetAlert {
                    ts_ms: now,
                    scope: subject.scope.to_string(),
                    subject: subject.id.clone(),
                    period: period.to_string(),
                    period_start_ms: period_start,
                    percent,
                    spend_nanos: spent,
                    limit_nanos: budget.limit_nanos,
                });
            }
        }
        alerts
    }
}

/// Nano-dollars as dollars, to the last significant digit (at least cents): `$0.05`,
/// `$0.000125`.
pub fn usd(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let fraction = format!("{:09}", n % 1_000_000_000);
    let trimmed = fraction.trim_end_matches('0');
    let digits = if trimmed.len() < 2 {
        &fraction[..2]
    } else {
        trimmed
    };
    format!("{sign}${}.{digits}", n / 1_000_000_000)
}

/// `2027-01-01T00:00:00Z`.
pub fn when(ms: i64) -> String {
    calendar::rfc3339(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryCounters;

    fn budget(limit_nanos: i64, alert_percents: Vec<u8>) -> Budget {
        Budget {
            limit_nanos,
            period: Period::Day,
            alert_percents,
        }
    }

    fn key(id: &str) -> Subject {
        Subject {
            scope: "key",
            id: id.into(),
        }
    }

    fn counted(book: &BudgetBook, id: &str) -> Arc<Counted> {
        book.counted("key", id)
    }

    #[test]
    fn dollars_keep_their_significant_digits() {
        assert_eq!(usd(50_000_000), "$0.05");
        assert_eq!(usd(125_000), "$0.000125");
        assert_eq!(usd(5_000_000_000), "$5.00");
        assert_eq!(usd(-1), "-$0.000000001");
    }

    #[tokio::test]
    async fn reservations_hold_until_settled_and_refusals_separate_spend_from_held() {
        let book = BudgetBook::new(Arc::new(MemoryCounters::default()));
        let b = budget(1_000, vec![]);
        let first = book.reserve(&counted(&book, "a"), &b, 600).await;
        let Ok(first) = first else { panic!("refused") };
        let refused = book.reserve(&counted(&book, "a"), &b, 500).await;
        let Err(refusal) = refused else {
            panic!("passed")
        };
        assert_eq!(
            (refusal.spent, refusal.held, refusal.estimate),
            (0, 600, 500)
        );
        assert!(refusal.resets_at_ms.is_some());
        assert_eq!(book.settle(first, 200).await.0, 200);
        let second = book.reserve(&counted(&book, "a"), &b, 500).await;
        assert!(second.is_ok(), "the settled estimate freed room");
        // Another key has its own budget.
        assert!(book.reserve(&counted(&book, "b"), &b, 1_000).await.is_ok());
    }

    #[test]
    fn thresholds_alert_once_per_period() {
        let book = BudgetBook::new(Arc::new(MemoryCounters::default()));
        let b = budget(1_000, vec![50, 90]);
        assert!(book.crossed(&key("a"), &b, 400).is_empty());
        let first: Vec<u8> = book
            .crossed(&key("a"), &b, 500)
            .iter()
            .map(|a| a.percent)
            .collect();
        assert_eq!(first, [50]);
        assert!(book.crossed(&key("a"), &b, 600).is_empty());
        let next: Vec<u8> = book
            .crossed(&key("a"), &b, 950)
            .iter()
            .map(|a| a.percent)
            .collect();
        assert_eq!(next, [90]);
        assert_eq!(book.crossed(&key("b"), &b, 950).len(), 2);
    }
}
