//! Which models a virtual key may ask for: the key's globs and its team's globs, both (an empty
//! list allows every model). A glob has `*` (any run of characters, `/` included) and `?` (one
//! character); everything else matches itself, case-sensitively, as model names are sent.
//!
//! The name checked is the one the client asked for, before routing: an alias is allowed by its
//! own name, so an operator grants an alias without granting what it points at today.

use crate::request::grant::Grant;

/// Whether `grant` (its key and its team) may use `model`.
pub fn allowed(grant: &Grant, model: &str) -> bool {
    fits(&grant.limits.models, model)
        && grant
            .team
            .as_ref()
            .is_none_or(|team| fits(&team.limits.models, model))
}

fn fits(globs: &[String], model: &str) -> bool {
    globs.is_empty() || globs.iter().any(|g| glob_match(g, model))
}

/// `*` and `?` matching, iterative with one backtrack point (linear in practice, never
/// exponential on patterns with many stars). A pattern without wildcards is an equality test;
/// ASCII pattern and text (every model name in practice) are matched on bytes, anything else
/// on characters, so `?` is always one character. Runs for every rule of several modules on
/// every request, so it allocates nothing.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return wildcard_match(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    wildcard_match(&p, &t, '*', '?')
}

fn wildcard_match<T: PartialEq + Copy>(p: &[T], t: &[T], any_run: T, any_one: T) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == any_one || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any_run {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == any_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::grant::{Limits, TeamGrant};
    use std::sync::Arc;

    #[test]
    fn globs_match_stars_and_single_characters() {
        assert!(glob_match("gpt-4o*", "gpt-4o"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(!glob_match("gpt-4o*", "gpt-4"));
        assert!(glob_match("*", ""));
        assert!(glob_match("openai/*", "openai/gpt-4o"));
        assert!(glob_match("claude-?-*", "claude-3-haiku"));
        assert!(!glob_match("claude-?-*", "claude-35-haiku"));
        assert!(glob_match("*mini", "gpt-4o-mini"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("gpt-4o", "gpt-4o"));
        // `?` is one character, not one byte, outside ASCII too.
        assert!(glob_match("modèle-?", "modèle-é"));
        assert!(glob_match("m?dèle-*", "mädèle-x"));
        assert!(!glob_match("modèle-?", "modèle-éé"));
    }

    #[test]
    fn the_team_list_applies_on_top_of_the_key_list() {
        let limits = |models: &[&str]| Limits {
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Limits::default()
        };
        let mut grant = Grant {
            key_id: "vk_1".into(),
            limits_id: "vk_1".into(),
            key_name: "k".into(),
            team: None,
            limits: limits(&["gpt-*"]),
            metadata: Default::default(),
        };
        assert!(allowed(&grant, "gpt-4o") && !allowed(&grant, "claude-3"));
        grant.team = Some(Arc::new(TeamGrant {
            id: "ml".into(),
            limits: limits(&["gpt-4o-mini", "claude-*"]),
        }));
        assert!(allowed(&grant, "gpt-4o-mini"));
        assert!(!allowed(&grant, "gpt-4o"), "the team does not allow it");
        assert!(!allowed(&grant, "claude-3"), "the key does not allow it");
        grant.limits = limits(&[]);
        assert!(allowed(&grant, "claude-3"));
    }
}
