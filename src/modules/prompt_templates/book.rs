//! The templates in memory: every stored version, compiled once (when loaded at start-up or
//! put), and which version of each name is in force. The request path reads only this; the
//! admin path ([`crate::admin::prompts`]) swaps in a new book after persisting a change.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::prompts::{PromptStore, PromptVersion};

/// The most variants one version may split between.
pub const MAX_VARIANTS: usize = 16;

/// A version as `put` takes it: either one set of messages, or weighted variants of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(default)]
    pub messages: Option<Vec<TemplateMessage>>,
    #[serde(default)]
    pub variants: Option<Vec<Variant>>,
}

/// A version as stored: always variants (one, named `default`, for a plain definition).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    pub variants: Vec<Variant>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    /// The variant's share of requests, relative to the others'. Default 1.
    #[serde(default = "one")]
    pub weight: u32,
    pub messages: Vec<TemplateMessage>,
}

fn one() -> u32 {
    1
}

/// One message of the template; `content` is a MiniJinja template.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMessage {
    pub role: String,
    pub content: String,
}

const ROLES: &[&str] = &["system", "developer", "user", "assistant"];

/// Whether `name` may name a template: 1 to 64 letters, digits, `_`, `-` or `.`.
pub fn name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (!ok).then(|| format!("prompt name {name:?} must be 1..=64 letters, digits, _, - or . (no @)"))
}

/// One version, compiled.
pub struct Compiled {
    pub version: u32,
    pub created_ms: i64,
    pub stored: Stored,
    /// Each message's template, named `v{variant}m{message}`.
    env: Environment<'static>,
}

impl Compiled {
    /// Checks and compiles a definition (as put, or as stored); errors name the field.
    pub fn build(version: u32, created_ms: i64, definition: Value) -> Result<Compiled, String> {
        let stored = normalise(definition)?;
        let mut env = Environment::new();
        // A variable the request did not give is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut names = std::collections::HashSet::new();
        for (v, variant) in stored.variants.iter().enumerate() {
            if variant.name.trim().is_empty() || !names.insert(variant.name.clone()) {
                return Err(format!(
                    "variants[{v}].name: {:?} is empty or used twice",
                    variant.name
                ));
            }
            if variant.messages.is_empty() {
                return Err(format!("variants[{v}].messages: give at least one message"));
            }
            for (m, message) in variant.messages.iter().enumerate() {
                if !ROLES.contains(&message.role.as_str()) {
                    return Err(format!(
                        "variants[{v}].messages[{m}].role: {:?} is not one of {}",
                        message.role,
                        ROLES.join(", ")
                    ));
                }
                env.add_template_owned(format!("v{v}m{m}"), message.content.clone())
                    .map_err(|e| format!("variants[{v}].messages[{m}].content: {e}"))?;
            }
        }
        if stored.variants.iter().all(|v| v.weight == 0) {
            return Err("variants: at least one weight must be above 0".into());
        }
        Ok(Compiled {
            version,
            created_ms,
            stored,
            env,
        })
    }

    /// The variant for a request whose sticky value hashes to `draw`, by weight.
    pub fn pick(&self, draw: u64) -> usize {
        let total: u64 = self
            .stored
            .variants
            .iter()
            .map(|v| u64::from(v.weight))
            .sum();
        let mut point = draw % total.max(1);
        for (i, variant) in self.stored.variants.iter().enumerate() {
            let weight = u64::from(variant.weight);
            if point < weight {
                return i;
            }
            point -= weight;
        }
        0
    }

    /// Variant `v`'s messages rendered with `vars`: `(role, content)`.
    pub fn render(&self, v: usize, vars: &Value) -> Result<Vec<(String, String)>, String> {
        let variant = &self.stored.variants[v];
        let mut out = Vec::with_capacity(variant.messages.len());
        for (m, message) in variant.messages.iter().enumerate() {
            let template = self
                .env
                .get_template(&format!("v{v}m{m}"))
                .map_err(|e| e.to_string())?;
            let text = template.render(vars).map_err(|e| e.to_string())?;
            out.push((message.role.clone(), text));
        }
        Ok(out)
    }

    /// The version as stored (JSON text).
    pub fn body(&self) -> String {
        serde_json::to_string(&self.stored).unwrap_or_default()
    }
}

/// A definition in its stored form: `messages` becomes one variant named `default`.
fn normalise(definition: Value) -> Result<Stored, String> {
    let definition: Definition = serde_path_to_error::deserialize(definition).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("{path}: {}", e.into_inner())
        }
    })?;
    let variants = match (definition.messages, definition.variants) {
        (Some(messages), None) => vec![Variant {
            name: "default".into(),
            weight: 1,
            messages,
        }],
        (None, Some(variants)) if !variants.is_empty() && variants.len() <= MAX_VARIANTS => {
            variants
        }
        (None, Some(variants)) => {
            return Err(format!(
                "variants: give 1..={MAX_VARIANTS} variants (got {})",
                variants.len()
            ));
        }
        _ => return Err("give either messages or variants".into()),
    };
    Ok(Stored { variants })
}

/// One template name: its versions and the one in force.
#[derive(Clone)]
pub struct Template {
    pub active: u32,
    pub versions: BTreeMap<u32, Arc<Compiled>>,
}

impl Template {
    pub fn latest(&self) -> u32 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }
}

/// Every template, behind an `ArcSwap`: the request path loads it without a lock.
#[derive(Default)]
pub struct PromptBook {
    templates: ArcSwap<BTreeMap<String, Template>>,
}

impl PromptBook {
    /// The stored templates; a version that no longer compiles (stored by another build) is
    /// skipped with a warning rather than failing start-up.
    pub fn load(store: &dyn PromptStore) -> PromptBook {
        let versions = store.prompt_versions().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read prompt templates");
            Vec::new()
        });
        let active: BTreeMap<String, u32> = store
            .prompt_active()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut templates: BTreeMap<String, Template> = BTreeMap::new();
        for PromptVersion {
            name,
            version,
            body,
            created_ms,
        } in versions
        {
            let compiled = serde_json::from_str(&body)
                .map_err(|e| e.to_string())
                .and_then(|value| Compiled::build(version, created_ms, value));
            match compiled {
                Ok(compiled) => {
                    let template = templates.entry(name.clone()).or_insert(Template {
                        active: 0,
                        versions: BTreeMap::new(),
                    });
                    template.versions.insert(version, Arc::new(compiled));
                    template.active = active.get(&name).copied().unwrap_or(version);
                }
                Err(e) => tracing::warn!(%name, version, error = %e, "skipping a stored prompt"),
            }
        }
        PromptBook {
            templates: ArcSwap::from_pointee(templates),
        }
    }

    pub fn snapshot(&self) -> Arc<BTreeMap<String, Template>> {
        self.templates.load_full()
    }

    /// Replaces the book (the admin path, after persisting; its lock orders the changes).
    pub fn store(&self, templates: BTreeMap<String, Template>) {
        self.templates.store(Arc::new(templates));
    }

    /// `name@version`, or `name` for the version in force.
    pub fn find(&self, reference: &str) -> Result<Arc<Compiled>, String> {
        let (name, version) = match reference.split_once('@') {
            Some((name, version)) => {
                let version: u32 = version
                    .parse()
                    .map_err(|_| format!("{reference:?}: the version after @ must be a number"))?;
                (name, Some(version))
            }
            None => (reference, None),
        };
        let templates = self.templates.load();
        let template = templates
            .get(name)
            .ok_or_else(|| format!("no prompt template named {name:?}"))?;
        let version = version.unwrap_or(template.active);
        template
            .versions
            .get(&version)
            .cloned()
            .ok_or_else(|| format!("prompt template {name:?} has no version {version}"))
    }
}

/// The book of this process, loaded from the store the first time anything asks.
pub fn book(deps: &crate::modules::ModuleDeps) -> Arc<PromptBook> {
    let store = deps.store.prompts.clone();
    deps.shared.get_or_init(|| PromptBook::load(store.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definition_errors_name_the_field() {
        let err = |v: Value| Compiled::build(1, 0, v).err().unwrap_or_default();
        assert!(
            err(json!({"messages": [{"role": "wizard", "content": "x"}]}))
                .starts_with("variants[0].messages[0].role")
        );
        assert!(
            err(json!({"messages": [{"role": "system", "content": "{{ oops"}]}))
                .starts_with("variants[0].messages[0].content")
        );
        assert!(err(json!({"messages": [{"role": "system"}]})).starts_with("messages[0]"));
        assert!(err(json!({})).contains("either messages or variants"));
        assert!(
            err(json!({"variants": [{"name": "a", "weight": 0, "messages": [{"role": "user", "content": "x"}]}]}))
                .starts_with("variants:")
        );
        assert!(name_problem("support@2").is_some());
        assert!(name_problem("support.v2").is_none());
    }

    #[test]
    fn renders_strictly_and_picks_by_weight() {
        let compiled = Compiled::build(
            1,
            0,
            json!({"variants": [
                {"name": "a", "weight": 3, "messages": [{"role": "system", "content": "Hi {{ who }}"}]},
                {"name": "b", "weight": 1, "messages": [{"role": "system", "content": "Yo {{ who }}"}]},
            ]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            compiled.render(0, &json!({"who": "Ada"})).ok(),
            Some(vec![("system".to_string(), "Hi Ada".to_string())])
        );
        assert!(compiled.render(0, &json!({})).is_err());
        let picks: Vec<usize> = (0..8).map(|d| compiled.pick(d)).collect();
        assert_eq!(picks, [0, 0, 0, 1, 0, 0, 0, 1]);
    }
}
