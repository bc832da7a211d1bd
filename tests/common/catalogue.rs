//! What every catalogue module's tests check the same way: a config change through the admin API
//! (refused with the field named, or applied to the next request), and its ledger entry.

use hyper::Method;
use serde_json::Value;

use super::{ADMIN_KEY, Answer, Harness};

/// The `[admin]` table the catalogue tests start with, and `extra` after it.
pub fn admin_toml(extra: &str) -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}")
}

/// `PUT /admin/modules/{name}` with `change` (`{"enabled": .., "config": ..}`).
pub async fn change(h: &Harness, name: &str, change: Value) -> Answer {
    h.client
        .admin(
            Method::PUT,
            &format!("/admin/modules/{name}"),
            &change.to_string(),
        )
        .await
}

/// Asserts that `config` is refused with a 400 whose message names `field`, and that the refusal
/// left no ledger entry for the module.
pub async fn assert_config_refused(h: &Harness, name: &str, config: Value, field: &str) {
    let before = audit_entries(h, name).await.len();
    let answer = change(h, name, serde_json::json!({ "config": config })).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(field), "{field} not named in: {message}");
    assert_eq!(
        audit_entries(h, name).await.len(),
        before,
        "a refused change is not audited"
    );
}

/// The ledger's `module.update` entries for module `name`, oldest first.
pub async fn audit_entries(h: &Harness, name: &str) -> Vec<Value> {
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    assert_eq!(audit["verify"]["ok"], true, "{audit}");
    audit["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["action"] == "module.update" && e["target"] == name)
        .collect()
}

/// Whether `GET /admin/modules` lists `name` as enabled.
pub async fn listed_enabled(h: &Harness, name: &str) -> bool {
    let modules = h
        .client
        .admin(Method::GET, "/admin/modules", "")
        .await
        .json();
    modules["modules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == name)
        .map(|m| m["enabled"] == true)
        .unwrap_or_else(|| panic!("{name} not listed: {modules}"))
}
