//! The official Python SDKs (`openai`, `anthropic`) against Stockyard, unchanged but for base URL
//! and key: `tests/sdk/e2e.py` runs in a virtual environment under `target/sdk-venv`, holding the
//! versions pinned in `tests/sdk/requirements.txt`, against the proxy with `openai` and
//! `anthropic` pointing at two mock upstreams. Then the trace rows must show every request the
//! script made, in its order, with the provider that served it. `operations.py`, `batches.py`
//! and `bedrock.py` (images and rerank on Bedrock models) run the same way against one mock.
//!
//! Skipped, with the reason printed, when `python3` is missing or can't make a virtual environment.
//! The venv is reused while it holds the pinned versions, so only the first run downloads from
//! PyPI; a failed `pip install` fails the test. Every child process runs under a time limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Harness;
use common::python::run;
use mock_upstream::MockUpstream;

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

const CHAT: &str = "chat_completions";
const MESSAGES: &str = "messages";
const RESPONSES: &str = "responses";
const GPT: &str = "gpt-4o-mini";
const CLAUDE: &str = "claude-sonnet-4-5";

/// One trace row a request of the script must leave.
struct Expected {
    endpoint: &'static str,
    model: &'static str,
    /// `None`: refused before a provider was chosen.
    provider: Option<&'static str>,
    stream: bool,
    status: u16,
}

const fn served(
    endpoint: &'static str,
    model: &'static str,
    provider: &'static str,
    stream: bool,
) -> Expected {
    Expected {
        endpoint,
        model,
        provider: Some(provider),
        stream,
        status: 200,
    }
}

const fn unknown_model(endpoint: &'static str) -> Expected {
    Expected {
        endpoint,
        model: "no-such-model",
        provider: None,
        stream: false,
        status: 404,
    }
}

/// The client key both SDKs are given.
const CLIENT_KEY: &str = "sk-stockyard-sdk-client-0123";

/// A request a module (tests/common/test_modules.rs, `test_canned`) answered in place of a
/// provider.
const fn canned(endpoint: &'static str, stream: bool) -> Expected {
    Expected {
        endpoint,
        model: common::test_modules::CANNED_MODEL,
        provider: None,
        stream,
        status: 200,
    }
}

/// The trace rows of e2e.py's requests, in its order. `count_tokens` and `responses.retrieve` are
/// answered locally and leave none, and neither do refused keys.
const EXPECTED_TRACES: &[Expected] = &[
    // 1-4: the OpenAI SDK calling an OpenAI model: chat, stream, tool call (twice), embeddings.
    served(CHAT, GPT, "openai", false),
    served(CHAT, GPT, "openai", true),
    served(CHAT, GPT, "openai", false),
    served(CHAT, GPT, "openai", true),
    served("embeddings", "text-embedding-3-small", "openai", false),
    // 5: the OpenAI SDK calling Claude.
    served(CHAT, CLAUDE, "anthropic", false),
    served(CHAT, CLAUDE, "anthropic", true),
    // 6: the Anthropic SDK calling Claude (create, stream, tool use, thinking).
    served(MESSAGES, CLAUDE, "anthropic", false),
    served(MESSAGES, CLAUDE, "anthropic", true),
    served(MESSAGES, CLAUDE, "anthropic", false),
    served(MESSAGES, CLAUDE, "anthropic", false),
    // 7: the Anthropic SDK calling an OpenAI model.
    served(MESSAGES, GPT, "openai", false),
    served(MESSAGES, GPT, "openai", true),
    // 8: the OpenAI SDK's Responses API calling an OpenAI model: create, stream, and a second
    // turn by previous_response_id (then retrieve, untraced).
    served(RESPONSES, GPT, "openai", false),
    served(RESPONSES, GPT, "openai", true),
    served(RESPONSES, GPT, "openai", false),
    // 9: the Responses API calling Claude: a forced function call, then its output sent back.
    served(RESPONSES, CLAUDE, "anthropic", false),
    served(RESPONSES, CLAUDE, "anthropic", false),
    // 10: unknown models.
    unknown_model(CHAT),
    unknown_model(MESSAGES),
    // 11: a module's canned canonical answer, in each SDK's own format, streamed and not.
    canned(CHAT, false),
    canned(CHAT, true),
    canned(RESPONSES, true),
    canned(MESSAGES, false),
    canned(MESSAGES, true),
];

/// Runs `tests/sdk/{name}` with the OpenAI SDK pointed at a proxy (client key [`CLIENT_KEY`],
/// the default mock behind it) and asserts it succeeded; `None` when the venv can't be made (the
/// reason printed), so the caller skips.
async fn run_script_against_one_mock(name: &'static str) -> Option<Harness> {
    run_script_with(name, |_| String::new()).await
}

/// Like [`run_script_against_one_mock`], with more config (given the mock) after the client key.
async fn run_script_with(
    name: &'static str,
    extra: impl FnOnce(&MockUpstream) -> String,
) -> Option<Harness> {
    let python = match tokio::task::spawn_blocking(prepare_venv).await.unwrap() {
        Ok(python) => python,
        Err(reason) => {
            eprintln!("skipping SDK test: {reason}");
            return None;
        }
    };
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[auth]\nkeys = [\"{CLIENT_KEY}\"]\n{}", extra(&mock));
    let config = common::config_for(&toml, &mock.base_url(), &dir);
    let h = Harness::start_on(config, mock, dir).await;
    let script = manifest_dir().join("tests/sdk").join(name);
    let url = h.server.url();
    let ran = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .env("STOCKYARD_URL", url)
            .env("STOCKYARD_CLIENT_KEY", CLIENT_KEY)
            .env("PYTHONUNBUFFERED", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        run(&mut command, SCRIPT_TIMEOUT)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("could not run tests/sdk/{name}: {e}"));
    assert!(ran.success(), "tests/sdk/{name} failed: {ran}");
    println!("{}", ran.stdout.trim_end());
    Some(h)
}

/// The trace rows of operations.py's requests, in its order, and what each cost in nano-dollars
/// (`None`: refused before a provider was chosen).
const OPERATION_TRACES: &[(&str, &str, u16, Option<i64>)] = &[
    // hd 1024x1024 dall-e-3: $0.08.
    ("images_generations", "dall-e-3", 200, Some(80_000_000)),
    // Two 512x512 dall-e-2 edits: $0.018 each.
    ("images_edits", "dall-e-2", 200, Some(36_000_000)),
    // tts-1: 22 characters at $15 / M.
    ("audio_speech", "tts-1", 200, Some(22 * 15_000)),
    // whisper-1: 2 s, then 1 s, at $0.0001 a second.
    ("audio_transcriptions", "whisper-1", 200, Some(200_000)),
    ("audio_translations", "whisper-1", 200, Some(100_000)),
    ("moderations", "omni-moderation-latest", 200, Some(0)),
    ("generate_content", GPT, 200, None),
    ("generate_content", GPT, 200, None),
    ("generate_content", GPT, 400, None),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_cover_images_audio_moderations_and_geminis_format() {
    let Some(h) = run_script_against_one_mock("operations.py").await else {
        return;
    };

    let rows = h.traces(OPERATION_TRACES.len()).await;
    assert_eq!(h.trace_count_settled().await, OPERATION_TRACES.len() as i64);
    for (i, (row, (endpoint, model, status, cost))) in rows.iter().zip(OPERATION_TRACES).enumerate()
    {
        assert_eq!(
            (
                row.endpoint.as_str(),
                row.requested_model.as_str(),
                row.status
            ),
            (*endpoint, *model, *status),
            "trace row {i}"
        );
        if *status == 200 {
            assert_eq!(row.provider.as_deref(), Some("openai"), "row {i}");
            assert!(row.price_known, "row {i}: no price: {row:?}");
            match cost {
                Some(cost) => assert_eq!(row.cost_nanos, *cost, "row {i}: {row:?}"),
                None => assert!(
                    row.cost_nanos > 0 && !row.usage_estimated,
                    "row {i}: {row:?}"
                ),
            }
        }
    }
}

/// The trace rows of bedrock.py's calls, in order: status and cost in nano-dollars.
const BEDROCK_TRACES: &[(&str, u16, i64)] = &[
    // Two premium Nova Canvas images up to 1024x1024: $0.06 each.
    ("images_generations", 200, 120_000_000),
    // A URL asked of Bedrock: refused before the call.
    ("images_generations", 400, 0),
    // One standard Nova Canvas inpainting: $0.04.
    ("images_edits", 200, 40_000_000),
    // One query of Cohere Rerank 3.5 on Bedrock: $0.002.
    ("rerank", 200, 2_000_000),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_makes_images_and_reranks_on_bedrock() {
    let Some(h) = run_script_with("bedrock.py", |mock| {
        format!(
            "[providers.bedrock]\nkind = \"bedrock\"\nbase_url = \"{}\"\nregion = \"us-east-1\"\n\
             access_key_id_env = \"STOCKYARD_TEST_AWS_KEY\"\nsecret_access_key_env = \"STOCKYARD_TEST_AWS_SECRET\"\n",
            mock.bedrock_base_url()
        )
    })
    .await
    else {
        return;
    };
    let rows = h.traces(BEDROCK_TRACES.len()).await;
    assert_eq!(h.trace_count_settled().await, BEDROCK_TRACES.len() as i64);
    for (i, (row, (endpoint, status, cost))) in rows.iter().zip(BEDROCK_TRACES).enumerate() {
        assert_eq!(
            (row.endpoint.as_str(), row.status),
            (*endpoint, *status),
            "trace row {i}"
        );
        assert_eq!(row.provider.as_deref(), Some("bedrock"), "row {i}");
        if *status == 200 {
            assert_eq!(row.cost_nanos, *cost, "row {i}: {row:?}");
            assert!(row.price_known, "row {i}: {row:?}");
        }
    }
    let invokes = h
        .mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/invoke"))
        .count();
    assert_eq!(invokes, 3, "the refused request went nowhere");
}

/// The trace rows of batches.py's calls, in order, then the two requests of its batch, priced
/// when its output is fetched (gpt-4o-mini at half price).
const FILE_AND_BATCH_CALLS: &[&str] = &[
    "files", "files", "files", "files", "batches", "batches", "batches", "files", "batches",
    "files",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_covers_files_and_batches() {
    let Some(h) = run_script_against_one_mock("batches.py").await else {
        return;
    };

    let total = FILE_AND_BATCH_CALLS.len() + 2;
    let rows = h.traces(total).await;
    assert_eq!(h.trace_count_settled().await, total as i64);
    let (calls, priced): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.tags.is_none());
    let endpoints: Vec<&str> = calls.iter().map(|r| r.endpoint.as_str()).collect();
    assert_eq!(endpoints, FILE_AND_BATCH_CALLS);
    assert!(calls.iter().all(|r| r.status == 200 && r.cost_nanos == 0));
    assert_eq!(priced.len(), 2);
    for row in priced {
        assert_eq!(row.requested_model, GPT);
        assert_eq!(row.cost_nanos, 135_000, "{row:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdks_work_unchanged_against_stockyard() {
    let python = match tokio::task::spawn_blocking(prepare_venv).await.unwrap() {
        Ok(python) => python,
        Err(reason) => {
            eprintln!("skipping SDK test: {reason}");
            return;
        }
    };

    // `openai` at one mock (as `Harness::start_with` does), `anthropic` at another.
    let claude = MockUpstream::start().await.unwrap();
    let openai = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // With a client key, so each SDK authenticates its own way (OpenAI's as a bearer token,
    // Anthropic's in `x-api-key`).
    let toml = format!(
        "[auth]\nkeys = [\"{CLIENT_KEY}\"]\n[providers.anthropic]\nbase_url = \"{}\"\napi_key = \"sk-ant-test-0123456789\"\n",
        claude.base_url()
    );
    let config = common::config_for(&toml, &openai.base_url(), &dir);
    let h = Harness::start_on_with(config, openai, dir, &[&common::test_modules::CANNED]).await;

    let script = manifest_dir().join("tests/sdk/e2e.py");
    let url = h.server.url();
    let ran = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .env("STOCKYARD_URL", url)
            .env("STOCKYARD_CLIENT_KEY", CLIENT_KEY)
            .env("PYTHONUNBUFFERED", "1")
            // An HTTP proxy from the environment must not sit between the SDKs and Stockyard.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        run(&mut command, SCRIPT_TIMEOUT)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("could not run tests/sdk/e2e.py: {e}"));
    assert!(ran.success(), "tests/sdk/e2e.py failed: {ran}");
    println!("{}", ran.stdout.trim_end());

    let rows = h.traces(EXPECTED_TRACES.len()).await;
    let settled = h.trace_count_settled().await;
    assert_eq!(
        settled,
        EXPECTED_TRACES.len() as i64,
        "trace rows after the script; the newest: {:#?}",
        rows.iter()
            .map(|r| (&r.endpoint, &r.requested_model, &r.provider, r.status))
            .collect::<Vec<_>>()
    );
    for (i, (row, want)) in rows.iter().zip(EXPECTED_TRACES).enumerate() {
        assert_eq!(
            (
                row.endpoint.as_str(),
                row.requested_model.as_str(),
                row.provider.as_deref(),
                row.stream,
                row.status,
            ),
            (
                want.endpoint,
                want.model,
                want.provider,
                want.stream,
                want.status
            ),
            "trace row {i} (request {} of the script): (endpoint, model, provider, stream, status)",
            i + 1
        );
        if want.status == 200 {
            assert!(row.tokens.prompt > 0, "row {i}: no prompt tokens: {row:?}");
            // Embeddings have no completion side.
            if want.endpoint != "embeddings" {
                assert!(
                    row.tokens.completion > 0,
                    "row {i}: no completion tokens: {row:?}"
                );
            }
            assert!(
                !row.usage_estimated,
                "row {i}: the upstream's usage was lost and estimated: {row:?}"
            );
        }
    }
    let served_by = |p: &str| {
        EXPECTED_TRACES
            .iter()
            .filter(|e| e.provider == Some(p))
            .count()
    };
    assert_eq!(h.mock.request_count(), served_by("openai"), "openai mock");
    assert_eq!(
        claude.request_count(),
        served_by("anthropic"),
        "claude mock"
    );
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's interpreter with the pinned SDKs installed, or why the test can't run here.
///
/// # Panics
///
/// When `pip install` fails or times out: with a working Python, that is a failure to report
/// (no network, a bad pin), not a reason to skip.
fn prepare_venv() -> Result<PathBuf, String> {
    // The tests of this file run at once: one of them installs, the other waits.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    common::python::venv("sdk-venv", "tests/sdk/requirements.txt")
}
