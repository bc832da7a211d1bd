//! OpenAI images <-> Bedrock InvokeModel bodies of the image models
//! (`{base}/model/{id}/invoke`, see [`super::request::invoke_url`]).
//!
//! - Amazon Nova Canvas (`amazon.nova-canvas-v1:0`) and Titan Image Generator v2
//!   (`amazon.titan-image-generator-v2:0`) take one body shape, chosen by `taskType`:
//!   `TEXT_IMAGE` with `textToImageParams {text, negativeText?}` for a generation,
//!   `INPAINTING` with `inPaintingParams {image, text, maskPrompt}` for an edit, and
//!   `IMAGE_VARIATION` with `imageVariationParams {images, text?}` for a variation, each with
//!   `imageGenerationConfig {numberOfImages, width, height, quality}`. They answer
//!   `{"images": [base64, ...], "error"?}`
//!   (<https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html>).
//! - Stability AI (`stability.sd3-5-large-v1:0`, `stability.stable-image-core-v1:1`,
//!   `stability.stable-image-ultra-v1:1`) take `{prompt, aspect_ratio, negative_prompt?, seed?}`,
//!   make one image a call, and answer `{"images", "seeds", "finish_reasons"}`, a non-null finish
//!   reason meaning the image was filtered
//!   (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html>).
//!   They have no edit or variation task here: those are refused by name.
//!
//! Bedrock answers with image bytes only, so `response_format: url` is refused by name. OpenAI's
//! `quality` maps onto Nova's two tiers (`hd`, `high` and `premium` are `premium`; `standard`,
//! `auto`, `low` and `medium` are `standard`). OpenAI's edit mask marks the area to change with
//! transparent pixels, Nova's with black ones, so a `mask` file is refused rather than passed on
//! with the opposite meaning: an edit names what to change in a `mask_prompt` field (Nova's
//! `maskPrompt`). The answer carries `size` and `quality` as called, as `gpt-image-1`'s does, so
//! the image is priced at the tier it was made at.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::providers::Untranslatable;
use crate::wire::openai::{Endpoint, OperationBody, OperationRequest};

fn refuse(param: &str, message: impl Into<String>) -> Untranslatable {
    Untranslatable {
        param: param.to_string(),
        message: message.into(),
    }
}

/// Which body shape a Bedrock image model speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Nova Canvas and Titan Image Generator: `taskType` bodies.
    TaskType,
    /// Stability AI: one prompt, one image.
    Stability,
}

/// Recognizes the image family from a model id (inference-profile prefixes allowed).
pub fn family(model_id: &str) -> Option<Family> {
    if model_id.contains("amazon.nova-canvas") || model_id.contains("amazon.titan-image-generator")
    {
        Some(Family::TaskType)
    } else if model_id.contains("stability.") {
        Some(Family::Stability)
    } else {
        None
    }
}

/// The fields read from the client's body, JSON or multipart alike.
struct Fields<'a> {
    request: &'a OperationRequest,
}

/// A field's text; a JSON `null` or an empty value is no value (SDKs send either for "unset").
fn field(request: &OperationRequest, name: &str) -> Option<String> {
    if request
        .json()
        .and_then(|m| m.get(name))
        .is_some_and(Value::is_null)
    {
        return None;
    }
    request.field(name).filter(|v| !v.trim().is_empty())
}

impl Fields<'_> {
    fn text(&self, name: &str) -> Option<String> {
        field(self.request, name)
    }

    fn number(&self, name: &str) -> Result<Option<u64>, Untranslatable> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| refuse(name, "must be a whole number")),
        }
    }
}

/// Fields OpenAI defines that Bedrock has no equivalent of; sent, they are refused by name
/// (unless the provider drops what it cannot honour) rather than silently ignored.
const UNSUPPORTED: &[&str] = &[
    "style",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "input_fidelity",
    "partial_images",
    "stream",
];

fn check_common(fields: &Fields<'_>, drop_unsupported: bool) -> Result<(), Untranslatable> {
    if fields.text("response_format").as_deref() == Some("url") {
        return Err(refuse(
            "response_format",
            "Bedrock image models answer with image bytes only; ask for b64_json",
        ));
    }
    if !drop_unsupported && let Some(param) = UNSUPPORTED.iter().find(|p| fields.text(p).is_some())
    {
        return Err(refuse(param, "not supported by Bedrock image models"));
    }
    Ok(())
}

/// `WxH` as numbers; `auto` or nothing is 1024x1024.
pub fn size(request: &OperationRequest) -> Result<(u64, u64), Untranslatable> {
    match field(request, "size").as_deref().map(str::trim) {
        None | Some("" | "auto") => Ok((1024, 1024)),
        Some(size) => size
            .split_once('x')
            .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .ok_or_else(|| refuse("size", "must be WIDTHxHEIGHT, like 1024x1024")),
    }
}

/// Nova's quality tier for OpenAI's `quality`.
pub fn quality(request: &OperationRequest) -> Result<&'static str, Untranslatable> {
    match field(request, "quality").as_deref().map(str::trim) {
        None | Some("" | "auto" | "standard" | "low" | "medium") => Ok("standard"),
        Some("hd" | "high" | "premium") => Ok("premium"),
        Some(_) => Err(refuse(
            "quality",
            "Bedrock image models take standard or premium (hd and high mean premium)",
        )),
    }
}

/// The bytes of every file part called `name` (or `name[]`), base64, in order.
fn files_b64(request: &OperationRequest, name: &str) -> Vec<String> {
    let OperationBody::Form(form) = &request.body else {
        return Vec::new();
    };
    let list = format!("{name}[]");
    form.parts
        .iter()
        .filter(|p| p.filename.is_some() && (p.name == name || p.name == list))
        .map(|p| base64::engine::general_purpose::STANDARD.encode(&form.body[p.start..p.end]))
        .collect()
}

/// An OpenAI images request (generation, edit or variation) as the InvokeModel body of
/// `model_id`.
pub fn to_bedrock(
    request: &OperationRequest,
    model_id: &str,
    drop_unsupported: bool,
) -> Result<Value, Untranslatable> {
    let fields = Fields { request };
    check_common(&fields, drop_unsupported)?;
    let family = family(model_id).ok_or_else(|| {
        refuse(
            "model",
            format!("{model_id} is not a Nova Canvas, Titan Image Generator or Stability AI model"),
        )
    })?;
    match family {
        Family::TaskType => task_body(request, &fields),
        Family::Stability => stability_body(request, &fields),
    }
}

fn task_body(request: &OperationRequest, fields: &Fields<'_>) -> Result<Value, Untranslatable> {
    let n = fields.number("n")?.unwrap_or(1);
    if !(1..=5).contains(&n) {
        return Err(refuse(
            "n",
            "Bedrock image models make 1 to 5 images a call",
        ));
    }
    let (width, height) = size(request)?;
    let mut config = json!({
        "numberOfImages": n,
        "width": width,
        "height": height,
        "quality": quality(request)?,
    });
    if let Some(seed) = fields.number("seed")? {
        config["seed"] = json!(seed);
    }
    let mut params = Map::new();
    if let Some(negative) = fields.text("negative_prompt") {
        params.insert("negativeText".into(), json!(negative));
    }
    let (task, key) = match request.endpoint {
        Endpoint::ImagesGenerations => {
            let prompt = fields
                .text("prompt")
                .ok_or_else(|| refuse("prompt", "is required"))?;
            params.insert("text".into(), json!(prompt));
            ("TEXT_IMAGE", "textToImageParams")
        }
        Endpoint::ImagesEdits => {
            if matches!(&request.body, OperationBody::Form(form) if form.has_file("mask")) {
                return Err(refuse(
                    "mask",
                    "Bedrock reads a mask's black pixels as the area to change, OpenAI its transparent ones; name the area in mask_prompt instead",
                ));
            }
            let mask_prompt = fields.text("mask_prompt").ok_or_else(|| {
                refuse(
                    "mask_prompt",
                    "a Bedrock edit (inpainting) needs mask_prompt, naming what to change",
                )
            })?;
            let mut images = files_b64(request, "image");
            if images.len() != 1 {
                return Err(refuse("image", "a Bedrock edit takes exactly one image"));
            }
            params.insert("image".into(), json!(images.remove(0)));
            params.insert("maskPrompt".into(), json!(mask_prompt));
            if let Some(prompt) = fields.text("prompt") {
                params.insert("text".into(), json!(prompt));
            }
            ("INPAINTING", "inPaintingParams")
        }
        Endpoint::ImagesVariations => {
            let images = files_b64(request, "image");
            if !(1..=5).contains(&images.len()) {
                return Err(refuse("image", "a Bedrock variation takes 1 to 5 images"));
            }
            params.insert("images".into(), json!(images));
            if let Some(prompt) = fields.text("prompt") {
                params.insert("text".into(), json!(prompt));
            }
            ("IMAGE_VARIATION", "imageVariationParams")
        }
        other => {
            return Err(refuse(
                "model",
                format!("{} is not an images endpoint", other.path()),
            ));
        }
    };
    Ok(json!({"taskType": task, key: Value::Object(params), "imageGenerationConfig": config}))
}

/// Stability's aspect ratio for an OpenAI size.
fn aspect_ratio(size: (u64, u64)) -> Option<&'static str> {
    Some(match size {
        (w, h) if w == h => "1:1",
        (1792, 1024) => "16:9",
        (1024, 1792) => "9:16",
        (1536, 1024) => "3:2",
        (1024, 1536) => "2:3",
        _ => return None,
    })
}

fn stability_body(
    request: &OperationRequest,
    fields: &Fields<'_>,
) -> Result<Value, Untranslatable> {
    if request.endpoint != Endpoint::ImagesGenerations {
        return Err(refuse(
            "model",
            "Stability AI models on Bedrock serve image generation only here; use Nova Canvas for edits and variations",
        ));
    }
    if fields.number("n")?.is_some_and(|n| n != 1) {
        return Err(refuse("n", "Stability AI models make one image a call"));
    }
    if quality(request)? != "standard" {
        return Err(refuse("quality", "Stability AI models have one quality"));
    }
    let prompt = fields
        .text("prompt")
        .ok_or_else(|| refuse("prompt", "is required"))?;
    let mut body = json!({"prompt": prompt});
    if field(request, "size").is_some() {
        let ratio = aspect_ratio(size(request)?).ok_or_else(|| {
            refuse(
                "size",
                "Stability AI models take 1024x1024, 1792x1024, 1024x1792, 1536x1024 or 1024x1536",
            )
        })?;
        body["aspect_ratio"] = json!(ratio);
    }
    if let Some(negative) = fields.text("negative_prompt") {
        body["negative_prompt"] = json!(negative);
    }
    if let Some(seed) = fields.number("seed")? {
        body["seed"] = json!(seed);
    }
    Ok(body)
}

/// A Bedrock image answer as OpenAI's: one `b64_json` per image, and for Nova and Titan the
/// size and quality tier they were made at (read back by the meter).
pub fn from_bedrock(
    answer: &Value,
    request: &OperationRequest,
    model_id: &str,
) -> Result<Value, String> {
    if let Some(error) = answer["error"].as_str().filter(|e| !e.is_empty()) {
        return Err(format!("Bedrock made no image: {error}"));
    }
    if let Some(reason) = answer["finish_reasons"]
        .as_array()
        .and_then(|r| r.iter().find_map(Value::as_str))
    {
        return Err(format!("Bedrock made no image: {reason}"));
    }
    let images = answer["images"]
        .as_array()
        .ok_or("a Bedrock image answer has no images")?;
    let data: Vec<Value> = images
        .iter()
        .filter_map(Value::as_str)
        .map(|b64| json!({"b64_json": b64}))
        .collect();
    let mut out = json!({"created": super::now_secs(), "data": data});
    if family(model_id) == Some(Family::TaskType) {
        let (w, h) = size(request).map_err(|e| e.to_string())?;
        out["size"] = json!(format!("{w}x{h}"));
        out["quality"] = json!(quality(request).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn parse(endpoint: Endpoint, mut body: Value) -> OperationRequest {
        body["model"] = json!("m");
        OperationRequest::parse(endpoint, "application/json", &Bytes::from(body.to_string()))
            .unwrap_or_else(|e| panic!("parse: {e}"))
    }

    fn form(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> OperationRequest {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        for (name, bytes) in files {
            body.extend_from_slice(
                format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a.png\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--b--\r\n");
        OperationRequest::parse(
            Endpoint::ImagesEdits,
            "multipart/form-data; boundary=b",
            &Bytes::from(body),
        )
        .unwrap_or_else(|e| panic!("parse: {e}"))
    }

    #[test]
    fn a_generation_becomes_a_text_image_task_with_its_tier() {
        let request = parse(
            Endpoint::ImagesGenerations,
            json!({"model": "m", "prompt": "a red barn", "n": 2, "size": "1792x1024", "quality": "hd"}),
        );
        let body = to_bedrock(&request, "amazon.nova-canvas-v1:0", false).unwrap_or_default();
        assert_eq!(
            body,
            json!({"taskType": "TEXT_IMAGE", "textToImageParams": {"text": "a red barn"},
                "imageGenerationConfig": {"numberOfImages": 2, "width": 1792, "height": 1024, "quality": "premium"}})
        );
        let answer = from_bedrock(
            &json!({"images": ["AAA", "BBB"]}),
            &request,
            "amazon.nova-canvas-v1:0",
        )
        .unwrap_or_default();
        assert_eq!(answer["data"][1]["b64_json"], "BBB");
        assert_eq!(answer["size"], "1792x1024");
        assert_eq!(answer["quality"], "premium");
    }

    #[test]
    fn urls_unknown_fields_and_too_many_images_are_refused_by_name() {
        for (body, param) in [
            (
                json!({"prompt": "x", "response_format": "url"}),
                "response_format",
            ),
            (json!({"prompt": "x", "style": "vivid"}), "style"),
            (json!({"prompt": "x", "n": 6}), "n"),
            (json!({"prompt": "x", "quality": "ultra"}), "quality"),
            (json!({"prompt": "x", "size": "big"}), "size"),
        ] {
            let request = parse(Endpoint::ImagesGenerations, body);
            let err = to_bedrock(&request, "amazon.titan-image-generator-v2:0", false).err();
            assert_eq!(err.map(|e| e.param).as_deref(), Some(param));
        }
        let nulls = json!({"prompt": "x", "n": null, "size": null, "quality": null, "style": null});
        let request = parse(Endpoint::ImagesGenerations, nulls);
        assert!(to_bedrock(&request, "amazon.nova-canvas-v1:0", false).is_ok());
        let request = parse(
            Endpoint::ImagesGenerations,
            json!({"prompt": "x", "style": "vivid"}),
        );
        assert!(to_bedrock(&request, "amazon.nova-canvas-v1:0", true).is_ok());
        let err = to_bedrock(&request, "meta.llama3", true).err();
        assert_eq!(err.map(|e| e.param).as_deref(), Some("model"));
    }

    #[test]
    fn stability_takes_one_image_at_an_aspect_ratio() {
        let request = parse(
            Endpoint::ImagesGenerations,
            json!({"prompt": "a cat", "size": "1024x1792", "negative_prompt": "dogs"}),
        );
        let body = to_bedrock(&request, "stability.sd3-5-large-v1:0", false).unwrap_or_default();
        assert_eq!(
            body,
            json!({"prompt": "a cat", "aspect_ratio": "9:16", "negative_prompt": "dogs"})
        );
        let request = parse(
            Endpoint::ImagesGenerations,
            json!({"prompt": "a cat", "n": 2}),
        );
        assert!(to_bedrock(&request, "stability.stable-image-core-v1:1", false).is_err());
        let filtered = json!({"finish_reasons": ["Filter reason: prompt"]});
        assert!(from_bedrock(&filtered, &request, "stability.sd3-5-large-v1:0").is_err());
    }

    #[test]
    fn an_edit_is_inpainting_named_by_mask_prompt_and_a_mask_file_is_refused() {
        let request = form(
            &[
                ("model", "m"),
                ("prompt", "a hat"),
                ("mask_prompt", "the head"),
            ],
            &[("image", b"PNG")],
        );
        let body = to_bedrock(&request, "amazon.nova-canvas-v1:0", false).unwrap_or_default();
        assert_eq!(body["taskType"], "INPAINTING");
        assert_eq!(
            body["inPaintingParams"],
            json!({"image": "UE5H", "maskPrompt": "the head", "text": "a hat"})
        );
        let with_mask = form(
            &[("model", "m"), ("prompt", "a hat"), ("mask_prompt", "x")],
            &[("image", b"PNG"), ("mask", b"M")],
        );
        let err = to_bedrock(&with_mask, "amazon.nova-canvas-v1:0", false).err();
        assert_eq!(err.map(|e| e.param).as_deref(), Some("mask"));
        let no_prompt = form(&[("model", "m"), ("prompt", "a hat")], &[("image", b"PNG")]);
        let err = to_bedrock(&no_prompt, "amazon.nova-canvas-v1:0", false).err();
        assert_eq!(err.map(|e| e.param).as_deref(), Some("mask_prompt"));
    }
}
