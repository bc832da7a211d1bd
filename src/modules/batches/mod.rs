//! `batches`: files and batches a provider holds for a client (`/v1/files`, `/v1/batches`,
//! Anthropic's `/v1/messages/batches`).
//!
//! - `on_request` chooses the provider: for a call on an object, the one that holds it (and the
//!   credential it was made with, whose account holds it); for a create or a list, the
//!   `x-stockyard-provider` header, else the first configured provider that serves the endpoint.
//!   An object belongs to the virtual key that made it (and that key's team): to any other key it
//!   is unknown, a 404 before anything goes upstream, like an id never made. A static key or
//!   local mode is the operator's and sees everything.
//! - `on_response` records what was made (through the writer; kept in memory too, since a create
//!   is followed at once by a retrieve the writer may not have committed), narrows a list to what
//!   the caller may see, and, the first time a batch's output is fetched through the proxy,
//!   reads its lines: each request's usage becomes a request of its own at finish
//!   (`ctx.usage.parts`), priced at batch prices, charged and traced. The batch is marked costed
//!   before that, in memory and in the store, so a second fetch charges nothing.
//! - On a create, a key limited to some models (or whose team is) makes no batch whose requests
//!   name others: 403 naming the model, before the create goes upstream ([`models`]). A batch goes
//!   to the provider holding its input file, and a key may only use its own (or its team's).

pub mod models;
pub mod output;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::registry::{ModuleConfig, ModuleSpec};
use super::{Answer, Hooks, Module, ModuleDeps, ModuleError, Verdict};
use crate::providers::ProviderRegistry;
use crate::request::grant::Grant;
use crate::request::{ApiError, BilledPart, RequestCtx};
use crate::store::batches::{BatchObject, BatchStore};
use crate::store::now_ms;
use crate::store::writer::Writer;
use crate::wire::openai::{Action, Endpoint, Inbound, ResourceRequest};

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "batches",
    description: "routes files and batches to the provider and credential that hold them, shows each only to the key or team that made it, and prices a batch's output once",
    // After the budgets (30): a key that spent its budget makes no batch.
    order: 38,
    finish_order: 38,
    enabled_by_default: true,
    required: super::registry::never_required,
    default_config: BatchesConfig::default_json,
    check: BatchesConfig::check,
    build,
};

/// The header naming the provider of a create or a list.
pub const PROVIDER_HEADER: &str = "x-stockyard-provider";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchesConfig {
    /// Records kept in memory; older ones are read from the database.
    pub cache_entries: usize,
}

impl Default for BatchesConfig {
    fn default() -> Self {
        BatchesConfig {
            cache_entries: 10_000,
        }
    }
}

impl ModuleConfig for BatchesConfig {
    fn validate(&self) -> Result<(), String> {
        if self.cache_entries == 0 {
            return Err("cache_entries: must be at least 1".into());
        }
        Ok(())
    }
}

fn build(config: &Value, deps: &ModuleDeps) -> Result<Arc<dyn Module>, ModuleError> {
    let config = BatchesConfig::parse(config).map_err(ModuleError::Config)?;
    let book = deps.shared.get_or_init(|| Book {
        memory: Mutex::default(),
        store: deps.store.batches.clone(),
        writer: deps.writer.clone(),
        capacity: Mutex::new(config.cache_entries),
    });
    *book.capacity.lock().unwrap_or_else(PoisonError::into_inner) = config.cache_entries;
    Ok(Arc::new(Batches {
        book,
        providers: deps.providers.clone(),
    }))
}

/// The records: recent ones in memory, all of them in the store.
struct Book {
    memory: Mutex<HashMap<String, BatchObject>>,
    store: Arc<dyn BatchStore>,
    writer: Arc<Writer>,
    capacity: Mutex<usize>,
}

impl Book {
    async fn get(&self, id: &str) -> Option<BatchObject> {
        if let Some(found) = self.lock().get(id) {
            return Some(found.clone());
        }
        let store = self.store.clone();
        let key = id.to_string();
        let read = tokio::task::spawn_blocking(move || store.batch_object(&key)).await;
        match read {
            Ok(Ok(Some(record))) => {
                self.remember(record.clone());
                Some(record)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "batch record unreadable");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "batch record read failed");
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BatchObject>> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, record: BatchObject) {
        let capacity = *self.capacity.lock().unwrap_or_else(PoisonError::into_inner);
        let mut memory = self.lock();
        if memory.len() >= capacity {
            // Everything here is in the store too (or queued for it): forgetting costs a read.
            memory.clear();
        }
        memory.insert(record.id.clone(), record);
    }

    fn save(&self, record: BatchObject) {
        self.remember(record.clone());
        self.writer.submit_batch_object(record);
    }

    /// Marks the batch costed; `false` when it already was (its output is priced only once).
    /// The caller read the record first, so it is in memory.
    fn claim_costing(&self, batch_id: &str) -> bool {
        let claimed = {
            let mut memory = self.lock();
            match memory.get_mut(batch_id) {
                Some(record) if record.costed_ms.is_none() => {
                    record.costed_ms = Some(now_ms());
                    Some(record.clone())
                }
                _ => None,
            }
        };
        match claimed {
            Some(record) => {
                self.writer.submit_batch_object(record);
                true
            }
            None => false,
        }
    }
}

pub struct Batches {
    book: Arc<Book>,
    providers: Arc<ProviderRegistry>,
}

/// Who asks: the operator (a static key, or local mode) sees every object.
#[derive(Clone)]
struct Viewer {
    key_id: Option<String>,
    team_id: Option<String>,
    operator: bool,
}

impl Viewer {
    fn of(ctx: &RequestCtx) -> Viewer {
        match &ctx.identity.grant {
            Some(grant) => Viewer {
                key_id: Some(grant.key_id.clone()),
                team_id: grant.team_id().map(String::from),
                operator: false,
            },
            None => Viewer {
                key_id: ctx.identity.key_id.clone(),
                team_id: None,
                operator: true,
            },
        }
    }

    fn sees(&self, record: &BatchObject) -> bool {
        if record.deleted {
            return false;
        }
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        self.operator || same(&record.key_id, &self.key_id) || same(&record.team_id, &self.team_id)
    }
}

/// What `on_request` learned, for `on_response`.
#[derive(Clone)]
struct Call {
    viewer: Viewer,
    provider: String,
    /// The object named in the path, when the store knows it.
    record: Option<BatchObject>,
}

fn kind_of(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Files => "file",
        Endpoint::Batches => "batch",
        _ => "message_batch",
    }
}

fn not_found(request: &ResourceRequest) -> ApiError {
    ApiError::AdminNotFound {
        message: format!(
            "no {} with id {:?}",
            kind_of(request.endpoint).replace('_', " "),
            request.id.as_deref().unwrap_or_default()
        ),
    }
}

impl Batches {
    /// The provider a create or a list goes to.
    fn provider_for(&self, ctx: &RequestCtx) -> Result<String, ApiError> {
        let endpoint = ctx.request.endpoint;
        let named = ctx
            .request
            .headers
            .get(PROVIDER_HEADER)
            .and_then(|v| v.to_str().ok());
        let serving: Vec<String> = self
            .providers
            .providers()
            .iter()
            .filter(|p| p.serves(endpoint))
            .map(|p| p.name().to_string())
            .collect();
        match named {
            Some(name) if serving.iter().any(|s| s == name) => Ok(name.to_string()),
            Some(name) => Err(ApiError::InvalidField {
                param: Some(PROVIDER_HEADER.into()),
                message: format!(
                    "provider {name:?} does not serve {}; these do: {}",
                    endpoint.path().trim_start_matches('/'),
                    if serving.is_empty() { "none".to_string() } else { serving.join(", ") }
                ),
            }),
            None => serving.into_iter().next().ok_or_else(|| ApiError::InvalidField {
                param: None,
                message: format!(
                    "no configured provider serves {}; configure one that does (openai, azure or anthropic)",
                    endpoint.path().trim_start_matches('/')
                ),
            }),
        }
    }

    /// A list narrowed to the objects the viewer may see.
    async fn narrow(&self, viewer: &Viewer, body: &[u8]) -> Option<bytes::Bytes> {
        let mut list: Value = serde_json::from_slice(body).ok()?;
        let items = list["data"].as_array()?.clone();
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            let Some(id) = item["id"].as_str() else {
                continue;
            };
            if self.book.get(id).await.is_some_and(|r| viewer.sees(&r)) {
                kept.push(item);
            }
        }
        // Anthropic's list pages by `first_id`/`last_id`, OpenAI's by the same names.
        for edge in ["first_id", "last_id"] {
            if list.get(edge).is_some() {
                list[edge] = kept
                    .first()
                    .filter(|_| edge == "first_id")
                    .or_else(|| kept.last().filter(|_| edge == "last_id"))
                    .map_or(Value::Null, |i| i["id"].clone());
            }
        }
        list["data"] = Value::Array(kept);
        serde_json::to_vec(&list).ok().map(bytes::Bytes::from)
    }

    /// Records a new object (the answer's id) as the caller's.
    fn record_created(
        &self,
        ctx: &RequestCtx,
        call: &Call,
        answer: &Value,
        batch_id: Option<&str>,
    ) {
        let Some(id) = answer["id"].as_str() else {
            return;
        };
        self.book.save(BatchObject {
            id: id.to_string(),
            kind: kind_of(ctx.request.endpoint).to_string(),
            provider: call.provider.clone(),
            credential: ctx.route.credential.clone(),
            key_id: call.viewer.key_id.clone(),
            team_id: call.viewer.team_id.clone(),
            created_ms: now_ms(),
            batch_id: batch_id.map(String::from),
            costed_ms: None,
            deleted: false,
        });
    }

    /// A batch's output or error file, known from its retrieve: the batch's owner's, and the
    /// way back to the batch when its content is fetched.
    fn record_outputs(&self, call: &Call, batch: &BatchObject, answer: &Value) {
        for field in ["output_file_id", "error_file_id"] {
            let Some(file_id) = answer[field].as_str() else {
                continue;
            };
            if self.book.lock().contains_key(file_id) {
                continue;
            }
            self.book.save(BatchObject {
                id: file_id.to_string(),
                kind: "file".into(),
                provider: call.provider.clone(),
                credential: batch.credential.clone(),
                key_id: batch.key_id.clone(),
                team_id: batch.team_id.clone(),
                created_ms: now_ms(),
                batch_id: Some(batch.id.clone()),
                costed_ms: None,
                deleted: false,
            });
        }
    }

    /// The input file a batch create names, when the proxy knows it. A key (not the operator)
    /// may only make a batch of its own (or its team's) file: another's, or one the proxy never
    /// made, is a 404 like any object it may not see.
    async fn input_file(
        &self,
        request: &ResourceRequest,
        viewer: &Viewer,
    ) -> Result<Option<BatchObject>, ApiError> {
        let Some(file_id) = request
            .json()
            .and_then(|body| body["input_file_id"].as_str().map(String::from))
        else {
            return Ok(None);
        };
        let file = self
            .book
            .get(&file_id)
            .await
            .filter(|f| f.kind == "file" && viewer.sees(f));
        match file {
            Some(file) => Ok(Some(file)),
            None if viewer.operator => Ok(None),
            None => Err(ApiError::AdminNotFound {
                message: format!("no file with id {file_id:?}"),
            }),
        }
    }

    /// A key limited to some models makes no batch whose requests use others: the models are
    /// read from the create (Anthropic) or its input file (OpenAI), and the first refused is
    /// named in a 403.
    async fn check_models(
        &self,
        request: &ResourceRequest,
        grant: &Grant,
        input: Option<&BatchObject>,
    ) -> Result<(), ApiError> {
        if !models::restricted(grant) {
            return Ok(());
        }
        let used: Vec<String> = match (request.endpoint, input) {
            (Endpoint::MessageBatches, _) => models::inline(&request.json().unwrap_or_default()),
            (Endpoint::Batches, Some(file)) => {
                let provider = self.providers.by_name(&file.provider).ok_or_else(|| {
                    ApiError::Unavailable {
                        message: format!(
                            "provider {:?}, which holds file {:?}, is no longer configured",
                            file.provider, file.id
                        ),
                        retry_after_s: None,
                    }
                })?;
                models::input_file(provider.as_ref(), file.credential.as_deref(), &file.id)
                    .await?
                    .into_iter()
                    .collect()
            }
            _ => return Ok(()),
        };
        match models::first_refused(grant, &used) {
            Some(model) => Err(ApiError::ModelNotAllowed { model }),
            None => Ok(()),
        }
    }

    /// The first fetch of a batch's output: each line's usage, to be priced at finish.
    async fn price_output(&self, ctx: &mut RequestCtx, batch_id: &str, body: &[u8]) {
        if self.book.get(batch_id).await.is_none() || !self.book.claim_costing(batch_id) {
            return;
        }
        let (lines, endpoint) = match ctx.request.endpoint {
            Endpoint::MessageBatches => (output::anthropic(body), Endpoint::MessageBatches),
            _ => (output::openai(body), Endpoint::Batches),
        };
        ctx.usage
            .parts
            .extend(lines.into_iter().map(|line| BilledPart {
                endpoint,
                model: line.model,
                tokens: line.tokens,
                tag: format!("batch:{batch_id}"),
            }));
    }
}

#[async_trait]
impl Module for Batches {
    fn name(&self) -> &'static str {
        "batches"
    }

    fn hooks(&self) -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE
    }

    /// Only the batch and file endpoints' requests (parsed as resources) concern this module.
    fn has_work(&self, _hook: Hooks, ctx: &RequestCtx) -> bool {
        matches!(ctx.request.parsed, Some(Inbound::Resource(_)))
    }

    async fn on_request(&self, ctx: &mut RequestCtx) -> Result<Verdict, ModuleError> {
        let Some(Inbound::Resource(request)) = &ctx.request.parsed else {
            return Ok(Verdict::Continue);
        };
        let request = request.clone();
        let viewer = Viewer::of(ctx);
        let record = match (&request.id, request.action) {
            (Some(id), action) if action != Action::Create => self.book.get(id).await,
            _ => None,
        };
        // A batch made from a file the proxy knows goes where the file is, with its credential.
        let input = match (request.endpoint, request.action) {
            (Endpoint::Batches, Action::Create) => self.input_file(&request, &viewer).await,
            _ => Ok(None),
        };
        let input = match input {
            Ok(input) => input,
            Err(refused) => return Ok(Verdict::Reject(refused)),
        };
        let provider = match (&record, &input) {
            (_, Some(file)) if !ctx.request.headers.contains_key(PROVIDER_HEADER) => {
                ctx.route.credential.clone_from(&file.credential);
                file.provider.clone()
            }
            (Some(record), _) if viewer.sees(record) => {
                ctx.route.credential.clone_from(&record.credential);
                record.provider.clone()
            }
            (Some(_), _) => return Ok(Verdict::Reject(not_found(&request))),
            // An object the proxy never made: the operator's to reach, nobody else's.
            (None, _) if request.id.is_some() && !viewer.operator => {
                return Ok(Verdict::Reject(not_found(&request)));
            }
            (None, _) => match self.provider_for(ctx) {
                Ok(provider) => provider,
                Err(err) => return Ok(Verdict::Reject(err)),
            },
        };
        if request.action == Action::Create
            && let Some(grant) = &ctx.identity.grant
            && let Err(refused) = self.check_models(&request, grant, input.as_ref()).await
        {
            return Ok(Verdict::Reject(refused));
        }
        ctx.request.requested_model = format!("{provider}/{}", ctx.request.endpoint.as_str());
        ctx.slots.insert(Call {
            viewer,
            provider,
            record,
        });
        Ok(Verdict::Continue)
    }

    async fn on_response(
        &self,
        ctx: &mut RequestCtx,
        answer: &mut Answer,
    ) -> Result<(), ModuleError> {
        let Some(Inbound::Resource(request)) = &ctx.request.parsed else {
            return Ok(());
        };
        let Some(call) = ctx.slots.get::<Call>().cloned() else {
            return Ok(());
        };
        let (action, endpoint) = (request.action, request.endpoint);
        let body = answer.body.clone();
        let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
        match (action, &call.record) {
            (Action::Create, _) => self.record_created(ctx, &call, &json(), None),
            (Action::List, _) if !call.viewer.operator => {
                if let Some(narrowed) = self.narrow(&call.viewer, &body).await {
                    answer.body = narrowed;
                }
            }
            (Action::Retrieve | Action::Cancel, Some(batch)) if endpoint == Endpoint::Batches => {
                self.record_outputs(&call, batch, &json());
            }
            (Action::Delete, Some(record)) => self.book.save(BatchObject {
                deleted: true,
                ..record.clone()
            }),
            (Action::Content, Some(file)) => {
                if let Some(batch_id) = file.batch_id.clone() {
                    self.price_output(ctx, &batch_id, &body).await;
                }
            }
            (Action::Results, Some(batch)) => {
                self.price_output(ctx, &batch.id, &body).await;
            }
            _ => {}
        }
        Ok(())
    }
}
