//! The translation error and options every translator shares, in both directions: a client's
//! format to the canonical one (`wire/`) and the canonical one to a provider's (`providers/`).
//! It sits in `wire` because providers may import wire and wire never imports providers.

use serde_json::Value;
use thiserror::Error;

/// Why a translation failed.
#[derive(Debug, Error)]
pub enum TranslateError {
    /// A parameter the target cannot honour; `param` names it (e.g. "logit_bias", "messages[2].content[0]").
    #[error("{param}: {message}")]
    Unsupported { param: String, message: String },
    #[error("{param}: {message}")]
    Invalid { param: String, message: String },
    /// The provider's answer (or the canonical one) does not have the documented shape.
    #[error("malformed provider response: {0}")]
    Malformed(String),
    /// The provider reported an error inside an otherwise successful (200) stream. `body` is the
    /// error already in the OpenAI shape; `status` is the HTTP status that error stands for.
    #[error("provider error {status}: {message}")]
    ProviderError {
        status: u16,
        message: String,
        body: Value,
    },
    /// The same, from a provider whose errors carry their own type (an Anthropic `error` event:
    /// `overloaded_error`, ...); `status` is the HTTP status that type has outside a stream.
    #[error("provider error {error_type}: {message}")]
    ProviderErrorOfType {
        status: u16,
        error_type: String,
        message: String,
    },
}

/// How a request is translated when it carries something the target cannot honour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Drop unsupported parameters instead of rejecting the request.
    pub drop_unsupported: bool,
}

impl TranslateOptions {
    /// `Err(Unsupported)` unless unsupported parameters are to be dropped; the caller skips the
    /// parameter on `Ok`.
    pub(crate) fn reject(&self, param: &str, message: &str) -> Result<(), TranslateError> {
        if self.drop_unsupported {
            Ok(())
        } else {
            Err(unsupported(param, message))
        }
    }
}

pub(crate) fn unsupported(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported {
        param: param.into(),
        message: message.into(),
    }
}

pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> TranslateError {
    TranslateError::Invalid {
        param: param.into(),
        message: message.into(),
    }
}

/// Test helper: compares two JSON values and panics with both pretty-printed and the first path
/// where they differ.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_json_eq(actual: &Value, expected: &Value) {
    fn first_diff(a: &Value, e: &Value, path: String) -> Option<String> {
        match (a, e) {
            (Value::Object(am), Value::Object(em)) => {
                for key in am.keys().chain(em.keys()) {
                    let (av, ev) = (am.get(key), em.get(key));
                    match (av, ev) {
                        (Some(av), Some(ev)) => {
                            if let Some(d) = first_diff(av, ev, format!("{path}.{key}")) {
                                return Some(d);
                            }
                        }
                        _ => return Some(format!("{path}.{key}: {av:?} vs expected {ev:?}")),
                    }
                }
                None
            }
            (Value::Array(aa), Value::Array(ea)) => {
                if aa.len() != ea.len() {
                    return Some(format!(
                        "{path}: length {} vs expected {}",
                        aa.len(),
                        ea.len()
                    ));
                }
                aa.iter()
                    .zip(ea)
                    .enumerate()
                    .find_map(|(i, (av, ev))| first_diff(av, ev, format!("{path}[{i}]")))
            }
            _ if a == e => None,
            _ => Some(format!("{path}: {a} vs expected {e}")),
        }
    }
    if let Some(diff) = first_diff(actual, expected, "$".into()) {
        panic!(
            "JSON differs at {diff}\n--- actual\n{}\n--- expected\n{}",
            serde_json::to_string_pretty(actual).unwrap_or_default(),
            serde_json::to_string_pretty(expected).unwrap_or_default()
        );
    }
}
