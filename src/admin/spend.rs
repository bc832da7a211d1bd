//! `GET /admin/spend?by=key|team|user|model|provider|day|tag&since=7d`: sums from the daily spend
//! rollups, as `stockyard spend` prints them, plus the budget alerts of the same span.

use serde_json::{Value, json};

use crate::request::ApiError;
use crate::store::{SpendBy, Store, now_ms};

/// `90m`, `24h`, `7d`, `30s` as milliseconds (also what `keys create --expires` takes).
pub fn duration_ms(text: &str) -> Option<i64> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n.saturating_mul(unit_ms))
}

/// A report's `since`, as milliseconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    duration_ms(text)
        .ok_or_else(|| format!("since: {text:?} is not a duration like 90m, 24h or 7d"))
}

/// The report for `by` (default `model`) since `since` (default `24h`), from the query string.
pub async fn report(
    store: &Store,
    by: Option<&str>,
    since: Option<&str>,
) -> Result<Value, ApiError> {
    let invalid = |param: &str, message: String| ApiError::InvalidField {
        param: Some(param.into()),
        message,
    };
    let by_text = by.unwrap_or("model");
    let by = SpendBy::parse(by_text).ok_or_else(|| {
        invalid(
            "by",
            format!("by: {by_text:?} is not one of key, team, user, model, provider, day, tag"),
        )
    })?;
    let since_ms =
        now_ms() - parse_since(since.unwrap_or("24h")).map_err(|m| invalid("since", m))?;
    let spend = store.spend.clone();
    let found = tokio::task::spawn_blocking(move || {
        let rows = spend.spend(by, since_ms)?;
        let alerts = spend.budget_alerts(crate::store::day_start(since_ms))?;
        Ok::<_, crate::store::StoreError>((rows, alerts))
    })
    .await;
    let (rows, alerts) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return Err(ApiError::Internal {
                message: e.to_string(),
            });
        }
        Err(e) => {
            return Err(ApiError::Internal {
                message: e.to_string(),
            });
        }
    };
    let total: i64 = rows.iter().map(|r| r.cost_nanos).sum();
    let saved: i64 = rows.iter().map(|r| r.saved_nanos).sum();
    Ok(json!({
        "total_saved_nanos": saved,
        "by": by_text,
        "since_ms": crate::store::day_start(since_ms),
        "rows": rows,
        "total_cost_nanos": total,
        "alerts": alerts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_since("24h").ok(), Some(86_400_000));
        assert_eq!(parse_since("90m").ok(), Some(5_400_000));
        assert_eq!(parse_since("7d").ok(), Some(7 * 86_400_000));
        assert!(parse_since("soon").is_err());
    }
}
