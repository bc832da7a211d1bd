//! OpenAI image generation on Imagen (`models/{model}:predict`): the prompt, the count and the
//! size (as an aspect ratio) translate; Imagen answers with image bytes only, so a request for
//! URLs is refused by name. Reference: https://ai.google.dev/gemini-api/docs/imagen

use serde_json::{Map, Value, json};

use crate::providers::Untranslatable;

fn refuse(param: &str, message: &str) -> Untranslatable {
    Untranslatable {
        param: param.to_string(),
        message: message.to_string(),
    }
}

/// Imagen's aspect ratio for an OpenAI size.
fn aspect_ratio(size: &str) -> Option<&'static str> {
    Some(match size {
        "auto" | "256x256" | "512x512" | "1024x1024" => "1:1",
        "1792x1024" => "16:9",
        "1024x1792" => "9:16",
        "1536x1024" => "4:3",
        "1024x1536" => "3:4",
        _ => return None,
    })
}

/// An OpenAI `images/generations` body as Imagen's `predict` body.
pub fn to_imagen(map: &Map<String, Value>) -> Result<Value, Untranslatable> {
    let prompt = map
        .get("prompt")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse("prompt", "must be a string"))?;
    if map.get("response_format").and_then(Value::as_str) == Some("url") {
        return Err(refuse(
            "response_format",
            "Imagen answers with image bytes only; ask for b64_json",
        ));
    }
    let mut parameters = json!({"sampleCount": map.get("n").and_then(Value::as_u64).unwrap_or(1)});
    if let Some(size) = map.get("size").and_then(Value::as_str) {
        let ratio = aspect_ratio(size).ok_or_else(|| {
            refuse(
                "size",
                "Imagen takes 1024x1024, 1792x1024, 1024x1792, 1536x1024 or 1024x1536",
            )
        })?;
        parameters["aspectRatio"] = json!(ratio);
    }
    Ok(json!({"instances": [{"prompt": prompt}], "parameters": parameters}))
}

/// Imagen's predictions as an OpenAI images answer.
pub fn from_imagen(answer: &Value) -> Result<Value, String> {
    let predictions = answer["predictions"]
        .as_array()
        .ok_or("an Imagen answer has no predictions")?;
    let data: Vec<Value> = predictions
        .iter()
        .filter_map(|p| p["bytesBase64Encoded"].as_str())
        .map(|b64| json!({"b64_json": b64}))
        .collect();
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(json!({"created": created, "data": data}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_becomes_an_aspect_ratio_and_urls_are_refused() {
        let Value::Object(map) = json!({"prompt": "a cat", "n": 2, "size": "1792x1024"}) else {
            return;
        };
        let body = to_imagen(&map).unwrap_or_default();
        assert_eq!(body["parameters"]["aspectRatio"], "16:9");
        assert_eq!(body["parameters"]["sampleCount"], 2);
        let Value::Object(map) = json!({"prompt": "a cat", "response_format": "url"}) else {
            return;
        };
        assert_eq!(
            to_imagen(&map).err().map(|e| e.param).as_deref(),
            Some("response_format")
        );
    }
}
