//! What `keys` and `teams` share: limits from flags (dollars to integer nano-dollars, parsed as
//! a decimal string, never through a float), durations, metadata pairs, and the way a new key is
//! shown once.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::CliError;
use super::args::{ClearField, LimitArgs, PeriodArg};
use super::change::Applied;
use crate::admin::keys::LimitsPatch;
use crate::request::grant::{Budget, Limits, Period};

/// `12.50` US dollars as nano-dollars: digits, an optional point and at most nine decimals.
pub fn parse_usd(text: &str) -> Result<i64, CliError> {
    let bad = || {
        CliError::Failed(format!(
            "--budget: {text:?} is not an amount of dollars like 25 or 12.50 (at most 9 decimals)"
        ))
    };
    let text = text.trim().trim_start_matches('$');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 9
    {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let fraction: i64 = format!("{fraction:0<9}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(fraction))
        .ok_or_else(bad)
}

fn period(p: PeriodArg) -> Period {
    match p {
        PeriodArg::Day => Period::Day,
        PeriodArg::Week => Period::Week,
        PeriodArg::Month => Period::Month,
        PeriodArg::Total => Period::Total,
    }
}

fn budget(args: &LimitArgs) -> Result<Option<Budget>, CliError> {
    match (&args.budget, args.period) {
        (Some(usd), Some(p)) => Ok(Some(Budget {
            limit_nanos: parse_usd(usd)?,
            period: period(p),
            alert_percents: Vec::new(),
        })),
        (Some(_), None) => Err(CliError::Failed(
            "--budget needs --period day|week|month|total".into(),
        )),
        (None, _) => Ok(None),
    }
}

/// The limits the flags give, for `create`.
pub fn limits_from(args: &LimitArgs) -> Result<Limits, CliError> {
    Ok(Limits {
        budget: budget(args)?,
        rpm: args.rpm,
        tpm: args.tpm,
        models: args.models.clone().unwrap_or_default(),
    })
}

/// The changes the flags give, for `update`: flags set, `--clear` removes.
pub fn patch_from(args: &LimitArgs, clear: &[ClearField]) -> Result<LimitsPatch, CliError> {
    let mut patch = LimitsPatch {
        budget: budget(args)?.map(Some),
        rpm: args.rpm.map(Some),
        tpm: args.tpm.map(Some),
        models: args.models.clone().map(Some),
    };
    for field in clear {
        match field {
            ClearField::Budget => patch.budget = Some(None),
            ClearField::Rpm => patch.rpm = Some(None),
            ClearField::Tpm => patch.tpm = Some(None),
            ClearField::Models => patch.models = Some(None),
            _ => {}
        }
    }
    Ok(patch)
}

/// `90d`, `12h`, `30m`, `45s` from now, as an instant in milliseconds.
pub fn expires_at(text: &str) -> Result<i64, CliError> {
    let bad = || {
        CliError::Failed(format!(
            "--expires: {text:?} is not a duration like 90d, 12h or 30m"
        ))
    };
    let ms = crate::admin::spend::duration_ms(text).ok_or_else(bad)?;
    if ms <= 0 {
        return Err(bad());
    }
    Ok(crate::store::now_ms().saturating_add(ms))
}

/// `KEY=VALUE` pairs.
pub fn metadata(pairs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| CliError::Failed(format!("--metadata: {pair:?} is not KEY=VALUE")))
        })
        .collect()
}

/// Prints a key the change issued, once: as JSON (`record` with `key` and `ledger_seq` added),
/// or as lines that say it will not be shown again.
pub fn print_issued(applied: &Applied, record: &Value, what: &str, json: bool) {
    let key = applied.key.as_ref().map(|k| k.expose().as_str());
    if json {
        let mut out = record.clone();
        out["key"] = json!(key);
        out["ledger_seq"] = json!(applied.seq);
        println!("{out}");
        return;
    }
    println!(
        "{what} {} ({}); ledger entry {}",
        record["id"].as_str().unwrap_or_default(),
        record["name"].as_str().unwrap_or_default(),
        applied.seq
    );
    println!("key: {}", key.unwrap_or_default());
    println!(
        "the key is shown this once: store it now (only its hash and the prefix {} are kept)",
        record["prefix"].as_str().unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_parse_to_nanos_without_floats() {
        assert_eq!(parse_usd("12.50").ok(), Some(12_500_000_000));
        assert_eq!(parse_usd("25").ok(), Some(25_000_000_000));
        assert_eq!(parse_usd("0.000000001").ok(), Some(1));
        assert_eq!(parse_usd(".5").ok(), Some(500_000_000));
        assert_eq!(parse_usd("$3").ok(), Some(3_000_000_000));
        for bad in [
            "",
            ".",
            "1.0000000001",
            "-1",
            "1e3",
            "abc",
            "99999999999999",
        ] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_and_durations_parse() {
        let m = metadata(&["owner=ana".into(), "env=a=b".into()]).unwrap_or_default();
        assert_eq!(m.get("env").map(String::as_str), Some("a=b"));
        assert!(metadata(&["novalue".into()]).is_err());
        let now = crate::store::now_ms();
        let at = expires_at("90d").unwrap_or_default();
        assert!(at >= now + 90 * 86_400_000);
        assert!(expires_at("0d").is_err() && expires_at("soon").is_err());
    }
}
