//! An [`ApiError`] as an HTTP response: its status, its OpenAI-shaped body, and the headers that
//! go with it (an upstream's own headers; `retry-after` when the server is at a limit).

use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use super::ProxyBody;
use crate::request::ApiError;

impl ApiError {
    pub fn into_response(self) -> hyper::Response<ProxyBody> {
        let status = self.status();
        let body = self.body();
        let mut response = hyper::Response::new(ProxyBody::full(body));
        *response.status_mut() = status;
        match self {
            ApiError::Upstream { headers, .. } => {
                for (name, value) in headers.iter() {
                    response.headers_mut().append(name, value.clone());
                }
            }
            ApiError::Overloaded { .. } => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited { retry_after_s, .. }
            | ApiError::Unavailable {
                retry_after_s: Some(retry_after_s),
                ..
            } => {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
            }
            _ => {}
        }
        response
            .headers_mut()
            .entry(CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        response
    }
}
