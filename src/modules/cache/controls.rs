//! What a request says about caching: `Cache-Control` (`no-cache`: skip the lookup, still store;
//! `no-store`: neither; `max-age=N`: accept no entry older than N seconds, and keep this answer at
//! most N), `x-stockyard-cache-ttl` (seconds to keep this answer) and
//! `x-stockyard-cache-namespace` (a sub-namespace of the tenant's own, where config allows).

use hyper::HeaderMap;

use crate::request::ApiError;

pub const TTL_HEADER: &str = "x-stockyard-cache-ttl";
pub const NAMESPACE_HEADER: &str = "x-stockyard-cache-namespace";
/// The response header that says what the cache did.
pub const OUTCOME_HEADER: &str = "x-stockyard-cache";
pub const SIMILARITY_HEADER: &str = "x-stockyard-cache-similarity";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Controls {
    pub no_cache: bool,
    pub no_store: bool,
    pub max_age_s: Option<u64>,
    pub ttl_s: Option<u64>,
    pub namespace: Option<String>,
}

impl Controls {
    /// The controls a request's headers carry. `Cache-Control` directives that do not parse are
    /// ignored, as HTTP asks; Stockyard's own headers that do not parse are the client's error.
    pub fn from_headers(headers: &HeaderMap) -> Result<Controls, ApiError> {
        let mut controls = Controls::default();
        for value in headers.get_all(hyper::header::CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',').map(str::trim) {
                let lower = directive.to_ascii_lowercase();
                match lower.as_str() {
                    "no-cache" => controls.no_cache = true,
                    "no-store" => controls.no_store = true,
                    _ => {
                        if let Some(age) = lower.strip_prefix("max-age=") {
                            controls.max_age_s = age.trim_matches('"').parse().ok();
                        }
                    }
                }
            }
        }
        if let Some(value) = headers.get(TTL_HEADER) {
            let seconds = value.to_str().ok().and_then(|v| v.trim().parse().ok());
            controls.ttl_s = Some(seconds.ok_or_else(|| {
                invalid(
                    TTL_HEADER,
                    "must be a whole number of seconds, such as 3600",
                )
            })?);
        }
        if let Some(value) = headers.get(NAMESPACE_HEADER) {
            let name = value.to_str().ok().map(str::trim).filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
            controls.namespace = Some(
                name.ok_or_else(|| {
                    invalid(
                        NAMESPACE_HEADER,
                        "must be 1 to 64 letters, digits, '-', '_' or '.'",
                    )
                })?
                .to_string(),
            );
        }
        Ok(controls)
    }

    /// Whether the client asked for caching outright (which overrides the temperature limit).
    pub fn asks_for_caching(&self) -> bool {
        self.ttl_s.is_some() || self.max_age_s.is_some()
    }
}

fn invalid(header: &str, rule: &str) -> ApiError {
    ApiError::InvalidField {
        param: Some(header.to_string()),
        message: format!("the {header} header {rule}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{CACHE_CONTROL, HeaderValue};

    #[test]
    fn directives_are_read_in_any_case_and_order() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("No-Cache, max-age=30"),
        );
        let c = Controls::from_headers(&headers).unwrap();
        assert!(c.no_cache && !c.no_store);
        assert_eq!(c.max_age_s, Some(30));
        headers.insert(NAMESPACE_HEADER, HeaderValue::from_static("team-a/../b"));
        let refused = Controls::from_headers(&headers).unwrap_err();
        assert!(
            matches!(&refused, ApiError::InvalidField { param: Some(p), .. } if p == NAMESPACE_HEADER),
            "{refused:?}"
        );
        headers.remove(NAMESPACE_HEADER);
        headers.insert(TTL_HEADER, HeaderValue::from_static("an hour"));
        assert!(Controls::from_headers(&headers).is_err());
    }
}
