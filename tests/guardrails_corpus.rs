//! Precision and recall of each guardrail detector family over its labelled corpus in
//! tests/fixtures/guardrails/ (written by scripts/guardrails_corpus.py, committed): each must stay
//! above its floor, and the figures are printed (`cargo test --test guardrails_corpus -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use stockyard::modules::guard::Scanner;
use stockyard::modules::guard_injection::{InjectionConfig, InjectionScanner};
use stockyard::modules::guard_pii::{PiiConfig, PiiScanner};
use stockyard::modules::guard_policy::{PolicyConfig, PolicyScanner};
use stockyard::modules::guard_secrets::{SecretsConfig, SecretsScanner};

/// The policy the policy corpus is labelled for.
pub fn corpus_policy() -> PolicyConfig {
    let mut topics = BTreeMap::new();
    topics.insert(
        "weapons".to_string(),
        vec!["explosive", "detonator", "gunpowder", "shrapnel"]
            .into_iter()
            .map(String::from)
            .collect(),
    );
    topics.insert(
        "medical_advice".to_string(),
        vec!["diagnose", "dosage", "prescription"]
            .into_iter()
            .map(String::from)
            .collect(),
    );
    PolicyConfig {
        deny: vec!["project falcon".into(), "payroll export".into()],
        deny_regex: vec![r"(?i)\binternal[-_ ]only\b".into()],
        allow: vec!["project falcon press release".into()],
        topics,
        ..PolicyConfig::default()
    }
}

struct Score {
    precision: f64,
    recall: f64,
    misses: Vec<String>,
}

fn score(family: &str, scanner: &dyn Scanner) -> Score {
    let path = format!(
        "{}/tests/fixtures/guardrails/{family}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut tp, mut fp, mut fn_, mut positives, mut negatives) = (0, 0, 0, 0, 0);
    let mut misses = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap_or(json!(null));
        let sample = row["text"].as_str().unwrap_or_default();
        let positive = row["positive"].as_bool().unwrap_or(false);
        out.clear();
        scanner.scan(sample, &mut out);
        let flagged = !out.is_empty();
        match (positive, flagged) {
            (true, true) => tp += 1,
            (true, false) => {
                fn_ += 1;
                misses.push(format!("missed: {sample}"));
            }
            (false, true) => {
                fp += 1;
                misses.push(format!("false alarm ({}): {sample}", out[0].rule));
            }
            (false, false) => {}
        }
        if positive {
            positives += 1;
        } else {
            negatives += 1;
        }
    }
    assert!(
        positives >= 100 && negatives >= 100,
        "{family}: corpus too small"
    );
    let precision = f64::from(tp) / f64::from((tp + fp).max(1));
    let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
    println!(
        "{family:<10} positives {positives:>4} negatives {negatives:>4} precision {precision:.3} recall {recall:.3}"
    );
    Score {
        precision,
        recall,
        misses,
    }
}

fn assert_floors(family: &str, scanner: &dyn Scanner, precision: f64, recall: f64) {
    let s = score(family, scanner);
    assert!(
        s.precision >= precision && s.recall >= recall,
        "{family}: precision {:.3} (floor {precision}), recall {:.3} (floor {recall})\n{}",
        s.precision,
        s.recall,
        s.misses.join("\n")
    );
}

#[test]
fn pii_detector_meets_its_floors() {
    let scanner = PiiScanner::new(&PiiConfig::default()).expect("pii scanner");
    assert_floors("pii", &scanner, 0.95, 0.95);
}

#[test]
fn secrets_detector_meets_its_floors() {
    let scanner = SecretsScanner::new(&SecretsConfig::default()).expect("secrets scanner");
    assert_floors("secrets", &scanner, 0.95, 0.95);
}

#[test]
fn injection_heuristic_meets_its_floors() {
    let scanner = InjectionScanner::new(&InjectionConfig::default()).expect("injection scanner");
    assert_floors("injection", &scanner, 0.9, 0.9);
}

#[test]
fn policy_detector_meets_its_floors() {
    let scanner = PolicyScanner::new(&corpus_policy()).expect("policy scanner");
    assert_floors("policy", &scanner, 0.95, 0.95);
}
