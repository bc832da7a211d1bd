//! JSON Schema (as OpenAI tools carry it) -> the Gemini `Schema` object (an OpenAPI 3.0 subset) used
//! in `functionDeclarations[].parameters`. Called by [`super::request`] for each tool.
//!
//! Gemini rejects keywords it does not know, so the conversion keeps only the documented subset
//! (<https://ai.google.dev/api/caching#Schema>): `type`, `format`, `title`, `description`,
//! `nullable`, `enum`, `properties`, `required`, `items`, `anyOf`, `minItems`, `maxItems`,
//! `minProperties`, `maxProperties`, `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`,
//! `example`, `default`, `propertyOrdering`.
//!
//! Rewritten rather than dropped:
//! - `type` becomes upper case (`STRING`, `OBJECT`, ...); `"type": ["string", "null"]` becomes
//!   `STRING` + `nullable: true`; several non-null types become `anyOf`.
//! - `anyOf`/`oneOf` members of type `null` become `nullable: true`; `oneOf` becomes `anyOf`.
//! - `const: "x"` becomes `enum: ["x"]`; `allOf` with one member is inlined.
//! - local `$ref` (`#/$defs/..`, `#/definitions/..`) is inlined (recursive schemas are rejected).
//!
//! Stripped (documented loss, the model sees a looser schema): `$schema`, `$id`, `$defs`,
//! `definitions`, `$comment`, `additionalProperties`, `patternProperties`, `examples`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `uniqueItems`, `readOnly`, `writeOnly`,
//! `deprecated`, `const` of a non-string, `enum` with non-string members (Gemini enums are strings),
//! `format` values Gemini does not accept for the type (it accepts `enum`/`date-time` for strings,
//! `float`/`double` for numbers, `int32`/`int64` for integers), and any other keyword.
//! `not`, `if`/`then`/`else` and multi-member `allOf` are rejected: dropping them would silently
//! change which arguments are valid.

use serde_json::{Map, Value};

use super::{TranslateError, unsupported};

/// How deep `$ref` inlining may go before the schema is called recursive.
const MAX_DEPTH: usize = 32;

/// Converts `schema` (the whole `parameters` object) for Gemini. `param` names it in errors.
pub fn to_gemini(schema: &Value, param: &str) -> Result<Value, TranslateError> {
    convert(schema, schema, param, 0)
}

fn convert(node: &Value, root: &Value, param: &str, depth: usize) -> Result<Value, TranslateError> {
    if depth > MAX_DEPTH {
        return Err(unsupported(
            param,
            "schema is recursive or nested too deeply for Gemini (no $ref support)",
        ));
    }
    let Some(obj) = node.as_object() else {
        // `true` / `{}`-like schemas: Gemini has no "anything" type; an empty object is closest.
        return Ok(Value::Object(Map::new()));
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let target = resolve_ref(root, reference).ok_or_else(|| {
            unsupported(
                param,
                format!("$ref {reference:?} is not a local definition"),
            )
        })?;
        return convert(target, root, param, depth + 1);
    }
    for key in ["not", "if", "then", "else"] {
        if obj.contains_key(key) {
            return Err(unsupported(
                format!("{param}.{key}"),
                "Gemini function schemas cannot express this keyword",
            ));
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        if all.len() != 1 {
            return Err(unsupported(
                format!("{param}.allOf"),
                "only a single-member allOf can be translated for Gemini",
            ));
        }
        let mut merged = obj.clone();
        merged.remove("allOf");
        if let Some(inner) = all[0].as_object() {
            for (k, v) in inner {
                merged.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        return convert(&Value::Object(merged), root, param, depth + 1);
    }

    let mut out = Map::new();
    let mut nullable = obj
        .get("nullable")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    // type
    let mut gemini_type: Option<String> = None;
    match obj.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => gemini_type = Some(t.to_ascii_uppercase()),
        Some(Value::Array(types)) => {
            let non_null: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            if non_null.len() < types.len() {
                nullable = true;
            }
            match non_null.as_slice() {
                [] => {}
                [one] => gemini_type = Some(one.to_ascii_uppercase()),
                many => {
                    let any: Vec<Value> = many
                        .iter()
                        .map(|t| {
                            let mut single = obj.clone();
                            single.insert("type".into(), Value::String((*t).to_string()));
                            convert(&Value::Object(single), root, param, depth + 1)
                        })
                        .collect::<Result<_, _>>()?;
                    out.insert("anyOf".into(), Value::Array(any));
                    if nullable {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    return Ok(Value::Object(out));
                }
            }
        }
        _ => {}
    }

    // anyOf / oneOf
    let alternatives = obj
        .get("anyOf")
        .or_else(|| obj.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(alternatives) = alternatives {
        let mut kept = Vec::new();
        for (i, alt) in alternatives.iter().enumerate() {
            if alt.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
                continue;
            }
            kept.push(convert(
                alt,
                root,
                &format!("{param}.anyOf[{i}]"),
                depth + 1,
            )?);
        }
        if kept.len() == 1 && gemini_type.is_none() {
            // `anyOf: [X, null]` is how pydantic spells Optional[X]: flatten it.
            if let Some(Value::Object(inner)) = kept.pop() {
                for (k, v) in inner {
                    out.insert(k, v);
                }
            }
        } else if !kept.is_empty() {
            out.insert("anyOf".into(), Value::Array(kept));
        }
    }

    if let Some(t) = &gemini_type {
        out.insert("type".into(), Value::String(t.clone()));
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }

    for key in [
        "title",
        "description",
        "example",
        "default",
        "propertyOrdering",
    ] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    for key in [
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "pattern",
    ] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::String(format)) = obj.get("format") {
        let allowed = match gemini_type.as_deref() {
            Some("STRING") => ["enum", "date-time"].contains(&format.as_str()),
            Some("NUMBER") => ["float", "double"].contains(&format.as_str()),
            Some("INTEGER") => ["int32", "int64"].contains(&format.as_str()),
            _ => false,
        };
        if allowed {
            out.insert("format".into(), Value::String(format.clone()));
        }
    }
    let enum_values = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = enum_values
        && !values.is_empty()
        && values.iter().all(Value::is_string)
    {
        out.insert("enum".into(), Value::Array(values));
        if gemini_type.is_none() {
            out.insert("type".into(), Value::String("STRING".into()));
        }
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        let mut converted = Map::new();
        for (name, prop) in props {
            converted.insert(
                name.clone(),
                convert(prop, root, &format!("{param}.properties.{name}"), depth + 1)?,
            );
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if let Some(Value::Array(required)) = obj.get("required") {
        out.insert("required".into(), Value::Array(required.clone()));
    }
    if let Some(items) = obj.get("items") {
        out.insert(
            "items".into(),
            convert(items, root, &format!("{param}.items"), depth + 1)?,
        );
    }
    Ok(Value::Object(out))
}

fn resolve_ref<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix('#')?;
    if path.is_empty() {
        return Some(root);
    }
    root.pointer(path)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strips_unsupported_keywords_and_uppercases_types() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City name", "format": "uri"},
                "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "exclusiveMaximum": 15}
            },
            "required": ["city"]
        });
        assert_eq!(
            to_gemini(&schema, "tools[0]").ok(),
            Some(json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING", "description": "City name"},
                    "unit": {"type": "STRING", "nullable": true, "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "INTEGER", "minimum": 1}
                },
                "required": ["city"]
            }))
        );
    }

    #[test]
    fn inlines_local_refs_and_flattens_optional() {
        let schema = json!({
            "type": "object",
            "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
            "properties": {
                "at": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]},
                "kind": {"const": "pin"}
            }
        });
        assert_eq!(
            to_gemini(&schema, "p").ok(),
            Some(json!({
                "type": "OBJECT",
                "properties": {
                    "at": {"type": "OBJECT", "nullable": true, "properties": {"x": {"type": "NUMBER"}}},
                    "kind": {"type": "STRING", "enum": ["pin"]}
                }
            }))
        );
    }

    #[test]
    fn rejects_recursive_refs_and_not() {
        let recursive = json!({
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node"
        });
        assert!(matches!(
            to_gemini(&recursive, "p"),
            Err(TranslateError::Unsupported { .. })
        ));
        let negated = json!({"type": "object", "properties": {"a": {"not": {"type": "string"}}}});
        match to_gemini(&negated, "p") {
            Err(TranslateError::Unsupported { param, .. }) => {
                assert_eq!(param, "p.properties.a.not")
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}
