//! The web console over plain HTTP (no browser): login and the session cookie's flags, the
//! content security policy, CSRF refusal, a read-only admin key refused a change, the console
//! off in config, trace list filters and keyset pagination, the overview's sums, a key created
//! in the console and used through the proxy, the live stream, and every change in the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::console::{Console, form, login_answer};
use common::{ADMIN_KEY, Harness, chat};
use hyper::Method;
use serde_json::{Value, json};
use stockyard::store::now_ms;

fn admin_toml() -> String {
    format!("[admin]\nkey = \"{ADMIN_KEY}\"\n")
}

async fn module_enabled(h: &Harness, name: &str) -> bool {
    let modules = h
        .client
        .admin(Method::GET, "/admin/modules", "")
        .await
        .json();
    modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()["enabled"]
        .as_bool()
        .unwrap()
}

async fn ledger(h: &Harness) -> Vec<Value> {
    let audit = h.client.admin(Method::GET, "/admin/audit", "").await.json();
    audit["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn console_off_in_config_is_a_404() {
    let h = Harness::start_with(&format!("{}[ui]\nenabled = false\n", admin_toml())).await;
    for path in ["/ui", "/ui/login", "/ui/traces", "/ui/assets/app.js"] {
        let answer = h.client.get(path).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    assert_eq!(login_answer(&h.client, ADMIN_KEY).await.status, 404);
}

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_every_page_has_a_policy() {
    let h = Harness::start_with(&admin_toml()).await;
    // Not logged in: pages send you to the login page; a post is refused.
    let answer = h.client.get("/ui/traces").await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), Some("/ui/login"));
    let login_page = h.client.get("/ui/login").await;
    assert_eq!(login_page.status, 200);
    let csp = login_page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(login_page.header("x-content-type-options"), Some("nosniff"));

    let wrong = login_answer(&h.client, "admin-key-wrong-wrong-wrong").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(wrong.text().contains("not a live admin key"));

    let answer = login_answer(&h.client, ADMIN_KEY).await;
    assert_eq!(answer.status, 303);
    let cookie = answer.header("set-cookie").unwrap();
    assert!(cookie.starts_with("stockyard_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    let console = Console::login(&h.client, ADMIN_KEY).await;
    for path in [
        "/ui",
        "/ui/traces",
        "/ui/spend",
        "/ui/keys",
        "/ui/routing",
        "/ui/modules",
        "/ui/audit",
        "/ui/live",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        assert!(page.header("content-security-policy").is_some(), "{path}");
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
        // No inline script or style anywhere: the policy would block it.
        let text = page.text();
        assert!(
            !text.contains("<script>") && !text.contains("style=\""),
            "{path}"
        );
    }
    // Logging out ends the session.
    assert_eq!(console.post("/ui/logout", &[]).await.status, 303);
    assert_eq!(console.get("/ui").await.status, 303);
}

#[tokio::test]
async fn a_change_without_the_csrf_token_is_refused_and_changes_nothing() {
    let h = Harness::start_with(&admin_toml()).await;
    let console = Console::login(&h.client, ADMIN_KEY).await;
    // The cache starts disabled; each post below tries to enable it.
    assert!(!module_enabled(&h, "cache").await);
    let before = ledger(&h).await.len();

    let missing = console
        .post_raw("/ui/modules/cache", &form(&[("enabled", "true")]))
        .await;
    assert_eq!(missing.status, 403);
    assert!(missing.text().contains("CSRF token missing or wrong"));
    let forged = console
        .post_raw(
            "/ui/modules/cache",
            &form(&[("enabled", "true"), ("csrf", "0000")]),
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(!module_enabled(&h, "cache").await);
    assert_eq!(ledger(&h).await.len(), before);

    // Another session's token is not this one's.
    let other = Console::login(&h.client, ADMIN_KEY).await;
    assert_ne!(other.csrf, console.csrf);
    let crossed = console
        .post_raw(
            "/ui/modules/cache",
            &form(&[("enabled", "true"), ("csrf", &other.csrf)]),
        )
        .await;
    assert_eq!(crossed.status, 403);
    assert!(!module_enabled(&h, "cache").await);

    let ok = console
        .post("/ui/modules/cache", &[("enabled", "true")])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert!(module_enabled(&h, "cache").await);
    let entries = ledger(&h).await;
    let last = entries.last().unwrap();
    assert_eq!(last["actor"], "admin");
    assert_eq!(last["action"], "module.update");
    assert_eq!(last["details"]["after"]["enabled"], true);
    // The outcome is on the next page, once.
    let page = console.get("/ui/modules").await.text();
    assert!(page.contains("cache: enabled"), "{page}");
    assert!(
        !console
            .get("/ui/modules")
            .await
            .text()
            .contains("cache: enabled")
    );
}

#[tokio::test]
async fn a_read_only_admin_key_sees_pages_but_is_refused_changes() {
    let h = Harness::start_with(&admin_toml()).await;
    let created = h
        .client
        .admin(
            Method::POST,
            "/admin/admin-keys",
            &json!({"name": "viewer", "role": "read-only"}).to_string(),
        )
        .await
        .json();
    let viewer_key = created["key"].as_str().unwrap().to_string();
    let console = Console::login(&h.client, &viewer_key).await;
    let page = console.get("/ui/modules").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("read-only"));
    assert!(
        page.text().contains("<fieldset disabled>"),
        "forms are shown disabled"
    );
    let before = ledger(&h).await.len();
    let refused = console
        .post("/ui/modules/cache", &[("enabled", "true")])
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("read-only"));
    let refused = console.post("/ui/keys/create", &[("name", "sneaky")]).await;
    assert_eq!(refused.status, 403);
    assert!(!module_enabled(&h, "cache").await);
    assert_eq!(ledger(&h).await.len(), before);

    // Revoking the admin key ends its console session at once.
    let revoked = h
        .client
        .admin(Method::POST, "/admin/admin-keys/viewer/revoke", "")
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(console.get("/ui/modules").await.status, 303);
}

#[tokio::test]
async fn a_module_config_the_module_refuses_is_shown_beside_its_field() {
    let h = Harness::start_with(&admin_toml()).await;
    let console = Console::login(&h.client, ADMIN_KEY).await;
    let before = ledger(&h).await.len();
    let bad = console
        .post(
            "/ui/modules/request_limits",
            &[("config", "{\"max_body_bytes\": \"lots\"}")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text());
    let text = bad.text();
    let error_at = text
        .find("id=\"error-request_limits\"")
        .expect("the error beside the field");
    assert!(
        text[error_at..].contains("max_body_bytes"),
        "{}",
        &text[error_at..error_at + 300]
    );
    assert!(
        text.contains("&quot;lots&quot;"),
        "the submitted text is kept"
    );
    let not_json = console
        .post("/ui/modules/request_limits", &[("config", "{oops")])
        .await;
    assert_eq!(not_json.status, 422);
    assert!(not_json.text().contains("not valid JSON"));
    assert_eq!(ledger(&h).await.len(), before);
}

#[tokio::test]
async fn a_key_created_in_the_console_is_shown_once_and_works_through_the_proxy() {
    let h = Harness::start_with(&admin_toml()).await;
    let console = Console::login(&h.client, ADMIN_KEY).await;
    let page = console
        .post(
            "/ui/keys/create",
            &[
                ("name", "from-console"),
                ("budget_usd", "5"),
                ("period", "day"),
                ("rpm", "100"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let text = page.text();
    let at = text.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
    let key = text[at..].split('<').next().unwrap().to_string();
    assert!(key.len() > 20, "{key}");
    // Shown once: the listing has only the prefix.
    let listing = console.get("/ui/keys").await.text();
    assert!(listing.contains("from-console") && !listing.contains(&key));
    assert!(listing.contains("$5.00 per day · 100 rpm"), "limits listed");

    let auth = format!("Bearer {key}");
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // With a key in the table, a request without one is refused.
    let refused = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "hi", false))
        .await;
    assert_eq!(refused.status, 401);

    let entry = ledger(&h)
        .await
        .into_iter()
        .rev()
        .find(|e| e["action"] == "key.create")
        .unwrap();
    assert_eq!(entry["actor"], "admin");
    assert!(
        !entry.to_string().contains(&key),
        "the ledger never holds the key"
    );
    let id = entry["target"].as_str().unwrap().to_string();

    // Revoked in the console: refused on the next request.
    let revoked = console.post(&format!("/ui/keys/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, 303);
    let answer = h
        .client
        .call(
            Method::POST,
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "hi", false),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    // A bad limit names its field and changes nothing.
    let before = ledger(&h).await.len();
    let bad = console
        .post("/ui/keys/create", &[("name", "x"), ("rpm", "lots")])
        .await;
    assert_eq!(bad.status, 303);
    assert!(
        console
            .get("/ui/keys")
            .await
            .text()
            .contains("rpm: &quot;lots&quot; is not a whole number")
    );
    assert_eq!(ledger(&h).await.len(), before);
}

/// Queues synthetic traces (as the seed command makes them) through the writer and waits for them.
async fn seed(h: &Harness, n: usize) {
    let mut rng = fastrand::Rng::with_seed(7);
    let now = now_ms();
    for i in 0..n {
        let t = stockyard::cli::dev_seed::synthetic(&mut rng, now - 1_000 * (n - i) as i64);
        h.server.app.writer.submit_trace(t).await;
    }
    h.server.app.writer.flush().await.unwrap();
}

/// Whether a trace matches a filter, as the test computes it from the rows.
type Matches = dyn Fn(&stockyard::store::TraceRecord) -> bool;

fn row_ids(page: &str) -> Vec<String> {
    page.split("data-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_trace_list_filters_and_pages_by_keyset_through_every_row() {
    let h = Harness::start_with(&admin_toml()).await;
    seed(&h, 130).await;
    let ok = h
        .client
        .post(
            "/v1/chat/completions",
            &chat("gpt-4o-mini", "the console sees me", false),
        )
        .await;
    assert_eq!(ok.status, 200);
    let newest = h.traces(131).await.last().unwrap().clone();
    let console = Console::login(&h.client, ADMIN_KEY).await;

    // Page by page, newest first, each row once.
    let mut seen = Vec::new();
    let mut path = "/ui/traces?range=1h".to_string();
    loop {
        let page = console.get(&path).await;
        assert_eq!(page.status, 200);
        let text = page.text();
        seen.extend(row_ids(&text));
        let Some(at) = text.find("id=\"next-page\"") else {
            break;
        };
        let href = text[..at]
            .rsplit("href=\"")
            .next()
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(!href.contains("offset"));
        path = href.replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 131, "every row once");
    assert_eq!(seen[0], newest.id, "the proxied request is the newest");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 131);
    let all = h
        .store()
        .traces
        .traces(&stockyard::store::TraceQuery {
            limit: 200,
            ..Default::default()
        })
        .unwrap();
    let expected: Vec<String> = {
        let mut rows = all.clone();
        rows.sort_by_key(|t| std::cmp::Reverse(t.ts_ms));
        rows.iter().map(|t| t.id.clone()).collect()
    };
    assert_eq!(seen, expected, "newest first by time");

    // Filters: each row shown matches, and the count is what the rows hold.
    let count = |f: &dyn Fn(&stockyard::store::TraceRecord) -> bool| {
        all.iter().filter(|t| f(t)).count().min(50)
    };
    let cases: Vec<(&str, Box<Matches>)> = vec![
        ("model=gpt-4o", Box::new(|t| t.requested_model == "gpt-4o")),
        (
            "provider=anthropic",
            Box::new(|t| t.provider.as_deref() == Some("anthropic")),
        ),
        ("status=errors", Box::new(|t| t.status >= 400)),
        ("status=429", Box::new(|t| t.status == 429)),
        ("cache=hit", Box::new(|t| t.cache.as_deref() == Some("hit"))),
        (
            "key=vk_seed00",
            Box::new(|t| t.key_id.as_deref() == Some("vk_seed00")),
        ),
        (
            "team=search",
            Box::new(|t| t.team_id.as_deref() == Some("search")),
        ),
        (
            "q=refund",
            Box::new(|t| {
                t.request_body
                    .as_deref()
                    .is_some_and(|b| b.contains("refund"))
            }),
        ),
        (
            "model=gpt-4o&status=ok",
            Box::new(|t| t.requested_model == "gpt-4o" && t.status < 400),
        ),
    ];
    for (query, matches) in cases {
        let page = console.get(&format!("/ui/traces?range=1h&{query}")).await;
        assert_eq!(page.status, 200, "{query}");
        let ids = row_ids(&page.text());
        assert_eq!(ids.len(), count(&*matches), "{query}");
        for id in ids {
            let t = all.iter().find(|t| t.id == id).unwrap();
            assert!(matches(t), "{query}: {id} does not match");
        }
    }
    // A bad filter names its field.
    let bad = console.get("/ui/traces?status=sometimes").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("status: &quot;sometimes&quot;"));

    // The detail page of the proxied request: route, timings, cost, body.
    let detail = console
        .get(&format!("/ui/traces/{}", newest.id))
        .await
        .text();
    assert!(detail.contains("gpt-4o-mini") && detail.contains("id=\"trace-timings\""));
    assert!(detail.contains("id=\"trace-cost-total\""));
    assert_eq!(console.get("/ui/traces/nope").await.status, 404);
}

#[tokio::test]
async fn the_overview_sums_what_the_traces_hold() {
    let h = Harness::start_with(&admin_toml()).await;
    seed(&h, 60).await;
    let console = Console::login(&h.client, ADMIN_KEY).await;
    let all = h
        .store()
        .traces
        .traces(&stockyard::store::TraceQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let page = console.get("/ui?range=24h&by=provider").await;
    assert_eq!(page.status, 200);
    let text = page.text();
    let tile = |id: &str| {
        let at = text.find(&format!("id=\"tile-{id}\"")).unwrap();
        text[at..]
            .split("class=\"v\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(tile("requests"), all.len().to_string());
    let errors = all.iter().filter(|t| t.status >= 400).count();
    assert!(
        tile("errors").starts_with(&format!("{errors} (")),
        "{}",
        tile("errors")
    );
    let cost: i64 = all.iter().map(|t| t.cost_nanos).sum();
    assert_eq!(tile("spend"), html_usd(cost));
    for chart in [
        "chart-requests",
        "chart-errors",
        "chart-latency",
        "chart-spend",
        "chart-by-requests",
    ] {
        assert!(text.contains(&format!("id=\"{chart}\"")), "{chart}");
    }
    assert!(text.contains("<svg"));
    // Filtered to one model: only its requests.
    let gpt = all
        .iter()
        .filter(|t| t.requested_model == "gpt-4o-mini")
        .count();
    let page = console.get("/ui?range=24h&model=gpt-4o-mini").await.text();
    let at = page.find("id=\"tile-requests\"").unwrap();
    let shown = page[at..]
        .split("class=\"v\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert_eq!(shown, gpt.to_string());
    assert_eq!(console.get("/ui?by=colour").await.status, 400);
}

fn html_usd(nanos: i64) -> String {
    let dollars = nanos as f64 / 1e9;
    if dollars.abs() >= 1.0 {
        format!("${dollars:.2}")
    } else if nanos == 0 {
        "$0".into()
    } else {
        format!("${dollars:.6}")
    }
}

#[tokio::test]
async fn the_live_stream_shows_a_request_as_it_finishes() {
    let h = Harness::start_with(&admin_toml()).await;
    let console = Console::login(&h.client, ADMIN_KEY).await;
    let response = h
        .client
        .send(
            Method::GET,
            "/ui/live/events",
            "",
            &[("cookie", &console.cookie)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let reader = tokio::spawn(async move {
        let mut body = response.into_body();
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !text.contains("event: trace") && tokio::time::Instant::now() < deadline {
            use http_body_util::BodyExt;
            match tokio::time::timeout(Duration::from_secs(10), body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        text.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => break,
            }
        }
        text
    });
    // The subscription is made when the stream opens; give it a moment, then make a request.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = h
        .client
        .post("/v1/chat/completions", &chat("gpt-4o-mini", "live", false))
        .await;
    assert_eq!(ok.status, 200);
    let text = reader.await.unwrap();
    let data = text
        .split("event: trace\ndata: ")
        .nth(1)
        .expect("a trace event")
        .lines()
        .next()
        .unwrap();
    let trace: Value = serde_json::from_str(data).unwrap();
    assert_eq!(trace["requested_model"], "gpt-4o-mini");
    assert_eq!(trace["status"], 200);
}

#[tokio::test]
async fn the_audit_page_verifies_the_ledger_and_names_a_bad_entry() {
    let h = Harness::start_with(&admin_toml()).await;
    let console = Console::login(&h.client, ADMIN_KEY).await;
    assert_eq!(
        console
            .post("/ui/modules/cache", &[("enabled", "true")])
            .await
            .status,
        303
    );
    assert_eq!(
        console
            .post("/ui/modules/cache", &[("enabled", "false")])
            .await
            .status,
        303
    );
    let page = console.get("/ui/audit?verify=1").await.text();
    assert!(page.contains("The ledger verifies"), "{page}");
    assert!(page.contains("module.update"));
    // Alter entry 1 behind the proxy's back: the check names it.
    let db = h.dir.path().join("stockyard.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE ledger SET actor = 'mallory' WHERE seq = 1", [])
        .unwrap();
    let page = console.get("/ui/audit?verify=1").await.text();
    assert!(
        page.contains("The ledger does not verify: entry 1: altered"),
        "{page}"
    );
}

#[tokio::test]
async fn the_trace_list_filters_by_a_whole_tag() {
    let h = Harness::start_with(&format!("{}[modules.tags]\nenabled = true\n", admin_toml())).await;
    for tags in ["alpha", "beta,alpha", "alphabet", ""] {
        let headers: Vec<(&str, &str)> = if tags.is_empty() {
            Vec::new()
        } else {
            vec![("x-stockyard-tags", tags)]
        };
        let answer = h
            .client
            .call(
                Method::POST,
                "/v1/chat/completions",
                &chat("gpt-4o-mini", "tag me", false),
                &headers,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let traces = h.traces(4).await;
    let expected: std::collections::BTreeSet<String> = traces
        .iter()
        .filter(|t| {
            let tags: Vec<String> =
                serde_json::from_str(t.tags.as_deref().unwrap_or("[]")).unwrap_or_default();
            tags.iter().any(|tag| tag == "alpha")
        })
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(expected.len(), 2, "{traces:?}");
    let console = Console::login(&h.client, ADMIN_KEY).await;
    let page = console.get("/ui/traces?range=1h&tag=alpha").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let shown: std::collections::BTreeSet<String> = row_ids(&page.text()).into_iter().collect();
    assert_eq!(shown, expected, "alpha, not alphabet nor the untagged");
}
