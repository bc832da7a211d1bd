//! Posting budget alerts to a webhook, off the request path: each post is its own task, at most
//! [`MAX_IN_FLIGHT`] at once (more are dropped and logged, never queued without bound), each
//! within the configured timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use tokio::sync::Semaphore;

use crate::providers::http::HttpClient;
use crate::store::BudgetAlert;

/// Alert posts in flight at once.
pub const MAX_IN_FLIGHT: usize = 8;

pub struct Webhook {
    url: hyper::Uri,
    client: HttpClient,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl Webhook {
    pub fn new(url: &str, timeout: Duration) -> Result<Webhook, String> {
        let url: hyper::Uri = url
            .parse()
            .map_err(|e| format!("webhook_url: not a URL: {e}"))?;
        let client = HttpClient::new(timeout)?;
        Ok(Webhook {
            url,
            client,
            timeout,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Posts `alert` with `message` as JSON in a task of its own; returns at once.
    pub fn post(&self, alert: &BudgetAlert, message: &str) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(subject = %alert.subject, "budget alert not posted: too many posts in flight");
            return;
        };
        let mut body = serde_json::to_value(alert).unwrap_or_default();
        body["event"] = "budget.threshold".into();
        body["message"] = message.into();
        let request = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        let Ok(request) = request else { return };
        let client = self.client.clone();
        let timeout = self.timeout;
        let subject = alert.subject.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match client.send("budget webhook", request, timeout).await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(%subject, status = %response.status(), "budget webhook refused the alert");
                }
                Err(e) => tracing::warn!(%subject, error = %e, "budget alert not posted"),
            }
        });
    }
}
