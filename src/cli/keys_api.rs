//! The admin API call that makes a key, team or admin-key change on a running server (the
//! server draws a new key itself: a secret the CLI drew for an offline change is not sent).

use bytes::Bytes;
use hyper::Method;
use serde_json::{Value, json};

use crate::admin::keys::KeyOp;

pub fn request_for(op: &KeyOp) -> (Method, String, Bytes) {
    let body = |v: Value| Bytes::from(v.to_string());
    match op {
        KeyOp::CreateKey { key, .. } => (Method::POST, "/admin/keys".into(), body(json!(key))),
        KeyOp::UpdateKey { id, patch } => (
            Method::PATCH,
            format!("/admin/keys/{id}"),
            body(json!(patch)),
        ),
        KeyOp::RevokeKey { id } => (
            Method::POST,
            format!("/admin/keys/{id}/revoke"),
            Bytes::new(),
        ),
        KeyOp::RotateKey { id, .. } => (
            Method::POST,
            format!("/admin/keys/{id}/rotate"),
            Bytes::new(),
        ),
        KeyOp::CreateTeam { name, limits } => (
            Method::POST,
            "/admin/teams".into(),
            body(json!({"name": name, "limits": limits})),
        ),
        KeyOp::UpdateTeam { name, patch } => (
            Method::PATCH,
            format!("/admin/teams/{name}"),
            body(json!(patch)),
        ),
        KeyOp::DeleteTeam { name } => {
            (Method::DELETE, format!("/admin/teams/{name}"), Bytes::new())
        }
        KeyOp::CreateAdminKey { name, role, .. } => (
            Method::POST,
            "/admin/admin-keys".into(),
            body(json!({"name": name, "role": role})),
        ),
        KeyOp::RevokeAdminKey { id } => (
            Method::POST,
            format!("/admin/admin-keys/{id}/revoke"),
            Bytes::new(),
        ),
    }
}
