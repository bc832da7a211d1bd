//! `GET /v1/models`: a fixed list, serialized once.

use std::sync::LazyLock;

use bytes::Bytes;
use serde::Serialize;

use super::{Reply, to_json};

/// The models the mock lists. It answers for any model name; this list is only what it reports.
pub const MODELS: [&str; 4] = [
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
];

#[derive(Serialize)]
struct List {
    object: &'static str,
    data: Vec<Model>,
}

#[derive(Serialize)]
struct Model {
    id: &'static str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

static BODY: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(to_json(&List {
        object: "list",
        data: MODELS
            .iter()
            .map(|&id| Model {
                id,
                object: "model",
                created: 1_700_000_000,
                owned_by: "mock",
            })
            .collect(),
    }))
});

pub(crate) fn reply() -> Reply {
    Reply::Json(BODY.clone())
}
