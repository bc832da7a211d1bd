//! Alerts the `alerts` module fired, and each rule's last firing (its cool-down survives a
//! restart). The writer appends ([`AlertWrites`]); `stockyard alerts` and the module read
//! ([`AlertStore`]).

use serde::Serialize;

use super::StoreError;

#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertRecord {
    pub ts_ms: i64,
    pub rule: String,
    pub kind: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    /// The webhook answered 2xx (false with no webhook configured).
    pub delivered: bool,
}

/// Alert reads. Methods block; async callers use `spawn_blocking`.
pub trait AlertStore: Send + Sync {
    /// Newest first, at most `limit`, fired at or after `since_ms`.
    fn alerts(&self, since_ms: i64, limit: usize) -> Result<Vec<AlertRecord>, StoreError>;
    /// Each rule's last firing, epoch ms.
    fn alert_state(&self) -> Result<Vec<(String, i64)>, StoreError>;
}

/// Called only by the writer thread.
pub trait AlertWrites {
    /// Appends the alert and moves its rule's last firing, in one transaction.
    fn record_alert(&mut self, alert: &AlertRecord) -> Result<(), StoreError>;
}
