//! `otel`: exports each finished request as an OpenTelemetry span over OTLP/HTTP (JSON
//! encoding), after the GenAI semantic conventions (`span.rs`). Off until an endpoint is known:
//! `[modules.otel] endpoint`, or the standard variables `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`), with `OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`,
//! `OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT`, `OTEL_SERVICE_NAME` and `OTEL_SDK_DISABLED`.
//!
//! On the request path a span is rendered and pushed into a bounded queue (full: dropped and
//! counted); one task per proxy posts the queue every `export_interval_ms` to the endpoint of the
//! newest chain holding the module, so a changed endpoint applies at the next export and a
//! disabled module stops exporting.

mod span;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Hooks, Module, ModuleDeps, ModuleError, Outcome};
use crate::providers::http::HttpClient;
use crate::request::RequestCtx;
use crate::secret::Secret;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "otel",
    description: "exports request spans over OTLP/HTTP with the GenAI semantic conventions (off until an endpoint is set)",
    order: 99,
    // After cost: the span carries the priced usage.
    finish_order: 86,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: OtelConfig::default_json,
    check: OtelConfig::check,
    build,
};

/// Spans waiting at most; past this they are dropped (and counted) rather than held.
const MAX_QUEUE: usize = 4_096;

/// Spans per export request.
const MAX_BATCH: usize = 512;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtelConfig {
    /// The OTLP/HTTP traces URL (`http://collector:4318/v1/traces`); absent: from the
    /// `OTEL_EXPORTER_OTLP_*` variables, and with neither, nothing is exported.
    pub endpoint: Option<String>,
    /// Extra request headers (an API key for a hosted collector); over the variables' headers.
    pub headers: BTreeMap<String, String>,
    /// `service.name` of the resource; default `OTEL_SERVICE_NAME`, else `stockyard`.
    pub service_name: Option<String>,
    /// Time between exports, in milliseconds. Default 1000.
    pub export_interval_ms: u64,
    /// How long one export may take, in milliseconds; default `OTEL_EXPORTER_OTLP_TIMEOUT`, else
    /// 10000.
    pub timeout_ms: Option<u64>,
}

impl Default for OtelConfig {
    fn default() -> Self {
        OtelConfig {
            endpoint: None,
            headers: BTreeMap::new(),
            service_name: None,
            export_interval_ms: 1_000,
            timeout_ms: None,
        }
    }
}

impl ModuleConfig for OtelConfig {
    fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(url) = &self.endpoint
            && url.parse::<hyper::Uri>().is_err()
        {
            problems.push("endpoint: not a URL".to_string());
        }
        if !(10..=600_000).contains(&self.export_interval_ms) {
            problems.push(format!(
                "export_interval_ms: must be 10..=600000 (got {})",
                self.export_interval_ms
            ));
        }
        if self.timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
            problems.push("timeout_ms: must be 1..=60000".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Where and how spans go, resolved from the config over the environment.
pub struct Target {
    pub endpoint: hyper::Uri,
    /// Header values may be credentials: kept secret, never logged.
    pub headers: Vec<(String, Secret<String>)>,
    pub service_name: String,
    pub timeout: Duration,
}

/// The export target of `config` with the environment `env`; `None`: export is off.
pub fn resolve(config: &OtelConfig, env: &dyn Fn(&str) -> Option<String>) -> Option<Target> {
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let endpoint = config
        .endpoint
        .clone()
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| {
            env("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })?;
    let endpoint: hyper::Uri = match endpoint.parse() {
        Ok(uri) => uri,
        Err(_) => {
            tracing::warn!("OTLP endpoint is not a URL; spans are not exported");
            return None;
        }
    };
    if let Some(protocol) = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .filter(|p| p != "http/json")
    {
        tracing::warn!(%protocol, "only OTLP http/json is built in; exporting spans as http/json");
    }
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for variable in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ] {
        for pair in env(variable).unwrap_or_default().split(',') {
            if let Some((k, v)) = pair.split_once('=') {
                headers.insert(k.trim().to_string(), percent_decode(v.trim()));
            }
        }
    }
    headers.extend(config.headers.clone());
    let timeout_ms = config
        .timeout_ms
        .or_else(|| {
            env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                .or_else(|| env("OTEL_EXPORTER_OTLP_TIMEOUT"))
                .and_then(|t| t.parse().ok())
        })
        .unwrap_or(10_000);
    Some(Target {
        endpoint,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect(),
        service_name: config
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "stockyard".into()),
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// `%XX` escapes, as the OTLP exporter spec allows in header values.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Policy {
    target: Target,
    interval: Duration,
}

#[derive(Default)]
pub struct Exporter {
    policies: Mutex<Vec<Weak<Policy>>>,
    started: Mutex<bool>,
    queue: Mutex<Vec<Value>>,
    pub dropped: AtomicU64,
    pub exported: AtomicU64,
}

impl Exporter {
    fn current(&self) -> Option<Arc<Policy>> {
        let mut policies = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
        policies.retain(|w| w.strong_count() > 0);
        policies.iter().rev().find_map(Weak::upgrade)
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn build(config: &serde_json::Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = OtelConfig::parse(config).map_err(ModuleError::Config)?;
    let exporter = deps.shared.get_or_init(Exporter::default);
    let policy = resolve(&config, &|name| std::env::var(name).ok()).map(|target| {
        Arc::new(Policy {
            target,
            interval: Duration::from_millis(config.export_interval_ms),
        })
    });
    if let Some(policy) = &policy {
        exporter
            .policies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(policy));
        start_task(&exporter, deps)?;
    }
    Ok(Arc::new(Otel { policy, exporter }))
}

fn start_task(exporter: &Arc<Exporter>, deps: &ModuleDeps) -> Result<(), ModuleError> {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Ok(());
    };
    let mut started = exporter
        .started
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if std::mem::replace(&mut *started, true) {
        return Ok(());
    }
    let client = HttpClient::new(Duration::from_secs(5)).map_err(ModuleError::Config)?;
    let exporter = Arc::downgrade(exporter);
    let writer = Arc::downgrade(&deps.writer);
    handle.spawn(async move {
        loop {
            let wait = exporter
                .upgrade()
                .and_then(|e| e.current())
                .map_or(Duration::from_secs(1), |p| p.interval);
            tokio::time::sleep(wait).await;
            let (Some(exporter), Some(_alive)) = (exporter.upgrade(), writer.upgrade()) else {
                return;
            };
            let spans = exporter.take();
            if spans.is_empty() {
                continue;
            }
            // Spans finished while export was on are dropped if it was turned off since.
            let Some(policy) = exporter.current() else {
                continue;
            };
            for batch in spans.chunks(MAX_BATCH) {
                let sent = export(&client, &policy.target, batch.to_vec()).await;
                let counter = if sent {
                    &exporter.exported
                } else {
                    &exporter.dropped
                };
                counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
        }
    });
    Ok(())
}

async fn export(client: &HttpClient, target: &Target, spans: Vec<Value>) -> bool {
    let body = span::export_body(&target.service_name, spans);
    let mut request =
        hyper::Request::post(target.endpoint.clone()).header(CONTENT_TYPE, "application/json");
    for (name, value) in &target.headers {
        request = request.header(name.as_str(), value.expose().as_str());
    }
    let Ok(request) = request.body(Full::new(Bytes::from(body.to_string()))) else {
        tracing::warn!("OTLP export request could not be built (a bad header?)");
        return false;
    };
    match client.send("otlp", request, target.timeout).await {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            tracing::warn!(status = %response.status(), "OTLP collector refused spans");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "OTLP spans not exported");
            false
        }
    }
}

pub struct Otel {
    /// `None`: no endpoint, nothing is rendered or queued.
    policy: Option<Arc<Policy>>,
    exporter: Arc<Exporter>,
}

#[async_trait]
impl Module for Otel {
    fn name(&self) -> &'static str {
        "otel"
    }

    fn hooks(&self) -> Hooks {
        Hooks::FINISH_NOW
    }

    fn fail_policy(&self) -> super::FailPolicy {
        super::FailPolicy::Open
    }

    fn on_finish_now(&self, ctx: &mut RequestCtx, _outcome: Outcome) {
        if self.policy.is_none() {
            return;
        }
        let span = span::from_ctx(ctx).0;
        let mut queue = self
            .exporter
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if queue.len() < MAX_QUEUE {
            queue.push(span);
        } else {
            drop(queue);
            self.exporter.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_variables_configure_export_and_config_wins() {
        let env = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318/".to_string()),
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=a%20b,x=1".to_string()),
            "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("2500".to_string()),
            "OTEL_SERVICE_NAME" => Some("gateway".to_string()),
            _ => None,
        };
        let target = resolve(&OtelConfig::default(), &env).unwrap_or_else(|| panic!("off"));
        assert_eq!(
            target.endpoint.to_string(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(target.service_name, "gateway");
        assert_eq!(target.timeout, Duration::from_millis(2500));
        let api_key = target.headers.iter().find(|(k, _)| k == "api-key");
        assert_eq!(api_key.map(|(_, v)| v.expose().as_str()), Some("a b"));

        let configured = OtelConfig {
            endpoint: Some("http://other:4318/v1/traces".into()),
            ..OtelConfig::default()
        };
        let target = resolve(&configured, &env).unwrap_or_else(|| panic!("off"));
        assert_eq!(target.endpoint.to_string(), "http://other:4318/v1/traces");

        assert!(resolve(&OtelConfig::default(), &|_| None).is_none());
        let disabled = |name: &str| match name {
            "OTEL_SDK_DISABLED" => Some("true".to_string()),
            other => env(other),
        };
        assert!(resolve(&OtelConfig::default(), &disabled).is_none());
    }
}
