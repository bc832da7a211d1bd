//! Posting an alert: generic JSON to `webhook_url`, Slack's incoming-webhook shape
//! (`{"text": ...}`, see <https://api.slack.com/messaging/webhooks>) to `slack_webhook_url`.
//! Awaited by the evaluation task (never on the request path), each post within the timeout.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::providers::http::HttpClient;
use crate::store::alerts::AlertRecord;

pub struct Delivery {
    client: HttpClient,
    timeout: Duration,
    generic: Option<hyper::Uri>,
    slack: Option<hyper::Uri>,
}

impl Delivery {
    pub fn new(
        generic: Option<&str>,
        slack: Option<&str>,
        timeout: Duration,
    ) -> Result<Delivery, String> {
        let parse = |field: &str, url: Option<&str>| {
            url.map(|u| {
                u.parse::<hyper::Uri>()
                    .map_err(|e| format!("{field}: not a URL: {e}"))
            })
            .transpose()
        };
        Ok(Delivery {
            client: HttpClient::new(timeout)?,
            timeout,
            generic: parse("webhook_url", generic)?,
            slack: parse("slack_webhook_url", slack)?,
        })
    }

    /// Posts `alert` to every configured hook; true when at least one answered 2xx.
    pub async fn post(&self, alert: &AlertRecord) -> bool {
        let mut delivered = false;
        if let Some(url) = &self.generic {
            delivered |= self.send(url, generic_body(alert)).await;
        }
        if let Some(url) = &self.slack {
            delivered |= self.send(url, json!({ "text": slack_text(alert) })).await;
        }
        delivered
    }

    async fn send(&self, url: &hyper::Uri, body: Value) -> bool {
        let request = hyper::Request::post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        let Ok(request) = request else { return false };
        match self
            .client
            .send("alert webhook", request, self.timeout)
            .await
        {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                tracing::warn!(status = %response.status(), "alert webhook refused the alert");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "alert not posted");
                false
            }
        }
    }
}

pub fn generic_body(alert: &AlertRecord) -> Value {
    json!({
        "event": "stockyard.alert",
        "rule": alert.rule,
        "kind": alert.kind,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "ts_ms": alert.ts_ms,
    })
}

fn slack_text(alert: &AlertRecord) -> String {
    format!(
        ":rotating_light: *Stockyard alert* `{}`: {}",
        alert.rule, alert.message
    )
}
