//! The OpenAI endpoints other than text and embeddings (images, audio, moderations, and the common
//! rerank shape): operations whose body goes upstream as the client sent it, model aside. The
//! proxy reads only what routes and prices the call (`model`, and for pricing `n`, `size`,
//! `quality`, the speech `input`); every other field is the provider's business.
//!
//! Multipart bodies (image edits and variations, transcriptions and translations) are kept as
//! bytes; see [`crate::wire::multipart`].

use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Endpoint, ParseError};
use crate::wire::multipart::Form;

/// An operation's body, as parsed.
#[derive(Clone, Debug)]
pub enum OperationBody {
    Json(Map<String, Value>),
    Form(Form),
}

#[derive(Clone, Debug)]
pub struct OperationRequest {
    pub endpoint: Endpoint,
    pub model: String,
    pub body: OperationBody,
}

fn invalid(param: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        message: format!("invalid request: {param}: {}", message.into()),
        param: Some(param.to_string()),
    }
}

/// Fields the operation cannot do without, checked here so the client gets a 400 naming the
/// field rather than the provider's error (or a bill) for a request that could never work.
fn required_json(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::ImagesGenerations => &["prompt"],
        Endpoint::AudioSpeech => &["input", "voice"],
        Endpoint::Moderations => &["input"],
        Endpoint::Rerank => &["query", "documents"],
        _ => &[],
    }
}

fn required_files(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::ImagesEdits | Endpoint::ImagesVariations => &["image"],
        Endpoint::AudioTranscriptions | Endpoint::AudioTranslations => &["file"],
        _ => &[],
    }
}

/// The model an operation uses when the client names none, where OpenAI documents a default.
fn default_model(endpoint: Endpoint) -> Option<&'static str> {
    match endpoint {
        Endpoint::Moderations => Some("omni-moderation-latest"),
        Endpoint::ImagesVariations => Some("dall-e-2"),
        _ => None,
    }
}

impl OperationRequest {
    pub fn parse(
        endpoint: Endpoint,
        content_type: &str,
        body: &Bytes,
    ) -> Result<OperationRequest, ParseError> {
        if endpoint.is_multipart() {
            let form = Form::parse(content_type, body.clone()).map_err(|e| ParseError {
                message: format!("invalid request: {e}"),
                param: None,
            })?;
            for file in required_files(endpoint) {
                if !form.has_file(file) {
                    return Err(invalid(file, "a file part is required"));
                }
            }
            let model = match form.text("model").map(str::trim) {
                Some(model) if !model.is_empty() => model.to_string(),
                _ => default_model(endpoint)
                    .ok_or_else(|| invalid("model", "a model field is required"))?
                    .to_string(),
            };
            return Ok(OperationRequest {
                endpoint,
                model,
                body: OperationBody::Form(form),
            });
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| ParseError {
            message: format!("request body is not valid JSON: {e}"),
            param: None,
        })?;
        let Value::Object(map) = value else {
            return Err(ParseError {
                message: "invalid request: the body must be a JSON object".into(),
                param: None,
            });
        };
        let model = match map.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            Some(Value::String(_)) | None => default_model(endpoint)
                .ok_or_else(|| invalid("model", "a model is required"))?
                .to_string(),
            Some(_) => return Err(invalid("model", "must be a string")),
        };
        for field in required_json(endpoint) {
            if map.get(*field).is_none_or(Value::is_null) {
                return Err(invalid(field, "is required"));
            }
        }
        if endpoint == Endpoint::Rerank && !map["documents"].is_array() {
            return Err(invalid("documents", "must be an array"));
        }
        if endpoint == Endpoint::AudioSpeech && !map["input"].is_string() {
            return Err(invalid("input", "must be a string"));
        }
        Ok(OperationRequest {
            endpoint,
            model,
            body: OperationBody::Json(map),
        })
    }

    pub fn json(&self) -> Option<&Map<String, Value>> {
        match &self.body {
            OperationBody::Json(map) => Some(map),
            OperationBody::Form(_) => None,
        }
    }

    /// A text field, whichever the body's form.
    pub fn field(&self, name: &str) -> Option<String> {
        match &self.body {
            OperationBody::Json(map) => map.get(name).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            OperationBody::Form(form) => form.text(name).map(String::from),
        }
    }

    pub fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
        match &mut self.body {
            OperationBody::Json(map) => {
                map.insert("model".into(), Value::String(model.to_string()));
            }
            OperationBody::Form(form) => {
                if let Some(body) = form.with_text("model", model)
                    && let Ok(renamed) = Form::parse(
                        &format!("multipart/form-data; boundary={}", form.boundary),
                        body,
                    )
                {
                    *form = renamed;
                }
            }
        }
    }

    /// A transcription asked for as a stream (`stream=true`): its SSE passes through as it
    /// arrives, its usage read from the last event.
    pub fn streams(&self) -> bool {
        self.endpoint == Endpoint::AudioTranscriptions
            && self.field("stream").is_some_and(|s| s.trim() == "true")
    }

    pub fn user(&self) -> Option<&str> {
        self.json()
            .and_then(|m| m.get("user"))
            .and_then(Value::as_str)
    }

    /// Text the request carries, for estimates (a speech input, a prompt, a query).
    pub fn texts(&self) -> Vec<&str> {
        let Some(map) = self.json() else {
            return Vec::new();
        };
        let mut texts = Vec::new();
        for field in ["prompt", "input", "query"] {
            match map.get(field) {
                Some(Value::String(s)) => texts.push(s.as_str()),
                Some(Value::Array(items)) => {
                    texts.extend(
                        items
                            .iter()
                            .filter_map(|v| v.as_str().or(v["text"].as_str())),
                    );
                }
                _ => {}
            }
        }
        if let Some(Value::Array(docs)) = map.get("documents") {
            texts.extend(
                docs.iter()
                    .filter_map(|d| d.as_str().or(d["text"].as_str())),
            );
        }
        texts
    }

    /// The body as it goes upstream.
    pub fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        match &self.body {
            OperationBody::Json(map) => serde_json::to_vec(map).map(Bytes::from),
            OperationBody::Form(form) => Ok(form.body.clone()),
        }
    }

    /// The content type the body goes upstream with.
    pub fn content_type(&self) -> String {
        match &self.body {
            OperationBody::Json(_) => "application/json".into(),
            OperationBody::Form(form) => {
                format!("multipart/form-data; boundary={}", form.boundary)
            }
        }
    }
}

/// What an operation's answer bills, read from the answer and the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metered {
    pub units: crate::cost::Units,
    /// Tokens, when the provider counts them (`gpt-image-1`, `gpt-4o-transcribe`, Jina, Voyage).
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// The price-file name of what was made, when more specific than the model
    /// (`hd/1024-x-1024/dall-e-3`).
    pub price_name: Option<String>,
}

/// An upper bound of the output tokens one image of `pixels` bills at `quality` on the models
/// priced by the token: OpenAI bills gpt-image-1 272, 1,056 and 4,160 tokens for a 1024x1024
/// image (low, medium, high) and up to 408, 1,584 and 6,240 at 1024x1536; newer models bill more
/// at high quality (about 7,000 at 1024x1024). Rounded up to those, scaled up for larger images;
/// `auto` is taken as high. What was billed replaces it once the answer says.
fn image_output_tokens(quality: &str, pixels: u64) -> u64 {
    const REFERENCE_PIXELS: u64 = 1536 * 1024;
    let per_reference_image = match quality {
        "low" => 500,
        "medium" => 1_600,
        _ => 7_100,
    };
    per_reference_image * pixels.max(REFERENCE_PIXELS) / REFERENCE_PIXELS
}

/// The most images one request is expected to make (OpenAI allows 10): a larger `n` is the
/// provider's to refuse, and holds no more than this back.
const MAX_IMAGES_EXPECTED: u64 = 10;

/// Bytes of audio a second when the answer gives no duration and the file is not a WAV (whose
/// header says): 128 kbit/s, the common MP3 and M4A rate.
const FALLBACK_AUDIO_BYTES_PER_SECOND: u64 = 16_000;

impl OperationRequest {
    /// What the answer `body` (successful, in OpenAI's or the common rerank shape) bills.
    pub fn meter(&self, body: &[u8]) -> Metered {
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut metered = Metered::default();
        let usage = &answer["usage"];
        let count = |v: &Value| v.as_u64();
        match self.endpoint {
            Endpoint::ImagesGenerations | Endpoint::ImagesEdits | Endpoint::ImagesVariations => {
                let images = answer["data"].as_array().map_or(0, Vec::len) as u64;
                // What the answer says it made (gpt-image-1, Bedrock) wins over what was asked.
                let answered = |field: &str| answer[field].as_str().map(String::from);
                let size = answered("size")
                    .or_else(|| self.field("size"))
                    .unwrap_or_else(|| "1024x1024".into());
                let (w, h) = size
                    .split_once('x')
                    .and_then(|(w, h)| {
                        Some((w.trim().parse::<u64>().ok()?, h.trim().parse::<u64>().ok()?))
                    })
                    .unwrap_or((1024, 1024));
                metered.units.images = images;
                metered.units.pixels = images.saturating_mul(w.saturating_mul(h));
                let size_name = format!("{w}-x-{h}/{}", self.model);
                metered.price_name = Some(
                    match answered("quality").or_else(|| self.field("quality")) {
                        Some(quality) if quality != "auto" => format!("{quality}/{size_name}"),
                        _ => size_name,
                    },
                );
                metered.prompt_tokens = count(&usage["input_tokens"]);
                metered.completion_tokens = count(&usage["output_tokens"]);
            }
            Endpoint::AudioSpeech => {
                metered.units.characters = self
                    .json()
                    .and_then(|m| m.get("input"))
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.chars().count() as u64);
            }
            Endpoint::AudioTranscriptions | Endpoint::AudioTranslations => {
                let seconds = match usage["type"].as_str() {
                    Some("duration") => usage["seconds"].as_f64(),
                    _ => answer["duration"].as_f64(),
                };
                metered.units.audio_ms = match seconds {
                    Some(s) if s.is_finite() && s >= 0.0 => (s * 1000.0).round() as u64,
                    _ if usage["type"] == "tokens" => 0,
                    _ => self.estimated_audio_ms(),
                };
                metered.prompt_tokens = count(&usage["input_tokens"]);
                metered.completion_tokens = count(&usage["output_tokens"]);
            }
            Endpoint::Moderations => {
                metered.prompt_tokens = Some(0);
            }
            Endpoint::Rerank => {
                let search_units = count(&answer["meta"]["billed_units"]["search_units"]);
                let tokens = count(&usage["total_tokens"])
                    .or_else(|| count(&answer["meta"]["tokens"]["input_tokens"]));
                metered.units.queries =
                    search_units.unwrap_or(if tokens.is_some() { 0 } else { 1 });
                metered.prompt_tokens = tokens;
            }
            _ => {}
        }
        metered
    }

    /// What the request asks for, before any answer: the images it asks for (`n`, 1 unless
    /// given) at its size and quality, the characters it asks to speak, the audio it uploads, one
    /// query. Budgets hold this much back, so a burst of image or speech requests is priced
    /// before it goes upstream, not after.
    pub fn expected(&self) -> Metered {
        match self.endpoint {
            Endpoint::ImagesGenerations | Endpoint::ImagesEdits | Endpoint::ImagesVariations => {
                let asked = self
                    .field("n")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, MAX_IMAGES_EXPECTED);
                let answer = serde_json::json!({ "data": vec![Value::Null; asked as usize] });
                let mut metered = self.meter(answer.to_string().as_bytes());
                // Models priced by the token (gpt-image-*) bill each image's output tokens.
                let per_image = image_output_tokens(
                    self.field("quality").as_deref().unwrap_or("auto"),
                    metered.units.pixels / asked,
                );
                metered.completion_tokens = Some(asked * per_image);
                metered
            }
            _ => self.meter(b""),
        }
    }

    /// The length of the uploaded audio, from a WAV header's byte rate, else from its size at a
    /// common compressed rate.
    fn estimated_audio_ms(&self) -> u64 {
        let OperationBody::Form(form) = &self.body else {
            return 0;
        };
        let Some(part) = form
            .parts
            .iter()
            .find(|p| p.name == "file" && p.filename.is_some())
        else {
            return 0;
        };
        let audio = &form.body[part.start..part.end];
        let bytes = audio.len() as u64;
        let wav_rate = (audio.len() > 44 && audio.starts_with(b"RIFF") && &audio[8..12] == b"WAVE")
            .then(|| {
                u64::from(u32::from_le_bytes([
                    audio[28], audio[29], audio[30], audio[31],
                ]))
            })
            .filter(|rate| *rate > 0);
        let (payload, rate) = match wav_rate {
            Some(rate) => (bytes.saturating_sub(44), rate),
            None => (bytes, FALLBACK_AUDIO_BYTES_PER_SECOND),
        };
        payload.saturating_mul(1000) / rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_required_field_is_named() {
        let err = OperationRequest::parse(
            Endpoint::ImagesGenerations,
            "application/json",
            &Bytes::from_static(br#"{"model":"dall-e-3"}"#),
        )
        .err();
        assert_eq!(err.and_then(|e| e.param).as_deref(), Some("prompt"));
        let err = OperationRequest::parse(
            Endpoint::AudioSpeech,
            "application/json",
            &Bytes::from_static(br#"{"input":"hi","voice":"alloy"}"#),
        )
        .err();
        assert_eq!(err.and_then(|e| e.param).as_deref(), Some("model"));
    }

    #[test]
    fn what_a_request_asks_for_is_metered_before_the_answer() {
        let parse = |endpoint, body: &'static [u8]| {
            OperationRequest::parse(endpoint, "application/json", &Bytes::from_static(body))
                .unwrap_or_else(|e| panic!("{e:?}"))
        };
        let images = parse(
            Endpoint::ImagesGenerations,
            br#"{"model":"dall-e-3","prompt":"a cat","n":3,"size":"1024x1792","quality":"hd"}"#,
        )
        .expected();
        assert_eq!(images.units.images, 3);
        assert_eq!(images.units.pixels, 3 * 1024 * 1792);
        assert_eq!(
            images.price_name.as_deref(),
            Some("hd/1024-x-1792/dall-e-3")
        );
        let one = parse(
            Endpoint::ImagesGenerations,
            br#"{"model":"dall-e-3","prompt":"a cat"}"#,
        );
        assert_eq!(one.expected().units.images, 1);
        let many = parse(
            Endpoint::ImagesGenerations,
            br#"{"model":"dall-e-2","prompt":"a cat","n":5000}"#,
        );
        assert_eq!(many.expected().units.images, MAX_IMAGES_EXPECTED);
        let speech = parse(
            Endpoint::AudioSpeech,
            br#"{"model":"tts-1","input":"twelve chars","voice":"alloy"}"#,
        );
        assert_eq!(speech.expected().units.characters, 12);
    }

    #[test]
    fn moderations_default_their_model() {
        let parsed = OperationRequest::parse(
            Endpoint::Moderations,
            "application/json",
            &Bytes::from_static(br#"{"input":"hello"}"#),
        );
        assert_eq!(
            parsed.map(|p| p.model).unwrap_or_default(),
            "omni-moderation-latest"
        );
    }

    #[test]
    fn a_json_body_on_a_multipart_endpoint_is_refused() {
        let err = OperationRequest::parse(
            Endpoint::AudioTranscriptions,
            "application/json",
            &Bytes::from_static(br#"{"model":"whisper-1"}"#),
        )
        .err();
        assert!(err.is_some_and(|e| e.message.contains("multipart/form-data")));
    }

    #[test]
    fn images_are_metered_by_count_size_and_quality() {
        let request = OperationRequest::parse(
            Endpoint::ImagesGenerations,
            "application/json",
            &Bytes::from_static(
                br#"{"model":"dall-e-3","prompt":"a cat","size":"1792x1024","quality":"hd"}"#,
            ),
        );
        let Ok(request) = request else {
            panic!("parse");
        };
        let metered = request.meter(br#"{"created":1,"data":[{"url":"u"},{"url":"v"}]}"#);
        assert_eq!(metered.units.images, 2);
        assert_eq!(metered.units.pixels, 2 * 1792 * 1024);
        assert_eq!(
            metered.price_name.as_deref(),
            Some("hd/1792-x-1024/dall-e-3")
        );
    }

    #[test]
    fn the_size_and_quality_an_answer_reports_win_over_the_request() {
        let request = OperationRequest::parse(
            Endpoint::ImagesGenerations,
            "application/json",
            &Bytes::from_static(
                br#"{"model":"amazon.nova-canvas-v1:0","prompt":"a cat","quality":"hd"}"#,
            ),
        );
        let Ok(request) = request else {
            panic!("parse");
        };
        let metered = request.meter(
            br#"{"created":1,"data":[{"b64_json":"x"}],"size":"512x512","quality":"premium"}"#,
        );
        assert_eq!(
            metered.price_name.as_deref(),
            Some("premium/512-x-512/amazon.nova-canvas-v1:0")
        );
        assert_eq!(metered.units.pixels, 512 * 512);
    }

    #[test]
    fn a_wav_upload_without_a_duration_is_timed_from_its_header() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        wav.resize(28, 0);
        wav.extend_from_slice(&32_000u32.to_le_bytes());
        wav.resize(44 + 64_000, 0);
        let mut body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".to_vec();
        body.extend_from_slice(&wav);
        body.extend_from_slice(b"\r\n--b--\r\n");
        let request = OperationRequest::parse(
            Endpoint::AudioTranscriptions,
            "multipart/form-data; boundary=b",
            &Bytes::from(body),
        );
        let Ok(request) = request else {
            panic!("parse");
        };
        assert_eq!(request.meter(b"plain text answer").units.audio_ms, 2_000);
        let metered = request.meter(br#"{"text":"hi","usage":{"type":"duration","seconds":3}}"#);
        assert_eq!(metered.units.audio_ms, 3_000);
    }
}
