use super::*;

#[test]
fn every_row_is_complete_and_named_by_convention() {
    let mut names = std::collections::BTreeSet::new();
    for p in PRESETS.iter().chain([&AZURE]) {
        assert!(names.insert(p.name), "duplicate preset {}", p.name);
        assert!(
            p.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{}",
            p.name
        );
        assert!(p.docs.starts_with("https://"), "{}", p.name);
        if p.name != "azure" {
            assert_eq!(p.api_key_env, format!("{}_API_KEY", p.name.to_uppercase()));
            if let Some(var) = p.base_url_env {
                assert_eq!(var, format!("{}_BASE_URL", p.name.to_uppercase()));
            }
            assert_eq!(p.auth, AuthStyle::Bearer);
            assert!(!p.quirks.accepts_developer_role, "{}", p.name);
        }
        if let Some(url) = p.default_base_url {
            assert!(
                url.starts_with("https://") || url.starts_with("http://localhost:"),
                "{url}"
            );
            assert!(!url.ends_with('/'), "{url}");
        } else {
            assert!(
                p.base_url_env.is_some(),
                "{} needs a way to set its URL",
                p.name
            );
        }
        // Local servers need no key; hosted ones do.
        let local = p
            .default_base_url
            .is_none_or(|u| u.starts_with("http://localhost"));
        assert_eq!(p.key_required, !local || p.name == "azure", "{}", p.name);
    }
    assert_eq!(names.len(), 16);
}

#[test]
fn base_urls_and_auth_per_row() {
    let no_env = |_: &str| None;
    let want = [
        ("groq", Some("https://api.groq.com/openai/v1")),
        ("mistral", Some("https://api.mistral.ai/v1")),
        ("together", Some("https://api.together.ai/v1")),
        ("fireworks", Some("https://api.fireworks.ai/inference/v1")),
        ("deepseek", Some("https://api.deepseek.com")),
        ("xai", Some("https://api.x.ai/v1")),
        ("openrouter", Some("https://openrouter.ai/api/v1")),
        ("perplexity", Some("https://api.perplexity.ai")),
        ("cerebras", Some("https://api.cerebras.ai/v1")),
        ("ollama", Some("http://localhost:11434/v1")),
        ("vllm", None),
        ("lmstudio", Some("http://localhost:1234/v1")),
        ("cohere", Some("https://api.cohere.com/v2")),
        ("jina", Some("https://api.jina.ai/v1")),
        ("voyage", Some("https://api.voyageai.com/v1")),
        ("azure", None),
    ];
    for (name, url) in want {
        let p = preset(name).unwrap();
        assert_eq!(p.base_url(no_env).as_deref(), url, "{name}");
    }
    let env = |var: &str| (var == "VLLM_BASE_URL").then(|| "http://gpu-box:8000/v1/".to_string());
    assert_eq!(
        preset("vllm").unwrap().base_url(env).as_deref(),
        Some("http://gpu-box:8000/v1")
    );
    let env =
        |var: &str| (var == "OLLAMA_BASE_URL").then(|| "http://10.0.0.5:11434/v1".to_string());
    assert_eq!(
        preset("ollama").unwrap().base_url(env).as_deref(),
        Some("http://10.0.0.5:11434/v1")
    );
    let blank = |_: &str| Some("  ".to_string());
    assert_eq!(
        preset("lmstudio").unwrap().base_url(blank).as_deref(),
        Some("http://localhost:1234/v1")
    );
    // Hosted rows have no base-URL variable, so the environment cannot redirect their keys.
    let evil = |_: &str| Some("https://attacker.example".to_string());
    assert_eq!(
        preset("groq").unwrap().base_url(evil).as_deref(),
        Some("https://api.groq.com/openai/v1")
    );

    assert_eq!(
        preset("xai").unwrap().auth_header("k"),
        ("authorization", "Bearer k".to_string())
    );
    assert_eq!(AZURE.auth_header("k"), ("api-key", "k".to_string()));
    assert_eq!(
        preset("openrouter").unwrap().optional_headers,
        ["HTTP-Referer", "X-Title"]
    );
    assert!(preset("anthropic").is_none());
}

#[test]
fn bare_model_prefixes_route_only_unambiguous_names() {
    let cases = [
        ("mistral-large-latest", Some("mistral")),
        ("codestral-2501", Some("mistral")),
        ("open-mistral-nemo", Some("mistral")),
        ("magistral-medium-latest", Some("mistral")),
        ("grok-4", Some("xai")),
        ("deepseek-chat", Some("deepseek")),
        ("deepseek-reasoner", Some("deepseek")),
        ("deepseek-r1-distill-llama-70b", None),
        ("sonar-pro", Some("perplexity")),
        (
            "accounts/fireworks/models/llama-v3p1-8b-instruct",
            Some("fireworks"),
        ),
        ("llama-3.3-70b-versatile", None),
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", None),
        ("gpt-4o", None),
        ("claude-sonnet-4-5", None),
    ];
    for (model, want) in cases {
        assert_eq!(preset_for_model(model).map(|p| p.name), want, "{model}");
    }
    // No two presets claim overlapping prefixes.
    let all: Vec<(&str, &str)> = PRESETS
        .iter()
        .flat_map(|p| p.model_prefixes.iter().map(move |x| (p.name, *x)))
        .collect();
    for (a_name, a) in &all {
        for (b_name, b) in &all {
            if a_name != b_name {
                assert!(!a.starts_with(b), "{a_name}:{a} overlaps {b_name}:{b}");
            }
        }
    }
}

#[test]
fn azure_files_and_batches_belong_to_the_resource() {
    assert_eq!(
        azure_resource_url(
            "https://myres.openai.azure.com/",
            "2024-10-21",
            "/batches?limit=2"
        ),
        "https://myres.openai.azure.com/openai/batches?api-version=2024-10-21&limit=2"
    );
    assert_eq!(
        azure_resource_url(
            "https://myres.openai.azure.com",
            "2024-10-21",
            "/files/f-1/content"
        ),
        "https://myres.openai.azure.com/openai/files/f-1/content?api-version=2024-10-21"
    );
}

#[test]
fn azure_urls_in_both_forms() {
    assert_eq!(
        azure_url(
            "https://myres.openai.azure.com/",
            "gpt-4o-prod",
            "2024-10-21",
            "/chat/completions"
        ),
        "https://myres.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(
        azure_url(
            "https://myres.openai.azure.com",
            "emb",
            "2024-10-21",
            "embeddings"
        ),
        "https://myres.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
    );
    assert_eq!(
        azure_v1_url("https://myres.openai.azure.com/", "/chat/completions"),
        "https://myres.openai.azure.com/openai/v1/chat/completions"
    );
    assert_eq!(
        azure_v1_url("https://myres.openai.azure.com", ""),
        "https://myres.openai.azure.com/openai/v1"
    );
    assert_eq!(AZURE.quirks, Quirks::OPENAI);
}

#[test]
fn stream_usage_per_row() {
    let usage = |name: &str| preset(name).unwrap().quirks.stream_usage;
    assert_eq!(usage("lmstudio"), StreamUsage::Never);
    assert_eq!(usage("mistral"), StreamUsage::Always);
    assert_eq!(usage("fireworks"), StreamUsage::Always);
    for name in [
        "groq",
        "together",
        "deepseek",
        "xai",
        "openrouter",
        "perplexity",
        "cerebras",
        "ollama",
        "vllm",
        "azure",
    ] {
        assert_eq!(usage(name), StreamUsage::OnRequest, "{name}");
    }
    // Only Mistral needs stream_options removed, and then it still reports usage.
    for p in PRESETS {
        if p.quirks.rejects_stream_options {
            assert_eq!(p.quirks.stream_usage, StreamUsage::Always, "{}", p.name);
        }
    }
}
