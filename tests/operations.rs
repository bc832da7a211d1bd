//! Images, audio, moderations and rerank over real sockets against the mock upstream: bodies
//! (JSON and multipart) reach the provider as the client sent them (model aside), answers come
//! back as they came (streamed audio bytes included), and each request is traced and priced
//! from the price table's units (per image, per second, per character, per query).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Harness;
use http_body_util::Full;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};

/// A WAV file of `seconds` at 32,000 bytes a second (16 kHz, 16-bit mono), silent.
fn wav(seconds: u32) -> Vec<u8> {
    let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
    wav.resize(28, 0);
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.resize(44 + 32_000 * seconds as usize, 0);
    wav
}

/// A multipart body of text `fields` and one file part.
fn form(
    fields: &[(&str, &str)],
    file_field: &str,
    filename: &str,
    file: &[u8],
) -> (String, Vec<u8>) {
    let boundary = "stockyard-test-boundary-7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts raw bytes with a content type; status, content type and body.
async fn post_bytes(
    h: &Harness,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Bytes) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}{path}", h.client.base))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, ct, body)
}

#[tokio::test]
async fn image_generations_pass_through_and_are_priced_per_image_by_size_and_quality() {
    let h = Harness::start().await;
    let body = json!({"model": "dall-e-3", "prompt": "a red barn", "n": 2,
        "size": "1792x1024", "quality": "hd", "response_format": "url", "style": "vivid"});
    let answer = h
        .client
        .post("/v1/images/generations", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["data"].as_array().unwrap().len(), 2);
    assert!(
        json["data"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // The body went upstream as sent, unknown fields included.
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1/images/generations");
    assert_eq!(sent.body["style"], "vivid");
    assert_eq!(
        sent.header("authorization"),
        Some(&*format!("Bearer {}", common::PROVIDER_KEY))
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "images_generations");
    assert_eq!(trace.provider.as_deref(), Some("openai"));
    // hd 1792x1024 dall-e-3: $0.12 an image.
    assert_eq!(trace.cost_nanos, 2 * 120_000_000);
    assert!(trace.price_known);
}

#[tokio::test]
async fn gpt_image_is_priced_from_its_token_usage() {
    let h = Harness::start().await;
    let body = json!({"model": "gpt-image-1", "prompt": "three word prompt"});
    let answer = h
        .client
        .post("/v1/images/generations", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.json()["data"][0]["b64_json"].is_string());
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.tokens.prompt, 3);
    assert_eq!(trace.tokens.completion, mock_upstream::IMAGE_OUTPUT_TOKENS);
    // $5 / M input, $40 / M output.
    assert_eq!(trace.cost_nanos, 3 * 5_000 + 272 * 40_000);
    assert!(trace.price_known);
}

#[tokio::test]
async fn speech_streams_its_bytes_as_they_arrive_and_is_priced_per_character() {
    let h = Harness::start().await;
    h.mock.push(Behavior {
        chunk_delay_ms: 150,
        ..Behavior::default()
    });
    let input = "Hello from the gateway";
    let body = json!({"model": "tts-1", "input": input, "voice": "alloy"});
    let response = h
        .client
        .send(Method::POST, "/v1/audio/speech", &body.to_string(), &[])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    let (frames, error) = common::read_frames(response, Duration::from_secs(5)).await;
    assert!(error.is_none(), "{error:?}");
    let all: Vec<u8> = frames.iter().flat_map(|(_, b)| b.to_vec()).collect();
    assert_eq!(
        all,
        [b"ID3".to_vec(), input.repeat(3).into_bytes()].concat()
    );
    // Streamed, not buffered: the first bytes came well before the last.
    assert!(frames.len() >= 3, "{} frames", frames.len());
    assert!(frames.last().unwrap().0 - frames[0].0 >= Duration::from_millis(250));
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "audio_speech");
    assert_eq!(trace.status, 200);
    // tts-1: $15 / M characters.
    assert_eq!(trace.cost_nanos, input.chars().count() as i64 * 15_000);
    assert!(trace.price_known);
    assert_eq!(trace.bytes_out, (3 + input.len() * 3) as i64);
}

#[tokio::test]
async fn transcriptions_forward_the_multipart_body_as_is_and_price_the_seconds_heard() {
    let h = Harness::start().await;
    let audio = wav(2);
    let (ct, body) = form(
        &[("model", "whisper-1"), ("language", "en")],
        "file",
        "talk.wav",
        &audio,
    );
    let (status, _, answer) = post_bytes(&h, "/v1/audio/transcriptions", &ct, body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(
        answer["text"],
        format!("heard talk.wav ({} bytes)", audio.len())
    );
    let sent = &h.mock.requests()[0];
    assert_eq!(
        sent.raw_body.as_ref(),
        body.as_slice(),
        "multipart body changed on the way"
    );
    assert_eq!(sent.header("content-type"), Some(ct.as_str()));
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "audio_transcriptions");
    // whisper-1: $0.0001 a second, 2 s.
    assert_eq!(trace.cost_nanos, 200_000);
    assert!(trace.price_known);
}

#[tokio::test]
async fn a_streamed_transcription_passes_its_events_through_and_is_priced_from_the_last() {
    let h = Harness::start().await;
    let (ct, body) = form(
        &[("model", "gpt-4o-transcribe"), ("stream", "true")],
        "file",
        "talk.wav",
        &wav(1),
    );
    let (status, content_type, answer) =
        post_bytes(&h, "/v1/audio/transcriptions", &ct, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let events: Vec<Value> = common::sse_data(&String::from_utf8_lossy(&answer))
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events.len() > 2, "{events:?}");
    assert_eq!(events[0]["type"], "transcript.text.delta");
    assert_eq!(events.last().unwrap()["type"], "transcript.text.done");
    let trace = &h.traces(1).await[0];
    let (input, output) = mock_upstream::TRANSCRIPTION_STREAM_USAGE;
    assert_eq!(
        (trace.tokens.prompt, trace.tokens.completion),
        (input, output)
    );
    // gpt-4o-transcribe: 300 x $2.50/M + 40 x $10/M.
    assert_eq!(trace.cost_nanos, 1_150_000);
    assert!(trace.price_known);
}

#[tokio::test]
async fn a_plain_text_translation_is_timed_from_the_upload_and_kept_as_text() {
    let h = Harness::start().await;
    let audio = wav(3);
    let (ct, body) = form(
        &[("model", "whisper-1"), ("response_format", "text")],
        "file",
        "a.wav",
        &audio,
    );
    let (status, content_type, answer) = post_bytes(&h, "/v1/audio/translations", &ct, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(
        answer.as_ref(),
        format!("heard a.wav ({} bytes)", audio.len()).as_bytes()
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "audio_translations");
    assert_eq!(trace.cost_nanos, 300_000);
}

#[tokio::test]
async fn an_aliased_model_is_renamed_inside_the_multipart_body() {
    let h =
        Harness::start_with("[[models]]\nname = \"ears\"\ntarget = \"openai/whisper-1\"\n").await;
    let (ct, body) = form(&[("model", "ears")], "file", "a.wav", &wav(1));
    let (status, _, answer) = post_bytes(&h, "/v1/audio/transcriptions", &ct, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let sent = String::from_utf8_lossy(&h.mock.requests()[0].raw_body).into_owned();
    assert!(
        sent.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"),
        "{sent}"
    );
    assert!(!sent.contains("ears"));
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.requested_model, "ears");
    assert_eq!(trace.upstream_model.as_deref(), Some("whisper-1"));
    assert_eq!(trace.cost_nanos, 100_000);
}

#[tokio::test]
async fn image_edits_and_variations_take_forms_with_an_image() {
    let h = Harness::start().await;
    let (ct, body) = form(
        &[
            ("model", "dall-e-2"),
            ("prompt", "add a hat"),
            ("n", "3"),
            ("size", "512x512"),
        ],
        "image",
        "cat.png",
        b"\x89PNG fake",
    );
    let (status, _, answer) = post_bytes(&h, "/v1/images/edits", &ct, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["data"].as_array().unwrap().len(), 3);
    let (ct, body) = form(&[("size", "256x256")], "image", "cat.png", b"\x89PNG fake");
    let (status, _, answer) = post_bytes(&h, "/v1/images/variations", &ct, body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let traces = h.traces(2).await;
    // dall-e-2: $0.018 at 512x512, $0.016 at 256x256; variations default to dall-e-2.
    assert_eq!(traces[0].cost_nanos, 3 * 18_000_000);
    assert_eq!(traces[1].requested_model, "dall-e-2");
    assert_eq!(traces[1].cost_nanos, 16_000_000);
}

#[tokio::test]
async fn moderations_pass_through_and_cost_nothing() {
    let h = Harness::start().await;
    let body = json!({"input": ["fine text", "FLAG this"]});
    let answer = h.client.post("/v1/moderations", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["results"][0]["flagged"], false);
    assert_eq!(json["results"][1]["flagged"], true);
    assert_eq!(
        h.mock.requests()[0].body["model"],
        Value::Null,
        "the client's body as sent"
    );
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.endpoint, "moderations");
    assert_eq!(trace.requested_model, "omni-moderation-latest");
    assert_eq!(trace.cost_nanos, 0);
    assert!(trace.price_known);
}

async fn start_with_upstream(toml_for: impl Fn(&str) -> String) -> Harness {
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_for(&toml_for(&mock.base_url()), &mock.base_url(), &dir);
    Harness::start_on(config, mock, dir).await
}

#[tokio::test]
async fn rerank_goes_to_cohere_and_is_priced_per_search() {
    let h = start_with_upstream(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.cohere]\nbase_url = \"{root}/v2\"\napi_key = \"co-key\"\n")
    })
    .await;
    let body = json!({"model": "rerank-v3.5", "query": "red barn",
        "documents": ["a blue sky", "the red barn at dusk", "a barn"], "top_n": 2});
    let answer = h.client.post("/v1/rerank", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["results"][0]["index"], 1);
    assert_eq!(json["results"].as_array().unwrap().len(), 2);
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v2/rerank");
    assert_eq!(sent.header("authorization"), Some("Bearer co-key"));
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.provider.as_deref(), Some("cohere"));
    // $2 per thousand searches.
    assert_eq!(trace.cost_nanos, 2_000_000);
    assert!(trace.price_known);
}

#[tokio::test]
async fn rerank_to_voyage_speaks_its_dialect_both_ways() {
    let h = start_with_upstream(|url| {
        format!("[providers.voyage]\nbase_url = \"{url}\"\napi_key = \"vo-key\"\n")
    })
    .await;
    let body = json!({"model": "rerank-2", "query": "red barn",
        "documents": ["a blue sky", "the red barn"], "top_n": 1});
    let answer = h.client.post("/v1/rerank", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["results"][0]["index"], 1);
    let sent = &h.mock.requests()[0].body;
    assert_eq!(sent["top_k"], 1);
    assert!(sent.get("top_n").is_none());
    let trace = &h.traces(1).await[0];
    // 2 + 3 + 3 words; $0.05 / M tokens.
    assert_eq!(trace.tokens.prompt, 8);
    assert_eq!(trace.cost_nanos, 400);
}

#[tokio::test]
async fn a_provider_that_cannot_serve_the_operation_refuses_with_a_400_saying_so() {
    let h = start_with_upstream(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.cohere]\nbase_url = \"{root}/v2\"\napi_key = \"co-key\"\n")
    })
    .await;
    let body = json!({"model": "cohere/rerank-v3.5", "prompt": "a cat"});
    let answer = h
        .client
        .post("/v1/images/generations", &body.to_string())
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let error = &answer.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("provider cohere does not serve images/generations"),
        "{message}"
    );
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn bad_operation_bodies_get_a_400_naming_the_problem() {
    let h = Harness::start().await;
    let answer = h
        .client
        .post(
            "/v1/images/generations",
            &json!({"model": "dall-e-3"}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "prompt");
    let answer = h
        .client
        .post(
            "/v1/audio/transcriptions",
            &json!({"model": "whisper-1"}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("multipart/form-data"), "{message}");
    let (ct, body) = form(&[("model", "whisper-1")], "notes", "a.txt", b"hi");
    let (status, _, answer) = post_bytes(&h, "/v1/audio/transcriptions", &ct, body).await;
    assert_eq!(status, 400);
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["error"]["param"], "file");
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn operations_are_refused_past_the_body_limit() {
    let h = Harness::start_with("[modules.request_limits]\nmax_body_bytes = 4096\n").await;
    let (ct, body) = form(&[("model", "whisper-1")], "file", "a.wav", &wav(1));
    let (status, _, _) = post_bytes(&h, "/v1/audio/transcriptions", &ct, body).await;
    assert_eq!(status, 413);
    assert_eq!(h.mock.request_count(), 0);
}

#[tokio::test]
async fn moderations_are_answered_by_the_guardrails_when_the_moderations_module_is_on() {
    let h = Harness::start_with(
        "[modules.guard_pii]\nenabled = true\naction = \"block\"\n\
         [modules.guard_secrets]\nenabled = true\n[modules.moderations]\nenabled = true\n",
    )
    .await;
    let body = json!({"model": "omni-moderation-latest",
        "input": ["write to anna.k@example.com", "nothing here", "key AKIAIOSFODNN7EXAMPLE"]});
    let answer = h.client.post("/v1/moderations", &body.to_string()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let json = answer.json();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["flagged"], true);
    assert_eq!(results[0]["categories"]["guard_pii"], true);
    assert_eq!(results[0]["categories"]["guard_secrets"], false);
    assert_eq!(results[0]["categories"]["violence"], false);
    assert_eq!(results[1]["flagged"], false);
    assert_eq!(results[2]["categories"]["guard_secrets"], true);
    // Judged, not blocked, and no provider asked.
    assert_eq!(h.mock.request_count(), 0);
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.answered_by.as_deref(), Some("moderations"));
    assert_eq!(trace.cost_nanos, 0);
}

#[tokio::test]
async fn models_lists_routing_aliases_and_groups_for_the_sdks() {
    let h = Harness::start_with(
        "[modules.routing.aliases]\nears = \"openai/whisper-1\"\n\
         [modules.routing.groups.pool]\n[[modules.routing.groups.pool.deployments]]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\n",
    )
    .await;
    let models = h.client.get("/v1/models").await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"ears") && ids.contains(&"pool"), "{ids:?}");
    let ears = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "ears")
        .unwrap();
    assert_eq!(ears["object"], "model");
    assert_eq!(ears["owned_by"], "stockyard");
}

#[tokio::test]
async fn image_generation_on_imagen_is_translated_both_ways_and_priced_per_image() {
    let h = start_with_upstream(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.gemini]\nbase_url = \"{root}/v1beta\"\napi_key = \"gm-key\"\n")
    })
    .await;
    let body = json!({"model": "gemini/imagen-4.0-generate-001", "prompt": "a red barn", "n": 2, "size": "1792x1024"});
    let answer = h
        .client
        .post("/v1/images/generations", &body.to_string())
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let data = answer.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    assert!(data[0]["b64_json"].is_string());
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/v1beta/models/imagen-4.0-generate-001:predict");
    assert_eq!(sent.body["instances"][0]["prompt"], "a red barn");
    assert_eq!(sent.body["parameters"]["aspectRatio"], "16:9");
    let trace = &h.traces(1).await[0];
    assert_eq!(trace.provider.as_deref(), Some("gemini"));
    assert_eq!(trace.cost_nanos, 2 * 40_000_000);
    assert!(trace.price_known);
    // Imagen sends bytes only: a URL request is refused by name.
    let url_body =
        json!({"model": "gemini/imagen-4.0-generate-001", "prompt": "x", "response_format": "url"});
    let answer = h
        .client
        .post("/v1/images/generations", &url_body.to_string())
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "response_format");
}

#[tokio::test]
async fn azure_takes_audio_on_its_own_paths_and_refuses_moderations() {
    let h = start_with_upstream(|url| {
        let root = url.trim_end_matches("/v1");
        format!("[providers.azure]\nbase_url = \"{root}\"\napi_key = \"az-key-1\"\n")
    })
    .await;
    let (ct, body) = form(&[("model", "azure/my-whisper")], "file", "a.wav", &wav(1));
    let _ = post_bytes(&h, "/v1/audio/transcriptions", &ct, body).await;
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.path, "/openai/v1/audio/transcriptions");
    assert_eq!(sent.header("api-key"), Some("az-key-1"));
    assert_eq!(sent.header("content-type"), Some(ct.as_str()));
    // The deployment name goes in the form's model field.
    let raw = String::from_utf8_lossy(&sent.raw_body).into_owned();
    assert!(
        raw.contains("name=\"model\"\r\n\r\nmy-whisper\r\n"),
        "{raw}"
    );
    let answer = h
        .client
        .post(
            "/v1/moderations",
            &json!({"model": "azure/mod", "input": "hi"}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(
        answer
            .text()
            .contains("provider azure does not serve moderations")
    );
    assert_eq!(h.mock.request_count(), 1);
}
