//! Our counts against the reference: bpe-openai's `Tokenizer::count`, which equals tiktoken's,
//! for both vocabularies, on a fixed corpus of the texts that tend to break tokenizers and on
//! generated texts. Also the bound on long pieces, which a client controls.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::encoding::Encoding;
use super::load;
use super::merge::{self, Scratch};

fn vocabularies() -> [(
    &'static str,
    &'static Encoding,
    &'static bpe_openai::Tokenizer,
); 2] {
    [
        ("cl100k_base", load::cl100k(), bpe_openai::cl100k_base()),
        ("o200k_base", load::o200k(), bpe_openai::o200k_base()),
    ]
}

fn mismatch(text: &str) -> Option<String> {
    vocabularies()
        .into_iter()
        .find_map(|(name, ours, reference)| {
            let (ours, expected) = (ours.count(text), reference.count(text));
            (ours != expected).then(|| format!("{name}: counted {ours}, reference {expected}"))
        })
}

#[track_caller]
fn assert_counts_match(text: &str) {
    if let Some(mismatch) = mismatch(text) {
        let shown: String = text.chars().take(300).collect();
        panic!("{mismatch} for {shown:?} ({} bytes)", text.len());
    }
}

const CORPUS: &[&str] = &[
    "",
    " ",
    "The quick brown fox jumps over the lazy dog, again and again.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the \
     age of foolishness, it was the epoch of belief, it was the epoch of incredulity.",
    "I'm sure you're right; we'll see. They've said it'd be fine, hasn't it? I'M SURE THEY'LL \
     COME. She's here. Don't. O'Neil's dog. 'quoted' and ’curly’ apostrophes.",
    "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * 2).collect();\n    println!(\"{x:?}\");\n}\n",
    "def f(a, b=2, *args, **kw):\n\treturn {'a': a, \"b\": b}  # comment\n\n\n",
    "<html><body class=\"main\"><p>Hello&nbsp;world</p></body></html>",
    r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi!"}],"max_tokens":128,"temperature":0.7}"#,
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC LIMIT 50;",
    "camelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case PascalCase XMLHttpRequest",
    "https://example.com/path/to/resource?query=1&other=two#fragment /usr/local/bin//x",
    "0 1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 3.14159 -42 1e10 0x1F",
    "日本語のテキストです。中文文本，包括标点符号！한국어 텍스트도 있습니다.",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ ✓✓✓ ★☆",
    "Combining: e\u{301} a\u{308}\u{304} n\u{303} Z\u{336}\u{337}a\u{35c}l\u{489}g\u{315}o ünïcödé",
    "العربية نص مكتوب من اليمين إلى اليسار، مع أرقام ١٢٣ و 456.",
    "Ελληνικά, русский текст, עברית, हिन्दी, ไทย",
    "\n\n  \t x",
    "trailing spaces   ",
    "trailing newline\n",
    "  leading spaces",
    "\r\n\r\nwindows\r\nlines\r\n",
    "tabs\t\tand\u{a0}no-break\u{2003}em-space\u{3000}ideographic",
    "a  b   c    d     e\t\t\tf\n \n \n",
    "!!!??? ... --- *** ### $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} /// \\\\\\ |||",
    "'s 're 've 'm 'll 'd 'S 'RE 'Ve 'Ll ''s '''",
    "\u{0}\u{1}\u{7f} control \u{200b}zero\u{200d}width\u{feff}",
];

fn generated_corpus() -> Vec<String> {
    let mut texts = Vec::new();
    let digits = "98765432101234567890".repeat(3);
    for len in 1..=digits.len() {
        texts.push(digits[..len].to_owned());
        texts.push(format!("x {} y", &digits[..len]));
    }
    for (unit, times) in [
        ("=", 3000),
        (" ", 3000),
        ("\n", 500),
        ("a", 3000),
        ("ab", 1000),
        ("abc ", 500),
        ("🎉", 300),
        ("日本", 500),
        ("-_", 700),
        (" \t", 400),
        ("1", 1000),
    ] {
        texts.push(unit.repeat(times));
        texts.push(format!("start {} end", unit.repeat(times)));
    }
    texts
}

#[test]
fn counts_match_the_reference_on_the_corpus() {
    for text in CORPUS {
        assert_counts_match(text);
    }
    for text in generated_corpus() {
        assert_counts_match(&text);
    }
    // All of it at once, so that pieces meet across the texts' edges.
    assert_counts_match(&CORPUS.concat());
}

#[test]
fn counts_match_the_reference_on_concatenated_tokens() {
    // Texts made of random real tokens (cut into valid UTF-8) reach merges that prose rarely
    // does; a fixed seed keeps a failure reproducible.
    let mut rng = fastrand::Rng::with_seed(7);
    for (_, ours, reference) in vocabularies() {
        let bpe = &reference.bpe;
        for _ in 0..300 {
            let mut bytes = Vec::new();
            for _ in 0..rng.usize(1..40) {
                bytes.extend_from_slice(bpe.token_bytes(rng.u32(0..bpe.num_tokens() as u32)));
            }
            let text = String::from_utf8_lossy(&bytes);
            assert_eq!(ours.count(&text), reference.count(&*text), "{text:?}");
        }
    }
}

/// Characters by the classes the patterns tell apart, so that generated texts hit case
/// changes, contractions, digit runs and whitespace runs far more often than random Unicode.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[A-Z][a-z]{0,6}",
        "[A-Z]{1,5}",
        "[0-9]{1,7}",
        "[ \t\n\r]{1,4}",
        Just(" ".to_owned()),
        "'(s|t|re|ve|m|ll|d|S|T|RE|VE|M|LL|D)",
        "[!-/:-@\\[-`{-~]{1,4}",
        "[\u{4e00}-\u{4e80}\u{3040}-\u{309f}]{1,4}",
        "[\u{1f600}-\u{1f64f}\u{2600}-\u{26ff}]{1,3}",
        "[\u{300}-\u{36f}]{1,2}",
        "[\u{600}-\u{6ff}]{1,5}",
        "\\PC{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn counts_match_the_reference_on_generated_texts(
        parts in proptest::collection::vec(fragment(), 0..40)
    ) {
        let text = parts.concat();
        prop_assert_eq!(mismatch(&text), None, "{:?}", text);
    }

    #[test]
    fn counts_match_the_reference_on_random_unicode(text in "\\PC{0,120}") {
        prop_assert_eq!(mismatch(&text), None, "{:?}", text);
    }

    /// Single pieces of random bytes, short (both ways of merging) and long (the heap), against
    /// the reference's count of the same bytes without pre-tokenizing.
    #[test]
    fn piece_counts_match_the_reference_on_random_bytes(
        bytes in proptest::collection::vec(prop_oneof![any::<u8>(), b'a'..=b'e', Just(b' ')], 2..300)
    ) {
        for (name, ours, reference) in vocabularies() {
            let expected = reference.bpe.count(&bytes);
            let counted = merge::count_piece(ours.vocab(), &bytes, &mut Scratch::default());
            prop_assert_eq!(counted, expected, "{}: {:?}", name, bytes);
            if bytes.len() <= 32 {
                let (scan, heap) = merge::tests::by_scan_and_by_heap(ours.vocab(), &bytes);
                prop_assert_eq!((scan, heap), (expected, expected), "{}: {:?}", name, bytes);
            }
        }
    }

    #[test]
    fn scan_and_heap_agree_on_the_toy_vocabulary(
        bytes in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c'), Just(b'x')], 2..=32)
    ) {
        let (scan, heap) = merge::tests::by_scan_and_by_heap(&merge::tests::toy(), &bytes);
        prop_assert_eq!(scan, heap, "{:?}", bytes);
    }
}

/// 100 KB pieces are what a quadratic merge would choke on, and a client can send them. The
/// limit is for debug builds; a release build takes a few milliseconds.
#[test]
fn long_pieces_are_counted_quickly() {
    const LIMIT: Duration = Duration::from_secs(2);
    const PUNCTUATION: &[u8] = b"!\"#$%&()*+,-./:;<=>?@[]^_`{|}~";
    let mut rng = fastrand::Rng::with_seed(11);
    let punctuation: String = (0..100_000)
        .map(|_| char::from(PUNCTUATION[rng.usize(..PUNCTUATION.len())]))
        .collect();
    let texts = [
        "=".repeat(100_000),
        " ".repeat(100_000),
        "a".repeat(100_000),
        punctuation,
    ];
    let random_bytes: Vec<u8> = (0..100_000).map(|_| rng.u8(..)).collect();
    for (name, ours, _) in vocabularies() {
        for text in &texts {
            let started = Instant::now();
            assert!(ours.count(text) > 0);
            let took = started.elapsed();
            let shown = &text[..10];
            assert!(took < LIMIT, "{name}: {took:?} for 100 KB of {shown:?}...");
        }
        // One piece of random bytes, as no text could split it, straight to the merge.
        let started = Instant::now();
        assert!(merge::count_piece(ours.vocab(), &random_bytes, &mut Scratch::default()) > 0);
        let took = started.elapsed();
        assert!(took < LIMIT, "{name}: {took:?} for 100 KB of random bytes");
    }
}

#[test]
fn long_pieces_match_the_reference() {
    for text in ["=".repeat(20_000), " ".repeat(20_000), "ab".repeat(10_000)] {
        assert_counts_match(&text);
    }
}
