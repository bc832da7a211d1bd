//! One call to the external guardrail: POST a JSON document, read a JSON verdict, within the
//! timeout. What the webhook may answer:
//!
//! ```json
//! {"action": "allow"}
//! {"action": "block", "rule": "pii-policy-7"}
//! {"action": "rewrite", "body": { ...the request or answer to use instead... }}
//! ```

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::Value;

use crate::providers::http::HttpClient;

/// The largest verdict read back, in bytes.
const MAX_VERDICT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Block {
        #[serde(default)]
        rule: Option<String>,
    },
    Rewrite {
        body: Value,
    },
}

pub struct Hook {
    url: hyper::Uri,
    client: HttpClient,
    timeout: Duration,
}

impl Hook {
    pub fn new(url: &str, timeout: Duration) -> Result<Hook, String> {
        let url: hyper::Uri = url.parse().map_err(|e| format!("url: not a URL: {e}"))?;
        if url.scheme().is_none() || url.host().is_none() {
            return Err(format!("url: needs a scheme and a host (got {url})"));
        }
        Ok(Hook {
            url,
            client: HttpClient::new(timeout)?,
            timeout,
        })
    }

    /// Asks the webhook about `document`; an error says why no verdict came (the caller applies
    /// the fail policy). Cancel-safe: dropping the future drops the call.
    pub async fn ask(&self, document: &Value) -> Result<Decision, String> {
        let request = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(document.to_string())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let call = async {
            let response = self
                .client
                .send("guard_webhook", request, self.timeout)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("webhook answered {status}"));
            }
            let body = http_body_util::Limited::new(response.into_body(), MAX_VERDICT_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the verdict: {e}"))?
                .to_bytes();
            serde_json::from_slice::<Decision>(&body)
                .map_err(|e| format!("the verdict is not allow, block or rewrite: {e}"))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(format!("no verdict within {} ms", self.timeout.as_millis())),
        }
    }
}
