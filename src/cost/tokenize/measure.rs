//! Measurements of the tokenizer against the reference (bpe-openai), run by hand in a release
//! build, one test per process so that each sees only its own memory:
//!
//! ```text
//! cargo test --release --lib cost::tokenize::measure::memory_ours -- --ignored --nocapture
//! cargo test --release --lib cost::tokenize::measure::memory_reference -- --ignored --nocapture
//! cargo test --release --lib cost::tokenize::measure::speed -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use super::load;
use super::merge::{self, Scratch};

/// English prose with some code and tables in it: our own README.
const PROSE: &str = include_str!("../../../README.md");

/// A line of /proc/self/status in kB, such as `VmRSS` (resident now) or `VmHWM` (its peak).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn report_memory(name: &str, load: impl FnOnce(), count: impl Fn(&str) -> usize + Sync) {
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    load();
    let took = started.elapsed();
    let loaded = status_kb("VmRSS:");
    // Counting from four threads at once: each thread's regex cache is part of the cost.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert!(count(PROSE) > 0);
                }
            });
        }
    });
    let counted = status_kb("VmRSS:");
    println!(
        "{name}: o200k_base loaded in {took:?}; VmRSS {before} kB before, {loaded} kB loaded \
         (+{} kB), {counted} kB after counting {} KB on 4 threads (+{} kB); VmHWM {} kB",
        loaded - before,
        PROSE.len() * 20 / 1024,
        counted - before,
        status_kb("VmHWM:"),
    );
}

#[test]
#[ignore = "a measurement; see the module doc"]
fn memory_ours() {
    report_memory(
        "ours",
        || assert_eq!(load::o200k().count("warm"), 1),
        |text| load::o200k().count(text),
    );
    println!(
        "ours: of which the hash table and token starts take {} kB",
        load::o200k().vocab().heap_bytes() / 1024
    );
}

#[test]
#[ignore = "a measurement; see the module doc"]
fn memory_reference() {
    report_memory(
        "bpe-openai",
        || assert_eq!(bpe_openai::o200k_base().count("warm"), 1),
        |text| bpe_openai::o200k_base().count(text),
    );
}

/// Nanoseconds per KB of `text` for `count`, the best of several rounds.
fn ns_per_kb(text: &str, count: impl Fn(&str) -> usize) -> f64 {
    assert!(count(text) > 0);
    let mut best = Duration::MAX;
    for _ in 0..10 {
        let started = Instant::now();
        std::hint::black_box(count(std::hint::black_box(text)));
        best = best.min(started.elapsed());
    }
    best.as_nanos() as f64 / (text.len() as f64 / 1024.0)
}

#[test]
#[ignore = "a measurement; see the module doc"]
fn speed() {
    let references = [
        ("cl100k_base", load::cl100k(), bpe_openai::cl100k_base()),
        ("o200k_base", load::o200k(), bpe_openai::o200k_base()),
    ];
    let long_runs = ["=".repeat(100_000), " ".repeat(100_000)];
    for (name, ours, reference) in references {
        assert_eq!(ours.count(PROSE), reference.count(PROSE));
        println!(
            "{name}: prose, ours {:.0} ns/KB, bpe-openai {:.0} ns/KB",
            ns_per_kb(PROSE, |text| ours.count(text)),
            ns_per_kb(PROSE, |text| reference.count(text)),
        );
        for text in &long_runs {
            let shown = &text[..1];
            println!(
                "{name}: 100 KB of {shown:?}, ours {:.0} ns/KB, bpe-openai {:.0} ns/KB",
                ns_per_kb(text, |text| ours.count(text)),
                ns_per_kb(text, |text| reference.count(text)),
            );
        }
        let mut rng = fastrand::Rng::with_seed(3);
        let random_bytes: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
        let started = Instant::now();
        let count = merge::count_piece(ours.vocab(), &random_bytes, &mut Scratch::default());
        println!(
            "{name}: one piece of 100 KB of random bytes, ours {:?} ({count} tokens), bpe-openai {:?}",
            started.elapsed(),
            {
                let started = Instant::now();
                assert_eq!(reference.bpe.count(&random_bytes), count);
                started.elapsed()
            }
        );
    }
}
