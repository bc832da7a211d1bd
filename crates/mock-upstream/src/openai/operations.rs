//! OpenAI's other endpoints, as the proxy forwards them:
//!
//! - `POST /v1/images/generations` (JSON) and `/v1/images/edits`, `/v1/images/variations`
//!   (multipart, an `image` file part required): `n` images (default 1), each a `b64_json` (the
//!   bytes `mock-image-{i}`) or, with `response_format: "url"`, a URL. A `gpt-image-*` model adds
//!   `usage` (input tokens: words in the prompt; output tokens: 272 per image, the low-quality
//!   square's count).
//! - `POST /v1/audio/speech` (JSON): `audio/mpeg` bytes streamed in [`SPEECH_CHUNKS`] chunks
//!   (`chunk_delay_ms` apart): `ID3` then the input's bytes, repeated.
//! - `POST /v1/audio/transcriptions` and `/translations` (multipart, a `file` part required): the
//!   text `heard {filename} ({n} bytes)`; `json` (the default) adds `usage: {type: "duration",
//!   seconds}`, `verbose_json` a `duration`, and `text`, `srt`, `vtt` answer in plain text. The
//!   duration is the WAV header's (bytes after the 44-byte header over its byte rate), else 1 s
//!   per 16,000 bytes.
//! - `POST /v1/moderations`: one result per input; flagged (category `violence`) when the text
//!   contains `FLAG`.
//! - `POST /v1/rerank`: Cohere's shape (`results` by score, `meta.billed_units.search_units: 1`),
//!   the score being the share of the query's words in the document; a body with `top_k`
//!   (Voyage's dialect) gets Voyage's (`data`, `usage.total_tokens`).

use std::collections::VecDeque;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Reply, error, model, words};
use crate::body::Step;
use crate::script::Behavior;

/// How many chunks a speech answer streams in.
pub const SPEECH_CHUNKS: usize = 4;

/// Output tokens per generated `gpt-image-*` image.
pub const IMAGE_OUTPUT_TOKENS: u64 = 272;

fn images(model: &str, prompt: &str, n: u64, as_url: bool, created: u64) -> Reply {
    let data: Vec<Value> = (0..n)
        .map(|i| {
            if as_url {
                json!({"url": format!("https://mock.invalid/images/{i}.png"), "revised_prompt": prompt})
            } else {
                json!({"b64_json": crate::base64::encode(format!("mock-image-{i}").as_bytes())})
            }
        })
        .collect();
    let mut answer = json!({"created": created, "data": data});
    if model.starts_with("gpt-image") {
        let input = words(prompt);
        let output = IMAGE_OUTPUT_TOKENS * n;
        answer["usage"] = json!({"input_tokens": input, "output_tokens": output,
            "total_tokens": input + output,
            "input_tokens_details": {"text_tokens": input, "image_tokens": 0}});
    }
    Reply::Json(Bytes::from(answer.to_string()))
}

pub(crate) fn image_generation(req: &Value) -> Reply {
    let n = req["n"].as_u64().unwrap_or(1);
    let prompt = req["prompt"].as_str().unwrap_or_default();
    images(
        model(req),
        prompt,
        n,
        req["response_format"] == "url",
        1_700_000_000,
    )
}

pub(crate) fn image_form(form: &Form) -> Reply {
    if !form
        .files
        .iter()
        .any(|f| f.name == "image" || f.name == "image[]")
    {
        return error::bad_request("an image file part is required", "missing_image");
    }
    let n = form.text("n").and_then(|n| n.parse().ok()).unwrap_or(1);
    let prompt = form.text("prompt").unwrap_or("variation");
    let model = form.text("model").unwrap_or("dall-e-2");
    images(
        model,
        prompt,
        n,
        form.text("response_format") == Some("url"),
        1_700_000_000,
    )
}

pub(crate) fn speech(req: &Value, b: &Behavior) -> Reply {
    let input = req["input"].as_str().unwrap_or_default();
    let mut steps = VecDeque::new();
    steps.push_back(Step::Data(Bytes::from_static(b"ID3")));
    for _ in 1..SPEECH_CHUNKS {
        steps.push_back(Step::Data(Bytes::copy_from_slice(input.as_bytes())));
    }
    if let Some(n) = b.reset_after_chunks {
        steps.truncate(n);
        steps.push_back(Step::Abort);
    }
    Reply::Raw {
        content_type: "audio/mpeg",
        steps,
    }
}

/// A form's duration in seconds, as the module doc says.
fn seconds(audio: &[u8]) -> f64 {
    if audio.len() > 44 && audio.starts_with(b"RIFF") && &audio[8..12] == b"WAVE" {
        let rate = u32::from_le_bytes([audio[28], audio[29], audio[30], audio[31]]);
        if rate > 0 {
            return (audio.len() - 44) as f64 / f64::from(rate);
        }
    }
    audio.len() as f64 / 16_000.0
}

/// Input and output tokens a streamed transcription reports in its last event.
pub const TRANSCRIPTION_STREAM_USAGE: (u64, u64) = (300, 40);

pub(crate) fn transcription(form: &Form, translation: bool) -> Reply {
    let Some(file) = form.files.iter().find(|f| f.name == "file") else {
        return error::bad_request("a file part is required", "missing_file");
    };
    if form.text("model").is_none() {
        return error::bad_request("model is required", "missing_model");
    }
    let text = format!("heard {} ({} bytes)", file.filename, file.bytes.len());
    let duration = seconds(&file.bytes);
    if form.text("stream") == Some("true") && !translation {
        // https://platform.openai.com/docs/api-reference/audio/transcript-text-delta-event
        let mut steps: VecDeque<Step> = text
            .split_inclusive(' ')
            .map(|delta| {
                let event = json!({"type": "transcript.text.delta", "delta": delta});
                Step::Data(Bytes::from(format!("data: {event}\n\n")))
            })
            .collect();
        let (input, output) = TRANSCRIPTION_STREAM_USAGE;
        let done = json!({"type": "transcript.text.done", "text": text, "usage": {"type": "tokens",
            "input_tokens": input, "output_tokens": output, "total_tokens": input + output}});
        steps.push_back(Step::Data(Bytes::from(format!("data: {done}\n\n"))));
        return Reply::Raw {
            content_type: "text/event-stream",
            steps,
        };
    }
    match form.text("response_format").unwrap_or("json") {
        "json" => Reply::Json(Bytes::from(
            json!({"text": text, "usage": {"type": "duration", "seconds": duration}}).to_string(),
        )),
        "verbose_json" => Reply::Json(Bytes::from(
            json!({"task": if translation {"translate"} else {"transcribe"}, "language": "english",
                "duration": duration, "text": text,
                "segments": [{"id": 0, "start": 0.0, "end": duration, "text": text}]})
            .to_string(),
        )),
        "text" | "srt" | "vtt" => Reply::Raw {
            content_type: "text/plain; charset=utf-8",
            steps: VecDeque::from([Step::Data(Bytes::from(text))]),
        },
        other => error::bad_request(
            &format!("response_format {other:?} is not one of json, text, srt, verbose_json, vtt"),
            "invalid_value",
        ),
    }
}

pub(crate) fn moderation(req: &Value, n: usize) -> Reply {
    let inputs: Vec<String> = match &req["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .or(i["text"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect(),
        _ => return error::bad_request("input is required", "missing_input"),
    };
    let results: Vec<Value> = inputs
        .iter()
        .map(|text| {
            let flagged = text.contains("FLAG");
            let score = if flagged { 0.97 } else { 0.001 };
            json!({"flagged": flagged,
                "categories": {"violence": flagged, "harassment": false, "hate": false, "sexual": false, "self-harm": false},
                "category_scores": {"violence": score, "harassment": 0.0, "hate": 0.0, "sexual": 0.0, "self-harm": 0.0},
                "category_applied_input_types": {"violence": ["text"]}})
        })
        .collect();
    Reply::Json(Bytes::from(
        json!({"id": format!("modr-mock-{n}"), "model": model(req), "results": results})
            .to_string(),
    ))
}

pub(crate) fn rerank(req: &Value, n: usize) -> Reply {
    let query = req["query"].as_str().unwrap_or_default().to_lowercase();
    let query_words: Vec<&str> = query.split_whitespace().collect();
    let Some(docs) = req["documents"].as_array() else {
        return error::bad_request("documents must be an array", "invalid_documents");
    };
    let texts: Vec<String> = docs
        .iter()
        .map(|d| {
            d.as_str()
                .or(d["text"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut scored: Vec<(usize, f64)> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let lower = text.to_lowercase();
            let hits = query_words.iter().filter(|w| lower.contains(**w)).count();
            (i, hits as f64 / query_words.len().max(1) as f64)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let voyage = req.get("top_k").is_some();
    let top = req["top_n"]
        .as_u64()
        .or(req["top_k"].as_u64())
        .map_or(scored.len(), |t| t as usize);
    scored.truncate(top);
    let tokens = words(&query) + texts.iter().map(|t| words(t)).sum::<u64>();
    let answer = if voyage {
        let data: Vec<Value> = scored
            .iter()
            .map(|(i, s)| json!({"index": i, "relevance_score": s}))
            .collect();
        json!({"object": "list", "data": data, "model": model(req), "usage": {"total_tokens": tokens}})
    } else {
        let results: Vec<Value> = scored
            .iter()
            .map(|(i, s)| json!({"index": i, "relevance_score": s}))
            .collect();
        json!({"id": format!("rerank-mock-{n}"), "results": results,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}})
    };
    Reply::Json(Bytes::from(answer.to_string()))
}

/// A `multipart/form-data` body, read as far as the mock needs.
pub(crate) struct Form {
    pub(crate) texts: Vec<(String, String)>,
    pub(crate) files: Vec<FilePart>,
}

pub(crate) struct FilePart {
    pub(crate) name: String,
    pub(crate) filename: String,
    pub(crate) bytes: Bytes,
}

impl Form {
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses `body` by the boundary of `content_type`; `Err` says what is wrong.
    pub(crate) fn parse(content_type: &str, body: &Bytes) -> Result<Form, String> {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| v.trim_matches('"').to_string())
            .filter(|_| content_type.trim_start().starts_with("multipart/form-data"))
            .ok_or_else(|| format!("content-type {content_type:?} is not multipart/form-data"))?;
        let delimiter = format!("\r\n--{boundary}");
        let mut form = Form {
            texts: Vec::new(),
            files: Vec::new(),
        };
        let first = format!("--{boundary}");
        let mut at =
            find(body, first.as_bytes(), 0).ok_or("no boundary in the body")? + first.len();
        loop {
            if body[at..].starts_with(b"--") {
                return Ok(form);
            }
            let head_start = at + 2;
            let head_end = find(body, b"\r\n\r\n", head_start).ok_or("part headers never end")?;
            let head = String::from_utf8_lossy(&body[head_start..head_end]).to_string();
            let start = head_end + 4;
            let end = find(body, delimiter.as_bytes(), start).ok_or("part not closed")?;
            let disposition = head
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
                .unwrap_or_default()
                .to_string();
            let param = |key: &str| {
                disposition
                    .split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.trim().trim_matches('"').to_string())
            };
            let name = param("name").ok_or("a part has no name")?;
            match param("filename") {
                Some(filename) => form.files.push(FilePart {
                    name,
                    filename,
                    bytes: body.slice(start..end),
                }),
                None => form.texts.push((
                    name,
                    String::from_utf8_lossy(&body[start..end]).into_owned(),
                )),
            }
            at = end + delimiter.len();
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}
